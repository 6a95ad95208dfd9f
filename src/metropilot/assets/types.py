"""The catalogue of asset types: what each kind of equipment records, and what it is called.

Each type has a typed attribute schema (pydantic, unknown attributes refused), its NGSI-LD entity
type (the ``<Type>`` of its URN) and French and English labels for the control room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from metropilot.core.ids import URN_RE


class AssetStatus(StrEnum):
    """Operational status of a piece of equipment."""

    PLANNED = "planned"  # en projet
    ACTIVE = "active"  # en service
    DEGRADED = "degraded"  # en service, partiellement défaillant
    FAULT = "fault"  # en panne
    OFFLINE = "offline"  # injoignable
    MAINTENANCE = "maintenance"  # en maintenance
    RETIRED = "retired"  # déposé (kept for history, never deleted)


STATUS_LABELS_FR: dict[AssetStatus, str] = {
    AssetStatus.PLANNED: "En projet",
    AssetStatus.ACTIVE: "En service",
    AssetStatus.DEGRADED: "Dégradé",
    AssetStatus.FAULT: "En panne",
    AssetStatus.OFFLINE: "Hors ligne",
    AssetStatus.MAINTENANCE: "En maintenance",
    AssetStatus.RETIRED: "Déposé",
}


def _check_urn(value: str, ngsi_type: str) -> str:
    match = URN_RE.match(value)
    if not match or match["type"] != ngsi_type:
        raise ValueError(f"expected an identifier urn:ngsi-ld:{ngsi_type}:<local-id>")
    return value


class _Attributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LampTechnology(StrEnum):
    LED = "LED"
    HPS = "HPS"  # high-pressure sodium
    LPS = "LPS"  # low-pressure sodium
    MH = "MH"  # metal halide
    FLUORESCENT = "fluorescent"
    MERCURY = "mercury"


class StreetlightAttributes(_Attributes):
    cabinet: str | None = Field(default=None, description="Control cabinet feeding this light point (URN)")
    lamp_technology: LampTechnology = LampTechnology.LED
    nominal_power_w: float = Field(gt=0, le=2000, description="Lamp power at 100 % (W)")
    dimmable: bool = True
    control: Literal["individual", "group"] = "individual"
    lantern_height_m: float | None = Field(default=None, gt=0, le=40)
    color_temperature_k: int | None = Field(default=None, ge=1700, le=6500)
    circuit: str | None = Field(default=None, max_length=60)
    date_last_lamp_change: date | None = None

    @field_validator("cabinet")
    @classmethod
    def _cabinet_urn(cls, value: str | None) -> str | None:
        return None if value is None else _check_urn(value, "StreetlightControlCabinet")


class LightingCabinetAttributes(_Attributes):
    max_power_kw: float = Field(gt=0, le=2000, description="Maximum power available (kW)")
    working_mode: Literal["automatic", "manual", "semiautomatic"] = "automatic"
    circuits: int = Field(default=1, ge=1, le=64)
    meter_id: str | None = Field(default=None, max_length=60)
    remote_managed: bool = True


class TrafficSignalAttributes(_Attributes):
    controller_protocol: Literal["DIASER", "RSMP", "NTCIP", "proprietary"] = "DIASER"
    signal_groups: int = Field(ge=1, le=64)
    phases: int = Field(ge=2, le=16)
    plans: list[str] = Field(default_factory=lambda: ["normal"], min_length=1)
    bus_priority: bool = False
    acoustic_signals: bool = Field(default=False, description="Audible signals for visually impaired pedestrians")
    pedestrian_crossings: int = Field(default=0, ge=0, le=32)


class OnvifProfile(StrEnum):
    S = "S"  # streaming
    T = "T"  # advanced streaming (H.265, events)
    G = "G"  # edge recording
    M = "M"  # metadata and analytics
    Q = "Q"  # quick install


class CameraAttributes(_Attributes):
    camera_type: Literal["fixed", "ptz", "dome", "panoramic"] = "fixed"
    usage: Literal["video_protection", "traffic", "plate_recognition", "crowd_counting"] = "video_protection"
    resolution: Literal["720p", "1080p", "4MP", "4K"] = "1080p"
    onvif_profiles: list[OnvifProfile] = Field(default_factory=lambda: [OnvifProfile.S])
    night_vision: bool = True
    privacy_masking: bool = Field(default=True, description="Private areas masked, as video protection law requires")


class BollardAttributes(_Attributes):
    mechanism: Literal["hydraulic", "electromechanical", "pneumatic"] = "hydraulic"
    access_zone: str = Field(max_length=120, description="The restricted area the bollard guards")
    default_position: Literal["up", "down"] = "up"
    emergency_access: bool = Field(default=True, description="Lowered on demand for emergency vehicles")


class SignAttributes(_Attributes):
    technology: Literal["led_matrix", "led_text", "prismatic", "e_paper"] = "led_text"
    lines: int = Field(ge=1, le=8)
    chars_per_line: int = Field(ge=8, le=64)
    full_matrix: bool = False
    purpose: Literal["traffic", "information", "parking"] = "traffic"
    heading_deg: int | None = Field(default=None, ge=0, lt=360, description="Direction the face looks to")


class SensorKind(StrEnum):
    ROAD_TEMPERATURE = "road_temperature"
    WEATHER = "weather"
    AIR_QUALITY = "air_quality"
    NOISE = "noise"
    TRAFFIC_COUNTER = "traffic_counter"
    PRESENCE = "presence"


SENSOR_PROPERTIES: dict[SensorKind, tuple[str, ...]] = {
    SensorKind.ROAD_TEMPERATURE: ("temperature", "humidity"),
    SensorKind.WEATHER: ("temperature", "humidity", "precipitation", "windSpeed"),
    SensorKind.AIR_QUALITY: ("NO2", "PM10", "PM2.5", "O3"),
    SensorKind.NOISE: ("noiseLevel",),
    SensorKind.TRAFFIC_COUNTER: ("trafficFlow",),
    SensorKind.PRESENCE: ("occupancy", "motion"),
}


class SensorAttributes(_Attributes):
    sensor_kind: SensorKind
    measured_properties: list[str] = Field(min_length=1)
    reporting_period_s: int = Field(default=60, ge=1, le=86_400)
    lanes: int | None = Field(default=None, ge=1, le=12, description="Lanes covered (traffic counters)")
    mounting_height_m: float | None = Field(default=None, ge=0, le=30)

    @model_validator(mode="after")
    def _properties_fit_kind(self) -> SensorAttributes:
        allowed = SENSOR_PROPERTIES[self.sensor_kind]
        unknown = [p for p in self.measured_properties if p not in allowed]
        if unknown:
            raise ValueError(
                f"measured_properties {unknown} do not fit a {self.sensor_kind.value} sensor "
                f"(allowed: {', '.join(allowed)})"
            )
        return self


class VehicleAttributes(_Attributes):
    vehicle_kind: Literal["van", "truck", "car", "gritter", "aerial_lift", "motorcycle", "bicycle"] = "van"
    fleet_number: str = Field(max_length=40)
    plate: str | None = Field(default=None, max_length=20)
    service: Literal[
        "lighting", "signals", "roads", "cleaning", "green_spaces", "winter", "police", "video", "general"
    ] = "general"
    depot: str | None = Field(default=None, max_length=120)
    crew_capacity: int = Field(default=2, ge=1, le=9)


@dataclass(frozen=True, slots=True)
class AssetType:
    key: str
    ngsi_type: str
    label_fr: str
    label_en: str
    attributes: type[_Attributes]
    smart_data_model: str  # the FIWARE Smart Data Model its NGSI-LD view follows

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return _ADAPTERS[self.key]


ASSET_TYPES: dict[str, AssetType] = {
    t.key: t
    for t in (
        AssetType(
            "streetlight",
            "Streetlight",
            "Point lumineux",
            "Streetlight",
            StreetlightAttributes,
            "dataModel.Streetlighting/Streetlight",
        ),
        AssetType(
            "lighting_cabinet",
            "StreetlightControlCabinet",
            "Armoire d'éclairage",
            "Lighting cabinet",
            LightingCabinetAttributes,
            "dataModel.Streetlighting/StreetlightControlCabinet",
        ),
        AssetType(
            "traffic_signal",
            "TrafficSignalController",
            "Carrefour à feux",
            "Signalled intersection",
            TrafficSignalAttributes,
            "dataModel.Device/Device",
        ),
        AssetType("camera", "Camera", "Caméra", "Camera", CameraAttributes, "dataModel.Device/Camera"),
        AssetType(
            "bollard",
            "RetractableBollard",
            "Borne escamotable",
            "Retractable bollard",
            BollardAttributes,
            "dataModel.Device/Device",
        ),
        AssetType(
            "sign",
            "VariableMessageSign",
            "Panneau à message variable",
            "Variable-message sign",
            SignAttributes,
            "dataModel.Device/Device",
        ),
        AssetType("sensor", "Device", "Capteur", "Sensor", SensorAttributes, "dataModel.Device/Device"),
        AssetType(
            "vehicle",
            "Vehicle",
            "Véhicule d'intervention",
            "Field vehicle",
            VehicleAttributes,
            "dataModel.Transportation/Vehicle",
        ),
    )
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {key: TypeAdapter(t.attributes) for key, t in ASSET_TYPES.items()}
TYPE_BY_NGSI: dict[str, AssetType] = {t.ngsi_type: t for t in ASSET_TYPES.values()}


def check_type_key(value: str) -> str:
    if value not in ASSET_TYPES:
        raise ValueError(f"unknown asset type {value!r}; known types: {', '.join(ASSET_TYPES)}")
    return value


AssetTypeKey = Annotated[str, AfterValidator(check_type_key)]


def validate_attributes(type_key: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise (defaults filled, JSON-ready values); raises pydantic.ValidationError."""
    model = _ADAPTERS[type_key].validate_python(attributes)
    result: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return result
