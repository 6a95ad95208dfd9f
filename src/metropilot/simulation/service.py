"""Seeding the simulated metropolis into a platform: its streets, then its equipment."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from metropilot.assets import importer
from metropilot.assets.models import Asset
from metropilot.assets.service import Placement
from metropilot.core.permissions import system_principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.simulation.metropolis import generate
from metropilot.territory.service import TerritoryIndex, replace_roads

SOURCE = "simulation"


@dataclass(frozen=True, slots=True)
class SeedReport:
    scale: float
    seed: int
    roads: int
    counts: dict[str, int]
    generate_s: float
    import_s: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def registry_size(platform: Platform) -> int:
    with platform.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Asset)) or 0)


def seed_metropolis(platform: Platform, *, scale: float, seed: int) -> SeedReport:
    """Generate the metropolis and import it through the registry's bulk import, in one transaction."""
    existing = registry_size(platform)
    if existing:
        raise Problem(
            "conflict",
            f"The registry already holds {existing} assets; seed a fresh database instead.",
        )
    territory = platform.need(TerritoryIndex)
    started = time.perf_counter()
    metropolis = generate(territory, scale=scale, seed=seed)
    generated = time.perf_counter()
    actor = system_principal("seed")
    placement = Placement(
        territory=territory,
        boundary_tolerance_m=platform.settings.boundary_tolerance_m,
        commune_tolerance_m=platform.settings.commune_tolerance_m,
    )
    source = f"simulated metropolis scale={scale} seed={seed}"
    with platform.transaction() as session:
        roads = replace_roads(session, metropolis.roads, source=SOURCE, actor=actor.actor, clock=platform.clock)
        importer.import_assets(
            session,
            actor,
            importer.ParsedRows(metropolis.assets, []),
            placement,
            platform.clock,
            source=source,
            fmt="simulation",
            sha256=hashlib.sha256(source.encode()).hexdigest(),
        )
    done = time.perf_counter()
    return SeedReport(
        scale=scale,
        seed=seed,
        roads=roads,
        counts=metropolis.counts,
        generate_s=generated - started,
        import_s=done - generated,
    )
