"""The 23 communes, their approximate areas, locating positions, and official contours."""

from __future__ import annotations

import itertools
from typing import Any

import shapely
from fastapi.testclient import TestClient

from metropilot.core.geo import METRO_PROJECTION
from metropilot.core.platform import Platform
from metropilot.territory.service import TerritoryIndex, approximate_boundaries, read_reference_communes


def test_reference_communes_are_the_23_of_the_metropole() -> None:
    communes = read_reference_communes()
    assert len(communes) == 23
    by_code = {c.code: c.name for c in communes}
    assert by_code["21231"] == "Dijon" and by_code["21617"] == "Talant" and by_code["21515"] == "Quetigny"
    assert sum(c.population for c in communes) > 250_000


def test_approximate_areas_tile_the_territory() -> None:
    communes = read_reference_communes()
    cells = approximate_boundaries(communes)
    areas = {code: METRO_PROJECTION.geometry_to_xy(cell) for code, cell in cells.items()}
    for commune in communes:
        assert cells[commune.code].is_valid
        assert cells[commune.code].contains(shapely.Point(commune.lon, commune.lat))
    for a, b in itertools.combinations(areas.values(), 2):
        assert a.intersection(b).area < 1.0  # m²: neighbours share edges, never surfaces
    total_km2 = sum(a.area for a in areas.values()) / 1e6
    assert 220 < total_km2 < 320  # the real métropole covers ~240 km²
    assert max(areas, key=lambda code: areas[code].area) == "21231"  # Dijon is the largest


def test_territory_index_locates_positions(platform: Platform) -> None:
    index = platform.need(TerritoryIndex)
    assert index.locate(5.0415, 47.3220) == "21231"
    assert index.locate(5.0050, 47.3370) == "21617"
    assert index.locate(2.3522, 48.8566) is None
    outside = index.distance_outside_metro_m(*[[2.3522, 5.0415], [48.8566, 47.3220]])  # type: ignore[arg-type]
    assert outside[0] > 200_000 and outside[1] == 0


def test_communes_api(client: TestClient, admin: dict[str, str]) -> None:
    communes = client.get("/api/v1/communes", headers=admin).json()
    assert len(communes) == 23 and communes[0]["name"] == "Ahuy"
    geo = client.get("/api/v1/communes?format=geojson", headers=admin)
    assert geo.headers["content-type"].startswith("application/geo+json")
    features = geo.json()["features"]
    assert {f["geometry"]["type"] for f in features} == {"Polygon"}
    assert {f["properties"]["boundary_source"] for f in features} == {"approximation"}
    assert client.get("/api/v1/communes/21231", headers=admin).json()["properties"]["name"] == "Dijon"
    assert client.get("/api/v1/communes/00000", headers=admin).status_code == 404
    assert client.get("/api/v1/communes").status_code == 401


def _square(lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def test_importing_official_contours_is_all_or_nothing(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"INSEE_COM": "21003"},
                "geometry": _square(5.022, 47.3695, 0.01),
            },
            {"type": "Feature", "properties": {"INSEE_COM": "99999"}, "geometry": _square(5.0, 47.3, 0.01)},
            {
                "type": "Feature",
                "properties": {"code": "21103"},
                "geometry": {"type": "Point", "coordinates": [5, 47]},
            },
        ],
    }
    response = client.put("/api/v1/communes/boundaries?source=test", headers=admin, json=bad)
    assert response.status_code == 422
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [
        (1, "properties.code"),
        (2, "geometry"),
    ]
    assert (
        client.get("/api/v1/communes/21003", headers=admin).json()["properties"]["boundary_source"] == "approximation"
    )

    good = {"type": "FeatureCollection", "features": [bad["features"][0]]}
    response = client.put("/api/v1/communes/boundaries?source=IGN ADMIN EXPRESS test", headers=admin, json=good)
    assert response.status_code == 200 and response.json() == {"updated": ["21003"]}
    assert client.get("/api/v1/communes/21003", headers=admin).json()["properties"]["boundary_source"] == (
        "IGN ADMIN EXPRESS test"
    )
    assert platform.need(TerritoryIndex).sources["21003"] == "IGN ADMIN EXPRESS test"  # index refreshed
    entries = client.get("/api/v1/audit?action=territory.boundary_imported", headers=admin).json()["items"]
    assert entries[0]["target_id"] == "21003"


def test_roads_are_served_with_an_etag(client: TestClient, admin: dict[str, str], platform: Platform) -> None:
    from metropilot.territory.service import replace_roads

    class Road:
        commune, name, road_class, from_node, to_node = "21617", "Rue test", "residential", 1, 2
        coords = [(5.005, 47.337), (5.006, 47.337)]  # noqa: RUF012
        length_m = 75.5

    with platform.transaction() as session:
        replace_roads(session, [Road()], source="test", actor="tester", clock=platform.clock)
    first = client.get("/api/v1/roads", headers=admin)
    assert first.status_code == 200 and first.headers["etag"]
    names = [f["properties"]["name"] for f in first.json()["features"]]
    assert "Rue test" in names
    again = client.get("/api/v1/roads", headers={**admin, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    with platform.transaction() as session:
        Road.name = "Rue renommée"
        replace_roads(session, [Road()], source="test", actor="tester", clock=platform.clock)
    changed = client.get("/api/v1/roads", headers={**admin, "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    assert "Rue renommée" in changed.text and "Rue test" not in changed.text
