"""A deterministic, Dijon-scale simulated metropolis: streets and every piece of equipment on them.

Each commune gets a street grid sized by its population (rotated, jittered, clipped to its area);
departmental roads join the communes. Light points stand along the streets at a regular spacing,
fed by cabinets serving consecutive runs of lights; signalled intersections, cameras, bollards,
signs, sensors and vehicle depots are placed where a city would put them. The same seed and scale
always give the same inventory.

Scale 1 follows the published OnDijon figures (34,000 light points, 113 signalled intersections,
269 cameras, 26 retractable bollards, 205 geolocated vehicles) and the issue's for the rest
(~1,500 cabinets, 40 signs, 600 sensors). Streets do not grow with the scale: at scale 10 the light
points simply stand closer, which keeps a load test's geography identical.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Point

from metropilot.assets.types import ASSET_TYPES, SENSOR_PROPERTIES, SensorKind
from metropilot.core.geo import METRO_PROJECTION
from metropilot.simulation.names import (
    MAKERS,
    STREET_KINDS_TOWN,
    STREET_KINDS_VILLAGE,
    STREET_PEOPLE,
    STREET_THINGS,
)
from metropilot.territory.service import TerritoryIndex

BASE_COUNTS: dict[str, int] = {
    "streetlight": 34_000,
    "lighting_cabinet": 1_500,
    "traffic_signal": 113,
    "camera": 269,
    "bollard": 26,
    "sign": 40,
    "sensor": 600,
    "vehicle": 205,
}
TOTAL_STREET_KM = 1150.0
SENSOR_MIX: dict[SensorKind, float] = {
    SensorKind.ROAD_TEMPERATURE: 45 / 600,
    SensorKind.WEATHER: 8 / 600,
    SensorKind.AIR_QUALITY: 40 / 600,
    SensorKind.NOISE: 60 / 600,
    SensorKind.TRAFFIC_COUNTER: 200 / 600,
    SensorKind.PRESENCE: 247 / 600,
}
VEHICLE_SERVICES: dict[str, float] = {
    "lighting": 30,
    "signals": 15,
    "roads": 40,
    "cleaning": 45,
    "green_spaces": 30,
    "winter": 15,
    "police": 20,
    "video": 5,
    "general": 5,
}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def scaled_counts(scale: float) -> dict[str, int]:
    return {key: max(1, round(count * scale)) for key, count in BASE_COUNTS.items()}


@dataclass(slots=True)
class Road:
    commune: str
    name: str
    road_class: str
    from_node: int
    to_node: int
    coords: list[tuple[float, float]]  # lon, lat
    length_m: float


@dataclass(slots=True)
class Metropolis:
    roads: list[Road]
    assets: list[dict[str, Any]]
    scale: float
    seed: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Street:
    """A straight street piece in metres with its commune and name (the unit lights are placed on)."""

    commune: str
    name: str
    road_class: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def length(self) -> float:
        return math.hypot(self.x1 - self.x0, self.y1 - self.y0)


@dataclass(slots=True)
class _Grid:
    commune: str
    nodes: dict[int, tuple[float, float]]  # node id -> x, y
    degree: dict[int, int]
    node_streets: dict[int, tuple[str, str]]  # node id -> (street along rows, street along columns)
    radius: float
    center: tuple[float, float]


class _Generator:
    def __init__(self, territory: TerritoryIndex, scale: float, seed: int) -> None:
        self.territory = territory
        self.scale = scale
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.proj = METRO_PROJECTION
        self.counts = scaled_counts(scale)
        self.next_node = 0
        self.roads: list[Road] = []
        self.streets: list[_Street] = []
        self.grids: dict[str, _Grid] = {}
        self.assets: list[dict[str, Any]] = []
        self.serial: dict[tuple[str, str], int] = {}
        self.primary_points: list[tuple[float, float, str]] = []  # x, y, road name along departmental roads
        self._buffer: list[float] = []
        self._cursor = 0

    # --- helpers ------------------------------------------------------------------------------

    def node(self) -> int:
        self.next_node += 1
        return self.next_node

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.proj.to_lonlat(x, y)
        return round(lon, 7), round(lat, 7)

    def local_id(self, type_key: str, commune: str) -> tuple[str, int]:
        key = (type_key, commune)
        self.serial[key] = self.serial.get(key, 0) + 1
        number = self.serial[key]
        return f"{self.territory.slugs[commune]}-{number:06d}", number

    def street_name(self, village: bool) -> str:
        kinds = STREET_KINDS_VILLAGE if village else STREET_KINDS_TOWN
        kind = kinds[int(self.rng.integers(len(kinds)))]
        if self.rng.random() < 0.5:
            return f"{kind} {STREET_PEOPLE[int(self.rng.integers(len(STREET_PEOPLE)))]}"
        return f"{kind} {STREET_THINGS[int(self.rng.integers(len(STREET_THINGS)))]}"

    def uniform(self) -> float:
        """Next draw from a pre-filled buffer: per-asset draws stay cheap at 350,000 assets."""
        if self._cursor >= len(self._buffer):
            self._buffer = self.rng.random(65_536).tolist()
            self._cursor = 0
        value: float = self._buffer[self._cursor]
        self._cursor += 1
        return value

    def below(self, n: int) -> int:
        return min(int(self.uniform() * n), n - 1)

    def random_date(self, start: date, end: date) -> date:
        return start + timedelta(days=self.below((end - start).days + 1))

    def maker(self, type_key: str) -> tuple[str, str]:
        makers = MAKERS[type_key]
        return makers[self.below(len(makers))]

    def status(self) -> str:
        draw = self.uniform()
        if draw < 0.985:
            return "active"
        if draw < 0.991:
            return "fault"
        if draw < 0.995:
            return "maintenance"
        if draw < 0.998:
            return "offline"
        return "planned"

    def add(
        self,
        type_key: str,
        commune: str,
        x: float,
        y: float,
        name: str,
        address: str | None,
        attributes: dict[str, Any],
        installed: tuple[date, date],
        local: str | None = None,
    ) -> str:
        if local is None:
            # Equipment placed near a border (on a departmental road, say) belongs where it stands.
            commune = self.locate_xy(x, y) or commune
            local, _ = self.local_id(type_key, commune)
        asset_id = f"urn:ngsi-ld:{ASSET_TYPES[type_key].ngsi_type}:{local}"
        lon, lat = self.lonlat(x, y)
        manufacturer, model = self.maker(type_key)
        self.assets.append(
            {
                "_row": len(self.assets) + 1,
                "id": asset_id,
                "type": type_key,
                "name": name,
                "commune": commune,
                "lon": lon,
                "lat": lat,
                "status": self.status(),
                "address": address,
                "installed_on": self.random_date(*installed),
                "manufacturer": manufacturer,
                "model": model,
                "serial_number": f"{manufacturer[:3].upper()}{10**8 + self.below(9 * 10**8)}",
                "attributes": attributes,
            }
        )
        return asset_id

    # --- streets ------------------------------------------------------------------------------

    def build_streets(self) -> None:
        territory = self.territory
        weights = {c: territory.populations[c] ** 0.95 for c in territory.codes}
        total = sum(weights.values())
        for code in territory.codes:
            population = territory.populations[code]
            village = population < 5000
            spacing = 105.0 if population > 50_000 else (125.0 if not village else 145.0)
            target_length = TOTAL_STREET_KM * 1000 * weights[code] / total
            center = self.proj.to_xy(*territory.centers[code])
            cell = self.proj.geometry_to_xy(territory.areas_lonlat[code]).buffer(-30)
            # Grow the urban disc until its part inside the commune can hold the target street length.
            radius = math.sqrt(target_length * spacing / 2 / math.pi)
            for _ in range(12):
                urban = Point(center).buffer(radius, quad_segs=16).intersection(cell)
                if urban.area * 2 / spacing >= target_length or urban.equals(cell):
                    break
                radius *= 1.15
            shapely.prepare(urban)
            self.grids[code] = self.grid(code, urban, center, spacing, radius, village)
        self.departmental_roads()

    def grid(
        self, code: str, urban: Any, center: tuple[float, float], spacing: float, radius: float, village: bool
    ) -> _Grid:
        theta = float(self.rng.uniform(0, math.pi / 2))
        cos_t, sin_t = math.cos(theta), math.sin(theta)
        half = int(radius / spacing) + 2
        idx = np.arange(-half, half + 1)
        ii, jj = np.meshgrid(idx, idx, indexing="ij")
        u = ii * spacing + self.rng.normal(0, 0.12 * spacing, ii.shape)
        v = jj * spacing + self.rng.normal(0, 0.12 * spacing, jj.shape)
        xs = center[0] + u * cos_t - v * sin_t
        ys = center[1] + u * sin_t + v * cos_t
        inside = shapely.contains_xy(urban, xs, ys)
        ids = np.zeros(ii.shape, dtype=np.int64)
        nodes: dict[int, tuple[float, float]] = {}
        for a, b in zip(*np.nonzero(inside), strict=True):
            node = self.node()
            ids[a, b] = node
            nodes[node] = (float(xs[a, b]), float(ys[a, b]))
        degree: dict[int, int] = dict.fromkeys(nodes, 0)
        node_streets: dict[int, list[str]] = {n: ["", ""] for n in nodes}
        block = 7 if not village else 99  # long grid lines are cut into several named streets
        for axis in (0, 1):
            for line in range(ids.shape[1 - axis]):
                name = ""
                run = 0
                for step in range(ids.shape[axis] - 1):
                    a = (step, line) if axis == 0 else (line, step)
                    b = (step + 1, line) if axis == 0 else (line, step + 1)
                    na, nb = int(ids[a]), int(ids[b])
                    if not na or not nb:
                        run = 0
                        continue
                    if run % block == 0:
                        name = self.street_name(village)
                    run += 1
                    road_class = "secondary" if (not village and line % 5 == 0) else "residential"
                    (x0, y0), (x1, y1) = nodes[na], nodes[nb]
                    self.add_road(code, name, road_class, na, nb, [(x0, y0), (x1, y1)], lit=True)
                    degree[na] += 1
                    degree[nb] += 1
                    node_streets[na][axis] = node_streets[na][axis] or name
                    node_streets[nb][axis] = node_streets[nb][axis] or name
        return _Grid(
            commune=code,
            nodes=nodes,
            degree=degree,
            node_streets={n: (s[0], s[1]) for n, s in node_streets.items()},
            radius=radius,
            center=center,
        )

    def add_road(
        self, code: str, name: str, road_class: str, a: int, b: int, xy: list[tuple[float, float]], lit: bool
    ) -> None:
        length = sum(math.hypot(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in itertools.pairwise(xy))
        self.roads.append(Road(code, name, road_class, a, b, [self.lonlat(x, y) for x, y in xy], round(length, 1)))
        if lit:
            for (x0, y0), (x1, y1) in itertools.pairwise(xy):
                self.streets.append(_Street(code, name, road_class, x0, y0, x1, y1))

    def nearest_node(self, code: str, x: float, y: float) -> int:
        nodes = self.grids[code].nodes
        return min(nodes, key=lambda n: (nodes[n][0] - x) ** 2 + (nodes[n][1] - y) ** 2)

    def departmental_roads(self) -> None:
        codes = [c for c in self.territory.codes if self.grids[c].nodes]
        centers = {c: self.proj.to_xy(*self.territory.centers[c]) for c in codes}
        dijon = max(codes, key=lambda c: self.territory.populations[c])
        pairs: set[tuple[str, str]] = set()
        for code in codes:
            others = sorted((c for c in codes if c != code), key=lambda c: math.dist(centers[c], centers[code]))
            for other in [dijon, *others[:2]]:
                if other != code:
                    pairs.add((min(code, other), max(code, other)))
        number = 900
        for a, b in sorted(pairs):
            number += int(self.rng.integers(1, 9))
            start = self.nearest_node(a, *centers[a])
            end = self.nearest_node(b, *centers[b])
            (x0, y0), (x1, y1) = self.grids[a].nodes[start], self.grids[b].nodes[end]
            length = math.hypot(x1 - x0, y1 - y0)
            pieces = max(2, int(length / 250))
            bend = float(self.rng.normal(0, 0.04 * length))
            points = []
            for k in range(pieces + 1):
                t = k / pieces
                offset = bend * math.sin(math.pi * t)
                nx, ny = -(y1 - y0) / length, (x1 - x0) / length
                points.append((x0 + t * (x1 - x0) + offset * nx, y0 + t * (y1 - y0) + offset * ny))
            name = f"D{number} {self.territory.names[a]} – {self.territory.names[b]}"
            previous = start
            for k in range(pieces):
                seg = [points[k], points[k + 1]]
                node = end if k == pieces - 1 else self.node()
                mid = ((seg[0][0] + seg[1][0]) / 2, (seg[0][1] + seg[1][1]) / 2)
                commune = self.locate_xy(*mid) or a
                lit = self.in_urban(commune, *mid)
                self.add_road(commune, name, "primary", previous, node, seg, lit=lit)
                self.primary_points.append((mid[0], mid[1], name))
                previous = node

    def locate_xy(self, x: float, y: float) -> str | None:
        return self.territory.locate(*self.proj.to_lonlat(x, y))

    def in_urban(self, code: str, x: float, y: float) -> bool:
        grid = self.grids.get(code)
        return grid is not None and math.dist(grid.center, (x, y)) < grid.radius

    # --- equipment ----------------------------------------------------------------------------

    def streetlights_and_cabinets(self) -> None:
        streets = self.streets
        lengths = np.array([s.length for s in streets])
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        n_lights = self.counts["streetlight"]
        spacing = cumulative[-1] / n_lights
        arc = (np.arange(n_lights) + 0.5) * spacing
        seg = np.searchsorted(cumulative, arc, side="right") - 1
        t = (arc - cumulative[seg]) / lengths[seg]
        x0 = np.array([s.x0 for s in streets])[seg]
        y0 = np.array([s.y0 for s in streets])[seg]
        x1 = np.array([s.x1 for s in streets])[seg]
        y1 = np.array([s.y1 for s in streets])[seg]
        dx, dy = (x1 - x0) / lengths[seg], (y1 - y0) / lengths[seg]
        side = np.where(np.arange(n_lights) % 2 == 0, 7.0, -7.0)  # alternate sidewalks
        xs = x0 + t * (x1 - x0) - dy * side
        ys = y0 + t * (y1 - y0) + dx * side
        # A light on a road that crosses a commune border belongs to the commune it stands in.
        lons, lats = self.proj.many_to_lonlat(xs, ys)
        located = self.territory.locate_many(lons, lats)
        communes = [found or streets[i].commune for found, i in zip(located, seg, strict=True)]
        per_cabinet = n_lights / self.counts["lighting_cabinet"]

        # Per-light draws done once, vectorised: drawing them light by light dominates at scale 10.
        powers = np.array([29.0, 39.0, 45.0, 55.0, 70.0, 90.0])
        primary = np.array([streets[i].road_class == "primary" for i in seg])
        power = np.where(primary, powers[self.rng.integers(3, 6, n_lights)], powers[self.rng.integers(0, 4, n_lights)])
        height = np.where(
            primary,
            np.array([6.0, 8.0, 10.0, 12.0])[self.rng.integers(0, 4, n_lights)],
            np.array([4.0, 6.0, 8.0])[self.rng.integers(0, 3, n_lights)],
        )
        kelvin = np.array([2700, 3000, 3000, 4000])[self.rng.integers(0, 4, n_lights)]
        start = 0
        while start < n_lights:
            code = communes[start]
            stop = start
            while stop < n_lights and communes[stop] == code:
                stop += 1
            groups = max(1, round((stop - start) / per_cabinet))
            bounds = np.linspace(start, stop, groups + 1).round().astype(int)
            for g in range(groups):
                lo, hi = int(bounds[g]), int(bounds[g + 1])
                if hi <= lo:
                    continue
                mid = (lo + hi) // 2
                street = streets[seg[mid]]
                cab_local, cab_number = self.local_id("lighting_cabinet", code)
                cabinet = self.add(
                    "lighting_cabinet",
                    code,
                    float(xs[mid] + 4 * dx[mid]),
                    float(ys[mid] + 4 * dy[mid]),
                    f"Armoire {cab_number:04d}",
                    street.name,
                    {
                        "max_power_kw": float(self.rng.choice([6.0, 9.0, 12.0, 18.0, 24.0, 36.0])),
                        "working_mode": "automatic",
                        "circuits": int(self.rng.integers(2, 7)),
                        "meter_id": f"{int(self.rng.integers(10**13, 10**14))}",
                        "remote_managed": True,
                    },
                    (date(2018, 1, 1), date(2021, 12, 31)),
                    local=cab_local,
                )
                for i in range(lo, hi):
                    local, number = self.local_id("streetlight", code)
                    self.add(
                        "streetlight",
                        code,
                        float(xs[i]),
                        float(ys[i]),
                        f"PL {number:06d}",
                        streets[seg[i]].name,
                        {
                            "cabinet": cabinet,
                            "lamp_technology": "LED",
                            "nominal_power_w": float(power[i]),
                            "dimmable": True,
                            "control": "individual",
                            "lantern_height_m": float(height[i]),
                            "color_temperature_k": int(kelvin[i]),
                            "circuit": f"C{1 + (i - lo) % 4}",
                        },
                        (date(2018, 1, 1), date(2021, 12, 31)),
                        local=local,
                    )
            start = stop

    def share(self, total: int, codes: list[str], power: float = 1.0) -> dict[str, int]:
        """Split ``total`` among communes by population**power (largest remainders)."""
        weights = np.array([self.territory.populations[c] ** power for c in codes], dtype=float)
        exact = total * weights / weights.sum()
        base = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - base))[: total - int(base.sum())]:
            base[i] += 1
        return {c: int(n) for c, n in zip(codes, base, strict=True)}

    def pick_nodes(self, code: str, n: int, *, min_degree: int = 3, concentration: float = 0.45) -> list[int]:
        grid = self.grids[code]
        candidates = [node for node, d in grid.degree.items() if d >= min_degree] or list(grid.nodes)
        if not candidates or n <= 0:
            return []
        xy = np.array([grid.nodes[c] for c in candidates])
        distance = np.hypot(xy[:, 0] - grid.center[0], xy[:, 1] - grid.center[1])
        weights = np.exp(-distance / max(concentration * grid.radius, 1.0))
        chosen = self.rng.choice(
            len(candidates), size=min(n, len(candidates)), replace=False, p=weights / weights.sum()
        )
        return [candidates[int(i)] for i in chosen]

    def intersection_name(self, code: str, node: int) -> str:
        a, b = self.grids[code].node_streets[node]
        return f"{a} / {b}" if a and b and a != b else (a or b or "Carrefour")

    def signals_cameras_bollards(self) -> dict[str, list[int]]:
        towns = [c for c in self.territory.codes if self.territory.populations[c] >= 5000 and self.grids[c].nodes]
        signal_nodes: dict[str, list[int]] = {}
        for code, n in self.share(self.counts["traffic_signal"], towns).items():
            signal_nodes[code] = self.pick_nodes(code, n, min_degree=4)
            for node in signal_nodes[code]:
                x, y = self.grids[code].nodes[node]
                groups = int(self.rng.integers(4, 17))
                self.add(
                    "traffic_signal",
                    code,
                    x,
                    y,
                    f"Carrefour {self.intersection_name(code, node)}",
                    self.intersection_name(code, node),
                    {
                        "controller_protocol": "DIASER",
                        "signal_groups": groups,
                        "phases": int(self.rng.integers(2, 5)),
                        "plans": ["normal", "heure_pointe", "nuit", "clignotant"],
                        "bus_priority": bool(self.rng.random() < 0.6),
                        "acoustic_signals": bool(self.rng.random() < 0.7),
                        "pedestrian_crossings": int(self.rng.integers(1, 5)),
                    },
                    (date(2008, 1, 1), date(2020, 12, 31)),
                )
        camera_towns = [
            c for c in self.territory.codes if self.territory.populations[c] >= 2000 and self.grids[c].nodes
        ]
        for code, n in self.share(self.counts["camera"], camera_towns, power=1.1).items():
            at_signals = signal_nodes.get(code, [])[: n // 3]
            others = self.pick_nodes(code, n - len(at_signals), min_degree=2, concentration=0.35)
            for k, node in enumerate([*at_signals, *others]):
                x, y = self.grids[code].nodes[node]
                traffic = k < len(at_signals)
                self.add(
                    "camera",
                    code,
                    x + 9.0,
                    y + 6.0,
                    f"Caméra {self.intersection_name(code, node)}",
                    self.intersection_name(code, node),
                    {
                        "camera_type": "ptz" if self.rng.random() < 0.45 else "dome",
                        "usage": "traffic" if traffic else "video_protection",
                        "resolution": str(self.rng.choice(["1080p", "4MP", "4K"])),
                        "onvif_profiles": ["S", "T"],
                        "night_vision": True,
                        "privacy_masking": True,
                    },
                    (date(2019, 1, 1), date(2020, 12, 31)),
                )
        # Retractable bollards guard pedestrian sectors: most around the historic centre of the largest town.
        biggest = sorted(towns, key=lambda c: -self.territory.populations[c])
        total = self.counts["bollard"]
        market_towns = biggest[1:4] if total >= 12 else []  # a market square each in the next largest towns
        plan = dict.fromkeys(market_towns, 2)
        plan[biggest[0]] = total - 2 * len(market_towns)
        for code, n in plan.items():
            grid = self.grids[code]
            ring = [
                node
                for node, (x, y) in grid.nodes.items()
                if 0.12 * grid.radius < math.dist((x, y), grid.center) < 0.25 * grid.radius
            ]
            ring = ring or list(grid.nodes)
            chosen = self.rng.choice(len(ring), size=min(n, len(ring)), replace=False)
            zone = "Secteur piéton centre-ville" if code == biggest[0] else "Place du marché"
            for index in chosen:
                node = ring[int(index)]
                x, y = grid.nodes[node]
                self.add(
                    "bollard",
                    code,
                    x + 5.0,
                    y - 5.0,
                    f"Borne {self.intersection_name(code, node)}",
                    self.intersection_name(code, node),
                    {"mechanism": "hydraulic", "access_zone": zone, "default_position": "up", "emergency_access": True},
                    (date(2019, 1, 1), date(2019, 12, 31)),
                )
        return signal_nodes

    def signs(self) -> None:
        points = self.primary_points
        order = self.rng.permutation(len(points))
        placed = 0
        for index in order:
            if placed == self.counts["sign"]:
                break
            x, y, road = points[int(index)]
            code = self.locate_xy(x, y)
            if code is None:
                continue
            purpose = "traffic" if placed % 4 else "information"
            self.add(
                "sign",
                code,
                x + 8.0,
                y + 8.0,
                f"PMV {road.split(' ')[0]} n°{placed + 1}",
                road,
                {
                    "technology": "led_text",
                    "lines": 3 if purpose == "traffic" else 2,
                    "chars_per_line": 18,
                    "full_matrix": purpose == "information",
                    "purpose": purpose,
                    "heading_deg": int(self.rng.integers(0, 360)),
                },
                (date(2014, 1, 1), date(2020, 12, 31)),
            )
            placed += 1

    def sensors(self, signal_nodes: dict[str, list[int]]) -> None:
        total = self.counts["sensor"]
        kinds = list(SENSOR_MIX)
        exact = np.array([SENSOR_MIX[k] for k in kinds]) * total
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts))[: total - int(counts.sum())]:
            counts[i] += 1
        signal_points = [(c, *self.grids[c].nodes[n]) for c, nodes in signal_nodes.items() for n in nodes]
        street_pick = self.rng.integers(0, len(self.streets), size=total)
        labels = {
            SensorKind.ROAD_TEMPERATURE: "Station météo routière",
            SensorKind.WEATHER: "Station météo",
            SensorKind.AIR_QUALITY: "Capteur qualité de l'air",
            SensorKind.NOISE: "Sonomètre",
            SensorKind.TRAFFIC_COUNTER: "Compteur de trafic",
            SensorKind.PRESENCE: "Détecteur de présence",
        }
        periods = {
            SensorKind.ROAD_TEMPERATURE: 300,
            SensorKind.WEATHER: 300,
            SensorKind.AIR_QUALITY: 900,
            SensorKind.NOISE: 60,
            SensorKind.TRAFFIC_COUNTER: 60,
            SensorKind.PRESENCE: 60,
        }
        k = 0
        for kind, n in zip(kinds, counts, strict=True):
            for j in range(int(n)):
                if kind is SensorKind.TRAFFIC_COUNTER and signal_points and j < len(signal_points):
                    code, x, y = signal_points[j]
                    x, y, address = (
                        x - 12.0,
                        y + 4.0,
                        self.intersection_name(code, self.nearest_node(code, x, y)),
                    )
                elif kind in (SensorKind.ROAD_TEMPERATURE, SensorKind.TRAFFIC_COUNTER) and self.primary_points:
                    px, py, address = self.primary_points[int(self.rng.integers(len(self.primary_points)))]
                    code_found = self.locate_xy(px, py)
                    if code_found is None:
                        continue
                    code, x, y = code_found, px + 6.0, py - 6.0
                else:
                    street = self.streets[int(street_pick[k % total])]
                    t = float(self.rng.random())
                    code = street.commune
                    x, y = (
                        street.x0 + t * (street.x1 - street.x0) + 5.0,
                        street.y0 + t * (street.y1 - street.y0) + 5.0,
                    )
                    address = street.name
                k += 1
                local, number = self.local_id("sensor", code)
                attributes: dict[str, Any] = {
                    "sensor_kind": kind.value,
                    "measured_properties": list(SENSOR_PROPERTIES[kind]),
                    "reporting_period_s": periods[kind],
                }
                if kind is SensorKind.TRAFFIC_COUNTER:
                    attributes["lanes"] = int(self.rng.integers(1, 5))
                self.add(
                    "sensor",
                    code,
                    x,
                    y,
                    f"{labels[kind]} {number:03d}",
                    address,
                    attributes,
                    (date(2019, 1, 1), date(2024, 12, 31)),
                    local=local,
                )

    def vehicles(self) -> None:
        depot_towns = sorted(
            (c for c in self.territory.codes if self.grids[c].nodes),
            key=lambda c: -self.territory.populations[c],
        )[:6]
        depots = {}
        for rank, code in enumerate(depot_towns):
            grid = self.grids[code]
            target = (grid.center[0] + 0.5 * grid.radius, grid.center[1] - 0.3 * grid.radius)
            node = self.nearest_node(code, *target)
            name = (
                "Centre technique métropolitain" if rank == 0 else f"Centre d'exploitation {self.territory.names[code]}"
            )
            depots[code] = (grid.nodes[node], name)
        services = list(VEHICLE_SERVICES)
        weights = np.array([VEHICLE_SERVICES[s] for s in services], dtype=float)
        kinds = {
            "lighting": "aerial_lift",
            "signals": "van",
            "roads": "truck",
            "cleaning": "truck",
            "green_spaces": "van",
            "winter": "gritter",
            "police": "car",
            "video": "car",
            "general": "car",
        }
        for n in range(self.counts["vehicle"]):
            code = (
                depot_towns[0] if self.rng.random() < 0.55 else depot_towns[int(self.rng.integers(1, len(depot_towns)))]
            )
            (x, y), depot = depots[code]
            service = services[int(self.rng.choice(len(services), p=weights / weights.sum()))]
            fleet = f"DM-{n + 1:04d}"
            letters = "ABCDEFGHJKLMNPQRSTVWXYZ"  # French plates skip I, O and U
            pick = [letters[self.below(len(letters))] for _ in range(4)]
            plate = f"{pick[0]}{pick[1]}-{100 + self.below(900)}-{pick[2]}{pick[3]}"
            self.add(
                "vehicle",
                code,
                x + float(self.rng.normal(0, 25)),
                y + float(self.rng.normal(0, 25)),
                f"{fleet} ({service})",
                depot,
                {
                    "vehicle_kind": kinds[service],
                    "fleet_number": fleet,
                    "plate": plate,
                    "service": service,
                    "depot": depot,
                    "crew_capacity": 2 if service != "winter" else 1,
                },
                (date(2016, 1, 1), date(2024, 12, 31)),
            )

    def run(self) -> Metropolis:
        self.build_streets()
        self.streetlights_and_cabinets()
        signal_nodes = self.signals_cameras_bollards()
        self.signs()
        self.sensors(signal_nodes)
        self.vehicles()
        counts: dict[str, int] = {}
        for asset in self.assets:
            counts[asset["type"]] = counts.get(asset["type"], 0) + 1
        return Metropolis(roads=self.roads, assets=self.assets, scale=self.scale, seed=self.seed, counts=counts)


def generate(territory: TerritoryIndex, *, scale: float = 1.0, seed: int = 20190411) -> Metropolis:
    """The simulated metropolis for a territory, deterministically from ``seed``."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    return _Generator(territory, scale, seed).run()


def iter_features(metropolis: Metropolis) -> Iterator[dict[str, Any]]:
    """The inventory as GeoJSON features (the import format)."""
    for asset in metropolis.assets:
        properties = {k: v for k, v in asset.items() if k not in ("_row", "id", "lon", "lat")}
        if isinstance(properties.get("installed_on"), date):
            properties["installed_on"] = properties["installed_on"].isoformat()
        yield {
            "type": "Feature",
            "id": asset["id"],
            "geometry": {"type": "Point", "coordinates": [asset["lon"], asset["lat"]]},
            "properties": properties,
        }
