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


# --------------------------------------------------------------------------- locate


class NearbyComponentPublic(BaseModel):
    """A city component (部件) near the located position."""

    code: str = Field(..., description="component ID (部件编码), 16 or 17 digits")
    class_code: str = Field(..., description="component class (部件小类) code, e.g. 0101")
    class_name: str = Field(..., description="class name in Chinese, e.g. 上水井盖")
    dept_code: str = Field(..., description="department in charge (主管部门) code")
    dept_name: str = Field(..., description="department in charge (主管部门) name")
    status: str = Field(..., description="status: 完好, 破损, 丢失, 废弃 or 移除")
    distance_m: float = Field(..., description="distance from the position, metres")


class CellRef(BaseModel):
    """A unit grid cell (单元网格) by code."""

    code: str = Field(..., description="15-digit unit grid cell code (单元网格编码)")


class PositionPublic(BaseModel):
    """The located position, converted to WGS84."""

    lon: float = Field(..., description="WGS84 longitude")
    lat: float = Field(..., description="WGS84 latitude")
    crs: Literal["wgs84"] = "wgs84"


class LocationPublic(BaseModel):
    """Where a position or a component lies (定位结果)."""

    position: PositionPublic
    cell: CellRef
    community: DivisionRef = Field(..., description="community (社区)")
    street: DivisionRef = Field(..., description="street office (街道)")
    district: DivisionRef = Field(..., description="district (区)")
    nearest_components: list[NearbyComponentPublic] = Field(
        default_factory=list, description="nearest components (最近部件), closest first")
    component: NearbyComponentPublic | None = Field(
        None, description="the component asked for, when located by component code")


# --------------------------------------------------------------------------- problems


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(..., description="problem type URI, e.g. urn:gridcore:problem:not-found")
    title: str = Field(..., description="short summary of the problem type")
    status: int = Field(..., description="HTTP status code")
    detail: str = Field(..., description="what was wrong and what would be right")
    instance: str | None = Field(None, description="the request path")
    errors: list[dict[str, Any]] | None = Field(None, description="field errors, if any")


def _problem_response(description: str) -> dict:
    return {"description": description, "model": Problem,
            "content": {"application/problem+json": {}}}


PROBLEM_RESPONSES: dict[int | str, dict] = {
    400: _problem_response("Malformed request (e.g. malformed JSON)"),
    401: _problem_response("No token, or an unknown or revoked one"),
    403: _problem_response("The token's role may not do this"),
    404: _problem_response("Not found, or the position lies outside the city"),
    409: _problem_response("Step not allowed now, or a conflicting request"),
    413: _problem_response("Request body too large"),
    422: _problem_response("Invalid input: codes, coordinates, CRS, geometry, fields"),
}
