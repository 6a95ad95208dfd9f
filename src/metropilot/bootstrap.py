"""Bring a platform to a working state: schema, communes, first administrator, territory index,
and on first start the simulated metropolis. Idempotent: safe to run at every start."""

from __future__ import annotations

from dataclasses import dataclass

from metropilot.accounts.service import ensure_admin
from metropilot.core.platform import Platform
from metropilot.simulation.service import SeedReport, registry_size, seed_metropolis
from metropilot.territory.service import TerritoryIndex, ensure_communes


@dataclass(frozen=True, slots=True)
class BootstrapReport:
    admin_password: str | None  # set only when it was generated now: print it once
    seeded: SeedReport | None


def prepare(platform: Platform, *, seed: bool) -> BootstrapReport:
    _ = platform.signing_key  # generated now (var/secret.key, 0600) if not configured: fail early, not at login
    platform.db.upgrade()
    with platform.transaction() as session:
        ensure_communes(session, platform.clock)
        password = ensure_admin(session, platform.settings, platform.clock)
    with platform.db.read() as session:
        platform.provide(TerritoryIndex.load(session))
    seeded = None
    if seed and registry_size(platform) == 0:
        seeded = seed_metropolis(platform, scale=platform.settings.seed_scale, seed=platform.settings.seed)
    return BootstrapReport(admin_password=password, seeded=seeded)
