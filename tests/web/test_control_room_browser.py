"""The control room in a real browser: log in, see the métropole's assets, filter, search, read a detail.

Driven with Playwright against the real server (see conftest.py). Screenshots of the key steps are
written to test-artifacts/ for people to look at.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Route, expect

from tests.web.conftest import BrowserPage, LiveServer

pytestmark = pytest.mark.browser

RENDERED = "() => performance.getEntriesByName('metropilot:assets-rendered').length > 0"
STATUS_FR = {
    "planned": "En projet",
    "active": "En service",
    "degraded": "Dégradé",
    "fault": "En panne",
    "offline": "Hors ligne",
    "maintenance": "En maintenance",
}
TYPES = ["streetlight", "lighting_cabinet", "traffic_signal", "camera", "bollard", "sign", "sensor", "vehicle"]
DIJON = "21231"


def number_pattern(value: int) -> re.Pattern[str]:
    """French grouping: 36 768 with a (narrow) no-break space; match it whatever the separator."""
    digits = f"{value:,}".split(",")
    return re.compile(r"^\s*" + r"[\s\u202f\u00a0]?".join(digits) + r"\s*$")


def as_int(text: str) -> int:
    return int(re.sub(r"\D", "", text))


class ControlRoom:
    """What an operator does on the page, in a few verbs."""

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server

    def open(self) -> None:
        self.page.goto("/")

    def login(self, username: str = "admin", password: str | None = None) -> None:
        expect(self.page.locator("#login-form")).to_be_visible()
        self.page.get_by_label("Identifiant", exact=True).fill(username)
        self.page.get_by_label("Mot de passe", exact=True).fill(password or self.server.admin_password)
        self.page.get_by_role("button", name="Se connecter").click()

    def wait_assets_rendered(self) -> float:
        self.page.wait_for_function(RENDERED, timeout=90_000)
        rendered = self.page.evaluate("() => window.metropilot && window.metropilot.assetsRenderedMs")
        assert isinstance(rendered, int | float)
        assert rendered > 0
        return float(rendered)

    def expect_total(self, value: int) -> None:
        expect(self.page.locator("#count-total")).to_have_text(number_pattern(value))

    def count(self, facet: str, key: str) -> int:
        return as_int(self.page.locator(f'[data-count-{facet}="{key}"]').inner_text())

    def expect_counts(self, stats: dict[str, Any]) -> None:
        """Every counter of the sidebar equals the API's statistics for the same filter."""
        self.expect_total(stats["total"])
        for status in STATUS_FR:
            expect(self.page.locator(f'[data-count-status="{status}"]')).to_have_text(
                number_pattern(stats["by_status"].get(status, 0))
            )
        for type_key in TYPES:
            expect(self.page.locator(f'[data-count-type="{type_key}"]')).to_have_text(
                number_pattern(stats["by_type"].get(type_key, 0))
            )

    def cluster_counts(self) -> list[int]:
        texts = self.page.locator(".cluster-label .cluster-count").all_inner_texts()
        return [as_int(t) for t in texts if t.strip()]

    def search_and_open(self, query: str, asset_id: str) -> None:
        box = self.page.get_by_role("combobox", name=re.compile("Rechercher un équipement"))
        box.fill(query)
        option = self.page.locator(f'#search-results [role="option"][data-id="{asset_id}"]')
        expect(option).to_be_visible()
        option.click()
        expect(self.page.locator("#detail")).to_be_visible()

    def wait_map_still(self) -> None:
        """Wait until the scale bar stops changing: the map has finished flying."""
        previous = None
        for _ in range(40):
            current = self.page.locator(".maplibregl-ctrl-scale").get_attribute("style")
            if current == previous:
                return
            previous = current
            self.page.wait_for_timeout(250)

    def screenshot(self, directory: Path, name: str) -> None:
        self.page.wait_for_timeout(700)  # let the map finish its animation and place its labels
        self.page.screenshot(path=str(directory / name))


def paris_time(iso: str) -> str:
    """HH:MM of a UTC timestamp, in Paris: what the panel must show."""
    instant = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return instant.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_wrong_password_shows_the_error(browser_page: BrowserPage, live_server: LiveServer, artifacts: Path) -> None:
    page = browser_page.page
    room = ControlRoom(page, live_server)
    room.open()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#shell")).to_have_attribute("inert", "")

    room.login(password="not-the-password")

    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("role", "alert")
    expect(error).to_contain_text("Identifiant ou mot de passe incorrect")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#count-total")).to_have_text("—")
    assert page.evaluate("() => sessionStorage.getItem('metropilot.refreshToken')") is None
    page.screenshot(path=str(artifacts / "00-login-error.png"))
    assert browser_page.js_errors == []


def test_operator_journey(browser_page: BrowserPage, live_server: LiveServer, artifacts: Path) -> None:
    page = browser_page.page
    room = ControlRoom(page, live_server)
    stats = live_server.get("/api/v1/assets/stats")
    assert stats["total"] > 1000

    # 1. Log in: the whole métropole with every asset in scope.
    room.open()
    room.login()
    room.wait_assets_rendered()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#user-name")).to_contain_text("admin")
    expect(page.locator("#user-scope")).to_have_text(re.compile("^Métropole"))
    room.expect_counts(stats)
    expect(page.locator("#count-all")).to_have_text(number_pattern(stats["total"]))
    status_line = page.locator("#status-line")
    expect(status_line).to_have_attribute("aria-live", "polite")
    expect(status_line).to_contain_text("équipements chargés")
    for code, count in stats["by_commune"].items():
        expect(page.locator(f'[data-count-commune="{code}"]')).to_have_text(number_pattern(count))

    # The map drew clusters, labelled in HTML, and commune names that do not overlap each other.
    page.wait_for_function("() => document.querySelectorAll('.cluster-label .cluster-count').length > 0")
    full_clusters = room.cluster_counts()
    assert 0 < sum(full_clusters) <= stats["total"]
    communes = page.locator(".commune-label:not(.is-hidden)")
    assert communes.count() >= 10
    visible_names = [communes.nth(i).bounding_box() for i in range(communes.count())]
    for i, a in enumerate(visible_names):
        for b in visible_names[i + 1 :]:
            assert a and b and not boxes_overlap(a, b), "commune labels overlap"
    room.screenshot(artifacts, "01-metropole.png")

    # Clicking a cluster zooms in on it: the scale bar changes (its length, or its text).
    scale = page.locator(".maplibregl-ctrl-scale")
    scale_before = (scale.inner_text(), scale.get_attribute("style"))
    biggest = max(range(len(full_clusters)), key=full_clusters.__getitem__)
    page.locator(".cluster-label").nth(biggest).click(force=True)  # the label lets the click through
    page.wait_for_function(
        "([text, style]) => { const s = document.querySelector('.maplibregl-ctrl-scale');"
        " return s.textContent !== text || s.getAttribute('style') !== style; }",
        arg=list(scale_before),
    )
    page.get_by_role("button", name="Revenir à la vue d'ensemble du périmètre").click()
    page.wait_for_function(
        "([text, style]) => { const s = document.querySelector('.maplibregl-ctrl-scale');"
        " return s.textContent === text && s.getAttribute('style') === style; }",
        arg=list(scale_before),
    )

    # 2. Only cameras: every counter follows, the map keeps only cameras.
    page.locator('[data-facet="type"][data-select="none"]').click()
    page.locator('[data-facet="commune"][data-select="all"]').click()
    room.expect_total(0)
    page.get_by_role("checkbox", name=re.compile("^Caméra")).check()
    cameras = live_server.get("/api/v1/assets/stats", type="camera")
    room.expect_counts(cameras)
    page.wait_for_function(
        """(limit) => {
            const counts = [...document.querySelectorAll('.cluster-label .cluster-count')]
              .map((e) => Number(e.textContent.replace(/\\D/g, '')));
            return counts.reduce((a, b) => a + b, 0) <= limit;
        }""",
        arg=cameras["total"],
    )
    assert sum(room.cluster_counts()) <= cameras["total"] < sum(full_clusters)

    # 3. …in Dijon only (the row's "seul" button).
    dijon_row = page.locator(f'li.row:has(input[value="{DIJON}"])')
    dijon_row.hover()
    dijon_row.get_by_role("button", name="Afficher uniquement : Dijon").click()
    dijon_cameras = live_server.get("/api/v1/assets/stats", type="camera", commune=DIJON)
    room.expect_counts(dijon_cameras)
    assert dijon_cameras["total"] < cameras["total"]
    expect(page.locator(f'input[name="commune"][value="{DIJON}"]')).to_be_checked()
    expect(page.locator('input[name="commune"]:checked')).to_have_count(1)
    room.screenshot(artifacts, "02-filtered-cameras-dijon.png")

    page.get_by_role("button", name="Réinitialiser les filtres").click()
    room.expect_counts(stats)

    # 4. Search a camera and open its detail.
    camera = live_server.get("/api/v1/assets", type="camera", limit=1)["features"][0]
    props = camera["properties"]
    room.search_and_open(props["name"], camera["id"])
    detail = page.locator("#detail")
    expect(page.locator("#detail-title")).to_have_text(props["name"])
    expect(page.locator("#detail-type")).to_have_text("Caméra")
    expect(detail.locator(".detail-status .badge")).to_have_text(STATUS_FR[props["status"]])
    communes_by_code = {
        f["properties"]["code"]: f["properties"]["name"]
        for f in live_server.get("/api/v1/communes", format="geojson")["features"]
    }
    expect(detail).to_contain_text(communes_by_code[props["commune"]])
    expect(detail).to_contain_text(props["address"])
    expect(detail).to_contain_text(props["serial_number"])
    for label in ("Type de caméra", "Usage", "Résolution", "Vision nocturne", "Masquage des zones privées"):
        expect(detail.locator("dt", has_text=label).first).to_be_visible()
    expect(detail).to_contain_text(paris_time(props["updated_at"]))  # shown in Europe/Paris time
    history = detail.locator(".history-entry")
    expect(history.first).to_be_visible()
    expect(history.first).to_contain_text("Import")
    room.screenshot(artifacts, "03-detail-camera.png")
    # The map flew to the camera: it sits at the centre of the area the panel leaves free.
    room.wait_map_still()
    map_box = page.locator("#map").bounding_box()
    panel_width = page.evaluate("() => document.querySelector('#detail').getBoundingClientRect().width")
    assert map_box
    assert panel_width > 300

    # Escape closes the panel (keyboard access).
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # Clicking the camera's point on the map opens the same detail again.
    page.mouse.click(
        map_box["x"] + 40 + (map_box["width"] - 80 - panel_width) / 2, map_box["y"] + map_box["height"] / 2
    )
    expect(detail).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text(props["name"])
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # 5. A light point, then its cabinet through the relation link.
    light = live_server.get("/api/v1/assets", type="streetlight", limit=1)["features"][0]
    cabinet_id = light["properties"]["attributes"]["cabinet"]
    cabinet = live_server.get(f"/api/v1/assets/{cabinet_id}")
    # With the keyboard this time: type, arrow down, Enter.
    search = page.get_by_role("combobox", name=re.compile("Rechercher un équipement"))
    search.fill(light["id"])
    expect(page.locator(f'#search-results [role="option"][data-id="{light["id"]}"]')).to_be_visible()
    search.press("ArrowDown")
    expect(search).to_have_attribute("aria-activedescendant", "search-option-0")
    search.press("Enter")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text(light["properties"]["name"])
    expect(page.locator("#detail-type")).to_have_text("Point lumineux")
    expect(detail.locator("dt", has_text="Puissance nominale")).to_be_visible()
    power = light["properties"]["attributes"]["nominal_power_w"]
    expect(detail.locator("dd", has_text=re.compile(rf"^{int(power)}(,\d+)?\s?W$")).first).to_be_visible()
    link = detail.locator(f'a.relation-link[data-asset-id="{cabinet_id}"]')
    expect(link).to_contain_text(cabinet["properties"]["name"])  # the link names the cabinet once read
    room.screenshot(artifacts, "04-detail-streetlight.png")
    link.click()
    expect(page.locator("#detail-title")).to_have_text(cabinet["properties"]["name"])
    expect(page.locator("#detail-type")).to_have_text("Armoire d'éclairage")
    expect(detail.locator("dd", has_text=re.compile(r"\skW$")).first).to_be_visible()
    # The cabinet lists the light points it feeds, the one we came from among them.
    expect(detail.locator(f'.fed-list a[data-asset-id="{light["id"]}"]')).to_be_visible()
    room.screenshot(artifacts, "05-detail-cabinet.png")
    page.get_by_role("button", name=re.compile("^Fermer la fiche")).click()
    expect(detail).to_be_hidden()

    # 6. A reload keeps the session: straight back to the map, no credentials asked.
    page.reload()
    room.wait_assets_rendered()
    expect(page.locator("#login")).to_be_hidden()
    room.expect_total(stats["total"])

    # 7. Log out: back to the form, and the refresh token is revoked on the server.
    refresh_token = page.evaluate("() => sessionStorage.getItem('metropilot.refreshToken')")
    assert refresh_token
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-info")).to_contain_text("déconnecté")
    expect(page.locator("#count-total")).to_have_text("—")
    assert page.evaluate("() => sessionStorage.getItem('metropilot.refreshToken')") is None
    reuse = page.request.post("/auth/token", form={"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert reuse.status == 400

    # A tab holding a spent refresh token lands on the form, told why.
    page.evaluate("(token) => sessionStorage.setItem('metropilot.refreshToken', token)", refresh_token)
    page.reload()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-info")).to_contain_text("session a expiré")
    assert page.evaluate("() => sessionStorage.getItem('metropilot.refreshToken')") is None
    assert browser_page.js_errors == []


def test_expired_access_token_is_refreshed_and_the_call_retried(
    browser_page: BrowserPage, live_server: LiveServer
) -> None:
    page = browser_page.page
    refused = {"me": 0}
    grants: list[str] = []

    def expire_once(route: Route) -> None:
        if refused["me"] == 0:
            refused["me"] += 1
            route.fulfill(
                status=401,
                content_type="application/problem+json",
                body='{"type":"/problems/not-authenticated","title":"Authentication required","status":401,'
                '"detail":"The access token has expired."}',
            )
        else:
            route.continue_()

    page.route("**/api/v1/me", expire_once)
    page.on(
        "request",
        lambda request: grants.append(request.post_data or "") if request.url.endswith("/auth/token") else None,
    )
    room = ControlRoom(page, live_server)
    room.open()
    room.login()
    room.wait_assets_rendered()
    expect(page.locator("#user-name")).to_contain_text("admin")
    assert refused["me"] == 1
    assert [g for g in grants if "grant_type=refresh_token" in g], "the page did not refresh its access token"
    expect(page.locator("#login")).to_be_hidden()
    assert browser_page.js_errors == []


def test_map_works_when_roads_fail(browser_page: BrowserPage, live_server: LiveServer) -> None:
    page = browser_page.page
    page.route(
        "**/api/v1/roads",
        lambda route: route.fulfill(
            status=500,
            content_type="application/problem+json",
            body='{"type":"/problems/internal-error","title":"Internal error","status":500}',
        ),
    )
    stats = live_server.get("/api/v1/assets/stats")
    room = ControlRoom(page, live_server)
    room.open()
    room.login()
    room.wait_assets_rendered()
    room.expect_total(stats["total"])
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Voirie indisponible")
    expect(page.locator(".cluster-label").first).to_be_visible()
    assert browser_page.js_errors == []


def test_asset_snapshot_failure_is_reported_and_can_be_retried(
    browser_page: BrowserPage, live_server: LiveServer
) -> None:
    page = browser_page.page
    calls = {"n": 0}

    def fail_once(route: Route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            route.fulfill(
                status=503,
                content_type="application/problem+json",
                body='{"type":"/problems/not-ready","title":"Not ready","status":503,"detail":"The platform is starting."}',
            )
        else:
            route.continue_()

    page.route("**/api/v1/assets/map", fail_once)
    stats = live_server.get("/api/v1/assets/stats")
    room = ControlRoom(page, live_server)
    room.open()
    room.login()
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Équipements indisponibles")
    expect(banner).to_contain_text("La plateforme démarre")
    expect(page.locator("#count-total")).to_have_text("—")
    banner.get_by_role("button", name="Réessayer").click()
    room.wait_assets_rendered()
    room.expect_total(stats["total"])
    expect(banner).to_be_hidden()
    assert calls["n"] == 2
    assert browser_page.js_errors == []


def test_commune_operator_sees_only_their_commune(browser_page: BrowserPage, live_server: LiveServer) -> None:
    talant = "21617"
    password = "talant-operator-password"
    live_server.post_json(
        "/api/v1/users",
        {"username": "agent.talant", "password": password, "roles": ["operator"], "communes": [talant],
         "full_name": "Agent de Talant"},
    )  # fmt: skip
    live_server.token("agent.talant", password)
    own = live_server.get("/api/v1/assets/stats", username="agent.talant")
    everything = live_server.get("/api/v1/assets/stats")
    assert own["total"] == everything["by_commune"][talant] < everything["total"]

    page = browser_page.page

    # A commune's snapshot is small: make its assets arrive before the commune names, a race that
    # once blanked the counters.
    def slow_communes(route: Route) -> None:
        time.sleep(1.5)
        route.continue_()

    page.route("**/api/v1/communes?format=geojson", slow_communes)
    room = ControlRoom(page, live_server)
    room.open()
    room.login("agent.talant", password)
    room.wait_assets_rendered()
    expect(page.locator("#user-scope")).to_have_text("Talant")
    expect(page.locator("#user-roles")).to_have_text("Opérateur")
    room.expect_counts(own)
    expect(page.locator('input[name="commune"]')).to_have_count(1)
    assert browser_page.js_errors == []
