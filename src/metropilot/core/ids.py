"""NGSI-LD style identifiers: ``urn:ngsi-ld:<Type>:<local-id>``."""

from __future__ import annotations

import re
import unicodedata

URN_PREFIX = "urn:ngsi-ld:"
# Local ids are kept to unreserved URN characters so they survive URLs, CSV and MQTT topics unescaped.
_LOCAL_ID = r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}"
_TYPE = r"[A-Z][A-Za-z0-9]{0,63}"
URN_RE = re.compile(rf"^urn:ngsi-ld:(?P<type>{_TYPE}):(?P<local>{_LOCAL_ID})$")


class InvalidUrn(ValueError):
    pass


def make_urn(ngsi_type: str, local_id: str) -> str:
    urn = f"{URN_PREFIX}{ngsi_type}:{local_id}"
    if not URN_RE.match(urn):
        raise InvalidUrn(f"{urn!r} is not a valid urn:ngsi-ld:<Type>:<local-id> identifier")
    return urn


def parse_urn(urn: str) -> tuple[str, str]:
    match = URN_RE.match(urn)
    if not match:
        raise InvalidUrn(
            f"{urn!r} is not a valid identifier: expected urn:ngsi-ld:<Type>:<local-id> "
            "with a local id of letters, digits, '.', '_', '~' or '-'"
        )
    return match["type"], match["local"]


def slugify(text: str) -> str:
    """``Fontaine-lès-Dijon`` -> ``fontaine-les-dijon``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
