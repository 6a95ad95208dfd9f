"""GET /api/v1/assets?bbox=... for boxes holding ~2,000 of the ~367,000 assets (scale 10), with 16
concurrent clients (wrk) over loopback, on SQLite and PostgreSQL, against a real server process.

Each request asks for a different box among 500 (drawn where the assets are, so dense areas weigh
more). Measured on a fresh server (cold: database pages and the per-process feature cache fill up
during the run), then again once warm, for the whole box in one response (limit=2000, ~1.4 MB of
GeoJSON) and for a first page (limit=100).

Needs the databases filled by bench_import.

    .venv/bin/python -m benchmarks.bench_bbox
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import numpy as np
import psycopg

from benchmarks.bench_import import PG_DATABASE, SQLITE_DIR
from benchmarks.common import machine, postgres_reachable, save, server, wrk

BOXES = 500
TARGET = 2000
DURATION_S = 20


def boxes_from(lon: np.ndarray, lat: np.ndarray, count: int = BOXES, target: int = TARGET) -> list[str]:
    """Boxes centred on random assets, sized so that each holds ``target`` assets."""
    rng = np.random.default_rng(42)
    cos = math.cos(math.radians(float(lat.mean())))
    result = []
    for index in rng.choice(len(lon), size=count, replace=False):
        dx = np.abs(lon - lon[index]) * cos
        dy = np.abs(lat - lat[index])
        half = float(np.partition(np.maximum(dx, dy), target - 1)[target - 1])
        half *= 0.9999  # the target-th asset sits on the edge: keep the count at or under target
        x, y = lon[index], lat[index]
        result.append(f"{x - half / cos:.6f},{y - half:.6f},{x + half / cos:.6f},{y + half:.6f}")
    return result


def positions_sqlite() -> tuple[np.ndarray, np.ndarray]:
    with sqlite3.connect(SQLITE_DIR / "metropilot.db") as conn:
        rows = conn.execute("SELECT lon, lat FROM asset").fetchall()
    array = np.array(rows)
    return array[:, 0], array[:, 1]


def run(label: str, database_url: str, var_dir: Any, boxes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workers in (1, 2):
        with server(var_dir, database_url, workers=workers) as srv:
            # A fresh server: database pages and the feature cache are cold for most of this run.
            for phase, limit in (("cold", 2000), ("warm", 2000), ("warm", 100)):
                paths = [f"/api/v1/assets?bbox={b}&limit={limit}" for b in boxes]
                result = wrk(srv.base_url, srv.token, paths, connections=16, duration_s=DURATION_S)
                key = f"workers={workers} limit={limit} {phase}"
                out[key] = result
                print(label, key, {k: result[k] for k in ("requests_per_s", "p50_ms", "p99_ms", "non2xx")}, flush=True)
    return out


def main() -> dict[str, Any]:
    lon, lat = positions_sqlite()
    boxes = boxes_from(lon, lat)
    results: dict[str, Any] = {"machine": machine(), "assets": len(lon), "boxes": BOXES, "duration_s": DURATION_S}
    results["sqlite"] = run("sqlite", "", SQLITE_DIR, boxes)
    if postgres_reachable():
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
        # Steady state, as autovacuum leaves it some time after a bulk load (index-only scans need it).
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE asset")
        results["postgresql"] = run("postgresql", url, SQLITE_DIR.parent / "pg10", boxes)
    else:
        results["postgresql"] = "skipped: PostgreSQL unreachable"
    save("bbox", results)
    return results


if __name__ == "__main__":
    main()
