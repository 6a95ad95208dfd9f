"""HTTP: the OAuth2 token endpoint, user management and the audit log."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Form, Query, status
from sqlalchemy import select

from metropilot.accounts import service
from metropilot.accounts.schemas import (
    AuditEntryOut,
    AuditPage,
    ChainReportOut,
    Me,
    TokenResponse,
    UserCreate,
    UserOut,
    UserUpdate,
)
from metropilot.core import audit
from metropilot.core.auth import current_principal, get_platform, require
from metropilot.core.models import AuditEntry
from metropilot.core.permissions import Permission, Principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem

auth_router = APIRouter(prefix="/auth", tags=["authentication"])
router = APIRouter(prefix="/api/v1", tags=["accounts"])


@auth_router.post("/token", response_model=TokenResponse, summary="OAuth2 token endpoint (RFC 6749)")
def token(
    platform: Annotated[Platform, Depends(get_platform)],
    grant_type: Annotated[str, Form(pattern="^(password|refresh_token)$")] = "password",
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    scope: Annotated[str, Form()] = "",
) -> TokenResponse:
    """Password grant (``username``, ``password``) or refresh grant (``refresh_token``).

    Access tokens are short-lived (``expires_in`` seconds, 15 minutes by default); refresh tokens are
    single-use and rotate on every refresh.
    """
    settings, key, clock = platform.settings, platform.signing_key, platform.clock
    with platform.db.write() as session:
        if grant_type == "password":
            if not username or password is None:
                raise Problem("bad-request", "The password grant needs username and password.", error="invalid_request")
            outcome = service.login(session, username, password, key=key, settings=settings, clock=clock)
        else:
            if not refresh_token:
                raise Problem("bad-request", "The refresh grant needs refresh_token.", error="invalid_request")
            outcome = service.refresh(session, refresh_token, key=key, settings=settings, clock=clock)
    if isinstance(outcome, Problem):
        raise outcome
    return TokenResponse(
        access_token=outcome.access_token, expires_in=outcome.expires_in, refresh_token=outcome.refresh_token
    )


@auth_router.post("/revoke", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a refresh token (RFC 7009)")
def revoke(platform: Annotated[Platform, Depends(get_platform)], token: Annotated[str, Form()]) -> None:
    with platform.db.write() as session:
        service.revoke(session, token, platform.clock)


@router.get("/me", response_model=Me, tags=["accounts"])
def me(
    principal: Annotated[Principal, Depends(current_principal)],
    platform: Annotated[Platform, Depends(get_platform)],
) -> Me:
    with platform.db.read() as session:
        user = service.get_user(session, principal, principal.username)
        out = service.user_out(user)
    return Me(**out.model_dump(), permissions=sorted(p.value for p in principal.permissions))


@router.get("/users", response_model=list[UserOut])
def list_users(
    principal: Annotated[Principal, Depends(require(Permission.USERS_READ))],
    platform: Annotated[Platform, Depends(get_platform)],
) -> list[UserOut]:
    with platform.db.read() as session:
        return [service.user_out(u) for u in service.list_users(session, principal)]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserCreate,
    principal: Annotated[Principal, Depends(require(Permission.USERS_MANAGE))],
    platform: Annotated[Platform, Depends(get_platform)],
) -> UserOut:
    with platform.db.write() as session:
        return service.user_out(service.create_user(session, principal, body, platform.clock))


@router.get("/users/{username}", response_model=UserOut)
def get_user(
    username: str,
    principal: Annotated[Principal, Depends(require(Permission.USERS_READ))],
    platform: Annotated[Platform, Depends(get_platform)],
) -> UserOut:
    with platform.db.read() as session:
        return service.user_out(service.get_user(session, principal, username))


@router.patch("/users/{username}", response_model=UserOut)
def update_user(
    username: str,
    body: UserUpdate,
    principal: Annotated[Principal, Depends(require(Permission.USERS_MANAGE))],
    platform: Annotated[Platform, Depends(get_platform)],
) -> UserOut:
    with platform.db.write() as session:
        return service.user_out(service.update_user(session, principal, username, body, platform.clock))


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError as exc:
        raise Problem("bad-request", "Invalid cursor.") from exc


@router.get("/audit", response_model=AuditPage, tags=["audit"])
def list_audit(
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    platform: Annotated[Platform, Depends(get_platform)],
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    commune: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    """Newest first. Users scoped to communes see the entries of their communes only."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit + 1)
    before_seq = _decode_cursor(cursor)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if commune:
        query = query.where(AuditEntry.commune_code == commune)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    if principal.communes is not None:
        query = query.where(AuditEntry.commune_code.in_(sorted(principal.communes)))
    with platform.db.read() as session:
        rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        AuditEntryOut(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            commune_code=e.commune_code,
            reason=e.reason,
            before=orjson.loads(e.before) if e.before else None,
            after=orjson.loads(e.after) if e.after else None,
            hash=e.hash,
        )
        for e in rows
    ]
    next_cursor = base64.urlsafe_b64encode(str(rows[-1].seq).encode()).decode() if more and rows else None
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get("/audit/verify", response_model=ChainReportOut, tags=["audit"])
def verify_audit(
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    platform: Annotated[Platform, Depends(get_platform)],
) -> ChainReportOut:
    """Walk the whole hash chain (also ``metropilot audit verify``)."""
    if not principal.is_metropolitan:
        raise Problem("forbidden", "Verifying the whole chain needs a metropolitan scope.")
    with platform.db.read() as session:
        report = audit.verify(session)
    return ChainReportOut(
        ok=report.ok,
        checked=report.checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        breaks=[{"seq": seq, "reason": reason} for seq, reason in report.breaks],
    )
