"""The registry's HTTP API on SQLite and PostgreSQL: CRUD, scope, filters, paging, bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import QUETIGNY, TALANT, make_user

PROBLEM = "application/problem+json"
TALANT_XY = (5.0050, 47.3370)
QUETIGNY_XY = (5.1070, 47.3150)


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cabinet_body(local: str, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:StreetlightControlCabinet:{local}",
        "type": "lighting_cabinet",
        "name": f"Armoire {local}",
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "attributes": {"max_power_kw": 12, "circuits": 3},
        **extra,
    }


def light_body(local: str, cabinet: str, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Streetlight:{local}",
        "type": "streetlight",
        "name": f"PL {local}",
        "address": "Rue Jean Jaurès",
        "installed_on": "2019-05-02",
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "attributes": {"cabinet": cabinet, "nominal_power_w": 39, "lantern_height_m": 8},
        **extra,
    }


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:600]
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    return body


def test_create_read_and_geojson_shape(client: TestClient, admin: dict[str, str]) -> None:
    cab = uid("cab")
    response = client.post("/api/v1/assets", headers=admin, json=cabinet_body(cab, *TALANT_XY))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    cabinet = response.json()
    assert cabinet["id"] == f"urn:ngsi-ld:StreetlightControlCabinet:{cab}"
    assert response.headers["location"] == f"/api/v1/assets/{cabinet['id']}"
    assert response.headers["etag"] == '"v1"'
    assert cabinet["properties"]["commune"] == TALANT  # found from the location
    assert cabinet["properties"]["attributes"]["working_mode"] == "automatic"  # default filled in

    light = client.post(
        "/api/v1/assets",
        headers=admin,
        json=light_body(uid("pl"), cabinet["id"], TALANT_XY[0] + 0.001, TALANT_XY[1]),
    )
    assert light.status_code == 201, light.text
    feature = client.get(f"/api/v1/assets/{light.json()['id']}", headers=admin).json()
    assert feature["type"] == "Feature"
    assert feature["geometry"] == {"type": "Point", "coordinates": [TALANT_XY[0] + 0.001, TALANT_XY[1]]}
    props = feature["properties"]
    assert props["type"] == "streetlight" and props["status"] == "active" and props["installed_on"] == "2019-05-02"
    assert props["attributes"]["cabinet"] == cabinet["id"]
    assert props["attributes"]["nominal_power_w"] == 39.0


def test_generated_ids_follow_the_urn_convention(client: TestClient, admin: dict[str, str]) -> None:
    body = cabinet_body("x", *QUETIGNY_XY)
    del body["id"]
    created = client.post("/api/v1/assets", headers=admin, json=body).json()
    assert created["id"].startswith("urn:ngsi-ld:StreetlightControlCabinet:quetigny-")


@pytest.mark.parametrize(
    ("mutate", "status", "slug"),
    [
        (lambda b: b.update(type="lamp-post"), 422, "unknown-asset-type"),
        (
            lambda b: b.update(location={"type": "Point", "coordinates": [2.3522, 48.8566]}),
            422,
            "outside-metropolis",
        ),
        (lambda b: b.update(commune=QUETIGNY), 422, "commune-mismatch"),
        (lambda b: b.update(commune="75056"), 422, "unknown-commune"),
        (lambda b: b.update(location={"type": "Point", "coordinates": [5.0, 95.0]}), 422, "validation-error"),
        (lambda b: b["attributes"].update(max_power_kw=-3), 422, "validation-error"),
        (lambda b: b["attributes"].update(colour="red"), 422, "validation-error"),
        (lambda b: b.update(id="urn:ngsi-ld:Camera:x-1"), 422, "validation-error"),
        (lambda b: b.update(id="not a urn"), 422, "validation-error"),
        (lambda b: b.update(status="retired"), 422, "validation-error"),
    ],
)
def test_bad_input_gets_a_clear_problem_and_saves_nothing(
    client: TestClient, admin: dict[str, str], mutate: Any, status: int, slug: str
) -> None:
    body = cabinet_body(uid("bad"), *TALANT_XY)
    mutate(body)
    before = client.get("/api/v1/assets/stats", headers=admin).json()["total"]
    problem = assert_problem(client.post("/api/v1/assets", headers=admin, json=body), status, slug)
    assert problem["detail"]
    assert client.get("/api/v1/assets/stats", headers=admin).json()["total"] == before


def test_validation_errors_point_at_the_field(client: TestClient, admin: dict[str, str]) -> None:
    body = cabinet_body(uid("bad"), *TALANT_XY)
    body["attributes"]["max_power_kw"] = "lots"
    problem = assert_problem(client.post("/api/v1/assets", headers=admin, json=body), 422, "validation-error")
    assert problem["errors"][0]["pointer"] == "#/attributes/max_power_kw"


def test_malformed_json_is_a_400_problem(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/assets", headers={**admin, "Content-Type": "application/json"}, content=b'{"type": "camera",'
    )
    assert_problem(response, 400, "malformed-json")


def test_duplicate_id_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    body = cabinet_body(uid("dup"), *TALANT_XY)
    assert client.post("/api/v1/assets", headers=admin, json=body).status_code == 201
    assert_problem(client.post("/api/v1/assets", headers=admin, json=body), 409, "duplicate-id")


def test_streetlight_must_reference_an_existing_cabinet(client: TestClient, admin: dict[str, str]) -> None:
    body = light_body(uid("pl"), "urn:ngsi-ld:StreetlightControlCabinet:nowhere", *TALANT_XY)
    problem = assert_problem(client.post("/api/v1/assets", headers=admin, json=body), 422, "validation-error")
    assert problem["errors"][0]["pointer"] == "#/attributes/cabinet"


def test_commune_scope(client: TestClient, admin: dict[str, str], talant_operator: dict[str, str]) -> None:
    quetigny = client.post("/api/v1/assets", headers=admin, json=cabinet_body(uid("q"), *QUETIGNY_XY)).json()
    talant = client.post("/api/v1/assets", headers=talant_operator, json=cabinet_body(uid("t"), *TALANT_XY))
    assert talant.status_code == 201
    # Cannot see, touch or create Quetigny's equipment.
    assert_problem(client.get(f"/api/v1/assets/{quetigny['id']}", headers=talant_operator), 404, "not-found")
    patch = client.patch(f"/api/v1/assets/{quetigny['id']}", headers=talant_operator, json={"name": "mine"})
    assert_problem(patch, 404, "not-found")
    create = client.post("/api/v1/assets", headers=talant_operator, json=cabinet_body(uid("t"), *QUETIGNY_XY))
    assert_problem(create, 403, "commune-out-of-scope")
    # Moving a Talant asset into Quetigny is refused too.
    move = client.patch(
        f"/api/v1/assets/{talant.json()['id']}",
        headers=talant_operator,
        json={"location": {"type": "Point", "coordinates": list(QUETIGNY_XY)}},
    )
    assert_problem(move, 403, "commune-out-of-scope")
    listed = client.get("/api/v1/assets?limit=5000", headers=talant_operator).json()["features"]
    assert listed and {f["properties"]["commune"] for f in listed} == {TALANT}
    stats = client.get("/api/v1/assets/stats", headers=talant_operator).json()
    assert set(stats["by_commune"]) == {TALANT}
    snapshot = client.get("/api/v1/assets/map", headers=talant_operator).json()
    assert snapshot["communes"] == [TALANT]
    # The supervisor sees both.
    assert client.get(f"/api/v1/assets/{quetigny['id']}", headers=admin).status_code == 200


def test_roles_limit_actions(client: TestClient, admin: dict[str, str]) -> None:
    agent = make_user(client, admin, ["field_agent"], None)
    assert client.get("/api/v1/assets/stats", headers=agent).status_code == 200
    problem = assert_problem(
        client.post("/api/v1/assets", headers=agent, json=cabinet_body(uid("x"), *TALANT_XY)),
        403,
        "forbidden",
    )
    assert problem["missing"] == ["assets:write"]
    unauthenticated = client.get("/api/v1/assets")
    assert_problem(unauthenticated, 401, "not-authenticated")
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert_problem(client.get("/api/v1/assets", headers={"Authorization": "Bearer junk"}), 401, "not-authenticated")


def test_update_versions_etags_and_history(client: TestClient, admin: dict[str, str]) -> None:
    created = client.post("/api/v1/assets", headers=admin, json=cabinet_body(uid("u"), *TALANT_XY))
    asset_id = created.json()["id"]
    stale = created.headers["etag"]
    updated = client.patch(
        f"/api/v1/assets/{asset_id}",
        headers={**admin, "If-Match": stale},
        json={"name": "Armoire du parc", "attributes": {"circuits": 5}, "reason": "relevé terrain"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == '"v2"'
    props = updated.json()["properties"]
    assert props["name"] == "Armoire du parc" and props["attributes"]["circuits"] == 5
    assert props["attributes"]["max_power_kw"] == 12  # merge patch keeps the rest
    conflict = client.patch(f"/api/v1/assets/{asset_id}", headers={**admin, "If-Match": stale}, json={"name": "x"})
    assert_problem(conflict, 412, "precondition-failed")
    # A patch that changes nothing makes no new version.
    same = client.patch(f"/api/v1/assets/{asset_id}", headers=admin, json={"name": "Armoire du parc"})
    assert same.headers["etag"] == '"v2"'
    history = client.get(f"/api/v1/assets/{asset_id}/history", headers=admin).json()
    assert [h["action"] for h in history] == ["asset.created", "asset.updated"]
    assert history[1]["reason"] == "relevé terrain"
    assert history[1]["before"]["properties"]["name"].startswith("Armoire u-")
    assert history[1]["after"]["properties"]["name"] == "Armoire du parc"


def test_retire_never_deletes(client: TestClient, admin: dict[str, str]) -> None:
    asset_id = client.post("/api/v1/assets", headers=admin, json=cabinet_body(uid("r"), *TALANT_XY)).json()["id"]
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=admin).status_code == 405
    assert_problem(client.post(f"/api/v1/assets/{asset_id}/retire", headers=admin, json={}), 422, "validation-error")
    retired = client.post(f"/api/v1/assets/{asset_id}/retire", headers=admin, json={"reason": "armoire déposée"})
    assert retired.status_code == 200
    assert retired.json()["properties"]["status"] == "retired"
    assert retired.json()["properties"]["retired_at"]
    assert_problem(client.patch(f"/api/v1/assets/{asset_id}", headers=admin, json={"name": "x"}), 409, "asset-retired")
    # Still readable; hidden from lists unless asked for.
    assert client.get(f"/api/v1/assets/{asset_id}", headers=admin).status_code == 200

    def ids(query: str) -> set[str]:
        return {f["id"] for f in client.get(f"/api/v1/assets?limit=5000{query}", headers=admin).json()["features"]}

    assert asset_id not in ids("")
    assert asset_id in ids("&include_retired=true")
    assert asset_id in ids("&status=retired")


def _import_area(client: TestClient, admin: dict[str, str], lon0: float, lat0: float, n: int, tag: str) -> list[str]:
    """n cameras on a small grid around (lon0, lat0), imported as CSV."""
    lines = ["id,type,name,lon,lat,attr.camera_type,attr.onvif_profiles"]
    ids = []
    for i in range(n):
        local = f"{tag}-{i:03d}"
        ids.append(f"urn:ngsi-ld:Camera:{local}")
        lon, lat = lon0 + (i % 10) * 0.0002, lat0 + (i // 10) * 0.0002
        lines.append(f"urn:ngsi-ld:Camera:{local},camera,Caméra {i},{lon:.6f},{lat:.6f},ptz,S|T")
    response = client.post(
        "/api/v1/assets/import",
        headers={**admin, "Content-Type": "text/csv"},
        content="\n".join(lines).encode(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["created"] == n
    return ids


def test_filters_bbox_near_and_cursor_paging(client: TestClient, admin: dict[str, str]) -> None:
    tag = uid("grid")
    ids = _import_area(client, admin, 5.0400, 47.3200, 40, tag)
    box = "5.03995,47.31995,5.04185,47.32065"  # the grid is 10 x 4 points 0.0002° apart
    in_box = client.get(f"/api/v1/assets?bbox={box}&type=camera&limit=1000", headers=admin).json()
    assert {f["id"] for f in in_box["features"]} >= set(ids)
    half = client.get("/api/v1/assets?bbox=5.03995,47.31995,5.04085,47.32065&type=camera", headers=admin).json()
    assert {f["id"] for f in half["features"]} & set(ids) == {i for n, i in enumerate(ids) if n % 10 <= 4}
    # ~50 m around the first point: itself and its neighbours 0.0002° (15 m east, 22 m north) away.
    near = client.get("/api/v1/assets?near=5.0400,47.3200&radius=25&type=camera", headers=admin).json()
    assert {f["id"] for f in near["features"]} & set(ids) == {ids[0], ids[1], ids[10]}
    # Cursor paging over the bbox returns every asset exactly once.
    seen: list[str] = []
    url = f"/api/v1/assets?bbox={box}&type=camera&limit=7&count=true"
    while url:
        page = client.get(url, headers=admin).json()
        assert page["numberMatched"] == len(in_box["features"])
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == len(in_box["features"])
    assert set(seen) == {f["id"] for f in in_box["features"]}
    assert_problem(client.get("/api/v1/assets?cursor=%%%", headers=admin), 400, "bad-request")
    assert_problem(client.get("/api/v1/assets?bbox=1,2,3", headers=admin), 400, "bad-request")
    assert_problem(client.get("/api/v1/assets?type=ufo", headers=admin), 422, "unknown-asset-type")
    assert_problem(client.get("/api/v1/assets?near=5.04,47.32", headers=admin), 400, "bad-request")


def test_text_search_and_stats(client: TestClient, admin: dict[str, str]) -> None:
    tag = uid("srch")
    ids = _import_area(client, admin, 5.0430, 47.3230, 3, tag)
    found = client.get(f"/api/v1/assets?q={tag}", headers=admin).json()["features"]
    assert sorted(f["id"] for f in found) == sorted(ids)
    stats = client.get("/api/v1/assets/stats?type=camera", headers=admin).json()
    assert stats["by_type"]["camera"] == stats["total"] >= 3


def test_csv_import_rejects_bad_rows_naming_row_and_field_and_saves_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    tag = uid("imp")
    cabinet = f"urn:ngsi-ld:StreetlightControlCabinet:{tag}-cab"
    csv_text = "\n".join(
        [
            "id,type,name,commune,lon,lat,attr.max_power_kw,attr.cabinet,attr.nominal_power_w",
            f"{cabinet},lighting_cabinet,Armoire,,5.0050,47.3370,9,,",  # 1: fine
            f"urn:ngsi-ld:Streetlight:{tag}-1,streetlight,PL 1,,5.0051,47.3371,,{cabinet},45",  # 2: fine (cabinet in file)
            f"urn:ngsi-ld:Streetlight:{tag}-2,streetlight,PL 2,,not-a-number,47.3371,,{cabinet},45",  # 3: lon
            f"urn:ngsi-ld:Streetlight:{tag}-3,lamp,PL 3,,5.0051,47.3371,,,",  # 4: type
            f"urn:ngsi-ld:Streetlight:{tag}-4,streetlight,PL 4,99999,5.0051,47.3371,,{cabinet},45",  # 5: commune
            f"urn:ngsi-ld:Streetlight:{tag}-1,streetlight,PL 1b,,5.0052,47.3372,,{cabinet},45",  # 6: duplicate id
            f"urn:ngsi-ld:Streetlight:{tag}-6,streetlight,PL 6,,5.0052,47.3372,,urn:ngsi-ld:StreetlightControlCabinet:no,45",  # 7
            f"urn:ngsi-ld:Streetlight:{tag}-7,streetlight,PL 7,,2.35,48.85,,{cabinet},45",  # 8: Paris
            f"urn:ngsi-ld:Streetlight:{tag}-8,streetlight,PL 8,,5.0052,47.3372,,{cabinet},-45",  # 9: power
        ]
    )
    before = client.get("/api/v1/assets/stats", headers=admin).json()["total"]
    response = client.post(
        "/api/v1/assets/import", headers={**admin, "Content-Type": "text/csv"}, content=csv_text.encode()
    )
    problem = assert_problem(response, 422, "import-rejected")
    by_row = {(e["row"], e["field"]) for e in problem["errors"]}
    assert by_row == {
        (3, "lon"),
        (4, "type"),
        (5, "commune"),
        (6, "id"),
        (7, "attributes.cabinet"),
        (8, "location"),
        (9, "attributes.nominal_power_w"),
    }
    assert problem["error_count"] == 7
    assert client.get("/api/v1/assets/stats", headers=admin).json()["total"] == before
    # The good rows alone import.
    good = "\n".join(csv_text.splitlines()[:3])
    ok = client.post("/api/v1/assets/import", headers={**admin, "Content-Type": "text/csv"}, content=good.encode())
    assert ok.status_code == 201, ok.text
    assert ok.json()["by_type"] == {"lighting_cabinet": 1, "streetlight": 1}


def test_import_format_errors(client: TestClient, admin: dict[str, str]) -> None:
    post = lambda body, ctype: client.post(  # noqa: E731
        "/api/v1/assets/import", headers={**admin, "Content-Type": ctype}, content=body
    )
    assert_problem(post(b"{not json", "application/geo+json"), 400, "malformed-json")
    assert_problem(post(b'{"type": "Feature"}', "application/geo+json"), 400, "bad-request")
    assert_problem(post(b"id,type,colour\n", "text/csv"), 400, "bad-request")
    assert_problem(post(b"\xff\xfe", "text/csv"), 400, "bad-request")
    assert_problem(post(b"x", "application/pdf"), 415, "unsupported-media-type")
    features = b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString"}}]}'
    problem = assert_problem(post(features, "application/geo+json"), 422, "import-rejected")
    assert problem["errors"] == [{"row": 1, "id": None, "field": "geometry", "detail": "expected a Point"}]


def test_geojson_export_reimports_as_a_dry_run(client: TestClient, admin: dict[str, str]) -> None:
    tag = uid("rt")
    _import_area(client, admin, 5.0450, 47.3250, 5, tag)
    exported = client.get(f"/api/v1/assets?q={tag}", headers=admin).json()
    for feature in exported["features"]:
        feature["id"] = feature["id"].replace(tag, f"{tag}-copy")
    response = client.post(
        "/api/v1/assets/import?dry_run=true",
        headers={**admin, "Content-Type": "application/geo+json"},
        json={"type": "FeatureCollection", "features": exported["features"]},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {**response.json(), "dry_run": True, "created": 5, "batch_id": None}
    assert client.get(f"/api/v1/assets?q={tag}-copy", headers=admin).json()["features"] == []


def test_multipart_upload_import(client: TestClient, admin: dict[str, str]) -> None:
    tag = uid("mp")
    csv_text = f"id,type,name,lon,lat,attr.sensor_kind,attr.measured_properties\nurn:ngsi-ld:Device:{tag},sensor,Sonomètre,5.0415,47.3220,noise,noiseLevel\n"
    response = client.post(
        "/api/v1/assets/import", headers=admin, files={"file": ("capteurs.csv", csv_text, "text/csv")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["by_type"] == {"sensor": 1}


def test_asset_types_catalogue(client: TestClient, admin: dict[str, str]) -> None:
    types = {t["key"]: t for t in client.get("/api/v1/asset-types", headers=admin).json()}
    assert set(types) == {
        "streetlight",
        "lighting_cabinet",
        "traffic_signal",
        "camera",
        "bollard",
        "sign",
        "sensor",
        "vehicle",
    }
    assert types["streetlight"]["ngsi_type"] == "Streetlight"
    assert "nominal_power_w" in types["streetlight"]["attributes_schema"]["properties"]


def test_search_ignores_case_and_accents(client: TestClient, admin: dict[str, str]) -> None:
    tag = uid("acc")
    body = cabinet_body(tag, *TALANT_XY, address="Rue de l'Église Saint-Éloi")
    assert client.post("/api/v1/assets", headers=admin, json=body).status_code == 201
    for query in ("ÉGLISE SAINT", "eglise saint-eloi", "Église"):
        found = {
            f["id"]
            for f in client.get("/api/v1/assets", params={"q": query, "limit": 5000}, headers=admin).json()["features"]
        }
        assert f"urn:ngsi-ld:StreetlightControlCabinet:{tag}" in found, query
    # LIKE wildcards in the text are literal.
    assert client.get("/api/v1/assets", params={"q": "%_%"}, headers=admin).json()["features"] == []


def test_parent_filter_lists_what_a_cabinet_feeds(client: TestClient, admin: dict[str, str]) -> None:
    cab = client.post("/api/v1/assets", headers=admin, json=cabinet_body(uid("feed"), *TALANT_XY)).json()["id"]
    lights = [
        client.post(
            "/api/v1/assets", headers=admin, json=light_body(uid("pl"), cab, TALANT_XY[0], TALANT_XY[1] + 0.0003 * i)
        ).json()["id"]
        for i in range(3)
    ]
    fed = client.get("/api/v1/assets", params={"parent": cab}, headers=admin).json()["features"]
    assert sorted(f["id"] for f in fed) == sorted(lights)
    other = client.post("/api/v1/assets", headers=admin, json=cabinet_body(uid("feed2"), *TALANT_XY)).json()["id"]
    client.patch(f"/api/v1/assets/{lights[0]}", headers=admin, json={"attributes": {"cabinet": other}})
    assert len(client.get("/api/v1/assets", params={"parent": cab}, headers=admin).json()["features"]) == 2
    assert [
        f["id"] for f in client.get("/api/v1/assets", params={"parent": other}, headers=admin).json()["features"]
    ] == [lights[0]]


def test_list_pages_never_serve_a_stale_feature(client: TestClient, admin: dict[str, str]) -> None:
    """Pages come from an in-memory feature cache keyed by version: a change must show at once."""
    tag = uid("stale")
    asset_id = client.post("/api/v1/assets", headers=admin, json=cabinet_body(tag, *TALANT_XY)).json()["id"]
    box = f"{TALANT_XY[0] - 0.0001},{TALANT_XY[1] - 0.0001},{TALANT_XY[0] + 0.0001},{TALANT_XY[1] + 0.0001}"

    def listed_name() -> str:
        page = client.get(f"/api/v1/assets?bbox={box}&limit=5000", headers=admin).json()
        return next(f["properties"]["name"] for f in page["features"] if f["id"] == asset_id)

    assert listed_name() == f"Armoire {tag}"  # now cached
    client.patch(f"/api/v1/assets/{asset_id}", headers=admin, json={"name": "Armoire renommée"})
    assert listed_name() == "Armoire renommée"


def test_feature_cache_stays_bounded(platform: Any) -> None:
    from sqlalchemy import select

    from metropilot.assets.models import Asset
    from metropilot.assets.service import FeatureCache

    cache = FeatureCache(max_entries=3)
    with platform.db.read() as session:
        keys = [(pk, v) for pk, v in session.execute(select(Asset.pk, Asset.version).order_by(Asset.pk).limit(5))]
        assert len(cache.take(session, keys[:2])) == 2 and len(cache) == 2
        assert cache.take(session, keys[:2]) and cache.hits == 2
        features = cache.take(session, keys[2:5])  # would exceed 3 entries: emptied first
        assert len(features) == 3 and len(cache) == 3
