"""Password hashing (argon2id) and short-lived signed access tokens (JWT, HS256)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from metropilot.core.permissions import Principal, Role

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_ISSUER = "metropilot"
_ALGORITHM = "HS256"
ALL_COMMUNES = "*"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A hash to verify against when the username does not exist, so that the response time does not tell
# an attacker which usernames are real.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(15)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


def issue_access_token(principal: Principal, *, key: str, ttl_s: int) -> IssuedToken:
    now = int(time.time())
    claims = {
        "iss": _ISSUER,
        "sub": principal.username,
        "uid": principal.user_id,
        "roles": sorted(role.value for role in principal.roles),
        "communes": ALL_COMMUNES if principal.communes is None else sorted(principal.communes),
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return IssuedToken(token=jwt.encode(claims, key, algorithm=_ALGORITHM), expires_in=ttl_s)


def decode_access_token(token: str, *, key: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the access token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the access token is invalid") from exc
    if claims.get("typ") != "access":
        raise InvalidToken("not an access token")
    try:
        roles = frozenset(Role(role) for role in claims.get("roles", []))
    except ValueError as exc:
        raise InvalidToken("the access token names an unknown role") from exc
    communes_claim = claims.get("communes", [])
    communes = None if communes_claim == ALL_COMMUNES else frozenset(str(c) for c in communes_claim)
    user_id = claims.get("uid")
    return Principal(
        username=str(claims["sub"]),
        roles=roles,
        communes=communes,
        user_id=int(user_id) if user_id is not None else None,
    )


def new_opaque_token() -> tuple[str, str]:
    """A random refresh token and the SHA-256 digest under which it is stored (never the token)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
