"""Roles, the permissions they grant, and the commune scope of the person acting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    FIELD_AGENT = "field_agent"
    DATA_STEWARD = "data_steward"
    SECURITY_ANALYST = "security_analyst"


class Permission(StrEnum):
    ASSETS_READ = "assets:read"
    ASSETS_WRITE = "assets:write"  # create, update, retire one asset
    ASSETS_IMPORT = "assets:import"  # bulk imports
    TERRITORY_WRITE = "territory:write"  # commune contours, road references
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"


_ALL = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: _ALL,
    Role.SUPERVISOR: frozenset(
        {
            Permission.ASSETS_READ,
            Permission.ASSETS_WRITE,
            Permission.ASSETS_IMPORT,
            Permission.USERS_READ,
            Permission.AUDIT_READ,
        }
    ),
    Role.OPERATOR: frozenset({Permission.ASSETS_READ, Permission.ASSETS_WRITE}),
    Role.FIELD_AGENT: frozenset({Permission.ASSETS_READ}),
    Role.DATA_STEWARD: frozenset(
        {
            Permission.ASSETS_READ,
            Permission.ASSETS_WRITE,
            Permission.ASSETS_IMPORT,
            Permission.TERRITORY_WRITE,
        }
    ),
    Role.SECURITY_ANALYST: frozenset({Permission.ASSETS_READ, Permission.USERS_READ, Permission.AUDIT_READ}),
}

ROLE_LABELS_FR: dict[Role, str] = {
    Role.ADMINISTRATOR: "Administrateur",
    Role.SUPERVISOR: "Superviseur",
    Role.OPERATOR: "Opérateur",
    Role.FIELD_AGENT: "Agent de terrain",
    Role.DATA_STEWARD: "Référent données",
    Role.SECURITY_ANALYST: "Analyste sécurité",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: taken from a verified access token, or the system itself.

    ``communes`` is the set of INSEE codes the person may see and act on; ``None`` means the whole
    métropole (a metropolitan supervisor, an administrator).
    """

    username: str
    roles: frozenset[Role]
    communes: frozenset[str] | None
    user_id: int | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS[role]
        return frozenset(granted)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def is_metropolitan(self) -> bool:
        return self.communes is None

    def sees(self, commune_code: str | None) -> bool:
        if self.communes is None:
            return True
        return commune_code is not None and commune_code in self.communes

    def visible_communes(self, requested: Iterable[str] | None = None) -> frozenset[str] | None:
        """The communes a query may cover: the request narrowed to the scope (None = no limit)."""
        wanted = frozenset(requested) if requested is not None else None
        if self.communes is None:
            return wanted
        if wanted is None:
            return self.communes
        return wanted & self.communes

    @property
    def actor(self) -> str:
        return self.username


SYSTEM = Principal(username="system", roles=frozenset({Role.ADMINISTRATOR}), communes=None)


def system_principal(name: str) -> Principal:
    """A named system actor (e.g. ``system:seed``) with full rights, for jobs and commands."""
    return Principal(username=f"system:{name}", roles=frozenset({Role.ADMINISTRATOR}), communes=None)
