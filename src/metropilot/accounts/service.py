"""Accounts: the first administrator, logins with lockout, token rotation, user management."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from metropilot.accounts.models import RefreshToken, User
from metropilot.accounts.schemas import UserCreate, UserOut, UserUpdate
from metropilot.core import audit
from metropilot.core.clock import Clock
from metropilot.core.permissions import Principal, Role
from metropilot.core.problems import Problem
from metropilot.core.security import (
    DUMMY_PASSWORD_HASH,
    generate_password,
    hash_password,
    issue_access_token,
    new_opaque_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from metropilot.core.settings import Settings
from metropilot.territory.service import existing_codes

ADMIN_USERNAME = "admin"


def principal_of(user: User) -> Principal:
    return Principal(
        username=user.username,
        roles=frozenset(Role(r) for r in user.roles),
        communes=None if user.communes is None else frozenset(user.communes),
        user_id=user.id,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        email=user.email,
        roles=[Role(r) for r in user.roles],
        communes=user.communes,
        is_active=user.is_active,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def _snapshot(user: User) -> dict[str, Any]:
    """What the audit log keeps of a user: never the password hash."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "roles": sorted(user.roles),
        "communes": None if user.communes is None else sorted(user.communes),
        "is_active": user.is_active,
    }


def ensure_admin(session: Session, settings: Settings, clock: Clock) -> str | None:
    """Create ``admin`` if there is no user yet. Returns the password when it was generated here."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    generated = settings.admin_password is None
    password = generate_password() if settings.admin_password is None else settings.admin_password.get_secret_value()
    now = clock.now()
    admin = User(
        username=ADMIN_USERNAME,
        full_name="Administrateur",
        email=None,
        password_hash=hash_password(password),
        roles=[Role.ADMINISTRATOR.value],
        communes=None,
        is_active=True,
        failed_logins=0,
        created_at=now,
        updated_at=now,
    )
    session.add(admin)
    session.flush()
    audit.record(
        session,
        "system:bootstrap",
        "user.created",
        at=now,
        target_type="user",
        target_id=ADMIN_USERNAME,
        after=_snapshot(admin),
        reason="premier administrateur",
    )
    return password if generated else None


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str


def _issue(session: Session, user: User, key: str, settings: Settings, now: datetime) -> Tokens:
    access = issue_access_token(principal_of(user), key=key, ttl_s=settings.access_token_ttl_s)
    refresh, digest = new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            digest=digest,
            issued_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
            revoked_at=None,
        )
    )
    return Tokens(access.token, access.expires_in, refresh)


def login(
    session: Session, username: str, password: str, *, key: str, settings: Settings, clock: Clock
) -> Tokens | Problem:
    """Tokens, or the problem to raise *after* committing (failed attempts and revocations must persist)."""
    now = clock.now()
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        verify_password(DUMMY_PASSWORD_HASH, password)  # same work as a real check: no username oracle
        return Problem("invalid-credentials", "Unknown username or wrong password.", error="invalid_grant")
    if user.locked_until is not None and user.locked_until > now:
        retry = int((user.locked_until - now).total_seconds()) + 1
        return Problem(
            "too-many-attempts",
            f"Too many failed logins; retry in {retry} s.",
            headers={"Retry-After": str(retry)},
        )
    if not user.is_active or not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_s)
            user.failed_logins = 0
            audit.record(
                session,
                "system:auth",
                "user.locked",
                at=now,
                target_type="user",
                target_id=user.username,
                after={"locked_until": user.locked_until.isoformat()},
                reason=f"{settings.login_max_failures} échecs de connexion",
            )
        return Problem("invalid-credentials", "Unknown username or wrong password.", error="invalid_grant")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, user.username, "user.login", at=now, target_type="user", target_id=user.username)
    return _issue(session, user, key, settings, now)


def refresh(session: Session, token: str, *, key: str, settings: Settings, clock: Clock) -> Tokens | Problem:
    """Rotate a refresh token. Presenting a revoked one revokes the whole family (token theft)."""
    now = clock.now()
    stored = session.scalar(select(RefreshToken).where(RefreshToken.digest == token_digest(token)))
    if stored is None or stored.expires_at <= now:
        return Problem("invalid-credentials", "The refresh token is unknown or expired.", error="invalid_grant")
    user = stored.user
    if stored.revoked_at is not None:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            session,
            "system:auth",
            "user.tokens_revoked",
            at=now,
            target_type="user",
            target_id=user.username,
            reason="jeton de rafraîchissement déjà utilisé présenté à nouveau",
        )
        return Problem(
            "invalid-credentials", "The refresh token was already used; sign in again.", error="invalid_grant"
        )
    if not user.is_active:
        return Problem("invalid-credentials", "The account is disabled.", error="invalid_grant")
    stored.revoked_at = now
    return _issue(session, user, key, settings, now)


def revoke(session: Session, token: str, clock: Clock) -> None:
    stored = session.scalar(select(RefreshToken).where(RefreshToken.digest == token_digest(token)))
    if stored is not None and stored.revoked_at is None:
        stored.revoked_at = clock.now()


def _check_communes(session: Session, actor: Principal, communes: list[str] | None) -> list[str] | None:
    if communes is None:
        if not actor.is_metropolitan:
            raise Problem("commune-out-of-scope", "Only a metropolitan administrator can grant the whole métropole.")
        return None
    wanted = sorted(set(communes))
    known = existing_codes(session, wanted)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise Problem("unknown-commune", f"Unknown INSEE code(s): {', '.join(unknown)}", codes=unknown)
    outside = [c for c in wanted if not actor.sees(c)]
    if outside:
        raise Problem("commune-out-of-scope", f"Outside your scope: {', '.join(outside)}", codes=outside)
    return wanted


def create_user(session: Session, actor: Principal, body: UserCreate, clock: Clock) -> User:
    username = body.username.lower()
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Problem("duplicate-id", f"The username {username!r} is taken.")
    communes = _check_communes(session, actor, body.communes)
    now = clock.now()
    user = User(
        username=username,
        full_name=body.full_name,
        email=body.email,
        password_hash=hash_password(body.password),
        roles=[r.value for r in body.roles],
        communes=communes,
        is_active=True,
        failed_logins=0,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", at=now, target_type="user", target_id=username, after=_snapshot(user))
    return user


def get_user(session: Session, actor: Principal, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not _visible(actor, user):
        raise Problem("not-found", f"No user {username!r}.")
    return user


def _visible(actor: Principal, user: User) -> bool:
    if actor.is_metropolitan:
        return True
    return user.communes is not None and set(user.communes) <= (actor.communes or frozenset())


def list_users(session: Session, actor: Principal) -> list[User]:
    return [u for u in session.scalars(select(User).order_by(User.username)) if _visible(actor, u)]


def update_user(session: Session, actor: Principal, username: str, body: UserUpdate, clock: Clock) -> User:
    user = get_user(session, actor, username)
    before = _snapshot(user)
    if body.full_name is not None:
        user.full_name = body.full_name
    if body.email is not None:
        user.email = body.email
    if body.roles is not None:
        user.roles = sorted({r.value for r in body.roles})
    if body.metropolitan:
        user.communes = _check_communes(session, actor, None)
    elif body.communes is not None:
        user.communes = _check_communes(session, actor, body.communes)
    if body.is_active is not None:
        if not body.is_active and user.username == actor.username:
            raise Problem("conflict", "You cannot disable your own account.")
        user.is_active = body.is_active
    password_changed = body.password is not None
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    if password_changed or body.is_active is False or body.roles is not None or body.communes is not None:
        # Rights changed: outstanding refresh tokens must not carry the old ones forward.
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )
    now = clock.now()
    user.updated_at = now
    after = _snapshot(user)
    if password_changed:
        after["password"] = "changed"  # noqa: S105 (records that it changed, never the value)
    audit.record(
        session,
        actor,
        "user.updated",
        at=now,
        target_type="user",
        target_id=user.username,
        before=before,
        after=after,
    )
    return user
