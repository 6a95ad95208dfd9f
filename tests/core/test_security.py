"""Password hashing and access tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from metropilot.core.permissions import Permission, Principal, Role
from metropilot.core.security import (
    InvalidToken,
    decode_access_token,
    hash_password,
    issue_access_token,
    verify_password,
)

KEY = "k" * 48


def test_argon2_hash_verifies_only_the_right_password() -> None:
    digest = hash_password("correct horse battery staple")
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, "correct horse battery staple")
    assert not verify_password(digest, "Correct horse battery staple")
    assert not verify_password("not-a-hash", "x")


def test_token_round_trip_keeps_roles_and_scope() -> None:
    principal = Principal("ana", frozenset({Role.OPERATOR}), frozenset({"21617"}), user_id=7)
    token = issue_access_token(principal, key=KEY, ttl_s=60).token
    decoded = decode_access_token(token, key=KEY)
    assert decoded == principal
    assert decoded.can(Permission.ASSETS_WRITE) and not decoded.can(Permission.USERS_MANAGE)
    assert decoded.sees("21617") and not decoded.sees("21515")


def test_metropolitan_scope_round_trips_as_none() -> None:
    principal = Principal("sup", frozenset({Role.SUPERVISOR}), None)
    decoded = decode_access_token(issue_access_token(principal, key=KEY, ttl_s=60).token, key=KEY)
    assert decoded.communes is None and decoded.sees("21231")


def test_expired_tampered_and_foreign_tokens_are_refused() -> None:
    principal = Principal("ana", frozenset({Role.ADMINISTRATOR}), None)
    expired = jwt.encode(
        {
            "iss": "metropilot",
            "sub": "ana",
            "roles": ["administrator"],
            "communes": "*",
            "typ": "access",
            "iat": int(time.time()) - 120,
            "exp": int(time.time()) - 60,
        },
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="expired"):
        decode_access_token(expired, key=KEY)
    token = issue_access_token(principal, key=KEY, ttl_s=60).token
    header, payload, signature = token.split(".")
    with pytest.raises(InvalidToken):
        decode_access_token(f"{header}.{payload}.{signature[:-2]}xx", key=KEY)
    with pytest.raises(InvalidToken):
        decode_access_token(token, key="another-key" * 5)
    unsigned = jwt.encode(
        {"iss": "metropilot", "sub": "x", "exp": int(time.time()) + 60, "iat": 0}, "", algorithm="none"
    )
    with pytest.raises(InvalidToken):
        decode_access_token(unsigned, key=KEY)
