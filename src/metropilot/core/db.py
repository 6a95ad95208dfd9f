"""Database engine and sessions, for SQLite (embedded default) and PostgreSQL.

Sessions come from :class:`Database` as context managers: ``read()`` for queries, ``write()`` for a
transaction that commits on success and rolls back on any exception, so a failed request never leaves
half its changes behind. On SQLite a write transaction starts with ``BEGIN IMMEDIATE``: it takes the
write lock up front, so two writers queue on ``busy_timeout`` instead of failing late on a lock upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # safe with WAL: a crash loses at most the last commits, never integrity
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache per connection
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)


class Database:
    """One engine per process; cheap sessions on top of it."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql+psycopg")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
            # Connections are cheap to keep and costly to reopen (pragmas, page cache): keep enough for
            # every thread-pool worker instead of closing the overflow after each request.
            kwargs["pool_size"] = pool_size * 4
            kwargs["max_overflow"] = pool_size * 4
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._read = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write = sessionmaker(
            self.engine.execution_options(sqlite_write=True), expire_on_commit=False, autoflush=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self._read()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        session = self._write()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def alembic_config(self) -> Config:
        script_location = str(resources.files("metropilot") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)
        config.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (creating the database file if absent)."""
        command.upgrade(self.alembic_config(), revision)

    def is_migrated(self) -> bool:
        return inspect(self.engine).has_table("alembic_version")

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself instead of pysqlite's implicit handling.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get("sqlite_write", False)
    # Straight to the driver: going through SQLAlchemy's statement machinery cost ~10 % of a read request.
    connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]
