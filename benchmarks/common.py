"""Shared pieces of the benchmarks: machine description, databases, a real server process, wrk."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_PASSWORD = "benchmark-admin-password"
SECRET = "benchmark-signing-key-0123456789-abcdefghijklmnop"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    pg_version = None
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    except psycopg.OperationalError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "load_average_at_start": os.getloadavg(),
    }


def postgres_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def fresh_pg_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]


def bench_env(var_dir: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        METROPILOT_VAR_DIR=str(var_dir),
        METROPILOT_DATABASE_URL=database_url,
        METROPILOT_ADMIN_PASSWORD=ADMIN_PASSWORD,
        METROPILOT_SECRET_KEY=SECRET,
        METROPILOT_ACCESS_TOKEN_TTL_S="3600",
        METROPILOT_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@contextmanager
def server(
    var_dir: Path, database_url: str = "", *, command: str = "serve", workers: int = 1, **extra: str
) -> Iterator[Server]:
    """A real metropilot process on a free port, ready (GET /health = 200) when yielded."""
    port = free_port()
    env = bench_env(var_dir, database_url, METROPILOT_PORT=str(port), **extra)
    args = [str(ROOT / ".venv" / "bin" / "metropilot"), command]
    if command == "serve":
        args += ["--workers", str(workers)]
    log = (var_dir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(args, env=env, cwd=var_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: see {log.name}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become ready")
            time.sleep(0.3)
        token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).json()
        yield Server(base, token["access_token"], process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


_WRK_SCRIPT = """
local paths = {%(paths)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Authorization"] = "Bearer %(token)s"})
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors": %%d, '
    .. '"non2xx": %%d, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "p999_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
"""


def wrk(
    base_url: str, token: str, paths: list[str], *, connections: int, duration_s: int, threads: int = 2
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs Debian's wrk)")
    script = WORK / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(_WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths), "token": token})
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script.unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    result["requests_per_s"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return path
