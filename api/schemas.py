"""Pydantic models of the service, in Create/Public pairs where a resource is written.

Each section belongs to the routes of one concept.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


# ---- disputes (api/routes/disputes.py): cross-boundary cases and joint tasks ----------


class DisputeCRS(StrEnum):
    """Coordinate system of the incident geometry (must be explicit)."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


class DisputeLevel(StrEnum):
    """Jurisdiction level: district (跨区吹哨), street (街乡吹哨) or community."""

    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"


_GEOMETRY_TYPES = Literal[
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"
]


class GeoJSONGeometry(BaseModel):
    """A GeoJSON geometry (RFC 7946) in the CRS named beside it."""

    model_config = ConfigDict(extra="allow")

    type: _GEOMETRY_TYPES = Field(description="GeoJSON geometry type (几何类型).")
    coordinates: list[Any] = Field(
        description="GeoJSON coordinates, longitude first (经度在前).", max_length=10_000
    )


class DisputeScreenCreate(BaseModel):
    """An incident to screen for a cross-boundary case (跨界研判); nothing is opened."""

    model_config = ConfigDict(extra="forbid")

    geometry: GeoJSONGeometry = Field(
        description="The incident: a point (with accuracy_m), a line or a polygon (事件几何)."
    )
    crs: DisputeCRS = Field(description="CRS of the coordinates (坐标系): wgs84, gcj02 or bd09.")
    accuracy_m: float = Field(
        0.0, ge=0, le=1e6, allow_inf_nan=False,
        description="Position accuracy of a point, metres (定位精度, 米).",
    )
    level: DisputeLevel = Field(
        DisputeLevel.DISTRICT,
        description="Jurisdiction level (辖区层级): district 跨区, street 街乡, community 社区.",
    )
    on: dt.date | None = Field(
        None, description="Day whose responsibility overrides apply (协议生效日); default today."
    )


class DisputePartyShare(BaseModel):
    """One side of an incident and its share (各方占比)."""

    code: str = Field(description="Division code (区划代码).")
    name: str = Field(description="Division name (区划名称).")
    share: float = Field(description="Share of the footprint, 0-1 (占比); shares sum to 1.")


class DisputeOverrideApplied(BaseModel):
    """A responsibility agreement that moved part of the incident (责任协议)."""

    id: str
    name: str
    assigned_code: str = Field(description="The side the agreement gives the area to.")
    share: float = Field(description="Share of the incident it moved to assigned_code.")
    agreed_by: list[str] = Field(description="Who agreed (协议各方).")
    valid_from: dt.date
    valid_to: dt.date | None


class DisputeScreenPublic(BaseModel):
    """Whose is the incident: every side it touches and its share."""

    joint: bool = Field(description="True when more than one side holds a part (跨界联办).")
    parties: list[DisputePartyShare] = Field(description="Sides, largest share first.")
    level: DisputeLevel
    kind: Literal["point", "line", "polygon"] = Field(
        description="How shares are measured: disc area, length or area."
    )
    measure_unit: Literal["m2", "m"]
    outside_share: float = Field(description="Fraction of the footprint outside the city.")
    overrides: list[DisputeOverrideApplied] = Field(
        description="Responsibility overrides applied before the split (审计)."
    )


class DisputeCreate(DisputeScreenCreate):
    """A cross-boundary case to open as one joint task (联合任务) for every side."""

    event_class: str = Field(
        pattern=r"^[0-9]{4}$", description="Event class, 4-digit legacy code (事件类别), e.g. 0101."
    )
    description: str = Field(min_length=1, max_length=2000, description="What is wrong (问题描述).")
    receiving_code: str | None = Field(
        None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$",
        description="The receiving side (接诉方) that whistles; must be a party. It leads.",
    )


class DisputeFromCaseCreate(BaseModel):
    """Open the joint task of an existing case (案卷转跨区吹哨): its position, class, text."""

    model_config = ConfigDict(extra="forbid")

    accuracy_m: float = Field(
        0.0, ge=0, le=1e6, allow_inf_nan=False,
        description="Position accuracy of the case's point, metres (定位精度).",
    )
    level: DisputeLevel = Field(DisputeLevel.DISTRICT, description="Jurisdiction level.")
    receiving_code: str | None = Field(
        None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$",
        description="The receiving side (接诉方); default the party holding the case's street.",
    )
    description: str | None = Field(
        None, max_length=2000, description="Default: the case's description."
    )


class DisputePartyPublic(BaseModel):
    """A party of a joint task."""

    code: str
    name: str
    share: float
    role: Literal["receiving", "whistled"] = Field(
        description="接诉方 receiving or 被吹哨方 whistled."
    )
    lead: bool = Field(description="Leads the task (牵头).")
    checked_in_at: dt.datetime | None = Field(description="Checked in (接哨) at.")
    part: str = Field(description="Agreed part of the work (分工).")
    done_at: dt.datetime | None = Field(description="Reported its part done at.")


class DisputeDepartmentPublic(BaseModel):
    """A department called to report (部门报到)."""

    code: str
    name: str
    called_by: str
    called_at: dt.datetime
    reported_at: dt.datetime | None


class DisputeMeetingPublic(BaseModel):
    """A joint meeting (联席会议)."""

    at: dt.datetime
    place: str
    convened_by: str
    attendees: list[str]
    notes: str


class DisputeStepPublic(BaseModel):
    """One step of a task's history (who, when, what)."""

    at: dt.datetime
    actor: str
    party_code: str | None
    action: str
    detail: dict[str, Any]


class DisputePublic(BaseModel):
    """A joint task of a cross-boundary case."""

    id: str
    level: DisputeLevel
    event_class: str
    description: str
    status: Literal["open", "in_progress", "closed"] = Field(
        description="open 已吹哨, in_progress 分工办理中, closed 联合办结."
    )
    lead_code: str
    lead_rule: Literal["receiving", "largest_share", "territorial"] = Field(
        description="Why the lead leads: receiving side, largest share, or 属地兜底."
    )
    parties: list[DisputePartyPublic]
    departments: list[DisputeDepartmentPublic]
    meetings: list[DisputeMeetingPublic]
    deadline: dt.datetime | None = Field(description="The one shared deadline (办结时限).")
    overdue: bool
    opened_at: dt.datetime
    opened_by: str
    closed_at: dt.datetime | None
    overrides: list[DisputeOverrideApplied]
    geometry: dict[str, Any] = Field(description="The incident, GeoJSON in WGS84.")
    history: list[DisputeStepPublic]


class DisputeOpened(BaseModel):
    """The answer to opening: the task, and whether it was new or joined."""

    opened: bool = Field(description="False when the same incident joined an open task (幂等).")
    joint: bool = True
    parties: list[DisputePartyShare]
    task: DisputePublic


class DisputeActAs(BaseModel):
    """Who acts: the party (区划代码) the caller acts for; default the caller's own."""

    model_config = ConfigDict(extra="forbid")

    party_code: str | None = Field(
        None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$", description="The party acted for."
    )


class DisputeCheckInCreate(DisputeActAs):
    """A side checks in (接哨)."""


class DisputeDepartmentCreate(DisputeActAs):
    """A side whistles a department, which must report (吹哨, 报到)."""

    department_code: str = Field(
        min_length=1, max_length=40, description="Department code (主管部门代码), e.g. CGZF."
    )
    department_name: str | None = Field(
        None, max_length=200, description="Name; default the department table's."
    )


class DisputeMeetingCreate(DisputeActAs):
    """A joint meeting (联席会议): time and place."""

    meeting_at: AwareDatetime = Field(description="When the meeting is held, with time zone.")
    place: str = Field(min_length=1, max_length=200)
    attendees: list[str] = Field(default_factory=list, max_length=100)
    notes: str = Field("", max_length=4000)


class DisputeAgreementCreate(DisputeActAs):
    """The agreed division of labour (分工) and the one shared deadline (by the lead)."""

    division_of_labour: dict[str, str] = Field(
        description="Each party's part, by party code.", max_length=50
    )
    deadline: AwareDatetime = Field(description="The one shared deadline, with time zone.")


class DisputeReportCreate(DisputeActAs):
    """A side reports on its part; done=true when it is finished."""

    text: str = Field(min_length=1, max_length=4000)
    done: bool = False


class DisputeCloseCreate(DisputeActAs):
    """Joint closure (联合办结), by the lead once every side reported done."""

    note: str = Field("", max_length=4000)


class DisputeOverrideCreate(BaseModel):
    """A responsibility agreement: this area belongs to one side (责任协议)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    geometry: GeoJSONGeometry
    crs: DisputeCRS
    level: DisputeLevel
    assigned_code: str = Field(pattern=r"^[0-9]{6}([0-9]{3}){0,2}$")
    valid_from: dt.date
    valid_to: dt.date | None = None
    agreed_by: list[str] = Field(min_length=1, max_length=20)
    buffer_m: float = Field(10.0, gt=0, le=500, allow_inf_nan=False)


# ---- end disputes ---------------------------------------------------------------------
