"""HTTP API of the registry under /api/v1: assets as GeoJSON features."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sqlalchemy import select

from metropilot.assets import importer, service
from metropilot.assets.schemas import (
    AssetCounts,
    AssetCreate,
    AssetPatch,
    AssetTypeOut,
    ImportReport,
    RetireRequest,
)
from metropilot.assets.types import ASSET_TYPES, AssetStatus
from metropilot.core.auth import get_platform, require
from metropilot.core.geo import BBox
from metropilot.core.models import AuditEntry
from metropilot.core.permissions import Permission, Principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.territory.service import TerritoryIndex

router = APIRouter(prefix="/api/v1", tags=["assets"])
_IMPORT_LIMITER = CapacityLimiter(1)

GEOJSON = "application/geo+json"
Reader = Annotated[Principal, Depends(require(Permission.ASSETS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.ASSETS_WRITE))]
Importer = Annotated[Principal, Depends(require(Permission.ASSETS_IMPORT))]
PlatformDep = Annotated[Platform, Depends(get_platform)]


def placement_of(platform: Platform) -> service.Placement:
    return service.Placement(
        territory=platform.need(TerritoryIndex),
        boundary_tolerance_m=platform.settings.boundary_tolerance_m,
        commune_tolerance_m=platform.settings.commune_tolerance_m,
    )


def feature_cache(platform: Platform) -> service.FeatureCache:
    try:
        return platform.need(service.FeatureCache)
    except LookupError:
        return platform.provide(service.FeatureCache(platform.settings.feature_cache_entries))


def _split(values: Sequence[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    return frozenset(v.strip() for value in values for v in value.split(",") if v.strip())


def asset_filter(
    type: Annotated[list[str] | None, Query(description="Asset type key(s), comma-separated or repeated")] = None,
    commune: Annotated[list[str] | None, Query(description="INSEE code(s)")] = None,
    status_: Annotated[list[str] | None, Query(alias="status", description="Operational status(es)")] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84)")] = None,
    near: Annotated[str | None, Query(description="lon,lat: with radius, assets within radius metres")] = None,
    radius: Annotated[float | None, Query(gt=0, le=50_000, description="metres, with near")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name, address or id")] = None,
    include_retired: bool = False,
    parent: Annotated[str | None, Query(description="Assets hanging off this one (a cabinet's streetlights)")] = None,
) -> service.AssetFilter:
    types = _split(type)
    if types is not None and (unknown := sorted(types - set(ASSET_TYPES))):
        raise Problem(
            "unknown-asset-type",
            f"Unknown asset type(s): {', '.join(unknown)}.",
            known_types=list(ASSET_TYPES),
        )
    statuses = _split(status_)
    known_statuses = {s.value for s in AssetStatus}
    if statuses is not None and (unknown := sorted(statuses - known_statuses)):
        raise Problem(
            "bad-request", f"Unknown status(es): {', '.join(unknown)}.", known_statuses=sorted(known_statuses)
        )
    box = None
    if bbox is not None:
        try:
            box = BBox.parse(bbox)
        except ValueError as exc:
            raise Problem("bad-request", f"bbox: {exc}") from exc
    circle = None
    if (near is None) != (radius is None):
        raise Problem("bad-request", "near and radius go together.")
    if near is not None and radius is not None:
        try:
            lon, lat = (float(p) for p in near.split(","))
        except ValueError as exc:
            raise Problem("bad-request", "near is lon,lat.") from exc
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise Problem("bad-request", "near is lon,lat in WGS84 ranges.")
        circle = (lon, lat, radius)
    return service.AssetFilter(
        types=types,
        communes=_split(commune),
        statuses=statuses,
        bbox=box,
        near=circle,
        text=q or None,
        include_retired=include_retired,
        parent=parent,
    )


Filter = Annotated[service.AssetFilter, Depends(asset_filter)]


def _etag(version: int) -> str:
    return f'"v{version}"'


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"v(\d+)"\s*', value)
    if not match:
        raise Problem("bad-request", 'If-Match takes the ETag of the asset, e.g. "v3".')
    return int(match[1])


def _feature_response(feature: str, version: int, status_code: int = 200, location: str | None = None) -> Response:
    headers = {"ETag": _etag(version)}
    if location:
        headers["Location"] = location
    return Response(content=feature, media_type=GEOJSON, status_code=status_code, headers=headers)


@router.get("/asset-types", response_model=list[AssetTypeOut])
def asset_types(_: Reader) -> list[AssetTypeOut]:
    """The kinds of equipment the registry knows, with the JSON Schema of their typed attributes."""
    return [
        AssetTypeOut(
            key=t.key,
            ngsi_type=t.ngsi_type,
            label_fr=t.label_fr,
            label_en=t.label_en,
            smart_data_model=t.smart_data_model,
            attributes_schema=t.attributes.model_json_schema(),
        )
        for t in ASSET_TYPES.values()
    ]


@router.get(
    "/assets",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "A GeoJSON FeatureCollection"}},
)
def list_assets(
    request: Request,
    principal: Reader,
    platform: PlatformDep,
    flt: Filter,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    cursor: str | None = None,
    count: Annotated[bool, Query(description="Also return numberMatched (costs a count)")] = False,
) -> Response:
    """Assets matching every filter, ordered by id, as a GeoJSON FeatureCollection.

    Paging follows OGC API - Features: the ``next`` link carries an opaque cursor.
    """
    with platform.db.read() as session:
        page = service.list_features(session, principal, flt, limit=limit, cursor=cursor, cache=feature_cache(platform))
        matched = service.count(session, principal, flt) if count else None
    links = [{"rel": "self", "type": GEOJSON, "href": str(request.url)}]
    if page.next_cursor:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", page.next_cursor))
        links.append({"rel": "next", "type": GEOJSON, "href": f"{request.url.path}?{urlencode(params)}"})
    tail: dict[str, Any] = {"numberReturned": page.returned, "links": links}
    if matched is not None:
        tail["numberMatched"] = matched
    body = b"".join((b'{"type":"FeatureCollection","features":[', page.features, b"],", orjson.dumps(tail)[1:]))
    return Response(content=body, media_type=GEOJSON)


@router.get("/assets/map", summary="Every matching asset as compact columns, for maps")
def asset_map(principal: Reader, platform: PlatformDep, flt: Filter) -> Response:
    with platform.db.read() as session:
        snapshot = service.map_snapshot(session, principal, flt)
    return Response(content=orjson.dumps(snapshot), media_type="application/json")


@router.get("/assets/stats", response_model=AssetCounts)
def asset_stats(principal: Reader, platform: PlatformDep, flt: Filter) -> AssetCounts:
    with platform.db.read() as session:
        return AssetCounts(**service.counts(session, principal, flt))


@router.post(
    "/assets",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={201: {"content": {GEOJSON: {}}, "description": "The created asset"}},
)
def create_asset(body: AssetCreate, principal: Writer, platform: PlatformDep) -> Response:
    with platform.transaction() as session:
        asset = service.create_asset(session, principal, body, placement_of(platform), platform.clock)
        feature, version, asset_id = asset.feature, asset.version, asset.id
    return _feature_response(feature, version, 201, location=f"/api/v1/assets/{asset_id}")


@router.post(
    "/assets/import",
    response_model=ImportReport,
    status_code=status.HTTP_201_CREATED,
    summary="Bulk import from GeoJSON or CSV: all rows or none",
)
async def import_assets(
    request: Request,
    principal: Importer,
    platform: PlatformDep,
    dry_run: bool = False,
    content_type: Annotated[str | None, Header()] = None,
) -> ImportReport:
    """Send a GeoJSON FeatureCollection (``application/geo+json`` or ``application/json``) or a CSV file
    (``text/csv``) as the body, or either as the ``file`` field of a multipart form. With
    ``dry_run=true`` everything is checked and nothing written. Any faulty row rejects the import
    with 422 and an ``errors`` list naming each row and field."""
    media = (content_type or "").split(";")[0].strip().lower()
    source = request.headers.get("x-filename", "request body")
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Problem("bad-request", "The multipart form needs a 'file' field.")
        content = await upload.read()
        source = upload.filename or source
        media = "text/csv" if source.lower().endswith(".csv") else (upload.content_type or GEOJSON)
    else:
        content = await request.body()
    if len(content) > platform.settings.max_import_bytes:
        raise Problem("payload-too-large", f"Imports are limited to {platform.settings.max_import_bytes} bytes.")
    if media in ("text/csv", "application/csv"):
        fmt = "csv"
    elif media in (GEOJSON, "application/json", "application/octet-stream") or source.endswith(("json", "geojson")):
        fmt = "geojson"
    else:
        raise Problem(
            "unsupported-media-type",
            f"Cannot import {media or 'a body without Content-Type'}: send GeoJSON or CSV.",
        )
    # Imports run on their own thread (one at a time per process): a 20-second import must not take
    # one of the few threads that serve every other request.
    return await to_thread.run_sync(
        _run_import, platform, principal, content, fmt, source, dry_run, limiter=_IMPORT_LIMITER
    )


def _run_import(
    platform: Platform, principal: Principal, content: bytes, fmt: str, source: str, dry_run: bool
) -> ImportReport:
    parsed = importer.parse_csv(content) if fmt == "csv" else importer.parse_geojson(content)
    with platform.transaction() as session:
        return importer.import_assets(
            session,
            principal,
            parsed,
            placement_of(platform),
            platform.clock,
            source=source,
            fmt=fmt,
            sha256=importer.sha256_of(content),
            dry_run=dry_run,
        )


@router.get(
    "/assets/{asset_id}",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "The asset as a GeoJSON Feature"}},
)
def get_asset(asset_id: str, principal: Reader, platform: PlatformDep) -> Response:
    with platform.db.read() as session:
        feature, version = service.get_feature(session, principal, asset_id)
    return _feature_response(feature, version)


@router.patch(
    "/assets/{asset_id}",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "The updated asset"}},
)
def update_asset(
    asset_id: str,
    patch: AssetPatch,
    principal: Writer,
    platform: PlatformDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """JSON Merge Patch (RFC 7396). Send ``If-Match`` with the ETag you read to avoid lost updates."""
    with platform.transaction() as session:
        asset = service.update_asset(
            session,
            principal,
            asset_id,
            patch,
            placement_of(platform),
            platform.clock,
            if_match=_if_match(if_match),
        )
        feature, version = asset.feature, asset.version
    return _feature_response(feature, version)


@router.post(
    "/assets/{asset_id}/retire",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "The retired asset"}},
)
def retire_asset(
    asset_id: str,
    body: RetireRequest,
    principal: Writer,
    platform: PlatformDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Take an asset out of service for good. It stays in the registry, with its history."""
    with platform.transaction() as session:
        asset = service.retire_asset(
            session, principal, asset_id, body.reason, platform.clock, if_match=_if_match(if_match)
        )
        feature, version = asset.feature, asset.version
    return _feature_response(feature, version)


@router.get("/assets/{asset_id}/history", summary="Who changed this asset, when, and why")
def asset_history(asset_id: str, principal: Reader, platform: PlatformDep) -> list[dict[str, Any]]:
    with platform.db.read() as session:
        asset = service.get_asset(session, principal, asset_id)
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == asset_id).order_by(AuditEntry.seq)
        ).all()
        history = [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "reason": e.reason,
                "before": orjson.loads(e.before) if e.before else None,
                "after": orjson.loads(e.after) if e.after else None,
            }
            for e in entries
        ]
        if asset.import_batch_id is not None:
            batch = session.scalars(
                select(AuditEntry).where(AuditEntry.target_id == asset.import_batch_id).order_by(AuditEntry.seq)
            ).first()
            if batch is not None:
                history.insert(
                    0,
                    {
                        "seq": batch.seq,
                        "at": batch.at,
                        "actor": batch.actor,
                        "action": batch.action,
                        "reason": batch.reason,
                        "before": None,
                        "after": orjson.loads(batch.after or "null"),
                    },
                )
    return history
