"""OAuth2 password flow, token rotation, lockout, user management and the audit log API."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from metropilot.core.platform import Platform
from tests.conftest import ADMIN_PASSWORD, TALANT, login, make_user


def test_password_flow_returns_a_short_lived_bearer_token(client: TestClient) -> None:
    response = client.post("/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["refresh_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["username"] == "admin" and me["roles"] == ["administrator"] and me["communes"] is None
    assert "users:manage" in me["permissions"]


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = client.post("/auth/token", data={"username": "admin", "password": "nope"})
    unknown = client.post("/auth/token", data={"username": "nobody", "password": "nope"})
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["error"] == "invalid_grant"
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_missing_form_fields_are_a_problem(client: TestClient) -> None:
    response = client.post("/auth/token", data={"username": "admin"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    bad_grant = client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert bad_grant.status_code == 422


def test_lockout_after_repeated_failures_then_recovery(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    username = f"lock{uuid.uuid4().hex[:6]}"
    client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": username, "password": "right-password-123", "roles": ["operator"]},
    )
    for _ in range(platform.settings.login_max_failures):
        assert client.post("/auth/token", data={"username": username, "password": "wrong"}).status_code == 400
    locked = client.post("/auth/token", data={"username": username, "password": "right-password-123"})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    audit = client.get(f"/api/v1/audit?action=user.locked&target_id={username}", headers=admin).json()
    assert len(audit["items"]) == 1


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient) -> None:
    first = client.post("/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).json()
    second = client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    replay = client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert replay.status_code == 400 and "already used" in replay.json()["detail"]
    # The thief's replay also kills the legitimate holder's newer token.
    after = client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": rotated})
    assert after.status_code == 400


def test_revoke_ends_a_session(client: TestClient) -> None:
    tokens = client.post("/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).json()
    assert client.post("/auth/revoke", data={"token": tokens["refresh_token"]}).status_code == 204
    again = client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert again.status_code == 400


def test_user_management_validates_and_audits(client: TestClient, admin: dict[str, str]) -> None:
    username = f"op{uuid.uuid4().hex[:6]}"
    body = {
        "username": username,
        "password": "a-long-enough-password",
        "roles": ["operator"],
        "communes": [TALANT],
    }
    created = client.post("/api/v1/users", headers=admin, json=body)
    assert created.status_code == 201
    assert created.json()["communes"] == [TALANT]
    assert "password" not in created.text and "argon2" not in created.text
    assert client.post("/api/v1/users", headers=admin, json=body).status_code == 409
    unknown = client.post(
        "/api/v1/users", headers=admin, json={**body, "username": "x" + username, "communes": ["99999"]}
    )
    assert unknown.status_code == 422 and unknown.json()["type"] == "/problems/unknown-commune"
    short = client.post("/api/v1/users", headers=admin, json={**body, "username": "y" + username, "password": "short"})
    assert short.status_code == 422 and short.json()["errors"][0]["pointer"] == "#/password"
    bad_role = client.post(
        "/api/v1/users", headers=admin, json={**body, "username": "z" + username, "roles": ["mayor"]}
    )
    assert bad_role.status_code == 422
    updated = client.patch(
        f"/api/v1/users/{username}", headers=admin, json={"roles": ["supervisor"], "metropolitan": True}
    )
    assert updated.json()["roles"] == ["supervisor"] and updated.json()["communes"] is None
    entries = client.get(f"/api/v1/audit?target_id={username}", headers=admin).json()["items"]
    assert [e["action"] for e in entries] == ["user.updated", "user.created"]
    assert entries[0]["before"]["roles"] == ["operator"] and entries[0]["after"]["roles"] == ["supervisor"]
    assert "password_hash" not in str(entries)


def test_only_administrators_manage_users(
    client: TestClient, admin: dict[str, str], talant_operator: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/users",
        headers=talant_operator,
        json={"username": "sneaky", "password": "a-long-enough-password", "roles": ["administrator"]},
    )
    assert response.status_code == 403
    assert client.get("/api/v1/users", headers=talant_operator).status_code == 403


def test_disabled_account_cannot_log_in(client: TestClient, admin: dict[str, str]) -> None:
    username = f"gone{uuid.uuid4().hex[:6]}"
    client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": username, "password": "a-long-enough-password", "roles": ["operator"]},
    )
    login(client, username, "a-long-enough-password")
    client.patch(f"/api/v1/users/{username}", headers=admin, json={"is_active": False})
    assert (
        client.post("/auth/token", data={"username": username, "password": "a-long-enough-password"}).status_code == 400
    )


def test_audit_log_reading_and_verification(client: TestClient, admin: dict[str, str]) -> None:
    analyst = make_user(client, admin, ["security_analyst"], None)
    page = client.get("/api/v1/audit?limit=3", headers=analyst).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(seqs, reverse=True)
    older = client.get(f"/api/v1/audit?limit=3&cursor={page['next_cursor']}", headers=analyst).json()
    assert older["items"][0]["seq"] < seqs[-1]
    report = client.get("/api/v1/audit/verify", headers=analyst).json()
    assert report["ok"] is True and report["checked"] >= 6 and report["breaks"] == []
    operator = make_user(client, admin, ["operator"], [TALANT])
    assert client.get("/api/v1/audit", headers=operator).status_code == 403
