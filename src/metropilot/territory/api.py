"""HTTP API of the territory: communes (each a tenant) and road references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select

from metropilot.core.auth import current_principal, get_platform, require
from metropilot.core.models import AuditEntry
from metropilot.core.permissions import Permission, Principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.territory import service
from metropilot.territory.models import Commune, RoadSegment

router = APIRouter(prefix="/api/v1", tags=["territory"])
GEOJSON = "application/geo+json"
PlatformDep = Annotated[Platform, Depends(get_platform)]


@router.get("/communes", responses={200: {"content": {GEOJSON: {}}}})
def list_communes(
    _: Annotated[Principal, Depends(current_principal)],
    platform: PlatformDep,
    format: Annotated[str, Query(pattern="^(json|geojson)$")] = "json",
) -> Response:
    """The 23 communes. ``format=geojson`` adds their areas (``boundary_source`` says whether an area
    is an approximation or official contours)."""
    with platform.db.read() as session:
        communes = session.scalars(select(Commune).order_by(Commune.name)).all()
        if format == "geojson":
            collection = {
                "type": "FeatureCollection",
                "features": [service.commune_feature(c) for c in communes],
            }
            return Response(content=orjson.dumps(collection), media_type=GEOJSON)
        items = [
            {
                "code": c.code,
                "name": c.name,
                "slug": c.slug,
                "population": c.population,
                "reference_point": [c.lon, c.lat],
                "boundary_source": c.boundary_source,
            }
            for c in communes
        ]
    return Response(content=orjson.dumps(items), media_type="application/json")


@router.get("/communes/{code}", responses={200: {"content": {GEOJSON: {}}}})
def get_commune(code: str, _: Annotated[Principal, Depends(current_principal)], platform: PlatformDep) -> Response:
    with platform.db.read() as session:
        commune = session.get(Commune, code)
        if commune is None:
            raise Problem("not-found", f"No commune with INSEE code {code}.")
        feature = service.commune_feature(commune)
    return Response(content=orjson.dumps(feature), media_type=GEOJSON)


@router.put("/communes/boundaries", summary="Replace approximate areas with official contours")
async def import_boundaries(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.TERRITORY_WRITE))],
    platform: PlatformDep,
    source: Annotated[str, Query(min_length=3, max_length=200, description="e.g. 'IGN ADMIN EXPRESS 2026'")],
) -> dict[str, Any]:
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-json", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Problem("bad-request", "Send a GeoJSON FeatureCollection.")

    def run() -> list[str]:
        with platform.transaction() as session:
            updated = service.import_boundaries(session, document, principal, platform.clock, source)
        with platform.db.read() as session:
            platform.provide(service.TerritoryIndex.load(session))
        return updated

    return {"updated": await run_in_threadpool(run)}


@dataclass
class RoadsCache:
    """Rendered road collections by filter, valid while the road table is unchanged (roads change
    rarely and the collection is ~3 MB: rebuilding it per request slowed every other request)."""

    entries: dict[tuple[str | None, str | None], tuple[str, bytes]] = field(default_factory=dict)


@router.get("/roads", responses={200: {"content": {GEOJSON: {}}}, 304: {"description": "Not modified"}})
def list_roads(
    request: Request,
    _: Annotated[Principal, Depends(current_principal)],
    platform: PlatformDep,
    commune: str | None = None,
    road_class: Annotated[str | None, Query(pattern="^(primary|secondary|residential)$")] = None,
) -> Response:
    """Road segments as GeoJSON LineStrings (the road graph's edges: ``from_node`` -> ``to_node``).
    Served with an ETag: send ``If-None-Match`` to get 304 while the roads are unchanged."""
    try:
        cache = platform.need(RoadsCache)
    except LookupError:
        cache = platform.provide(RoadsCache())
    with platform.db.read() as session:
        # Every replacement of the roads is audited: the last such entry versions the road table.
        version = session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.action == service.ROADS_REPLACED))
        etag = f'"roads-{version or 0}-{commune or "all"}-{road_class or "all"}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        cached = cache.entries.get((commune, road_class))
        if cached is not None and cached[0] == etag:
            return Response(content=cached[1], media_type=GEOJSON, headers=headers)
        query = select(RoadSegment).order_by(RoadSegment.id)
        if commune:
            query = query.where(RoadSegment.commune_code == commune)
        if road_class:
            query = query.where(RoadSegment.road_class == road_class)
        parts: list[str] = []
        for road in session.scalars(query):
            properties = {
                "name": road.name,
                "class": road.road_class,
                "commune": road.commune_code,
                "from_node": road.from_node,
                "to_node": road.to_node,
                "length_m": road.length_m,
            }
            # Coordinates are stored as JSON text: spliced in as they are, not parsed and re-serialised.
            parts.append(
                f'{{"type":"Feature","id":{road.id},"geometry":{{"type":"LineString","coordinates":{road.coordinates}}},'
                f'"properties":{orjson.dumps(properties).decode()}}}'
            )
    body = ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode()
    cache.entries[(commune, road_class)] = (etag, body)
    return Response(content=body, media_type=GEOJSON, headers=headers)
