"""Bulk import of assets from GeoJSON or CSV: all rows or none.

Every row is validated (fields, typed attributes, position in the métropole and in its commune, scope,
duplicate ids in the file and in the registry, references to cabinets) before anything is written.
One faulty row rejects the whole import with a list naming each faulty row and field. A valid import
is written in one transaction, as one batch with one audit entry (its digest and counts; each asset
points to its batch).

CSV columns: ``id, type, name, commune, lon, lat, status, address, installed_on, manufacturer, model,
serial_number`` and one ``attr.<name>`` column per typed attribute (lists separated by ``|``).
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import operator
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from metropilot.assets.models import ImportBatch
from metropilot.assets.schemas import INSEE_PATTERN, ImportReport, ImportRowError
from metropilot.assets.service import Placement, existing_ids, ids_of_type, parent_of, render_feature, search_text
from metropilot.assets.types import ASSET_TYPES, AssetStatus, AssetTypeKey, validate_attributes
from metropilot.core import audit
from metropilot.core.bus import emit
from metropilot.core.clock import Clock
from metropilot.core.geo import grid_cell
from metropilot.core.ids import InvalidUrn, make_urn, parse_urn
from metropilot.core.permissions import Principal
from metropilot.core.problems import Problem

MAX_REPORTED_ERRORS = 1000
CSV_BASE_COLUMNS = (
    "id",
    "type",
    "name",
    "commune",
    "lon",
    "lat",
    "status",
    "address",
    "installed_on",
    "manufacturer",
    "model",
    "serial_number",
)
_LIST_ATTRIBUTES = {"plans", "onvif_profiles", "measured_properties"}


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = None
    type: AssetTypeKey
    name: str = Field(min_length=1, max_length=200)
    commune: str | None = Field(default=None, pattern=INSEE_PATTERN)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    status: AssetStatus = AssetStatus.ACTIVE
    address: str | None = Field(default=None, max_length=300)
    installed_on: date | None = None
    manufacturer: str | None = Field(default=None, max_length=120)
    model: str | None = Field(default=None, max_length=120)
    serial_number: str | None = Field(default=None, max_length=120)
    attributes: dict[str, Any] = Field(default_factory=dict)


@dataclass(slots=True)
class ParsedRows:
    rows: list[dict[str, Any]]
    errors: list[ImportRowError]


# --- parsing --------------------------------------------------------------------------------------


def parse_geojson(content: bytes) -> ParsedRows:
    with paused_gc():
        return _parse_geojson(content)


def _parse_geojson(content: bytes) -> ParsedRows:
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-json", f"The file is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise Problem("bad-request", "A GeoJSON import is a FeatureCollection.")
    features = document.get("features")
    if not isinstance(features, list):
        raise Problem("bad-request", "The FeatureCollection has no features array.")
    rows: list[dict[str, Any]] = []
    errors: list[ImportRowError] = []
    for index, feature in enumerate(features, start=1):
        row, error = _feature_to_row(index, feature)
        if error is not None:
            errors.append(error)
        else:
            rows.append(row)
    return ParsedRows(rows, errors)


_SERVER_KEPT = {"version", "created_at", "updated_at", "retired_at"}


def _feature_to_row(index: int, feature: Any) -> tuple[dict[str, Any], ImportRowError | None]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return {}, ImportRowError(row=index, field="type", detail="not a GeoJSON Feature")
    geometry = feature.get("geometry")
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if (
        not isinstance(geometry, dict)
        or geometry.get("type") != "Point"
        or not isinstance(coordinates, list)
        or len(coordinates) < 2
    ):
        return {}, ImportRowError(row=index, id=feature.get("id"), field="geometry", detail="expected a Point")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        return {}, ImportRowError(row=index, id=feature.get("id"), field="properties", detail="expected an object")
    row = {k: v for k, v in properties.items() if k not in _SERVER_KEPT}
    row["lon"], row["lat"] = coordinates[0], coordinates[1]
    row["_row"] = index
    if feature.get("id") is not None:
        row["id"] = feature["id"]
    return row, None


def parse_csv(content: bytes) -> ParsedRows:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Problem("bad-request", f"The CSV file is not UTF-8 (byte {exc.start}).") from exc
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","  # French spreadsheets export ';'
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_BASE_COLUMNS and not c.startswith("attr.")]
    if unknown:
        raise Problem(
            "bad-request",
            f"Unknown CSV column(s): {', '.join(unknown)}. Columns are {', '.join(CSV_BASE_COLUMNS)} and attr.<name>.",
        )
    missing = [c for c in ("type", "name", "lon", "lat") if c not in header]
    if missing:
        raise Problem("bad-request", f"Missing CSV column(s): {', '.join(missing)}.")
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(reader, start=1):
        row: dict[str, Any] = {"_row": index}
        attributes: dict[str, Any] = {}
        for key, value in record.items():
            if key is None:  # more cells than header columns
                rows.append({"_row": index, "_error": ("row", "more cells than columns in the header")})
                break
            if value is None or value == "":
                continue
            if key.startswith("attr."):
                name = key[5:]
                attributes[name] = value.split("|") if name in _LIST_ATTRIBUTES else value
            else:
                row[key] = value
        else:
            row["attributes"] = attributes
            rows.append(row)
    return ParsedRows(rows, [])


def rows_to_csv(features: Sequence[dict[str, Any]]) -> str:
    """Features -> CSV in the import format (what ``parse_csv`` reads back)."""
    attribute_names = sorted({k for f in features for k in f["properties"].get("attributes", {})})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_BASE_COLUMNS, *(f"attr.{a}" for a in attribute_names)])
    for feature in features:
        p = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"]
        attrs = p.get("attributes", {})
        writer.writerow(
            [
                feature["id"],
                p["type"],
                p["name"],
                p["commune"],
                lon,
                lat,
                p["status"],
                p.get("address") or "",
                p.get("installed_on") or "",
                p.get("manufacturer") or "",
                p.get("model") or "",
                p.get("serial_number") or "",
            ]
            + [
                "|".join(map(str, v))
                if isinstance(v := attrs.get(a), list)
                else ("" if v is None else (str(v).lower() if isinstance(v, bool) else str(v)))
                for a in attribute_names
            ]
        )
    return out.getvalue()


# --- validation and writing -----------------------------------------------------------------------


def _field_of(location: Sequence[Any]) -> str:
    return ".".join(str(p) for p in location) or "row"


def _row_errors(index: int, row_id: Any, exc: ValidationError, prefix: str = "") -> Iterator[ImportRowError]:
    for error in exc.errors():
        yield ImportRowError(
            row=index,
            id=row_id if isinstance(row_id, str) else None,
            field=prefix + _field_of(error.get("loc", ())),
            detail=error.get("msg", "invalid"),
        )


@dataclass(slots=True)
class _Valid:
    index: int
    row: _Row
    attributes: dict[str, Any]
    commune: str = ""
    id: str = ""


@contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk work allocates millions of objects that live until the end: the cyclic collector would
    rescan them again and again (a third of the import time). Reference counting still frees garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_assets(
    session: Session,
    principal: Principal,
    parsed: ParsedRows,
    placement: Placement,
    clock: Clock,
    *,
    source: str,
    fmt: str,
    sha256: str,
    dry_run: bool = False,
) -> ImportReport:
    with paused_gc():
        return _import_assets(
            session,
            principal,
            parsed,
            placement,
            clock,
            source=source,
            fmt=fmt,
            sha256=sha256,
            dry_run=dry_run,
        )


def _import_assets(
    session: Session,
    principal: Principal,
    parsed: ParsedRows,
    placement: Placement,
    clock: Clock,
    *,
    source: str,
    fmt: str,
    sha256: str,
    dry_run: bool = False,
) -> ImportReport:
    errors: list[ImportRowError] = list(parsed.errors)
    valid: list[_Valid] = []
    for raw in parsed.rows:
        index = raw.pop("_row")
        if "_error" in raw:
            errors.append(ImportRowError(row=index, field=raw["_error"][0], detail=raw["_error"][1]))
            continue
        try:
            row = _Row.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_row_errors(index, raw.get("id"), exc))
            continue
        if row.status is AssetStatus.RETIRED:
            errors.append(ImportRowError(row=index, id=row.id, field="status", detail="cannot import retired assets"))
            continue
        try:
            attributes = validate_attributes(row.type, row.attributes)
        except ValidationError as exc:
            errors.extend(_row_errors(index, row.id, exc, prefix="attributes."))
            continue
        valid.append(_Valid(index, row, attributes))

    _place(valid, placement, principal, errors)
    _identify(session, valid, placement, errors)
    _check_cabinets(session, principal, valid, errors)

    if errors:
        errors.sort(key=lambda e: e.row)
        raise Problem(
            "import-rejected",
            f"{len(errors)} error(s) in the import; nothing was saved.",
            error_count=len(errors),
            errors=[e.model_dump() for e in errors[:MAX_REPORTED_ERRORS]],
        )
    by_type = dict(sorted(Counter(v.row.type for v in valid).items()))
    if dry_run:
        return ImportReport(batch_id=None, dry_run=True, created=len(valid), by_type=by_type, sha256=sha256)

    now = clock.now()
    batch_id = uuid.uuid4().hex
    session.add(
        ImportBatch(
            id=batch_id,
            created_at=now,
            actor=principal.actor,
            source=source[:300],
            format=fmt,
            sha256=sha256,
            count=len(valid),
            counts_by_type=by_type,
        )
    )
    session.flush()
    _write(session, valid, batch_id, now)
    audit.record(
        session,
        principal,
        "asset.imported",
        at=now,
        target_type="asset_import_batch",
        target_id=batch_id,
        after={"count": len(valid), "by_type": by_type, "sha256": sha256, "source": source, "format": fmt},
        reason=f"import en masse de {len(valid)} équipements",
    )
    emit(session, "assets.import.completed", {"batch_id": batch_id, "count": len(valid), "by_type": by_type})
    return ImportReport(batch_id=batch_id, dry_run=False, created=len(valid), by_type=by_type, sha256=sha256)


def _place(valid: list[_Valid], placement: Placement, principal: Principal, errors: list[ImportRowError]) -> None:
    """Vectorised placement checks: métropole, commune, scope."""
    if not valid:
        return
    territory = placement.territory
    lons = np.fromiter((v.row.lon for v in valid), float, len(valid))
    lats = np.fromiter((v.row.lat for v in valid), float, len(valid))
    outside = territory.distance_outside_metro_m(lons, lats)
    located = territory.locate_many(lons, lats)
    keep: list[_Valid] = []
    for i, item in enumerate(valid):
        row = item.row
        if outside[i] > placement.boundary_tolerance_m:
            errors.append(
                ImportRowError(
                    row=item.index,
                    id=row.id,
                    field="location",
                    detail=f"{outside[i] / 1000:.1f} km outside the métropole",
                )
            )
            continue
        commune = row.commune
        if commune is not None and not territory.knows(commune):
            errors.append(
                ImportRowError(row=item.index, id=row.id, field="commune", detail=f"unknown INSEE code {commune}")
            )
            continue
        if commune is None:
            commune = located[i] or territory.nearest_commune(row.lon, row.lat)[0]
        elif located[i] != commune:
            gap = float(territory.distance_to_commune_m(commune, lons[i : i + 1], lats[i : i + 1])[0])
            if gap > placement.commune_tolerance_m:
                errors.append(
                    ImportRowError(
                        row=item.index,
                        id=row.id,
                        field="commune",
                        detail=f"location is {gap:.0f} m outside {territory.names[commune]}",
                    )
                )
                continue
        if not principal.sees(commune):
            errors.append(
                ImportRowError(
                    row=item.index,
                    id=row.id,
                    field="commune",
                    detail=f"commune {commune} is outside your scope",
                )
            )
            continue
        item.commune = commune
        keep.append(item)
    valid[:] = keep


def _identify(session: Session, valid: list[_Valid], placement: Placement, errors: list[ImportRowError]) -> None:
    seen: dict[str, int] = {}
    keep: list[_Valid] = []
    for item in valid:
        ngsi_type = ASSET_TYPES[item.row.type].ngsi_type
        if item.row.id is None:
            item.id = make_urn(ngsi_type, f"{placement.territory.slugs[item.commune]}-{uuid.uuid4().hex[:10]}")
        else:
            try:
                urn_type, _ = parse_urn(item.row.id)
            except InvalidUrn as exc:
                errors.append(ImportRowError(row=item.index, id=item.row.id, field="id", detail=str(exc)))
                continue
            if urn_type != ngsi_type:
                errors.append(
                    ImportRowError(
                        row=item.index,
                        id=item.row.id,
                        field="id",
                        detail=f"a {item.row.type} has ids urn:ngsi-ld:{ngsi_type}:...",
                    )
                )
                continue
            item.id = item.row.id
        if item.id in seen:
            errors.append(
                ImportRowError(
                    row=item.index, id=item.id, field="id", detail=f"duplicate of row {seen[item.id]} in this file"
                )
            )
            continue
        seen[item.id] = item.index
        keep.append(item)
    taken = existing_ids(session, [v.id for v in keep])
    for item in keep:
        if item.id in taken:
            errors.append(ImportRowError(row=item.index, id=item.id, field="id", detail="already in the registry"))
    valid[:] = [v for v in keep if v.id not in taken]


def _check_cabinets(session: Session, principal: Principal, valid: list[_Valid], errors: list[ImportRowError]) -> None:
    in_file = {v.id for v in valid if v.row.type == "lighting_cabinet"}
    wanted = {v.attributes["cabinet"] for v in valid if v.row.type == "streetlight" and "cabinet" in v.attributes}
    known = in_file | ids_of_type(session, wanted - in_file, "lighting_cabinet")
    for item in valid:
        cabinet = item.attributes.get("cabinet") if item.row.type == "streetlight" else None
        if cabinet is not None and cabinet not in known:
            errors.append(
                ImportRowError(
                    row=item.index,
                    id=item.id,
                    field="attributes.cabinet",
                    detail=f"no lighting cabinet {cabinet} in the registry or the file",
                )
            )


def _write(session: Session, valid: list[_Valid], batch_id: str, now: datetime) -> None:
    rows: list[tuple[Any, ...]] = []
    for item in valid:
        row = item.row
        values = {
            "id": item.id,
            "type": row.type,
            "name": row.name,
            "commune_code": item.commune,
            "lon": row.lon,
            "lat": row.lat,
            "status": row.status.value,
            "address": row.address,
            "installed_on": row.installed_on,
            "manufacturer": row.manufacturer,
            "model": row.model,
            "serial_number": row.serial_number,
            "attributes": item.attributes,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "retired_at": None,
        }
        values["feature"] = render_feature(values)
        values["search_text"] = search_text(values)
        values["parent_id"] = parent_of(row.type, item.attributes)
        values["import_batch_id"] = batch_id
        values["cell"] = grid_cell(row.lon, row.lat)
        rows.append(_row_of(values))
    rows.sort()  # id order: B-tree indexes then grow at their right edge instead of splitting pages
    if session.get_bind().dialect.name == "postgresql":
        _copy_postgresql(session, rows)
    else:
        _insert_sqlite(session, rows, now)
    if len(rows) >= 10_000:
        # A large import changes the table's statistics: refresh them so plans stay index-driven.
        session.execute(text("ANALYZE asset"))


_COLUMNS = (
    "id",
    "type",
    "name",
    "commune_code",
    "lon",
    "lat",
    "cell",
    "status",
    "address",
    "installed_on",
    "manufacturer",
    "model",
    "serial_number",
    "attributes",
    "version",
    "created_at",
    "updated_at",
    "retired_at",
    "feature",
    "search_text",
    "parent_id",
    "import_batch_id",
)
_row_of = operator.itemgetter(*_COLUMNS)
_ATTRIBUTES = _COLUMNS.index("attributes")
_INSTALLED_ON = _COLUMNS.index("installed_on")
_TIMESTAMPS = (_COLUMNS.index("created_at"), _COLUMNS.index("updated_at"))


def _insert_sqlite(session: Session, rows: list[tuple[Any, ...]], now: datetime) -> None:
    """Straight to the driver's executemany: the ORM's per-row bookkeeping would triple the time.

    Values are stored as SQLAlchemy itself stores them on SQLite, so the ORM reads them back unchanged.
    """
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    prepared = []
    for row in rows:
        values = list(row)
        values[_ATTRIBUTES] = orjson.dumps(values[_ATTRIBUTES]).decode()
        installed = values[_INSTALLED_ON]
        values[_INSTALLED_ON] = installed.isoformat() if installed is not None else None
        for index in _TIMESTAMPS:
            values[index] = stamp
        prepared.append(tuple(values))
    sql = f"INSERT INTO asset ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608 (constant column names)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, prepared)
    finally:
        cursor.close()


def _copy_postgresql(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """COPY is PostgreSQL's bulk path: an order of magnitude faster than batched INSERTs."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor, cursor.copy(f"COPY asset ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            values = list(row)
            values[_ATTRIBUTES] = orjson.dumps(values[_ATTRIBUTES]).decode()
            copy.write_row(values)


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
