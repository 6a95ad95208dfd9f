"""Platform settings, read once from the environment (prefix ``METROPILOT_``)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METROPILOT_", extra="ignore")

    # Where the embedded default keeps its files (SQLite database, generated secret key).
    var_dir: Path = Path("var")
    # Empty means the embedded default: a SQLite file under var_dir.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Signing key for access tokens. When unset, one is generated on first start and kept in
    # var_dir/secret.key (mode 0600): nothing secret ever lives in the repository.
    secret_key: SecretStr | None = None
    access_token_ttl_s: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_s: int = Field(default=12 * 3600, ge=300)
    admin_password: SecretStr | None = None
    # Consecutive failed logins before a username is throttled, and for how long.
    login_max_failures: int = 5
    login_lockout_s: int = 300

    # Simulated metropolis seeded on first start when the registry is empty.
    seed_on_start: bool = True
    seed_scale: float = Field(default=1.0, gt=0, le=50)
    seed: int = 20190411  # the day the OnDijon control room opened

    # Accept positions up to this distance outside the metropolitan boundary, and this far from
    # the declared commune's area (commune areas are approximate until real contours are loaded).
    boundary_tolerance_m: float = 300.0
    commune_tolerance_m: float = 750.0

    # Largest accepted bulk import body (a 350,000-asset GeoJSON file is ~200 MB).
    max_import_bytes: int = 512 * 1024 * 1024

    # Rendered features kept in memory per process for list pages (~0.7 kB each; 0 disables).
    feature_cache_entries: int = Field(default=400_000, ge=0)

    # Threads running blocking request handlers in each process. Few is fastest (GIL): run one
    # process per core (`metropilot serve --workers N`) rather than many threads.
    worker_threads: int = Field(default=2, ge=1, le=256)

    log_level: str = "INFO"
    log_json: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'metropilot.db').resolve()}"

    def signing_key(self) -> str:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.var_dir / "secret.key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
