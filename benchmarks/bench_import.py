"""Bulk import of the scale-10 metropolis (~367,000 assets) from a GeoJSON file, SQLite and PostgreSQL.

Timed: reading the file, parsing, validating every row (fields, typed attributes, position in the
métropole and its commune, scope, duplicates, cabinet references), rendering and writing, commit.
The databases it fills are reused by bench_bbox.

    .venv/bin/python -m benchmarks.bench_import
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import ADMIN_PASSWORD, SECRET, WORK, fresh_pg_database, machine, postgres_reachable, save
from metropilot.assets import importer
from metropilot.assets.service import Placement
from metropilot.bootstrap import prepare
from metropilot.core.permissions import system_principal
from metropilot.core.platform import Platform
from metropilot.core.settings import Settings
from metropilot.simulation.metropolis import generate, iter_features
from metropilot.territory.service import TerritoryIndex

SCALE = 10.0
SEED = 20190411
PG_DATABASE = "metropilot_bench10"
SQLITE_DIR = WORK / "sqlite10"


def inventory_file() -> Path:
    path = WORK / f"inventory-scale{SCALE:g}-seed{SEED}.geojson"
    if path.exists():
        return path
    scratch = WORK / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    platform = Platform.from_settings(Settings(var_dir=scratch, seed_on_start=False))
    prepare(platform, seed=False)
    metropolis = generate(platform.need(TerritoryIndex), scale=SCALE, seed=SEED)
    features = list(iter_features(metropolis))
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    platform.close()
    return path


def import_into(database_url: str, var_dir: Path, path: Path) -> dict[str, Any]:
    settings = Settings(
        var_dir=var_dir,
        database_url=database_url,
        seed_on_start=False,
        admin_password=ADMIN_PASSWORD,
        secret_key=SECRET,
    )
    platform = Platform.from_settings(settings)
    prepare(platform, seed=False)
    placement = Placement(platform.need(TerritoryIndex), 300.0, 750.0)
    started = time.perf_counter()
    content = path.read_bytes()
    parsed = importer.parse_geojson(content)
    parsed_at = time.perf_counter()
    with platform.transaction() as session:
        report = importer.import_assets(
            session,
            system_principal("bench"),
            parsed,
            placement,
            platform.clock,
            source=path.name,
            fmt="geojson",
            sha256=hashlib.sha256(content).hexdigest(),
        )
    done = time.perf_counter()
    platform.close()
    return {
        "assets": report.created,
        "file_mb": round(len(content) / 1e6, 1),
        "total_s": round(done - started, 2),
        "parse_s": round(parsed_at - started, 2),
        "validate_and_write_s": round(done - parsed_at, 2),
        "assets_per_s": round(report.created / (done - started)),
    }


def main() -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    path = inventory_file()
    results: dict[str, Any] = {"machine": machine(), "file": path.name}
    shutil.rmtree(SQLITE_DIR, ignore_errors=True)
    results["sqlite"] = import_into("", SQLITE_DIR, path)
    print("sqlite", results["sqlite"], flush=True)
    if postgres_reachable():
        results["postgresql"] = import_into(fresh_pg_database(PG_DATABASE), WORK / "pg10", path)
        print("postgresql", results["postgresql"], flush=True)
    else:
        results["postgresql"] = "skipped: PostgreSQL unreachable at 127.0.0.1:5432"
    save("import", results)
    return results


if __name__ == "__main__":
    main()
