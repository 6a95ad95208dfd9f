"""FastAPI dependencies: who is calling, and may they do this."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from metropilot.core.permissions import Permission, Principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.core.security import InvalidToken, decode_access_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def current_principal(
    token: str | None = Depends(oauth2_scheme), platform: Platform = Depends(get_platform)
) -> Principal:
    if not token:
        raise Problem("not-authenticated", "No bearer token was sent.", headers=_CHALLENGE)
    try:
        return decode_access_token(token, key=platform.signing_key)
    except InvalidToken as exc:
        raise Problem(
            "not-authenticated", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc


def require(*permissions: Permission) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold every listed permission."""

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        missing = [p.value for p in permissions if not principal.can(p)]
        if missing:
            raise Problem("forbidden", f"Your roles do not grant {', '.join(missing)}.", missing=missing)
        return principal

    return dependency


def require_commune(principal: Principal, commune_code: str | None) -> None:
    if not principal.sees(commune_code):
        raise Problem(
            "commune-out-of-scope",
            f"Your account is not scoped to commune {commune_code}.",
            commune=commune_code,
        )
