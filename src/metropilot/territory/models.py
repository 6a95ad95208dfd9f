"""The territory: the 23 communes (each a tenant) and the road references."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from metropilot.core.models import Base, BigIntPK


class Commune(Base):
    __tablename__ = "commune"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)  # INSEE code
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer)
    # GeoJSON geometry text (Polygon/MultiPolygon, WGS84).
    boundary: Mapped[str] = mapped_column(Text)
    # "approximation" until official contours (e.g. IGN ADMIN EXPRESS) are imported.
    boundary_source: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class RoadSegment(Base):
    """One street segment between two junctions: drawn on maps, and the edges of the road graph."""

    __tablename__ = "road_segment"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("commune.code"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    road_class: Mapped[str] = mapped_column(String(20))  # primary | secondary | residential
    from_node: Mapped[int] = mapped_column(Integer, index=True)
    to_node: Mapped[int] = mapped_column(Integer, index=True)
    coordinates: Mapped[str] = mapped_column(Text)  # JSON [[lon, lat], ...]
    length_m: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(60))
