"""The `metropilot` command as a new user runs it: real processes, a real server on a real port."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

METROPILOT = str(Path(sys.executable).parent / "metropilot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METROPILOT_")}
    env.update(METROPILOT_VAR_DIR=str(var_dir), METROPILOT_SEED_SCALE="0.02", METROPILOT_LOG_LEVEL="WARNING")
    env.update(extra)
    return env


def cli(var_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [METROPILOT, *args], env=env_for(var_dir, **extra), cwd=var_dir, capture_output=True, text=True, timeout=300
    )


def start_run(var_dir: Path, port: int, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [METROPILOT, "run"],
        env=env_for(var_dir, METROPILOT_PORT=str(port), COLUMNS="200", **extra),
        cwd=var_dir,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"metropilot run exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"/health never answered 200:\n{log.read_text()}")


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.slow
def test_first_run_prints_the_login_seeds_and_serves_then_restarts_without_reseeding(var_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = var_dir / "run1.log"
    process = start_run(var_dir, port, log)
    try:
        wait_ready(base, process, log)
        output = log.read_text()
        assert f"http://127.0.0.1:{port}" in output
        match = re.search(r"mot de passe (\S+)", output)
        assert match, output
        password = match.group(1)
        assert (var_dir / "metropilot.db").exists() and (var_dir / "secret.key").stat().st_mode & 0o077 == 0
        health = httpx.get(f"{base}/health").json()
        assert health == {"status": "ok", "version": health["version"], "database": "sqlite"}
        token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        stats = httpx.get(f"{base}/api/v1/assets/stats", headers=headers).json()
        assert stats["by_type"]["streetlight"] == 680 and len(stats["by_commune"]) > 10
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "metropilot"
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and 'lang="fr"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    finally:
        process.terminate()
        process.wait(timeout=30)

    # Second start on the same directory: nothing re-seeded, no new password.
    log2 = var_dir / "run2.log"
    process = start_run(var_dir, port, log2)
    try:
        wait_ready(base, process, log2)
        assert "mot de passe" not in log2.read_text().split("Connexion")[0]
        assert "Métropole simulée créée" not in log2.read_text()
        token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": password}).json()
        stats = httpx.get(
            f"{base}/api/v1/assets/stats", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).json()
        assert stats["by_type"]["streetlight"] == 680
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_admin_password_from_the_environment_and_user_creation(var_dir: Path) -> None:
    result = cli(var_dir, "user", "create", "alice", "--role", "operator", "--commune", "21617",
                 "--password", "alice-long-password", METROPILOT_ADMIN_PASSWORD="from-env-password")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Created alice (operator; communes: ['21617'])" in result.stdout
    bad = cli(
        var_dir, "user", "create", "bob", "--role", "operator", "--commune", "99999", "--password", "bob-long-password"
    )
    assert bad.returncode == 1 and "Unknown commune" in bad.stderr
    listed = cli(var_dir, "user", "list")
    assert "alice" in listed.stdout and "admin" in listed.stdout


def test_import_command_names_bad_rows_and_audit_verify_catches_tampering(var_dir: Path) -> None:
    bad_csv = var_dir / "bad.csv"
    bad_csv.write_text(
        "type,name,lon,lat,attr.sensor_kind,attr.measured_properties\nsensor,Sonde,5.04,47.32,noise,NO2\n"
    )
    result = cli(var_dir, "assets", "import", str(bad_csv), METROPILOT_ADMIN_PASSWORD="x-password-123")
    assert result.returncode == 1
    assert "row 1 attributes" in result.stderr and "noise" in result.stderr
    good_csv = var_dir / "good.csv"
    good_csv.write_text(
        "type,name,lon,lat,attr.sensor_kind,attr.measured_properties\nsensor,Sonde,5.04,47.32,noise,noiseLevel\n"
    )
    assert cli(var_dir, "assets", "import", str(good_csv), "--dry-run").stdout.startswith("would import 1")
    imported = cli(var_dir, "assets", "import", str(good_csv))
    assert imported.returncode == 0 and "imported 1 assets" in imported.stdout

    verified = cli(var_dir, "audit", "verify")
    assert verified.returncode == 0 and "Audit chain intact" in verified.stdout

    with sqlite3.connect(var_dir / "metropilot.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE action = 'asset.imported'")
    tampered = cli(var_dir, "audit", "verify")
    assert tampered.returncode == 1
    assert "Audit chain broken" in tampered.stderr and "altered" in tampered.stderr


def test_seed_command_at_another_scale_and_refusal_on_a_filled_registry(var_dir: Path) -> None:
    first = cli(var_dir, "seed", "--scale", "0.01", "--seed", "3")
    assert first.returncode == 0, first.stderr
    assert re.search(r"streetlight\s+│\s+340", first.stdout)
    again = cli(var_dir, "seed", "--scale", "0.01")
    assert again.returncode == 1 and "already holds" in again.stderr
