"""Shared fixtures: platforms on SQLite and on the local PostgreSQL, an HTTP client, accounts.

PostgreSQL tests get a fresh database per module (created and dropped here). When the server is
unreachable they are skipped with the reason, never passed silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from metropilot.bootstrap import prepare
from metropilot.core.platform import Platform
from metropilot.core.settings import Settings

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_PASSWORD = "admin-password-for-tests"
TEST_SECRET = "a-test-signing-key-that-is-long-enough-for-hs256"
TALANT, QUETIGNY, DIJON = "21617", "21515", "21231"


def _postgres_reason() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL unreachable at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]})"


_PG_REASON = _postgres_reason()


@pytest.fixture(scope="session")
def postgres_available() -> None:
    if _PG_REASON:
        pytest.skip(_PG_REASON)


def create_pg_database() -> str:
    name = f"metropilot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(var_dir: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": var_dir,
        "database_url": database_url,
        "admin_password": ADMIN_PASSWORD,
        "secret_key": TEST_SECRET,
        "seed_on_start": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and _PG_REASON:
        pytest.skip(_PG_REASON)
    return str(request.param)


@pytest.fixture(scope="module")
def platform(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    var_dir = tmp_path_factory.mktemp("var")
    database = create_pg_database() if backend == "postgresql" else ""
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}" if database else ""
    platform = Platform.from_settings(settings_for(var_dir, url))
    prepare(platform, seed=False)
    try:
        yield platform
    finally:
        platform.close()
        if database:
            drop_pg_database(database)


@pytest.fixture(scope="module")
def client(platform: Platform) -> Iterator[TestClient]:
    from metropilot.web.app import create_app

    with TestClient(create_app(platform, bootstrap=False)) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:
    return login(client, "admin", ADMIN_PASSWORD)


def make_user(
    client: TestClient, admin: dict[str, str], roles: list[str], communes: list[str] | None
) -> dict[str, str]:
    username = f"u{uuid.uuid4().hex[:10]}"
    password = "a-long-enough-password"
    response = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": username, "password": password, "roles": roles, "communes": communes},
    )
    assert response.status_code == 201, response.text
    return login(client, username, password)


@pytest.fixture(scope="module")
def talant_operator(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    return make_user(client, admin, ["operator"], [TALANT])


@pytest.fixture(scope="module")
def supervisor(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    return make_user(client, admin, ["supervisor"], None)
