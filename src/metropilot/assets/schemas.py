"""API shapes of the registry.

An asset travels as a GeoJSON Feature (``application/geo+json``): ``id`` is its URN, ``geometry`` its
WGS84 point, ``properties`` everything else. Writes accept the same Feature or a flat object with a
``location`` (GeoJSON Point); exports re-import unchanged.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metropilot.assets.types import AssetStatus
from metropilot.core.ids import parse_urn

INSEE_PATTERN = r"^[0-9]{5}$"


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: tuple[float, float] = Field(description="[longitude, latitude], WGS84")

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        lon, lat = value
        if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError("coordinates are [longitude in -180..180, latitude in -90..90]")
        return value


def _check_id(value: str | None) -> str | None:
    if value is not None:
        parse_urn(value)
    return value


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, description="urn:ngsi-ld:<Type>:<local-id>; generated when omitted")
    type: str = Field(description="An asset type key, see GET /api/v1/asset-types")
    name: str = Field(min_length=1, max_length=200)
    commune: str | None = Field(
        default=None, pattern=INSEE_PATTERN, description="INSEE code; found from the location when omitted"
    )
    location: Point
    status: AssetStatus = AssetStatus.ACTIVE
    address: str | None = Field(default=None, max_length=300)
    installed_on: date | None = None
    manufacturer: str | None = Field(default=None, max_length=120)
    model: str | None = Field(default=None, max_length=120)
    serial_number: str | None = Field(default=None, max_length=120)
    attributes: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(default=None, max_length=500, description="Why (kept in the audit log)")

    _id = field_validator("id")(_check_id)

    @field_validator("status")
    @classmethod
    def _not_retired(cls, value: AssetStatus) -> AssetStatus:
        if value is AssetStatus.RETIRED:
            raise ValueError("an asset is retired with POST /api/v1/assets/{id}/retire, not created retired")
        return value


class AssetPatch(BaseModel):
    """JSON Merge Patch (RFC 7396): absent = unchanged; in ``attributes``, null removes a key."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    commune: str | None = Field(default=None, pattern=INSEE_PATTERN)
    location: Point | None = None
    status: AssetStatus | None = None
    address: str | None = Field(default=None, max_length=300)
    installed_on: date | None = None
    manufacturer: str | None = Field(default=None, max_length=120)
    model: str | None = Field(default=None, max_length=120)
    serial_number: str | None = Field(default=None, max_length=120)
    attributes: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=500)


class RetireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class ImportRowError(BaseModel):
    row: int = Field(description="1-based data row (CSV: excluding the header; GeoJSON: feature index + 1)")
    id: str | None = None
    field: str
    detail: str


class ImportReport(BaseModel):
    batch_id: str | None
    dry_run: bool
    created: int
    by_type: dict[str, int]
    sha256: str


class AssetCounts(BaseModel):
    total: int
    by_type: dict[str, int]
    by_status: dict[str, int]
    by_commune: dict[str, int]


class AssetTypeOut(BaseModel):
    key: str
    ngsi_type: str
    label_fr: str
    label_en: str
    smart_data_model: str
    attributes_schema: dict[str, Any]
