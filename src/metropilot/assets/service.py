"""The registry's logic: create, read, update, retire and find assets, within the caller's scope.

No HTTP here. Every write records an audit entry in the same transaction and queues a bus event
(``assets.asset.created|updated|retired``) that goes out after the commit.
"""

from __future__ import annotations

import base64
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from metropilot.assets.models import Asset
from metropilot.assets.schemas import AssetCreate, AssetPatch
from metropilot.assets.types import ASSET_TYPES, AssetStatus, validate_attributes
from metropilot.core import audit
from metropilot.core.bus import emit
from metropilot.core.clock import Clock, utc_iso
from metropilot.core.geo import BBox, grid_cell, grid_cells_covering, grid_ranges, haversine_m, haversine_many_m
from metropilot.core.ids import make_urn, parse_urn
from metropilot.core.permissions import Principal
from metropilot.core.problems import Problem, validation_errors
from metropilot.territory.service import TerritoryIndex

MAX_PAGE = 5000

# Fields a client may set; the rest (version, timestamps, feature) the registry keeps.
EDITABLE = ("name", "status", "address", "installed_on", "manufacturer", "model", "serial_number")


# --- rendering -----------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _iso(instant: datetime) -> str:
    # A bulk import renders 350,000 features with the same timestamps: format each instant once.
    return utc_iso(instant)


def feature_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """The GeoJSON Feature of an asset, from its column values (an ``Asset`` or a plain mapping)."""
    installed_on = values["installed_on"]
    retired_at = values["retired_at"]
    return {
        "type": "Feature",
        "id": values["id"],
        "geometry": {"type": "Point", "coordinates": [values["lon"], values["lat"]]},
        "properties": {
            "type": values["type"],
            "name": values["name"],
            "commune": values["commune_code"],
            "status": values["status"],
            "address": values["address"],
            "installed_on": installed_on.isoformat() if isinstance(installed_on, date) else installed_on,
            "manufacturer": values["manufacturer"],
            "model": values["model"],
            "serial_number": values["serial_number"],
            "attributes": values["attributes"],
            "version": values["version"],
            "created_at": _iso(values["created_at"]),
            "updated_at": _iso(values["updated_at"]),
            "retired_at": _iso(retired_at) if retired_at else None,
        },
    }


_COLUMNS = (
    "id",
    "type",
    "name",
    "commune_code",
    "lon",
    "lat",
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
)


def _values(asset: Asset) -> dict[str, Any]:
    return {name: getattr(asset, name) for name in _COLUMNS}


def render_feature(values: Mapping[str, Any]) -> str:
    return orjson.dumps(feature_dict(values)).decode()


def fold(text: str) -> str:
    """Lowercase ASCII: ``Rue de l'Église`` -> ``rue de l'eglise`` (search ignores case and accents)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def search_text(values: Mapping[str, Any]) -> str:
    return fold(" ".join(filter(None, (values["name"], values["address"], values["id"]))))


def parent_of(type_key: str, attributes: Mapping[str, Any]) -> str | None:
    """The asset another one hangs off: a streetlight's cabinet."""
    parent = attributes.get("cabinet") if type_key == "streetlight" else None
    return str(parent) if parent else None


def _rerender(asset: Asset) -> None:
    values = _values(asset)
    asset.feature = render_feature(values)
    asset.search_text = search_text(values)
    asset.parent_id = parent_of(asset.type, asset.attributes)


def _snapshot(asset: Asset) -> dict[str, Any]:
    """What the audit log keeps of an asset's state."""
    return feature_dict(_values(asset))


# --- placement ------------------------------------------------------------------------------------


def resolve_commune(
    territory: TerritoryIndex,
    lon: float,
    lat: float,
    declared: str | None,
    *,
    boundary_tolerance_m: float,
    commune_tolerance_m: float,
) -> str:
    """The commune an asset at (lon, lat) belongs to, or a Problem explaining why the place is wrong."""
    if declared is not None and not territory.knows(declared):
        raise Problem(
            "unknown-commune", f"No commune of the métropole has the INSEE code {declared}.", commune=declared
        )
    lons, lats = np.array([lon]), np.array([lat])
    outside = float(territory.distance_outside_metro_m(lons, lats)[0])
    if outside > boundary_tolerance_m:
        raise Problem(
            "outside-metropolis",
            f"[{lon}, {lat}] lies {outside / 1000:.1f} km outside the métropole.",
            distance_m=round(outside),
        )
    located = territory.locate(lon, lat)
    if declared is None:
        return located if located is not None else territory.nearest_commune(lon, lat)[0]
    if located != declared:
        gap = float(territory.distance_to_commune_m(declared, lons, lats)[0])
        if gap > commune_tolerance_m:
            raise Problem(
                "commune-mismatch",
                f"[{lon}, {lat}] lies {gap:.0f} m from {territory.names[declared]} "
                f"(it is in {territory.names.get(located or '', 'no commune')}).",
                declared=declared,
                located=located,
            )
    return declared


def new_local_id(territory: TerritoryIndex, commune_code: str) -> str:
    return f"{territory.slugs[commune_code]}-{uuid.uuid4().hex[:10]}"


# --- reads ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetFilter:
    types: frozenset[str] | None = None
    communes: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    bbox: BBox | None = None
    near: tuple[float, float, float] | None = None  # lon, lat, radius in metres
    text: str | None = None
    include_retired: bool = False
    ids: frozenset[str] | None = None
    parent: str | None = None  # assets hanging off this one (a cabinet's streetlights)

    def spatial_box(self) -> BBox | None:
        boxes = [self.bbox] if self.bbox else []
        if self.near:
            boxes.append(BBox.around(*self.near))
        if not boxes:
            return None
        return BBox(
            max(b.min_lon for b in boxes),
            max(b.min_lat for b in boxes),
            max(max(b.min_lon for b in boxes), min(b.max_lon for b in boxes)),
            max(max(b.min_lat for b in boxes), min(b.max_lat for b in boxes)),
        )


def bbox_clause(box: BBox) -> ColumnElement[bool]:
    """Bounding-box test through the grid-cell index (core.geo), then exact on the coordinates.

    A map-sized box lists its cells (equality lookups the planner always takes); a huge one uses one
    range per grid row."""
    listed = grid_cells_covering(box)
    if listed is not None:
        cells: ColumnElement[bool] = Asset.cell.in_(listed)
    else:
        cells = or_(*(Asset.cell.between(low, high) for low, high in grid_ranges(box)))
    return and_(cells, Asset.lon.between(box.min_lon, box.max_lon), Asset.lat.between(box.min_lat, box.max_lat))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_clauses(session: Session, principal: Principal, flt: AssetFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    communes = principal.visible_communes(flt.communes)
    if communes is not None:
        clauses.append(Asset.commune_code.in_(sorted(communes)) if communes else false())
    if flt.types is not None:
        clauses.append(Asset.type.in_(sorted(flt.types)))
    if flt.statuses is not None:
        clauses.append(Asset.status.in_(sorted(flt.statuses)))
    elif not flt.include_retired:
        clauses.append(Asset.status != AssetStatus.RETIRED.value)
    if flt.ids is not None:
        clauses.append(Asset.id.in_(sorted(flt.ids)))
    box = flt.spatial_box()
    if box is not None:
        clauses.append(bbox_clause(box))
    if flt.text:
        clauses.append(Asset.search_text.like(f"%{_escape_like(fold(flt.text))}%", escape="\\"))
    if flt.parent is not None:
        clauses.append(Asset.parent_id == flt.parent)
    return clauses


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
        if not decoded:
            raise ValueError("empty cursor")
        return decoded
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem("bad-request", "Invalid cursor; use the next link of the previous page.") from exc


@dataclass(slots=True)
class Page:
    features: bytes = b""  # the page's GeoJSON features, comma-separated, ready to splice into a collection
    returned: int = 0
    next_cursor: str | None = None


class FeatureCache:
    """Rendered features by asset pk, each tagged with the version it renders.

    A page query reads only keys and versions from the covering grid index; features whose cached
    version matches are taken from memory, the others are read from the database (and cached). A
    stale entry can never be served: every change to an asset bumps its version, and the version is
    read in the same query as the keys. When full, the cache is simply emptied (bounded memory).
    """

    def __init__(self, max_entries: int = 400_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[int, tuple[int, bytes]] = {}
        self.hits = 0
        self.misses = 0

    def take(
        self, session: Session, keys: Sequence[tuple[int, int]], page_keys: Select[int, int] | None = None
    ) -> list[bytes]:
        """The features of ``keys`` (pk, version), reading what the cache lacks. ``page_keys`` is the
        query that found the keys: with many misses the database re-runs it and joins the rows itself
        (~3 ms for 2,000 rows) instead of binding a long IN list."""
        entries = self._entries
        missing = [pk for pk, version in keys if (entry := entries.get(pk)) is None or entry[0] != version]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            if len(entries) + len(missing) > self.max_entries:
                entries.clear()
            columns = select(Asset.pk, Asset.version, Asset.feature)
            if len(missing) > 64 and page_keys is not None:
                batches = [columns.where(Asset.pk.in_(page_keys.with_only_columns(Asset.pk)))]
            else:
                batches = [columns.where(Asset.pk.in_(missing[i : i + 1000])) for i in range(0, len(missing), 1000)]
            connection = session.connection()
            for query in batches:
                for pk, version, feature in connection.execute(query):
                    entries[pk] = (version, feature.encode())
        # A row updated between the two reads comes back newer than its key: serve what was read.
        return [entries[pk][1] for pk, _ in keys]

    def __len__(self) -> int:
        return len(self._entries)


def list_features(
    session: Session,
    principal: Principal,
    flt: AssetFilter,
    *,
    limit: int,
    cursor: str | None = None,
    cache: FeatureCache | None = None,
) -> Page:
    """One page of pre-rendered features in registration order (stable under concurrent inserts:
    new assets always come after the pages already read)."""
    clauses = filter_clauses(session, principal, flt)
    after = _cursor_pk(cursor)
    if flt.near is None:
        return _keyed_page(session, clauses, after, limit, FeatureCache(0) if cache is None else cache)
    return _page_within_radius(session, clauses, after, limit, flt.near)


def _cursor_pk(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(decode_cursor(cursor))
    except ValueError as exc:
        raise Problem("bad-request", "Invalid cursor; use the next link of the previous page.") from exc


def _keyed_page(
    session: Session, clauses: list[ColumnElement[bool]], after: int | None, limit: int, cache: FeatureCache
) -> Page:
    """Keys and versions from the covering index (one key more tells whether a page follows), then
    the features from the cache or the database."""
    keys = select(Asset.pk, Asset.version).where(*clauses)
    if after is not None:
        keys = keys.where(Asset.pk > after)
    # Core execution on the session's connection: the ORM's per-statement bookkeeping is not needed.
    rows = [
        (int(pk), int(version))
        for pk, version in session.connection().execute(keys.order_by(Asset.pk).limit(limit + 1))
    ]
    if not rows:
        return Page()
    more = len(rows) > limit
    rows = rows[:limit]
    features = cache.take(session, rows, keys)
    return Page(b",".join(features), len(rows), encode_cursor(str(rows[-1][0])) if more else None)


def _page_within_radius(
    session: Session,
    clauses: list[ColumnElement[bool]],
    after: int | None,
    limit: int,
    near: tuple[float, float, float],
) -> Page:
    """Rows of the circle's bounding box outside the circle are skipped: fetch on until the page is full."""
    lon0, lat0, radius = near
    kept: list[str] = []
    last_kept: int | None = None
    batch = max(limit + 1, 256)
    while True:
        query = select(Asset.pk, Asset.feature, Asset.lon, Asset.lat).where(*clauses).order_by(Asset.pk)
        if after is not None:
            query = query.where(Asset.pk > after)
        rows = session.execute(query.limit(batch)).all()
        for row in rows:
            after = row[0]
            if haversine_m(row[2], row[3], lon0, lat0) <= radius:
                if len(kept) == limit:
                    return Page(",".join(kept).encode(), limit, encode_cursor(str(last_kept)))
                kept.append(row[1])
                last_kept = row[0]
        if len(rows) < batch:
            return Page(",".join(kept).encode(), len(kept), None)


def count(session: Session, principal: Principal, flt: AssetFilter) -> int:
    clauses = filter_clauses(session, principal, flt)
    if flt.near is None:
        return int(session.scalar(select(func.count()).select_from(Asset).where(*clauses)) or 0)
    lon0, lat0, radius = flt.near
    rows = session.execute(select(Asset.lon, Asset.lat).where(*clauses)).all()
    if not rows:
        return 0
    coords = np.array(rows, dtype=float)
    return int(np.count_nonzero(haversine_many_m(coords[:, 0], coords[:, 1], lon0, lat0) <= radius))


def get_asset(session: Session, principal: Principal, asset_id: str, *, for_update: bool = False) -> Asset:
    query = select(Asset).where(Asset.id == asset_id)
    if for_update:
        query = query.with_for_update()
    asset = session.scalar(query)
    # Out of scope reads as absent: a Talant operator learns nothing about Quetigny's equipment.
    if asset is None or not principal.sees(asset.commune_code):
        raise Problem("not-found", f"No asset {asset_id}.")
    return asset


def get_feature(session: Session, principal: Principal, asset_id: str) -> tuple[str, int]:
    row = session.execute(select(Asset.feature, Asset.version, Asset.commune_code).where(Asset.id == asset_id)).first()
    if row is None or not principal.sees(row[2]):
        raise Problem("not-found", f"No asset {asset_id}.")
    return row[0], row[1]


def counts(session: Session, principal: Principal, flt: AssetFilter) -> dict[str, Any]:
    clauses = filter_clauses(session, principal, flt)
    result: dict[str, Any] = {"total": 0, "by_type": {}, "by_status": {}, "by_commune": {}}
    rows = session.execute(
        select(Asset.type, Asset.status, Asset.commune_code, func.count())
        .where(*clauses)
        .group_by(Asset.type, Asset.status, Asset.commune_code)
    ).all()
    for type_key, status, commune, n in rows:
        result["total"] += n
        for key, bucket in ((type_key, "by_type"), (status, "by_status"), (commune, "by_commune")):
            result[bucket][key] = result[bucket].get(key, 0) + n
    return result


def map_snapshot(session: Session, principal: Principal, flt: AssetFilter) -> dict[str, Any]:
    """Every matching asset as parallel columns: compact enough to ship 35,000 points to a map."""
    clauses = filter_clauses(session, principal, flt)
    rows = session.execute(
        select(Asset.id, Asset.type, Asset.status, Asset.commune_code, Asset.lon, Asset.lat)
        .where(*clauses)
        .order_by(Asset.id)
    ).all()
    types = list(ASSET_TYPES)
    statuses = [s.value for s in AssetStatus]
    communes = sorted({r[3] for r in rows})
    type_index = {k: i for i, k in enumerate(types)}
    status_index = {k: i for i, k in enumerate(statuses)}
    commune_index = {k: i for i, k in enumerate(communes)}
    return {
        "types": types,
        "statuses": statuses,
        "communes": communes,
        "id": [r[0] for r in rows],
        "t": [type_index[r[1]] for r in rows],
        "s": [status_index[r[2]] for r in rows],
        "c": [commune_index[r[3]] for r in rows],
        "lon": [round(r[4], 6) for r in rows],
        "lat": [round(r[5], 6) for r in rows],
    }


# --- writes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    territory: TerritoryIndex
    boundary_tolerance_m: float
    commune_tolerance_m: float

    def resolve(self, lon: float, lat: float, declared: str | None) -> str:
        return resolve_commune(
            self.territory,
            lon,
            lat,
            declared,
            boundary_tolerance_m=self.boundary_tolerance_m,
            commune_tolerance_m=self.commune_tolerance_m,
        )


def _validated_attributes(type_key: str, attributes: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_attributes(type_key, attributes)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        for error in errors:
            error["pointer"] = "#/attributes" + error["pointer"][1:]
        raise Problem("validation-error", f"Invalid attributes for a {type_key}.", errors=errors) from exc


def _check_references(session: Session, principal: Principal, type_key: str, attributes: Mapping[str, Any]) -> None:
    cabinet = attributes.get("cabinet") if type_key == "streetlight" else None
    if cabinet is None:
        return
    row = session.execute(select(Asset.type, Asset.commune_code).where(Asset.id == cabinet)).first()
    if row is None or row[0] != "lighting_cabinet" or not principal.sees(row[1]):
        raise Problem(
            "validation-error",
            f"attributes.cabinet: no lighting cabinet {cabinet}.",
            errors=[{"pointer": "#/attributes/cabinet", "detail": f"no lighting cabinet {cabinet}"}],
        )


def create_asset(
    session: Session, principal: Principal, body: AssetCreate, placement: Placement, clock: Clock
) -> Asset:
    asset_type = ASSET_TYPES.get(body.type)
    if asset_type is None:
        raise Problem(
            "unknown-asset-type",
            f"Unknown asset type {body.type!r}; known types: {', '.join(ASSET_TYPES)}.",
            known_types=list(ASSET_TYPES),
        )
    lon, lat = body.location.coordinates
    commune = placement.resolve(lon, lat, body.commune)
    if not principal.sees(commune):
        raise Problem("commune-out-of-scope", f"Your account is not scoped to commune {commune}.", commune=commune)
    if body.id is not None:
        ngsi_type, _ = parse_urn(body.id)
        if ngsi_type != asset_type.ngsi_type:
            raise Problem(
                "validation-error",
                f"A {body.type} has identifiers urn:ngsi-ld:{asset_type.ngsi_type}:<local-id>.",
                errors=[{"pointer": "#/id", "detail": f"expected type {asset_type.ngsi_type} in the URN"}],
            )
        asset_id = body.id
    else:
        asset_id = make_urn(asset_type.ngsi_type, new_local_id(placement.territory, commune))
    if session.scalar(select(Asset.pk).where(Asset.id == asset_id)) is not None:
        raise Problem("duplicate-id", f"An asset {asset_id} already exists.", id=asset_id)
    attributes = _validated_attributes(body.type, body.attributes)
    _check_references(session, principal, body.type, attributes)
    now = clock.now()
    asset = Asset(
        id=asset_id,
        type=body.type,
        commune_code=commune,
        name=body.name,
        lon=lon,
        lat=lat,
        cell=grid_cell(lon, lat),
        status=body.status.value,
        address=body.address,
        installed_on=body.installed_on,
        manufacturer=body.manufacturer,
        model=body.model,
        serial_number=body.serial_number,
        attributes=attributes,
        version=1,
        created_at=now,
        updated_at=now,
        retired_at=None,
        import_batch_id=None,
        feature="",
        search_text="",
    )
    _rerender(asset)
    session.add(asset)
    session.flush()
    audit.record(
        session,
        principal,
        "asset.created",
        at=now,
        target_type="asset",
        target_id=asset_id,
        commune_code=commune,
        after=_snapshot(asset),
        reason=body.reason,
    )
    emit(session, "assets.asset.created", {"id": asset_id, "type": body.type, "commune": commune})
    return asset


def _check_version(asset: Asset, if_match: int | None) -> None:
    if if_match is not None and if_match != asset.version:
        raise Problem(
            "precondition-failed",
            f"The asset is at version {asset.version}, not {if_match}; read it again.",
            current_version=asset.version,
        )


def update_asset(
    session: Session,
    principal: Principal,
    asset_id: str,
    patch: AssetPatch,
    placement: Placement,
    clock: Clock,
    *,
    if_match: int | None = None,
) -> Asset:
    asset = get_asset(session, principal, asset_id, for_update=True)
    if asset.status == AssetStatus.RETIRED.value:
        raise Problem("asset-retired", f"{asset_id} was retired on {asset.retired_at:%Y-%m-%d}; it cannot change.")
    _check_version(asset, if_match)
    before = _snapshot(asset)
    sent = patch.model_fields_set
    for name in ("name", "status"):
        if name in sent and getattr(patch, name) is None:
            raise Problem(
                "validation-error",
                f"{name} cannot be null.",
                errors=[{"pointer": f"#/{name}", "detail": "cannot be null"}],
            )
    if "status" in sent and patch.status is AssetStatus.RETIRED:
        raise Problem(
            "validation-error",
            "Retire an asset with POST /api/v1/assets/{id}/retire.",
            errors=[{"pointer": "#/status", "detail": "use the retire action"}],
        )
    if "location" in sent or "commune" in sent:
        if "location" in sent and patch.location is None:
            raise Problem(
                "validation-error",
                "location cannot be null.",
                errors=[{"pointer": "#/location", "detail": "cannot be null"}],
            )
        lon, lat = patch.location.coordinates if patch.location is not None else (asset.lon, asset.lat)
        declared = patch.commune if "commune" in sent else None
        commune = placement.resolve(lon, lat, declared)
        if not principal.sees(commune):
            raise Problem("commune-out-of-scope", f"Your account is not scoped to commune {commune}.", commune=commune)
        asset.lon, asset.lat, asset.commune_code = lon, lat, commune
        asset.cell = grid_cell(lon, lat)
    for name in EDITABLE:
        if name in sent:
            value = getattr(patch, name)
            setattr(asset, name, value.value if isinstance(value, AssetStatus) else value)
    if "attributes" in sent and patch.attributes is not None:
        merged = dict(asset.attributes)
        for key, value in patch.attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        asset.attributes = _validated_attributes(asset.type, merged)
        _check_references(session, principal, asset.type, asset.attributes)
    after_values = _values(asset)
    if feature_dict(after_values) == before:
        return asset  # nothing changed: no new version, no audit noise
    now = clock.now()
    asset.version += 1
    asset.updated_at = now
    _rerender(asset)
    audit.record(
        session,
        principal,
        "asset.updated",
        at=now,
        target_type="asset",
        target_id=asset_id,
        commune_code=asset.commune_code,
        before=before,
        after=_snapshot(asset),
        reason=patch.reason,
    )
    emit(
        session,
        "assets.asset.updated",
        {
            "id": asset_id,
            "type": asset.type,
            "commune": asset.commune_code,
            "version": asset.version,
            "status": asset.status,
        },
    )
    return asset


def retire_asset(
    session: Session,
    principal: Principal,
    asset_id: str,
    reason: str,
    clock: Clock,
    *,
    if_match: int | None = None,
) -> Asset:
    asset = get_asset(session, principal, asset_id, for_update=True)
    if asset.status == AssetStatus.RETIRED.value:
        raise Problem("asset-retired", f"{asset_id} is already retired.")
    _check_version(asset, if_match)
    before = _snapshot(asset)
    now = clock.now()
    asset.status = AssetStatus.RETIRED.value
    asset.retired_at = now
    asset.updated_at = now
    asset.version += 1
    _rerender(asset)
    audit.record(
        session,
        principal,
        "asset.retired",
        at=now,
        target_type="asset",
        target_id=asset_id,
        commune_code=asset.commune_code,
        before=before,
        after=_snapshot(asset),
        reason=reason,
    )
    emit(session, "assets.asset.retired", {"id": asset_id, "type": asset.type, "commune": asset.commune_code})
    return asset


def existing_ids(session: Session, ids: Sequence[str], chunk: int = 5000) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), chunk):
        found.update(session.scalars(select(Asset.id).where(Asset.id.in_(ids[start : start + chunk]))))
    return found


def ids_of_type(session: Session, ids: Iterable[str], type_key: str) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 5000):
        found.update(
            session.scalars(select(Asset.id).where(Asset.id.in_(wanted[start : start + 5000]), Asset.type == type_key))
        )
    return found
