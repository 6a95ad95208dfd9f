"""Geographic helpers: WGS84 longitude/latitude (GeoJSON order) on the wire, metres inside.

The métropole spans ~25 km, so a local equirectangular projection around its centre is accurate to
well under a metre for distances and areas; it is used where shapely needs planar coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def __post_init__(self) -> None:
        if not (-180 <= self.min_lon <= 180 and -180 <= self.max_lon <= 180):
            raise ValueError("longitudes must lie in [-180, 180]")
        if not (-90 <= self.min_lat <= 90 and -90 <= self.max_lat <= 90):
            raise ValueError("latitudes must lie in [-90, 90]")
        if self.min_lon > self.max_lon or self.min_lat > self.max_lat:
            raise ValueError("a bbox is min_lon,min_lat,max_lon,max_lat with min <= max")

    @classmethod
    def parse(cls, text: str) -> BBox:
        parts = text.split(",")
        if len(parts) != 4:
            raise ValueError("bbox takes four comma-separated numbers: min_lon,min_lat,max_lon,max_lat")
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise ValueError("bbox values must be numbers") from exc
        if not all(math.isfinite(v) for v in values):
            raise ValueError("bbox values must be finite numbers")
        return cls(*values)

    @classmethod
    def around(cls, lon: float, lat: float, radius_m: float) -> BBox:
        """The smallest bbox holding the circle of ``radius_m`` around a point."""
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(math.cos(math.radians(lat)), 1e-6)))
        return cls(max(lon - dlon, -180.0), max(lat - dlat, -90.0), min(lon + dlon, 180.0), min(lat + dlat, 90.0))

    def as_list(self) -> list[float]:
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_many_m(lon: FloatArray, lat: FloatArray, lon0: float, lat0: float) -> FloatArray:
    """Distances in metres from one point to arrays of points."""
    phi1 = np.radians(lat)
    phi0 = math.radians(lat0)
    dphi = phi1 - phi0
    dlmb = np.radians(lon - lon0)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * math.cos(phi0) * np.sin(dlmb / 2) ** 2
    result: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return result


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular projection in metres around (lon0, lat0)."""

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _ky(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self._kx, (lat - self.lat0) * self._ky

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self._kx, self.lat0 + y / self._ky

    def many_to_xy(self, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
        return (lon - self.lon0) * self._kx, (lat - self.lat0) * self._ky

    def many_to_lonlat(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return self.lon0 + x / self._kx, self.lat0 + y / self._ky

    def geometry_to_xy(self, geometry: BaseGeometry) -> BaseGeometry:
        offset, scale = np.array([self.lon0, self.lat0]), np.array([self._kx, self._ky])
        result: BaseGeometry = shapely.transform(geometry, lambda coords: (coords - offset) * scale)
        return result

    def geometry_to_lonlat(self, geometry: BaseGeometry) -> BaseGeometry:
        offset, scale = np.array([self.lon0, self.lat0]), np.array([self._kx, self._ky])
        result: BaseGeometry = shapely.transform(geometry, lambda coords: offset + coords / scale)
        return result


# --- grid spatial index ---------------------------------------------------------------------------
# Positions are indexed by a grid cell number in an ordinary B-tree index (same on SQLite and
# PostgreSQL): row-major cells of GRID_DEG degrees, so the cells of one grid row are consecutive
# numbers and a bounding box is a few ranges. At 350,000 assets this costs a tenth of what an R-tree
# costs to maintain on import, and answers a bounding-box query just as directly.
GRID_DEG = 0.002  # ~222 m north-south, ~150 m east-west at Dijon's latitude
_GRID_COLS = 1 << 18  # 360 / GRID_DEG columns fit in 18 bits
_MAX_RANGES = 48


def grid_cell(lon: float, lat: float) -> int:
    return int((lat + 90.0) // GRID_DEG) * _GRID_COLS + int((lon + 180.0) // GRID_DEG)


def grid_cells(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.int64]:
    rows = np.floor_divide(np.asarray(lat, dtype=float) + 90.0, GRID_DEG).astype(np.int64)
    cols = np.floor_divide(np.asarray(lon, dtype=float) + 180.0, GRID_DEG).astype(np.int64)
    result: npt.NDArray[np.int64] = rows * _GRID_COLS + cols
    return result


_MAX_LISTED_CELLS = 512


def grid_cells_covering(box: BBox) -> list[int] | None:
    """Every cell number a bbox touches, or None when there are too many to list (then use ranges)."""
    first_row, last_row = int((box.min_lat + 90.0) // GRID_DEG), int((box.max_lat + 90.0) // GRID_DEG)
    first_col, last_col = int((box.min_lon + 180.0) // GRID_DEG), int((box.max_lon + 180.0) // GRID_DEG)
    if (last_row - first_row + 1) * (last_col - first_col + 1) > _MAX_LISTED_CELLS:
        return None
    return [row * _GRID_COLS + col for row in range(first_row, last_row + 1) for col in range(first_col, last_col + 1)]


def grid_ranges(box: BBox) -> list[tuple[int, int]]:
    """Inclusive cell-number ranges covering a bbox: one per grid row (one overall for huge boxes)."""
    first_row, last_row = int((box.min_lat + 90.0) // GRID_DEG), int((box.max_lat + 90.0) // GRID_DEG)
    first_col, last_col = int((box.min_lon + 180.0) // GRID_DEG), int((box.max_lon + 180.0) // GRID_DEG)
    if last_row - first_row + 1 > _MAX_RANGES:
        return [(first_row * _GRID_COLS + first_col, last_row * _GRID_COLS + last_col)]
    return [(row * _GRID_COLS + first_col, row * _GRID_COLS + last_col) for row in range(first_row, last_row + 1)]


# Centre of Dijon Métropole, the origin of the platform's local projection.
METRO_PROJECTION = LocalProjection(lon0=5.04, lat0=47.31)
