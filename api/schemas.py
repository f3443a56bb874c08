"""Pydantic models of the service, in Create/Public pairs where a resource is written.

Each section belongs to the routes of one concept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# --------------------------------------------------------------------------- GeoJSON / grid


class Geometry(BaseModel):
    """A GeoJSON geometry (WGS84 lon/lat unless the request named another CRS)."""

    type: str = Field(..., description="GeoJSON geometry type, e.g. Polygon")
    coordinates: Any = Field(..., description="GeoJSON coordinates, lon before lat")


class Feature(BaseModel):
    """A GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    geometry: Geometry | None
    properties: dict[str, Any] = Field(default_factory=dict)


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]


class DivisionRef(BaseModel):
    """A division named by code and Chinese name."""

    code: str = Field(..., description="division code: 6 district (区), 9 street (街道), "
                                        "12 community (社区)")
    name: str = Field(..., description="Chinese name, e.g. 西长安街街道")
