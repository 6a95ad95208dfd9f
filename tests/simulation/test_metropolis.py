"""The simulated metropolis: deterministic, plausible, and loadable through the registry."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient

from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.simulation.metropolis import BASE_COUNTS, generate, scaled_counts
from metropilot.simulation.service import seed_metropolis
from metropilot.territory.service import TerritoryIndex


@pytest.fixture(scope="module")
def territory(platform: Platform) -> TerritoryIndex:
    return platform.need(TerritoryIndex)


def test_same_seed_same_metropolis_other_seed_other_one(territory: TerritoryIndex) -> None:
    a = generate(territory, scale=0.05, seed=7)
    b = generate(territory, scale=0.05, seed=7)
    c = generate(territory, scale=0.05, seed=8)
    key = lambda m: [(x["id"], x["lon"], x["lat"], x["status"]) for x in m.assets]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)
    assert [(r.name, r.coords) for r in a.roads] == [(r.name, r.coords) for r in b.roads]


def test_scale_one_follows_the_published_figures(territory: TerritoryIndex) -> None:
    metropolis = generate(territory, scale=1.0, seed=20190411)
    counts = Counter(a["type"] for a in metropolis.assets)
    for key in ("streetlight", "traffic_signal", "camera", "bollard", "sign", "sensor", "vehicle"):
        assert counts[key] == BASE_COUNTS[key], key
    assert abs(counts["lighting_cabinet"] - 1500) < 60
    # Equipment follows population: Dijon holds most of it, every commune has light points.
    lights = Counter(a["commune"] for a in metropolis.assets if a["type"] == "streetlight")
    assert set(lights) == set(territory.codes)
    assert 0.45 < lights["21231"] / counts["streetlight"] < 0.75
    # Every light point hangs off a cabinet of its own commune.
    cabinets = {a["id"]: a["commune"] for a in metropolis.assets if a["type"] == "lighting_cabinet"}
    assert all(
        cabinets[a["attributes"]["cabinet"]] == a["commune"] for a in metropolis.assets if a["type"] == "streetlight"
    )
    # Every position is inside the commune it is declared in.
    located = territory.locate_many([a["lon"] for a in metropolis.assets], [a["lat"] for a in metropolis.assets])  # type: ignore[arg-type]
    assert all(loc == a["commune"] for loc, a in zip(located, metropolis.assets, strict=True))
    assert 900 < sum(r.length_m for r in metropolis.roads) / 1000 < 1500  # km of streets


def test_scale_counts() -> None:
    assert scaled_counts(10)["streetlight"] == 340_000
    assert scaled_counts(0.001)["bollard"] == 1


def test_seed_goes_through_the_registry_and_refuses_to_seed_twice(
    platform: Platform, client: TestClient, admin: dict[str, str]
) -> None:
    before = client.get("/api/v1/assets/stats", headers=admin).json()["total"]
    if before:
        with pytest.raises(Problem, match="already holds"):
            seed_metropolis(platform, scale=0.02, seed=1)
        return
    report = seed_metropolis(platform, scale=0.02, seed=1)
    stats = client.get("/api/v1/assets/stats", headers=admin).json()
    assert stats["total"] == report.total and stats["by_type"]["streetlight"] == 680
    roads = client.get("/api/v1/roads?road_class=primary", headers=admin).json()["features"]
    assert roads and all(f["geometry"]["type"] == "LineString" for f in roads)
    batch = client.get("/api/v1/audit?action=asset.imported", headers=admin).json()["items"][0]
    assert batch["actor"] == "system:seed" and batch["after"]["count"] == report.total
    with pytest.raises(Problem, match="already holds"):
        seed_metropolis(platform, scale=0.02, seed=1)
