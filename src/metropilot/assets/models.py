"""The digital twin's registry: one row per piece of urban equipment, never hard-deleted."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from metropilot.core.models import Base, BigIntPK


class ImportBatch(Base):
    """One bulk import (file or seed); the audit log holds one entry per batch, pointing here."""

    __tablename__ = "asset_import_batch"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(300))  # file name, or "seed scale=1.0 seed=..."
    format: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    counts_by_type: Mapped[dict[str, int]] = mapped_column(JSON)


class Asset(Base):
    __tablename__ = "asset"
    __table_args__ = (
        # Pages are in registration (pk) order: these serve "one type" / "one commune" pages without a sort.
        Index("ix_asset_type_pk", "type", "pk"),
        Index("ix_asset_commune_pk", "commune_code", "pk"),
        Index("ix_asset_status", "status"),
        Index("ix_asset_parent_id", "parent_id"),
        # Covering index for map queries: a bounding box filtered by type, status and commune yields
        # its keys and versions from the index alone, without reading the (wide) rows.
        Index("ix_asset_cell", "cell", "lon", "lat", "type", "status", "commune_code", "version"),
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(200), unique=True)  # urn:ngsi-ld:<Type>:<local-id>
    type: Mapped[str] = mapped_column(String(40))
    commune_code: Mapped[str] = mapped_column(ForeignKey("commune.code"))
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    cell: Mapped[int] = mapped_column(BigInteger)  # grid cell of (lon, lat): the spatial index, see core.geo
    status: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(300))
    installed_on: Mapped[date | None] = mapped_column(Date)
    manufacturer: Mapped[str | None] = mapped_column(String(120))
    model: Mapped[str | None] = mapped_column(String(120))
    serial_number: Mapped[str | None] = mapped_column(String(120))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    # The asset this one hangs off (a streetlight's cabinet): indexed, so "what does this cabinet feed"
    # is a lookup, not a scan of every streetlight's attributes.
    parent_id: Mapped[str | None] = mapped_column(String(200))
    # Name, address and id folded to lowercase ASCII: accent- and case-insensitive search on both
    # databases (SQLite's lower() only folds ASCII letters).
    search_text: Mapped[str] = mapped_column(Text)
    import_batch_id: Mapped[str | None] = mapped_column(ForeignKey("asset_import_batch.id"))
    # The asset rendered as a GeoJSON Feature at every write ("render on write"): list and bbox
    # queries concatenate these instead of rebuilding thousands of dicts per request.
    feature: Mapped[str] = mapped_column(Text)
