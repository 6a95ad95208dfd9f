"""Communes as tenants, their areas, and locating a position in them.

The reference file gives each commune an INSEE code, a reference point and a population, not its
contours. Until official contours are imported (``import_boundaries``), each commune's area is
approximated by a power diagram of the reference points, weighted by population and clipped to an
outline of the métropole: convex cells that tile the territory without gaps, larger for larger
communes. They are labelled as approximations wherever they are served.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import numpy as np
import orjson
import shapely
from shapely.geometry import MultiPoint, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from metropilot.core import audit
from metropilot.core.clock import Clock
from metropilot.core.geo import METRO_PROJECTION, FloatArray
from metropilot.core.ids import slugify
from metropilot.core.permissions import Principal
from metropilot.core.problems import Problem
from metropilot.territory.models import Commune, RoadSegment

APPROXIMATION = "approximation"
ROADS_REPLACED = "territory.roads_replaced"  # audit action, also the version of the road table
# How far the métropole's outline extends beyond the outermost reference points.
_OUTLINE_MARGIN_M = 1800.0


@dataclass(frozen=True, slots=True)
class CommuneRecord:
    code: str
    name: str
    lat: float
    lon: float
    population: int


def read_reference_communes() -> list[CommuneRecord]:
    """The 23 communes shipped as package data (copied from the shared reference file)."""
    text = (resources.files("metropilot.territory") / "data" / "communes.csv").read_text(encoding="utf-8")
    return [
        CommuneRecord(
            code=row["insee_code"],
            name=row["name"],
            lat=float(row["approx_lat"]),
            lon=float(row["approx_lon"]),
            population=int(row["approx_population"]),
        )
        for row in csv.DictReader(text.splitlines())
    ]


def approximate_boundaries(records: Sequence[CommuneRecord]) -> dict[str, Polygon]:
    """Power-diagram cells (WGS84) around each commune's reference point, see the module docstring."""
    proj = METRO_PROJECTION
    points = np.array([proj.to_xy(r.lon, r.lat) for r in records])
    weights2 = np.sqrt(np.array([r.population for r in records], dtype=float))  # w**2 with w = pop**0.25
    # Largest scale keeping every reference point inside its own cell: k2 * (wj2 - wi2) <= d_ij**2.
    k2_limit = math.inf
    for i, j in itertools.permutations(range(len(records)), 2):
        gap = weights2[j] - weights2[i]
        if gap > 0:
            k2_limit = min(k2_limit, float(np.sum((points[i] - points[j]) ** 2)) / gap)
    k2 = 0.8 * k2_limit if math.isfinite(k2_limit) else 0.0
    radius2 = k2 * weights2
    outline = MultiPoint([tuple(p) for p in points]).convex_hull.buffer(_OUTLINE_MARGIN_M, quad_segs=12)
    far = 1e6
    cells: dict[str, Polygon] = {}
    for i, record in enumerate(records):
        cell: BaseGeometry = outline
        ci = points[i]
        for j in range(len(records)):
            if i == j:
                continue
            cj = points[j]
            normal = cj - ci
            offset = (cj @ cj - ci @ ci - radius2[j] + radius2[i]) / 2.0
            norm = float(np.hypot(*normal))
            unit = normal / norm
            tangent = np.array([-unit[1], unit[0]])
            on_line = normal * offset / (norm * norm)
            half_plane = Polygon(
                [
                    tuple(on_line + far * tangent),
                    tuple(on_line - far * tangent),
                    tuple(on_line - far * tangent - far * unit),
                    tuple(on_line + far * tangent - far * unit),
                ]
            )
            cell = cell.intersection(half_plane)
        cells[record.code] = shapely.set_precision(proj.geometry_to_lonlat(cell), 1e-6)
    return cells


def ensure_communes(session: Session, clock: Clock) -> int:
    """Insert the reference communes that are missing; returns how many were added."""
    existing = set(session.scalars(select(Commune.code)))
    records = read_reference_communes()
    missing = [r for r in records if r.code not in existing]
    if not missing:
        return 0
    cells = approximate_boundaries(records)
    now = clock.now()
    for record in missing:
        session.add(
            Commune(
                code=record.code,
                name=record.name,
                slug=slugify(record.name),
                lon=record.lon,
                lat=record.lat,
                population=record.population,
                boundary=orjson.dumps(mapping(cells[record.code])).decode(),
                boundary_source=APPROXIMATION,
                updated_at=now,
            )
        )
    audit.record(
        session,
        "system:territory",
        "territory.communes_loaded",
        at=now,
        target_type="commune",
        after={"codes": sorted(r.code for r in missing), "boundary_source": APPROXIMATION},
        reason="liste de référence des communes de la métropole",
    )
    session.flush()
    return len(missing)


class TerritoryIndex:
    """Commune areas in memory, for locating positions (vectorised) and checking tolerances."""

    def __init__(self, communes: Iterable[Commune]) -> None:
        proj = METRO_PROJECTION
        self.codes: list[str] = []
        self.names: dict[str, str] = {}
        self.slugs: dict[str, str] = {}
        self.populations: dict[str, int] = {}
        self.sources: dict[str, str] = {}
        self.centers: dict[str, tuple[float, float]] = {}
        self.areas_lonlat: dict[str, BaseGeometry] = {}
        self._areas_xy: list[BaseGeometry] = []
        for commune in communes:
            geometry = shape(orjson.loads(commune.boundary))
            self.codes.append(commune.code)
            self.names[commune.code] = commune.name
            self.slugs[commune.code] = commune.slug
            self.populations[commune.code] = commune.population
            self.sources[commune.code] = commune.boundary_source
            self.centers[commune.code] = (commune.lon, commune.lat)
            self.areas_lonlat[commune.code] = geometry
            area_xy = proj.geometry_to_xy(geometry)
            shapely.prepare(area_xy)
            self._areas_xy.append(area_xy)
        self._index_of = {code: i for i, code in enumerate(self.codes)}
        self.metro_xy = shapely.union_all(self._areas_xy)
        shapely.prepare(self.metro_xy)
        self.metro_lonlat = proj.geometry_to_lonlat(self.metro_xy)
        self.bounds = self.metro_lonlat.bounds  # (min_lon, min_lat, max_lon, max_lat)

    @classmethod
    def load(cls, session: Session) -> TerritoryIndex:
        return cls(session.scalars(select(Commune).order_by(Commune.code)))

    def knows(self, code: str) -> bool:
        return code in self._index_of

    def locate_many(self, lon: FloatArray, lat: FloatArray) -> list[str | None]:
        """The commune containing each position (None where none does)."""
        x, y = METRO_PROJECTION.many_to_xy(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        found: list[str | None] = [None] * len(x)
        remaining = np.arange(len(x))
        for code, area in zip(self.codes, self._areas_xy, strict=True):
            if remaining.size == 0:
                break
            inside = shapely.contains_xy(area, x[remaining], y[remaining])
            for index in remaining[inside]:
                found[int(index)] = code
            remaining = remaining[~inside]
        return found

    def locate(self, lon: float, lat: float) -> str | None:
        return self.locate_many(np.array([lon]), np.array([lat]))[0]

    def nearest_commune(self, lon: float, lat: float) -> tuple[str, float]:
        point = Point(METRO_PROJECTION.to_xy(lon, lat))
        distances = shapely.distance(self._areas_xy, point)
        index = int(np.argmin(distances))
        return self.codes[index], float(distances[index])

    def distance_outside_metro_m(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        """Metres from each position to the métropole (0 inside)."""
        x, y = METRO_PROJECTION.many_to_xy(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        points = shapely.points(x, y)
        result: FloatArray = np.asarray(shapely.distance(self.metro_xy, points), dtype=float)
        return result

    def distance_to_commune_m(self, code: str, lon: FloatArray, lat: FloatArray) -> FloatArray:
        x, y = METRO_PROJECTION.many_to_xy(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        area = self._areas_xy[self._index_of[code]]
        result: FloatArray = np.asarray(shapely.distance(area, shapely.points(x, y)), dtype=float)
        return result

    def area_km2(self, code: str) -> float:
        return float(self._areas_xy[self._index_of[code]].area) / 1e6


def commune_feature(commune: Commune, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": commune.code,
        "name": commune.name,
        "population": commune.population,
        "boundary_source": commune.boundary_source,
        "reference_point": [commune.lon, commune.lat],
    }
    if extra:
        properties.update(extra)
    return {
        "type": "Feature",
        "id": commune.code,
        "geometry": orjson.loads(commune.boundary),
        "properties": properties,
    }


def import_boundaries(
    session: Session, feature_collection: Mapping[str, Any], principal: Principal, clock: Clock, source: str
) -> list[str]:
    """Replace approximate areas with official contours, e.g. IGN ADMIN EXPRESS.

    Each feature names its commune by INSEE code in ``code``, ``insee`` or ``INSEE_COM``. All or
    nothing: one bad feature rejects the file.
    """
    features = feature_collection.get("features")
    if feature_collection.get("type") != "FeatureCollection" or not isinstance(features, list):
        raise Problem("bad-request", "Send a GeoJSON FeatureCollection.")
    communes = {c.code: c for c in session.scalars(select(Commune))}
    errors: list[dict[str, Any]] = []
    updates: dict[str, BaseGeometry] = {}
    for index, feature in enumerate(features):
        properties = (feature or {}).get("properties") or {}
        code = str(properties.get("code") or properties.get("insee") or properties.get("INSEE_COM") or "")
        if code not in communes:
            errors.append({"row": index, "field": "properties.code", "detail": f"unknown INSEE code {code!r}"})
            continue
        try:
            geometry = shape(feature["geometry"])
        except Exception as exc:  # shapely raises several types for malformed geometries
            errors.append({"row": index, "field": "geometry", "detail": f"invalid geometry: {exc}"})
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
            errors.append({"row": index, "field": "geometry", "detail": "expected a valid Polygon or MultiPolygon"})
            continue
        updates[code] = geometry
    if errors:
        raise Problem("import-rejected", f"{len(errors)} invalid feature(s)", errors=errors)
    now = clock.now()
    for code, geometry in updates.items():
        commune = communes[code]
        audit.record(
            session,
            principal,
            "territory.boundary_imported",
            at=now,
            target_type="commune",
            target_id=code,
            commune_code=code,
            before={"boundary_source": commune.boundary_source},
            after={
                "boundary_source": source,
                "area_km2": round(METRO_PROJECTION.geometry_to_xy(geometry).area / 1e6, 3),
            },
        )
        commune.boundary = orjson.dumps(mapping(geometry)).decode()
        commune.boundary_source = source
        commune.updated_at = now
    return sorted(updates)


class RoadLike(Protocol):
    commune: str
    name: str
    road_class: str
    from_node: int
    to_node: int
    coords: list[tuple[float, float]]
    length_m: float


def replace_roads(session: Session, roads: Iterable[RoadLike], *, source: str, actor: str, clock: Clock) -> int:
    """Replace the road references of one source (e.g. the simulation) in one transaction."""
    removed = int(session.scalar(select(func.count()).where(RoadSegment.source == source)) or 0)
    session.execute(delete(RoadSegment).where(RoadSegment.source == source))
    rows: list[dict[str, Any]] = [
        {
            "commune_code": r.commune,
            "name": r.name,
            "road_class": r.road_class,
            "from_node": r.from_node,
            "to_node": r.to_node,
            "coordinates": orjson.dumps(r.coords).decode(),
            "length_m": r.length_m,
            "source": source,
        }
        for r in roads
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(RoadSegment), rows[start : start + 10_000])
    audit.record(
        session,
        actor,
        ROADS_REPLACED,
        at=clock.now(),
        target_type="road_segment",
        before={"source": source, "count": removed},
        after={"source": source, "count": len(rows), "length_km": round(sum(r["length_m"] for r in rows) / 1000, 1)},
    )
    return len(rows)


def existing_codes(session: Session, codes: Iterable[str]) -> set[str]:
    """Which of ``codes`` are communes of the métropole."""
    return set(session.scalars(select(Commune.code).where(Commune.code.in_(list(codes)))))


def road_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(RoadSegment)) or 0)
