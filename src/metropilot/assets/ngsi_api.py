"""NGSI-LD API (ETSI GS CIM 009) over the registry: /ngsi-ld/v1/entities, types, @context.

Read-only: the registry's own API is where assets are written. Errors are NGSI-LD problem details
(``application/json``, ``type`` under https://uri.etsi.org/ngsi-ld/errors/).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metropilot.assets import ngsi, service
from metropilot.assets.models import Asset
from metropilot.assets.ngsi_query import (
    GeoQuery,
    QueryNode,
    QuerySyntaxError,
    evaluate,
    parse_geoquery,
    parse_q,
)
from metropilot.assets.types import ASSET_TYPES, TYPE_BY_NGSI
from metropilot.core.auth import get_platform, require
from metropilot.core.geo import BBox
from metropilot.core.permissions import Permission, Principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.territory.service import TerritoryIndex

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
Reader = Annotated[Principal, Depends(require(Permission.ASSETS_READ))]
PlatformDep = Annotated[Platform, Depends(get_platform)]

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
_JSON, _LD, _GEO = "application/json", "application/ld+json", "application/geo+json"

# Our problems in NGSI-LD terms (CIM 009, 5.5.2 and table 6.3.2-1).
_ERROR_TYPES = {
    400: "BadRequestData",
    404: "ResourceNotFound",
    409: "AlreadyExists",
    422: "BadRequestData",
    500: "InternalError",
    406: "NotAcceptable",
    403: "TooManyResults",
}


def render_problem(problem: Problem, instance: str) -> Response:
    """NGSI-LD problem details: RFC 7807 members, ETSI error types, served as application/json."""
    ngsi_type = problem.extensions.get("ngsi_type")
    if ngsi_type:
        error_type = ERRORS + ngsi_type
    elif problem.status in (401, 403):
        error_type = f"/problems/{problem.slug}"  # NGSI-LD defines no authorisation errors
    else:
        error_type = ERRORS + _ERROR_TYPES.get(problem.status, "BadRequestData")
    body: dict[str, Any] = {"type": error_type, "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    body["instance"] = instance
    if "errors" in problem.extensions:
        body["errors"] = problem.extensions["errors"]
    status = 400 if problem.status == 422 else problem.status
    body["status"] = status
    return Response(content=orjson.dumps(body), status_code=status, media_type=_JSON, headers=problem.headers)


def _bad_request(detail: str) -> Problem:
    return Problem("bad-request", detail)


def _link_header(request: Request) -> str:
    return f'<{str(request.base_url).rstrip("/")}{ngsi.CONTEXT_PATH}>; rel="{ngsi.LINK_REL}"; type="{_LD}"'


def _negotiate(request: Request) -> str:
    accept = request.headers.get("accept", "*/*").lower()
    offered = [part.split(";")[0].strip() for part in accept.split(",") if part.strip()]
    for media in offered:
        if media in (_JSON, _LD, _GEO):
            return media
        if media in ("*/*", "application/*"):
            return _JSON
    raise Problem("not-acceptable", "NGSI-LD serves application/json, application/ld+json or application/geo+json.")


def _context_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{ngsi.CONTEXT_PATH}"


def _names(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    names = frozenset(ngsi.short_attribute(v.strip()) for v in value.split(",") if v.strip())
    return names or None


class _Options:
    def __init__(self, options: str | None, format_: str | None) -> None:
        opts = {o.strip() for o in (options or "").split(",") if o.strip()}
        unknown = opts - {"keyValues", "sysAttrs", "normalized", "concise", "simplified"}
        if unknown:
            raise _bad_request(f"Unsupported options: {', '.join(sorted(unknown))}.")
        if format_ not in (None, "normalized", "simplified", "keyValues"):
            raise _bad_request(f"Unsupported format {format_!r}: use normalized or simplified.")
        self.simplified = bool(opts & {"keyValues", "simplified"}) or format_ in ("simplified", "keyValues")
        self.sys_attrs = "sysAttrs" in opts


def _render(
    request: Request, entities: list[dict[str, Any]], media: str, opts: _Options, *, single: bool
) -> tuple[bytes, dict[str, str]]:
    headers: dict[str, str] = {}
    if media == _GEO:
        features = [ngsi.to_geojson(e, simplified=opts.simplified) for e in entities]
        body: Any = features[0] if single else {"type": "FeatureCollection", "features": features}
        if isinstance(body, dict):
            body["@context"] = [_context_url(request), ngsi.CORE_CONTEXT]
        return orjson.dumps(body), headers
    shaped = [ngsi.to_simplified(e) if opts.simplified else e for e in entities]
    if media == _LD:
        context = [_context_url(request), ngsi.CORE_CONTEXT]
        shaped = [{**e, "@context": context} for e in shaped]
    else:
        headers["Link"] = _link_header(request)
    return orjson.dumps(shaped[0] if single else shaped), headers


def _commune_names(platform: Platform) -> dict[str, str]:
    return platform.need(TerritoryIndex).names


@router.get("/jsonldContexts/metropilot", summary="The JSON-LD @context of metropilot's entities")
def context_document() -> Response:
    return Response(content=orjson.dumps(ngsi.context_document()), media_type=_LD)


@router.get("/types", summary="Entity types available (CIM 009, 5.7.5)")
def entity_types(request: Request, principal: Reader, platform: PlatformDep) -> Response:
    with platform.db.read() as session:
        present = service.counts(session, principal, service.AssetFilter())["by_type"]
    types = sorted(ASSET_TYPES[k].ngsi_type for k in present)
    body = {"id": "urn:ngsi-ld:EntityTypeList:metropilot", "type": "EntityTypeList", "typeList": types}
    return Response(content=orjson.dumps(body), media_type=_JSON, headers={"Link": _link_header(request)})


@router.get("/entities/{entity_id}", summary="Retrieve an entity (CIM 009, 6.5.3.1)")
def retrieve_entity(
    entity_id: str,
    request: Request,
    principal: Reader,
    platform: PlatformDep,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    options: str | None = None,
    format: str | None = None,
) -> Response:
    media = _negotiate(request)
    opts = _Options(options, format)
    with platform.db.read() as session:
        row = session.execute(select(Asset.feature, Asset.commune_code).where(Asset.id == entity_id)).first()
    if row is None or not principal.sees(row[1]):
        raise Problem("not-found", f"Entity {entity_id} not found.")
    entity = ngsi.to_normalized(orjson.loads(row[0]), _commune_names(platform), sys_attrs=opts.sys_attrs)
    entity = ngsi.project(entity, _names(pick) or _names(attrs), _names(omit))
    body, headers = _render(request, [entity], media, opts, single=True)
    return Response(content=body, media_type=media, headers=headers)


@router.get("/entities", summary="Query entities (CIM 009, 6.4.3.2)")
def query_entities(
    request: Request,
    principal: Reader,
    platform: PlatformDep,
    id: str | None = None,
    idPattern: str | None = None,  # noqa: N803  (NGSI-LD parameter names)
    type: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    q: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    count: bool = False,
    options: str | None = None,
    format: str | None = None,
    local: bool = False,
) -> Response:
    media = _negotiate(request)
    opts = _Options(options, format)
    try:
        query_node = parse_q(q) if q else None
        geo = parse_geoquery(georel, geometry, coordinates, geoproperty)
        pattern = re.compile(idPattern) if idPattern else None
    except QuerySyntaxError as exc:
        raise _bad_request(str(exc)) from exc
    except re.error as exc:
        raise _bad_request(f"idPattern is not a valid regular expression: {exc}") from exc
    picked = _names(pick) or _names(attrs)
    if type is None and picked is None and query_node is None and geo is None and not local:
        raise _bad_request("Too wide a query: give at least one of type, attrs/pick, q or a geo-query.")
    page_size = DEFAULT_LIMIT if limit is None else limit
    if page_size == 0 and not count:
        raise _bad_request("limit=0 is only allowed with count=true.")
    if page_size > MAX_LIMIT:
        raise Problem("forbidden", f"limit is capped at {MAX_LIMIT}; page with offset.", ngsi_type="TooManyResults")
    type_keys: frozenset[str] | None = None
    if type is not None:
        wanted = {ngsi.short_type(t.strip()) for t in type.split(",") if t.strip()}
        type_keys = frozenset(TYPE_BY_NGSI[t].key for t in wanted if t in TYPE_BY_NGSI)
    ids = frozenset(i.strip() for i in id.split(",") if i.strip()) if id else None
    box = geo.bbox() if geo is not None else None
    flt = service.AssetFilter(
        types=type_keys,
        ids=ids,
        bbox=BBox(*box) if box is not None else None,
    )
    names = _commune_names(platform)
    entities: list[dict[str, Any]]
    total: int | None
    with platform.db.read() as session:
        if type_keys is not None and not type_keys:
            entities, total = [], 0 if count else None
        else:
            entities, total = _run_query(
                session,
                principal,
                flt,
                names,
                query_node,
                geo,
                pattern,
                picked,
                offset=offset,
                limit=page_size,
                count=count,
                sys_attrs=opts.sys_attrs,
            )
    entities = [ngsi.project(e, picked, _names(omit)) for e in entities]
    body, headers = _render(request, entities, media, opts, single=False)
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    links = _paging_links(request, offset, page_size, len(entities), total)
    if links:
        headers["Link"] = ", ".join(filter(None, [headers.get("Link"), *links]))
    return Response(content=body, media_type=media, headers=headers)


def _paging_links(request: Request, offset: int, limit: int, returned: int, total: int | None) -> list[str]:
    links = []
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    if offset > 0:
        links.append(
            f'<{request.url.path}?{urlencode([*params, ("offset", str(max(0, offset - limit)))])}>; rel="prev"'
        )
    more = returned == limit and limit > 0 and (total is None or offset + returned < total)
    if more:
        links.append(f'<{request.url.path}?{urlencode([*params, ("offset", str(offset + limit))])}>; rel="next"')
    return links


def _candidates(session: Session, clauses: list[Any]) -> Iterator[tuple[str, str, float, float]]:
    query = select(Asset.id, Asset.feature, Asset.lon, Asset.lat).where(*clauses).order_by(Asset.id)
    for row in session.execute(query.execution_options(yield_per=2000)):
        yield row[0], row[1], row[2], row[3]


def _run_query(
    session: Session,
    principal: Principal,
    flt: service.AssetFilter,
    commune_names: dict[str, str],
    query_node: QueryNode | None,
    geo: GeoQuery | None,
    pattern: re.Pattern[str] | None,
    picked: frozenset[str] | None,
    *,
    offset: int,
    limit: int,
    count: bool,
    sys_attrs: bool,
) -> tuple[list[dict[str, Any]], int | None]:
    clauses = service.filter_clauses(session, principal, flt)
    if query_node is None and geo is None and pattern is None and picked is None:
        # Everything is decided in SQL: count and page there.
        total = int(session.scalar(select(func.count()).select_from(Asset).where(*clauses)) or 0) if count else None
        rows = session.execute(
            select(Asset.feature).where(*clauses).order_by(Asset.id).offset(offset).limit(limit)
        ).scalars()
        return [ngsi.to_normalized(orjson.loads(f), commune_names, sys_attrs=sys_attrs) for f in rows], total
    page: list[dict[str, Any]] = []
    matched = 0
    for entity_id, feature, lon, lat in _candidates(session, clauses):
        if pattern is not None and not pattern.fullmatch(entity_id):
            continue
        if geo is not None and not geo.matches(lon, lat):
            continue
        entity = ngsi.to_normalized(orjson.loads(feature), commune_names, sys_attrs=sys_attrs)
        if query_node is not None and not evaluate(query_node, entity):
            continue
        if picked is not None and not (picked & entity.keys()):
            continue  # an attribute selection only matches entities that have one of the attributes
        if offset <= matched < offset + limit:
            page.append(entity)
        matched += 1
        if not count and matched >= offset + limit:
            break
    return page, matched if count else None
