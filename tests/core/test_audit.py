"""The audit log: one entry per change, chained by hash, append-only, and the verifier catches tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from metropilot.core import audit
from metropilot.core.platform import Platform


def _record(platform: Platform, n: int, prefix: str) -> list[int]:
    seqs = []
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for i in range(n):
        with platform.transaction() as session:
            entry = audit.record(
                session,
                "tester",
                f"{prefix}.changed",
                at=at + timedelta(seconds=i),
                target_type="thing",
                target_id=f"{prefix}-{i}",
                commune_code="21231",
                before={"v": i},
                after={"v": i + 1, "é": "ü"},
                reason="test",
            )
            seqs.append(entry.seq)
    return seqs


def test_entries_chain_and_verify(platform: Platform) -> None:
    seqs = _record(platform, 5, "chain")
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    with platform.db.read() as session:
        report = audit.verify(session)
    assert report.ok, report.breaks
    assert report.head_seq == seqs[-1]
    assert report.checked >= 5


def test_the_database_refuses_updates_and_deletes(platform: Platform) -> None:
    _record(platform, 1, "guard")
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), platform.db.write() as session:
            session.execute(text(statement))


def test_verify_catches_an_altered_and_a_deleted_entry(platform: Platform) -> None:
    seqs = _record(platform, 4, "tamper")
    # An attacker with database access drops the guards and edits history.
    with platform.db.engine.begin() as connection:
        if platform.db.is_sqlite:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        connection.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = :s"), {"s": seqs[1]})
        connection.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seqs[3]})
    with platform.db.read() as session:
        report = audit.verify(session)
    assert not report.ok
    broken = {seq for seq, _ in report.breaks}
    assert seqs[1] in broken
    reasons = " ".join(reason for _, reason in report.breaks)
    assert "altered" in reasons
    # Removing the last entry leaves no gap to see; removing one in the middle breaks the next link.
    assert report.head_seq == seqs[2] or any("gap" in r for _, r in report.breaks)
