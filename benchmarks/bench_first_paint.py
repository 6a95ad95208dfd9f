"""Control-room first paint with the scale-1 metropolis (~36,800 assets) in headless Chromium.

Measured by the page itself: ``window.metropilot.assetsRenderedMs`` is the time from navigation
start to the first map frame drawn with every asset (performance mark
``metropilot:assets-rendered``). The first visit includes signing in; the following visits are a
returning operator's (session kept), which is the figure the issue names.

    .venv/bin/python -m benchmarks.bench_first_paint
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from benchmarks.common import ADMIN_PASSWORD, WORK, machine, save, server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RELOADS = 7


def main() -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return {"skipped": "Debian chromium is not installed"}
    var_dir = WORK / "first-paint"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    results: dict[str, Any] = {"machine": machine()}
    with server(var_dir, command="run", METROPILOT_SEED_SCALE="1.0") as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(srv.base_url + "/")
        page.fill("#login-username", "admin")
        page.fill("#login-password", ADMIN_PASSWORD)
        page.click("#login-submit")
        page.wait_for_function("() => window.metropilot && window.metropilot.assetsRenderedMs", timeout=60_000)
        results["first_visit_with_login_ms"] = round(page.evaluate("() => window.metropilot.assetsRenderedMs"))
        results["assets"] = page.evaluate("() => window.metropilot.assetCount || null")
        samples = []
        for _ in range(RELOADS):
            page.reload()
            page.wait_for_function("() => window.metropilot && window.metropilot.assetsRenderedMs", timeout=60_000)
            samples.append(round(page.evaluate("() => window.metropilot.assetsRenderedMs")))
        results["returning_visit_ms"] = samples
        results["returning_visit_median_ms"] = statistics.median(samples)
        results["returning_visit_max_ms"] = max(samples)
        page.screenshot(path=str(WORK / "first-paint.png"))
        browser.close()
    print("first paint", {k: v for k, v in results.items() if k != "machine"}, flush=True)
    save("first_paint", results)
    return results


if __name__ == "__main__":
    main()
