"""Database engine behaviour on both backends."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from metropilot.core.db import Database
from metropilot.core.platform import Platform
from tests.conftest import create_pg_database, drop_pg_database


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_migrations_upgrade_downgrade_and_upgrade_again(platform: Platform, tmp_path: Path) -> None:
    if platform.db.is_sqlite:
        url = f"sqlite:///{tmp_path / 'migr.db'}"
        name = None
    else:
        name = create_pg_database()
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    db = Database(url)
    try:
        db.upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"asset", "commune", "app_user", "audit_log", "road_segment", "refresh_token"} <= tables
        command.downgrade(db.alembic_config(), "base")
        assert "asset" not in inspect(db.engine).get_table_names()
        db.upgrade()
        assert "asset" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()
        if name:
            drop_pg_database(name)


def test_concurrent_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    with db.write() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[Exception] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with db.write() as session:
                    value = session.execute(text("SELECT n FROM counter")).scalar_one()
                    session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.read() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 100
    assert errors == []
    db.dispose()


def test_migrations_match_the_models(platform: Platform) -> None:
    """Autogenerate finds nothing to add: the migration scripts create exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from metropilot.core.models import Base

    with platform.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
