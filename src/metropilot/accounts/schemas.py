"""API shapes for accounts, tokens and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from metropilot.core.permissions import Role

_USERNAME = r"^[a-z0-9][a-z0-9._-]{1,79}$"


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int
    refresh_token: str
    scope: str = ""


class UserBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str = Field(default="", max_length=200)
    email: EmailStr | None = None
    roles: list[Role] = Field(min_length=1)
    communes: list[str] | None = Field(
        default=None, description="INSEE codes the user may act on; null for the whole métropole"
    )

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, roles: list[Role]) -> list[Role]:
        return sorted(set(roles))


class UserCreate(UserBase):
    username: str = Field(pattern=_USERNAME)
    password: str = Field(min_length=12, max_length=256)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    roles: list[Role] | None = Field(default=None, min_length=1)
    communes: list[str] | None = None
    metropolitan: bool | None = Field(default=None, description="true clears the commune scope (all communes)")
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=256)


class UserOut(BaseModel):
    id: int
    username: str
    full_name: str
    email: str | None
    roles: list[Role]
    communes: list[str] | None
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime


class Me(UserOut):
    permissions: list[str]


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    commune_code: str | None
    reason: str | None
    before: Any
    after: Any
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class ChainReportOut(BaseModel):
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    breaks: list[dict[str, Any]]
