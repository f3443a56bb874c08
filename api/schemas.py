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


# ---- alerts (api/routes/alerts.py) ----


class AlertPublic(BaseModel):
    """A heat-map alert: a hotspot with its evidence (see gridcore.heatmap.Alert)."""

    id: int
    dataset: str = Field(..., description="the data set scanned, e.g. synthetic-ebikes-2018")
    cell_code: str = Field(..., description="peak cell (15-digit unit grid code)")
    cell_codes: list[str] = Field(..., description="every cell of the hotspot, peak first")
    start: str = Field(..., description="window start, ISO 8601, Beijing time")
    end: str = Field(..., description="window end (exclusive)")
    peak: str = Field(..., description="hour of the largest z")
    hour_of_week: int = Field(..., description="0 = Monday 00h .. 167")
    cell_count: float = Field(..., description="events in the peak cell at the peak hour")
    count: float = Field(..., description="events in the peak cell and its neighbours")
    baseline: float = Field(..., description="median of that count at this hour of week "
                                             "over the previous weeks")
    expected: float = Field(..., description="city-wide expectation of that count")
    z: float = Field(..., description="local Getis-Ord Gi* z")
    p: float = Field(..., description="one-sided p of Gi* (exact Poisson tail)")
    q: float = Field(..., description="Benjamini-Hochberg q over all cell-hours scanned")
    fdr: float = Field(..., description="the false discovery rate the scan controls")
    recurrence: int = Field(..., description="previous weeks alerting at this hour of week")
    reason_zh: str
    reason_en: str
    created_at: str
