"""NGSI-LD (ETSI GS CIM 009) views of assets, with FIWARE Smart Data Models attribute names.

Streetlights and cabinets follow dataModel.Streetlighting, cameras dataModel.Device/Camera, sensors
dataModel.Device/Device, crew vehicles dataModel.Transportation/Vehicle. Signalled intersections,
retractable bollards and variable-message signs have no Smart Data Model: they are typed
``TrafficSignalController``, ``RetractableBollard`` and ``VariableMessageSign`` and carry the Device
model's attributes (``category``, ``controlledProperty``, ``deviceState``...). Attributes with no
Smart Data Models term (e.g. the commune's INSEE code) live in metropilot's own namespace; the
platform's @context maps every term, so each expands to one IRI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from metropilot.assets.types import ASSET_TYPES, TYPE_BY_NGSI

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CONTEXT_PATH = "/ngsi-ld/v1/jsonldContexts/metropilot"
SDM = "https://smartdatamodels.org/"
NS = "urn:metropilot:terms:"
LINK_REL = "http://www.w3.org/ns/json-ld#context"

Entity = dict[str, Any]


def _p(value: Any, unit: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if unit:
        attribute["unitCode"] = unit  # UN/CEFACT common codes
    return attribute


def _dt(iso: str) -> dict[str, Any]:
    if len(iso) == 10:  # a date: Smart Data Models use date-times
        iso = f"{iso}T00:00:00Z"
    return {"type": "Property", "value": {"@type": "DateTime", "@value": iso}}


def _r(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


# Which IRI each term expands to (see the module docstring).
_STREETLIGHTING = SDM + "dataModel.Streetlighting/"
_DEVICE = SDM + "dataModel.Device/"
_TRANSPORTATION = SDM + "dataModel.Transportation/"
TERMS: dict[str, str] = {
    # types
    "Streetlight": _STREETLIGHTING + "Streetlight",
    "StreetlightControlCabinet": _STREETLIGHTING + "StreetlightControlCabinet",
    "Device": _DEVICE + "Device",
    "Camera": _DEVICE + "Camera",
    "Vehicle": _TRANSPORTATION + "Vehicle",
    "TrafficSignalController": NS + "TrafficSignalController",
    "RetractableBollard": NS + "RetractableBollard",
    "VariableMessageSign": NS + "VariableMessageSign",
    # common Smart Data Models terms
    **{
        t: SDM + t
        for t in (
            "name",
            "address",
            "dateCreated",
            "dateModified",
            "serialNumber",
            "manufacturerName",
            "modelName",
            "brandName",
            "dataProvider",
        )
    },
    # dataModel.Streetlighting
    **{
        t: _STREETLIGHTING + t
        for t in (
            "powerState",
            "controllingMethod",
            "refStreetlightControlCabinet",
            "lanternHeight",
            "circuit",
            "dateServiceStarted",
            "dateLastLampChange",
            "illuminanceLevel",
            "workingMode",
            "maximumPowerAvailable",
            "features",
        )
    },
    # dataModel.Device
    **{
        t: _DEVICE + t
        for t in (
            "category",
            "controlledProperty",
            "deviceState",
            "dateInstalled",
            "cameraType",
            "cameraUsage",
            "value",
        )
    },
    # dataModel.Transportation
    **{
        t: _TRANSPORTATION + t
        for t in ("vehicleType", "serviceProvided", "fleetVehicleId", "vehiclePlateIdentifier", "vehicleSpecialUsage")
    },
    # metropilot's own
    **{
        t: NS + t
        for t in (
            "communeCode",
            "operationalStatus",
            "lampTechnology",
            "nominalPower",
            "colorTemperature",
            "dimmable",
            "circuits",
            "meterId",
            "remoteManaged",
            "controllerProtocol",
            "signalGroups",
            "phases",
            "signalPlans",
            "busPriority",
            "acousticSignals",
            "pedestrianCrossings",
            "resolution",
            "onvifProfiles",
            "nightVision",
            "privacyMasking",
            "mechanism",
            "accessZone",
            "defaultPosition",
            "emergencyAccess",
            "displayTechnology",
            "lines",
            "charsPerLine",
            "fullMatrix",
            "purpose",
            "faceHeading",
            "sensorKind",
            "measuredProperties",
            "reportingPeriod",
            "lanes",
            "mountingHeight",
            "depot",
            "crewCapacity",
        )
    },
}


def context_document() -> dict[str, Any]:
    return {"@context": [TERMS, CORE_CONTEXT]}


# Smart Data Models enumerations our values map to.
_STREETLIGHT_STATUS = {"fault": "defectiveLamp", "degraded": "defectiveLamp"}
_CAMERA_TYPE = {"fixed": "FIXED", "ptz": "PTZ", "dome": "DOME", "panoramic": "FIXED"}
_CAMERA_USAGE = {
    "video_protection": "SURVEILLANCE",
    "traffic": "TRAFFIC",
    "plate_recognition": "ANPR/LPR",
    "crowd_counting": "SURVEILLANCE",
}
_CONTROLLED_PROPERTY = {
    "temperature": "temperature",
    "humidity": "humidity",
    "precipitation": "precipitation",
    "windSpeed": "windSpeed",
    "NO2": "airPollution",
    "PM10": "airPollution",
    "PM2.5": "airPollution",
    "O3": "airPollution",
    "noiseLevel": "noiseLevel",
    "trafficFlow": "trafficFlow",
    "occupancy": "occupancy",
    "motion": "motion",
}
_VEHICLE_TYPE = {
    "van": "van",
    "truck": "lorry",
    "car": "car",
    "gritter": "constructionOrMaintenanceVehicle",
    "aerial_lift": "constructionOrMaintenanceVehicle",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
}
_SERVICE_PROVIDED = {
    "lighting": "streetLighting",
    "signals": "roadSignalling",
    "roads": "maintenance",
    "cleaning": "streetCleaning",
    "green_spaces": "parksAndGardens",
    "winter": "maintenance",
    "video": "auxiliaryServices",
    "general": "auxiliaryServices",
}


def _device(entity: Entity, category: str, controlled: Iterable[str], props: Mapping[str, Any]) -> None:
    entity["category"] = _p([category])
    entity["controlledProperty"] = _p(sorted(set(controlled)))
    entity["deviceState"] = _p(props["status"])
    if props.get("installed_on"):
        entity["dateInstalled"] = _dt(props["installed_on"])


def _streetlight(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    entity["status"] = _p(_STREETLIGHT_STATUS.get(props["status"], "ok"))
    if a.get("cabinet"):
        entity["refStreetlightControlCabinet"] = _r(a["cabinet"])
    entity["controllingMethod"] = _p(a["control"])
    if "lantern_height_m" in a:
        entity["lanternHeight"] = _p(a["lantern_height_m"], "MTR")
    if "circuit" in a:
        entity["circuit"] = _p(a["circuit"])
    if props.get("installed_on"):
        entity["dateServiceStarted"] = _dt(props["installed_on"])
    if "date_last_lamp_change" in a:
        entity["dateLastLampChange"] = _dt(a["date_last_lamp_change"])
    entity["lampTechnology"] = _p(a["lamp_technology"])
    entity["nominalPower"] = _p(a["nominal_power_w"], "WTT")
    entity["dimmable"] = _p(a["dimmable"])
    if "color_temperature_k" in a:
        entity["colorTemperature"] = _p(a["color_temperature_k"], "KEL")


def _cabinet(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    entity["workingMode"] = _p(a["working_mode"])
    entity["maximumPowerAvailable"] = _p(a["max_power_kw"], "KWT")
    features = ["astronomicalClock"] + (["individualControl"] if a.get("remote_managed") else [])
    entity["features"] = _p(features)
    entity["circuits"] = _p(a["circuits"])
    if "meter_id" in a:
        entity["meterId"] = _p(a["meter_id"])
    entity["remoteManaged"] = _p(a["remote_managed"])
    if props.get("installed_on"):
        entity["dateServiceStarted"] = _dt(props["installed_on"])


def _traffic_signal(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    _device(entity, "actuator", ["trafficFlow"], props)
    entity["controllerProtocol"] = _p(a["controller_protocol"])
    entity["signalGroups"] = _p(a["signal_groups"])
    entity["phases"] = _p(a["phases"])
    entity["signalPlans"] = _p(a["plans"])
    entity["busPriority"] = _p(a["bus_priority"])
    entity["acousticSignals"] = _p(a["acoustic_signals"])
    entity["pedestrianCrossings"] = _p(a["pedestrian_crossings"])


def _camera(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    entity["cameraType"] = _p(_CAMERA_TYPE[a["camera_type"]])
    entity["cameraUsage"] = _p(_CAMERA_USAGE[a["usage"]])
    entity["deviceState"] = _p(props["status"])
    if props.get("installed_on"):
        entity["dateInstalled"] = _dt(props["installed_on"])
    entity["resolution"] = _p(a["resolution"])
    entity["onvifProfiles"] = _p(a["onvif_profiles"])
    entity["nightVision"] = _p(a["night_vision"])
    entity["privacyMasking"] = _p(a["privacy_masking"])


def _bollard(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    _device(entity, "actuator", ["gateOpening"], props)
    entity["mechanism"] = _p(a["mechanism"])
    entity["accessZone"] = _p(a["access_zone"])
    entity["defaultPosition"] = _p(a["default_position"])
    entity["emergencyAccess"] = _p(a["emergency_access"])


def _sign(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    _device(entity, "multimedia", ["light"], props)
    entity["displayTechnology"] = _p(a["technology"])
    entity["lines"] = _p(a["lines"])
    entity["charsPerLine"] = _p(a["chars_per_line"])
    entity["fullMatrix"] = _p(a["full_matrix"])
    entity["purpose"] = _p(a["purpose"])
    if "heading_deg" in a:
        entity["faceHeading"] = _p(a["heading_deg"], "DD")


def _sensor(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    _device(entity, "sensor", (_CONTROLLED_PROPERTY[p] for p in a["measured_properties"]), props)
    entity["sensorKind"] = _p(a["sensor_kind"])
    entity["measuredProperties"] = _p(a["measured_properties"])
    entity["reportingPeriod"] = _p(a["reporting_period_s"], "SEC")
    if "lanes" in a:
        entity["lanes"] = _p(a["lanes"])
    if "mounting_height_m" in a:
        entity["mountingHeight"] = _p(a["mounting_height_m"], "MTR")


def _vehicle(entity: Entity, props: Mapping[str, Any], a: Mapping[str, Any]) -> None:
    entity["vehicleType"] = _p(_VEHICLE_TYPE[a["vehicle_kind"]])
    entity["category"] = _p(["municipalServices"])
    if a["service"] in _SERVICE_PROVIDED:
        entity["serviceProvided"] = _p([_SERVICE_PROVIDED[a["service"]]])
    if a["service"] == "police":
        entity["vehicleSpecialUsage"] = _p("police")
    entity["fleetVehicleId"] = _p(a["fleet_number"])
    if "plate" in a:
        entity["vehiclePlateIdentifier"] = _p(a["plate"])
    if "depot" in a:
        entity["depot"] = _p(a["depot"])
    entity["crewCapacity"] = _p(a["crew_capacity"])


_BUILDERS: dict[str, Callable[[Entity, Mapping[str, Any], Mapping[str, Any]], None]] = {
    "streetlight": _streetlight,
    "lighting_cabinet": _cabinet,
    "traffic_signal": _traffic_signal,
    "camera": _camera,
    "bollard": _bollard,
    "sign": _sign,
    "sensor": _sensor,
    "vehicle": _vehicle,
}


def to_normalized(feature: Mapping[str, Any], commune_names: Mapping[str, str], *, sys_attrs: bool = False) -> Entity:
    """The NGSI-LD normalized entity of an asset, from its GeoJSON feature."""
    props = feature["properties"]
    type_key = props["type"]
    entity: Entity = {"id": feature["id"], "type": ASSET_TYPES[type_key].ngsi_type}
    entity["name"] = _p(props["name"])
    entity["location"] = {"type": "GeoProperty", "value": feature["geometry"]}
    address: dict[str, str] = {
        "addressLocality": commune_names.get(props["commune"], props["commune"]),
        "addressCountry": "FR",
    }
    if props.get("address"):
        address["streetAddress"] = props["address"]
    entity["address"] = _p(address)
    entity["communeCode"] = _p(props["commune"])
    entity["operationalStatus"] = _p(props["status"])
    _BUILDERS[type_key](entity, props, props["attributes"])
    for key, term in (
        ("manufacturer", "manufacturerName"),
        ("model", "modelName"),
        ("serial_number", "serialNumber"),
    ):
        if props.get(key):
            entity[term] = _p(props[key])
    entity["dateCreated"] = _dt(props["created_at"])
    entity["dateModified"] = _dt(props["updated_at"])
    if sys_attrs:
        entity["createdAt"] = props["created_at"]
        entity["modifiedAt"] = props["updated_at"]
    return entity


def _simple_value(attribute: Any) -> Any:
    if not isinstance(attribute, dict):
        return attribute
    if attribute.get("type") == "Relationship":
        return attribute["object"]
    value = attribute.get("value")
    if isinstance(value, dict) and value.get("@type") == "DateTime":
        return value["@value"]
    return value


def to_simplified(entity: Mapping[str, Any]) -> Entity:
    """The key-values (``options=keyValues`` / ``format=simplified``) form."""
    return {
        k: v if k in ("id", "type", "createdAt", "modifiedAt", "@context") else _simple_value(v)
        for k, v in entity.items()
    }


def to_geojson(entity: Mapping[str, Any], *, simplified: bool) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (``Accept: application/geo+json``)."""
    location = entity.get("location")
    geometry = location["value"] if isinstance(location, dict) else None
    body = to_simplified(entity) if simplified else dict(entity)
    properties = {k: v for k, v in body.items() if k != "id"}
    return {"id": entity["id"], "type": "Feature", "geometry": geometry, "properties": properties}


def project(entity: Entity, pick: frozenset[str] | None, omit: frozenset[str] | None) -> Entity:
    """Keep ``id``/``type`` and the picked attributes; drop the omitted ones."""
    if pick is None and omit is None:
        return entity
    return {
        k: v
        for k, v in entity.items()
        if (k in ("id", "type") or pick is None or k in pick) and (omit is None or k not in omit)
    }


def short_type(name: str) -> str:
    """``https://smartdatamodels.org/dataModel.Streetlighting/Streetlight`` -> ``Streetlight``."""
    if name in TYPE_BY_NGSI:
        return name
    for term, iri in TERMS.items():
        if iri == name:
            return term
    return name


def short_attribute(name: str) -> str:
    for term, iri in TERMS.items():
        if iri == name:
            return term
    return name
