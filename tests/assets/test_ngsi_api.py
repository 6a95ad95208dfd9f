"""The NGSI-LD view of the registry (ETSI GS CIM 009) with Smart Data Models names."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.assets.test_api import TALANT_XY, cabinet_body, light_body
from tests.conftest import QUETIGNY

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"'


@pytest.fixture(scope="module")
def lights(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    """A cabinet and 6 streetlights of a distinctive tag around Talant's reference point."""
    tag = f"ngsi{uuid.uuid4().hex[:8]}"
    cabinet = client.post("/api/v1/assets", headers=admin, json=cabinet_body(f"{tag}-cab", *TALANT_XY)).json()["id"]
    ids = []
    for i in range(6):
        body = light_body(f"{tag}-{i}", cabinet, TALANT_XY[0] + i * 0.001, TALANT_XY[1])
        body["attributes"]["lantern_height_m"] = 4 + i * 2  # 4, 6, 8, 10, 12, 14
        response = client.post("/api/v1/assets", headers=admin, json=body)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return {"tag": tag, "cabinet": cabinet, "ids": ids}


def ngsi_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == ERR + error
    assert body["title"] and "detail" in body
    return body


def test_normalized_entity_follows_smart_data_models(
    client: TestClient, admin: dict[str, str], lights: dict[str, Any]
) -> None:
    response = client.get(f"/ngsi-ld/v1/entities/{lights['ids'][2]}", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    link = response.headers["link"]
    assert (
        "/ngsi-ld/v1/jsonldContexts/metropilot>" in link and LINK_REL in link and 'type="application/ld+json"' in link
    )
    entity = response.json()
    assert entity["id"] == lights["ids"][2] and entity["type"] == "Streetlight"
    assert "@context" not in entity
    assert entity["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [TALANT_XY[0] + 0.002, TALANT_XY[1]]},
    }
    assert entity["refStreetlightControlCabinet"] == {"type": "Relationship", "object": lights["cabinet"]}
    assert entity["status"] == {"type": "Property", "value": "ok"}
    assert entity["lanternHeight"] == {"type": "Property", "value": 8.0, "unitCode": "MTR"}
    assert entity["controllingMethod"]["value"] == "individual"
    assert entity["dateServiceStarted"]["value"] == {"@type": "DateTime", "@value": "2019-05-02T00:00:00Z"}
    assert entity["address"]["value"]["addressLocality"] == "Talant"
    assert entity["communeCode"]["value"] == "21617"


def test_context_document_maps_every_term(client: TestClient, admin: dict[str, str], lights: dict[str, Any]) -> None:
    context = client.get("/ngsi-ld/v1/jsonldContexts/metropilot").json()["@context"]
    terms, core = context
    assert core.startswith("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")
    assert terms["Streetlight"] == "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight"
    assert terms["powerState"] == "https://smartdatamodels.org/dataModel.Streetlighting/powerState"
    entity = client.get(f"/ngsi-ld/v1/entities/{lights['ids'][0]}", headers=admin).json()
    core_terms = {"id", "type", "location", "status"}
    assert set(entity) - core_terms <= set(terms), set(entity) - core_terms - set(terms)


def test_ld_json_simplified_and_geojson_representations(
    client: TestClient, admin: dict[str, str], lights: dict[str, Any]
) -> None:
    url = f"/ngsi-ld/v1/entities/{lights['ids'][1]}"
    ld = client.get(url, headers={**admin, "Accept": "application/ld+json"})
    assert ld.headers["content-type"].startswith("application/ld+json") and "link" not in ld.headers
    assert ld.json()["@context"][0].endswith("/ngsi-ld/v1/jsonldContexts/metropilot")
    simple = client.get(f"{url}?options=keyValues", headers=admin).json()
    assert simple["lanternHeight"] == 6.0 and simple["refStreetlightControlCabinet"] == lights["cabinet"]
    assert simple["location"] == {"type": "Point", "coordinates": [TALANT_XY[0] + 0.001, TALANT_XY[1]]}
    assert client.get(f"{url}?format=simplified", headers=admin).json() == simple
    geo = client.get(f"{url}?format=simplified", headers={**admin, "Accept": "application/geo+json"}).json()
    assert geo["type"] == "Feature" and geo["properties"]["lanternHeight"] == 6.0
    picked = client.get(f"{url}?pick=name,lanternHeight", headers=admin).json()
    assert set(picked) == {"id", "type", "name", "lanternHeight"}
    assert client.get(url, headers={**admin, "Accept": "text/html"}).status_code == 406


def test_query_by_type_q_and_count(client: TestClient, admin: dict[str, str], lights: dict[str, Any]) -> None:
    pattern = f".*{lights['tag']}.*"
    response = client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Streetlight",
            "q": "lanternHeight>=8;lanternHeight<14",
            "idPattern": pattern,
            "count": "true",
        },
        headers=admin,
    )
    assert response.status_code == 200
    assert response.headers["ngsild-results-count"] == "3"
    assert [e["id"] for e in response.json()] == lights["ids"][2:5]
    ranged = client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "Streetlight", "q": "lanternHeight==4..6|lanternHeight==14", "idPattern": pattern},
        headers=admin,
    ).json()
    assert [e["id"] for e in ranged] == [lights["ids"][0], lights["ids"][1], lights["ids"][5]]
    by_cabinet = client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Streetlight",
            "q": f"refStreetlightControlCabinet=={lights['cabinet']}",
            "count": "true",
        },
        headers=admin,
    )
    assert by_cabinet.headers["ngsild-results-count"] == "6"
    full_iri = client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight",
            "idPattern": pattern,
        },
        headers=admin,
    ).json()
    assert len(full_iri) == 6


def test_geo_queries(client: TestClient, admin: dict[str, str], lights: dict[str, Any]) -> None:
    pattern = f".*{lights['tag']}.*"
    near = client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Streetlight",
            "georel": "near;maxDistance==160",
            "geometry": "Point",
            "coordinates": json.dumps(list(TALANT_XY)),
            "idPattern": pattern,
        },
        headers=admin,
    ).json()
    # Lights stand every 0.001° of longitude, ~75.5 m at this latitude: the first three are within 160 m.
    assert [e["id"] for e in near] == lights["ids"][:3]
    lon, lat = TALANT_XY
    square = [
        [
            [lon + 0.0025, lat - 0.001],
            [lon + 0.0055, lat - 0.001],
            [lon + 0.0055, lat + 0.001],
            [lon + 0.0025, lat + 0.001],
            [lon + 0.0025, lat - 0.001],
        ]
    ]
    within = client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Streetlight",
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": json.dumps(square),
        },
        headers=admin,
    ).json()
    assert [e["id"] for e in within] == lights["ids"][3:6]


def test_paging_with_limit_offset_and_links(client: TestClient, admin: dict[str, str], lights: dict[str, Any]) -> None:
    params = {"type": "Streetlight", "idPattern": f".*{lights['tag']}.*", "limit": "4", "count": "true"}
    first = client.get("/ngsi-ld/v1/entities", params=params, headers=admin)
    assert [e["id"] for e in first.json()] == lights["ids"][:4]
    assert first.headers["ngsild-results-count"] == "6"
    assert 'rel="next"' in first.headers["link"] and 'rel="prev"' not in first.headers["link"]
    second = client.get("/ngsi-ld/v1/entities", params={**params, "offset": "4"}, headers=admin)
    assert [e["id"] for e in second.json()] == lights["ids"][4:]
    assert 'rel="prev"' in second.headers["link"] and 'rel="next"' not in second.headers["link"]
    counted = client.get("/ngsi-ld/v1/entities", params={**params, "limit": "0"}, headers=admin)
    assert counted.json() == [] and counted.headers["ngsild-results-count"] == "6"


def test_ngsi_ld_errors(client: TestClient, admin: dict[str, str], talant_operator: dict[str, str]) -> None:
    ngsi_error(client.get("/ngsi-ld/v1/entities", headers=admin), 400, "BadRequestData")
    body = ngsi_error(client.get("/ngsi-ld/v1/entities?type=Streetlight&q=(a==1", headers=admin), 400, "BadRequestData")
    assert "position" in body["detail"]
    ngsi_error(client.get("/ngsi-ld/v1/entities?type=Streetlight&georel=near", headers=admin), 400, "BadRequestData")
    ngsi_error(client.get("/ngsi-ld/v1/entities?type=Streetlight&limit=5000", headers=admin), 403, "TooManyResults")
    ngsi_error(client.get("/ngsi-ld/v1/entities?type=Streetlight&limit=0", headers=admin), 400, "BadRequestData")
    ngsi_error(
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:none", headers=admin),
        404,
        "ResourceNotFound",
    )
    # Scope: an operator of Talant does not see Quetigny's equipment through NGSI-LD either.
    quetigny = client.post(
        "/api/v1/assets", headers=admin, json=cabinet_body(f"ng{uuid.uuid4().hex[:6]}", 5.107, 47.315)
    ).json()
    assert quetigny["properties"]["commune"] == QUETIGNY
    ngsi_error(client.get(f"/ngsi-ld/v1/entities/{quetigny['id']}", headers=talant_operator), 404, "ResourceNotFound")
    listed = client.get(
        "/ngsi-ld/v1/entities?type=StreetlightControlCabinet&limit=1000", headers=talant_operator
    ).json()
    assert listed and {e["communeCode"]["value"] for e in listed} == {"21617"}
    unauthenticated = client.get("/ngsi-ld/v1/entities?type=Streetlight")
    assert unauthenticated.status_code == 401 and unauthenticated.headers["content-type"].startswith("application/json")


def test_types_endpoint(client: TestClient, admin: dict[str, str], lights: dict[str, Any]) -> None:
    body = client.get("/ngsi-ld/v1/types", headers=admin).json()
    assert body["type"] == "EntityTypeList"
    assert {"Streetlight", "StreetlightControlCabinet"} <= set(body["typeList"])
