"""Pydantic models of the service, in Create/Public pairs where a resource is written.

Each section belongs to the routes of one concept.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from gridcore.auth import Role
from gridcore.cases import Action, CaseState, DeadlineStatus, MetricsBy, Satisfaction, Stage
from gridcore.crs import CRS
from gridcore.worktime import LimitClock

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
    owner: str = Field(..., description="owner (权属单位)")
    status: str = Field(..., description="status: 完好, 破损, 丢失, 废弃 or 移除")
    distance_m: float = Field(..., description="distance from the position, metres")


class ChiefRef(BaseModel):
    """A street-and-alley chief (街巷长) answering for the located cell."""

    id: str = Field(..., description="chief id")
    name: str = Field(..., description="name")
    title: str = Field(..., description="title, e.g. 西长安街街道 街巷长")
    alley: str = Field(..., description="the street or alley (街巷) through this cell")


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
    chiefs: list[ChiefRef] = Field(
        default_factory=list, description="street-and-alley chiefs (街巷长) answering for the "
                                          "cell today; empty when no assigned alley crosses it")
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
    415: _problem_response("The body is not sent as JSON (Content-Type: application/json)"),
    422: _problem_response("Invalid input: codes, coordinates, CRS, geometry, fields"),
}


# ---------------------------------------------------------------- cases, chiefs, tokens
# Owned by api/routes/cases.py, chiefs.py, tokens.py (gridcore.cases, chiefs, auth).

_CODE4 = r"^[0-9]{4}$"
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date_only(value: object) -> object:
    # pydantic's lax mode reads numbers as Unix times and accepts datetimes; a date
    # here must be written YYYY-MM-DD, as the schema says
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")


_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def _day_in_range(value: date) -> date:
    # the city's midnight of year 1 or 9999 has no UTC instant: refuse it as input
    if not _FIRST_DAY <= value <= _LAST_DAY:
        raise ValueError(f"{value.isoformat()} is out of range: a day from "
                         f"{_FIRST_DAY.isoformat()} to {_LAST_DAY.isoformat()}")
    return value


#: A calendar day written YYYY-MM-DD (1900-01-01 to 9998-12-31), nothing else.
IsoDate = Annotated[date, BeforeValidator(_iso_date_only), AfterValidator(_day_in_range)]


class CaseCreate(BaseModel):
    """A report (上报) from a supervisor's handheld or another system."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(allow_inf_nan=False, ge=-180, le=180, strict=True,
                       description="Longitude (经度) in the CRS named by `crs`, degrees east.",
                       examples=[116.3756])
    lat: float = Field(allow_inf_nan=False, ge=-90, le=90, strict=True,
                       description="Latitude (纬度) in the CRS named by `crs`, degrees north.",
                       examples=[39.911])
    crs: CRS = Field(description="Coordinate system of lon/lat (坐标系), always explicit: "
                                 "wgs84 (GPS), gcj02 (高德/腾讯), bd09 (百度).",
                     examples=["wgs84"])
    event_class: str = Field(pattern=_CODE4,
                             description="Event class (事件类别) as its 4-digit legacy code, "
                                         "e.g. 0506 非机动车乱停放; see GET /v1/event-classes.",
                             examples=["0506"])
    description: str = Field(min_length=1, max_length=2000,
                             description="What was seen (问题描述).",
                             examples=["堂子胡同外卖电动车堵塞通道"])
    component_code: str | None = Field(
        default=None, pattern=r"^([0-9]{8}|[0-9]{16,17})$",
        description="Code of the city component (部件编码) concerned, if any: 8, 16 or 17 "
                    "digits.")
    photo_ref: str | None = Field(default=None, max_length=500,
                                  description="Reference to the photo (照片), e.g. a file "
                                              "name or URL held by the handheld system.")


class CaseCreated(BaseModel):
    """The new case's id, where it was located, and possible duplicates."""

    id: int = Field(description="Case id (案卷编号).")
    cell_code: str = Field(description="15-digit unit grid cell (单元网格) of the position.")
    street_code: str = Field(description="9-digit street (街道) code of the cell.")
    duplicate_of: list[int] = Field(
        description="Open cases of the same class reported nearby recently (疑似重复), "
                    "nearest first; a hint for the dispatcher, the case is created anyway.")


class CaseEventPublic(BaseModel):
    """One line of the audit trail (处置记录)."""

    action: Action = Field(description="The step (操作): report 上报, file 立案, reject "
                                       "不予立案, dispatch 派遣, handle 处置, close 结案, "
                                       "rework 返工.")
    actor: str = Field(description="Who did it (操作人).")
    role: Role = Field(description="The actor's role (角色).")
    at: datetime = Field(description="When, UTC (时间).")
    from_state: CaseState | None = Field(description="State before (原状态).")
    to_state: CaseState = Field(description="State after (新状态).")
    note: str = Field(description="Free text (备注).")
    department: str | None = Field(description="Department in charge (主管部门) at the time.")


class StageDeadlinePublic(BaseModel):
    """The time limit of one stage of a case (立案, 派遣, 处置, 核查)."""

    stage: Stage = Field(description="file 立案, dispatch 派遣, handle 处置, check 核查.")
    started_at: datetime = Field(description="When the stage started (UTC).")
    due_at: datetime = Field(description="When its limit runs out (UTC).")
    clock: LimitClock = Field(description="working (工作时: working hours of working days, "
                                          "holidays and make-up days counted) or natural "
                                          "(自然时).")
    done_at: datetime | None = Field(description="When the stage ended (None: running).")
    on_time: bool | None = Field(description="Ended by its deadline (None: running).")


class CasePublic(BaseModel):
    """A case (案卷) with its deadline status and audit trail."""

    id: int = Field(description="Case id (案卷编号).")
    state: CaseState = Field(description="Where the case stands (状态): reported 上报, filed "
                                         "立案, dispatched 派遣, handled 处置, closed 结案, "
                                         "rejected 不予立案.")
    event_class: str = Field(description="4-digit event class code (事件类别).")
    event_class_name: str = Field(description="Chinese name of the event class.")
    lon: float = Field(description="WGS84 longitude (经度).")
    lat: float = Field(description="WGS84 latitude (纬度).")
    description: str = Field(description="What was seen (问题描述).")
    reporter: str = Field(description="Who reported (上报人).")
    reported_at: datetime = Field(description="When it was reported, UTC (上报时间).")
    cell_code: str | None = Field(description="Unit grid cell (单元网格).")
    street_code: str | None = Field(description="Street (街道) code.")
    component_code: str | None = Field(description="Component (部件) code, if any.")
    photo_ref: str | None = Field(description="Photo reference (照片).")
    department: str | None = Field(description="Department in charge (主管部门) code.")
    department_name: str | None = Field(description="Department name.")
    time_limit_hours: float = Field(description="Time limit of the class (处置时限), hours, "
                                                "from report to closure.")
    deadline: datetime = Field(description="When the limit runs out (截止时间).")
    deadline_status: DeadlineStatus = Field(
        description="Traffic light (时限状态): green under 80 % of the limit used, yellow "
                    "80-100 %, red overdue; frozen at closure.")
    closed_at: datetime | None = Field(description="When it was closed (结案时间).")
    rework_count: int = Field(description="Failed checks so far (返工次数).")
    allowed_actions: list[Action] = Field(description="Steps allowed from this state.")
    events: list[CaseEventPublic] = Field(description="Audit trail, oldest first.")
    deadlines: list[StageDeadlinePublic] = Field(
        default_factory=list, description="One entry per stage reached, with its limit "
                                          "on its clock (gridcore/data/stage_limits.csv).")


class CaseActionCreate(BaseModel):
    """A step of the loop taken on a case."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000,
                      description="Reason or remark for the audit trail (备注).")
    department: str | None = Field(
        default=None, max_length=20,
        description="dispatch only: department code (主管部门) to send the case to; default "
                    "the event class's department. See GET /v1/departments.")


class FollowUpCreate(BaseModel):
    """A 12345 follow-up call (回访) on a case."""

    model_config = ConfigDict(extra="forbid")

    responded: bool = Field(strict=True, description="Was the request responded to (是否响应)?")
    resolved: bool = Field(strict=True, description="Was it resolved (是否解决)?")
    satisfaction: Satisfaction = Field(description="满意, 基本满意 or 不满意.")
    note: str = Field(default="", max_length=2000, description="Remark (备注).")


class FollowUpPublic(FollowUpCreate):
    """A stored follow-up."""

    id: int = Field(description="Follow-up id.")
    case_id: int = Field(description="The case followed up.")
    at: datetime = Field(description="When, UTC.")


class CaseMetricsRow(BaseModel):
    """Measures of one group (street, department or period)."""

    key: str = Field(description="Street code, department code or period (e.g. 2026-03); "
                                 "empty for cases with none yet.")
    reported: int = Field(description="Cases reported (上报数).")
    filed: int = Field(description="Cases filed (立案数).")
    closed: int = Field(description="Cases closed (结案数).")
    due: int = Field(description="Cases due (应结案数): filed and closed or past deadline.")
    closed_on_time: int = Field(description="Closed within the limit (按期结案数).")
    handled: int = Field(description="Cases handled at least once (处置数).")
    reworked: int = Field(description="Cases reworked at least once (返工数).")
    followed_up: int = Field(description="Cases with a follow-up (回访数).")
    closure_rate: float | None = Field(description="结案率 = closed / filed.")
    on_time_rate: float | None = Field(description="按期结案率 = closed on time / due.")
    rework_rate: float | None = Field(description="返工率 = reworked / handled.")
    response_rate: float | None = Field(description="响应率 = responded / followed up.")
    resolution_rate: float | None = Field(description="解决率 = resolved / followed up.")
    satisfaction_rate: float | None = Field(
        description="满意率 = (满意 + 0.9 x 基本满意) / followed up (latest follow-up per "
                    "case).")


class CaseMetricsPublic(BaseModel):
    """Case measures grouped one way; a rate is null when its denominator is 0."""

    by: MetricsBy = Field(description="Grouping: street, department or period.")
    now: datetime = Field(description="When the measures were taken (UTC).")
    groups: list[CaseMetricsRow] = Field(description="One row per group.")


class ChiefPublic(BaseModel):
    """A street-and-alley chief (街巷长)."""

    id: str = Field(description="Chief id.")
    name: str = Field(description="Name (姓名).")
    title: str = Field(description="Post (职务).")


class CaseSummary(BaseModel):
    """An open case as listed in a chief's view."""

    id: int = Field(description="Case id.")
    state: CaseState = Field(description="State.")
    event_class: str = Field(description="Event class code.")
    event_class_name: str = Field(description="Event class name.")
    cell_code: str | None = Field(description="Unit grid cell.")
    lon: float = Field(description="WGS84 longitude.")
    lat: float = Field(description="WGS84 latitude.")
    reported_at: datetime = Field(description="Reported at (UTC).")
    deadline: datetime = Field(description="Deadline (UTC).")
    deadline_status: DeadlineStatus = Field(description="green / yellow / red.")


class ComponentSummary(BaseModel):
    """A city component (部件) in a chief's cells."""

    code: str = Field(description="Component ID (部件编码).")
    name: str = Field(description="Name (部件名称).")
    class_code: str = Field(description="Class code (部件小类), e.g. 0101.")
    dept_name: str = Field(description="Department in charge (主管部门).")
    status: str = Field(description="Status: 完好, 破损, 丢失, 废弃 or 移除.")
    cell_code: str = Field(description="Unit grid cell.")
    lon: float = Field(description="WGS84 longitude.")
    lat: float = Field(description="WGS84 latitude.")


class ChiefView(BaseModel):
    """What a chief answers for on a day: streets and alleys, cells, components, cases."""

    chief: ChiefPublic
    on: date = Field(description="The day the assignments were read for.")
    alleys: list[str] = Field(description="Streets and alleys (街巷) assigned that day.")
    cells: list[str] = Field(description="Unit grid cells those streets and alleys cross.")
    components: list[ComponentSummary] = Field(
        description="Components (部件) in those cells, removed ones (移除) left out.")
    open_cases: list[CaseSummary] = Field(description="Open cases in those cells.")


class AssignmentCreate(BaseModel):
    """Hand a street or alley to a chief from a date on."""

    model_config = ConfigDict(extra="forbid")

    alley: str = Field(min_length=1, max_length=100, description="Street or alley name (街巷).")
    valid_from: IsoDate = Field(description="From this day on (生效日期), YYYY-MM-DD.")


class TokenCreate(BaseModel):
    """Ask for a new bearer token (admin only)."""

    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="supervisor 监督员, dispatcher 指挥中心, department 主管部门, "
                                   "chief 街巷长, admin.")
    name: str = Field(min_length=1, max_length=100, description="Who holds it.")
    subject: str | None = Field(default=None, max_length=100,
                                description="Chief id (role chief) or department code "
                                            "(role department); default the name.")


class TokenPublic(BaseModel):
    """A new token: shown once, stored only as its hash."""

    token: str = Field(description="The bearer token; keep it, it cannot be shown again.")
    role: Role
    name: str
    subject: str


class EventClassPublic(BaseModel):
    """An event class (事件类别) of the legacy table."""

    code: str = Field(description="4-digit code: major 2 + minor 2.")
    major_code: str = Field(description="2-digit major class (大类).")
    major_name: str = Field(description="Major class name, e.g. 街面秩序.")
    name: str = Field(description="Class name (小类), e.g. 非机动车乱停放.")
    time_limit_hours: float = Field(description="Time limit (处置时限), hours; our reading.")
    default_department: str = Field(description="Department dispatched to by default.")


class DepartmentPublic(BaseModel):
    """A department in charge (主管部门)."""

    code: str = Field(description="Short code.")
    name: str = Field(description="Chinese name.")


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
