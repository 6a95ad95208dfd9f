"""The append-only, tamper-evident audit log.

Every state change writes one entry in the same transaction as the change itself: who, what, when,
the state before and after, and why. Each entry's hash covers its content and the previous entry's
hash, so altering or deleting any entry breaks the chain from that point on; ``verify`` walks it.
The database also refuses UPDATE and DELETE on the table (triggers, see the initial migration);
the chain is what still catches an attacker who drops those triggers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from metropilot.core.models import AuditEntry
from metropilot.core.permissions import Principal

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK = 0x6D6574726F  # advisory lock key serialising chain appends on PostgreSQL


def canonical_json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def _timestamp(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    payload = orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"\n" + payload).hexdigest()


def _hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": _timestamp(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "commune_code": entry.commune_code,
        "reason": entry.reason,
        "before": entry.before,
        "after": entry.after,
    }


def _chain_head(session: Session) -> tuple[int, str]:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK})
    # On SQLite the write transaction already holds the database write lock (BEGIN IMMEDIATE).
    row = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def record(
    session: Session,
    actor: Principal | str,
    action: str,
    *,
    at: datetime,
    target_type: str,
    target_id: str | None = None,
    commune_code: str | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry; call inside the write transaction that makes the change."""
    last_seq, prev_hash = _chain_head(session)
    entry = AuditEntry(
        seq=last_seq + 1,
        at=at,
        actor=actor.actor if isinstance(actor, Principal) else actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        commune_code=commune_code,
        reason=reason,
        before=canonical_json(before),
        after=canonical_json(after),
        prev_hash=prev_hash,
        hash="",
    )
    entry.hash = entry_hash(prev_hash, _hashed_fields(entry))
    session.add(entry)
    session.flush()
    return entry


@dataclass(slots=True)
class ChainReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    breaks: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session, *, max_breaks: int = 100) -> ChainReport:
    """Walk the whole chain; report every entry whose link or content does not check out."""
    report = ChainReport()
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for entry in _entries(session):
        report.checked += 1
        if entry.seq != expected_seq:
            report.breaks.append((entry.seq, f"sequence gap: expected {expected_seq}, found {entry.seq}"))
        if entry.prev_hash != expected_prev:
            report.breaks.append((entry.seq, "prev_hash does not match the previous entry's hash"))
        recomputed = entry_hash(entry.prev_hash, _hashed_fields(entry))
        if recomputed != entry.hash:
            report.breaks.append((entry.seq, "content does not match its hash (entry altered)"))
        if len(report.breaks) >= max_breaks:
            break
        expected_prev = entry.hash
        expected_seq = entry.seq + 1
        report.head_seq, report.head_hash = entry.seq, entry.hash
    return report
