"""Cases and the closed loop: report, read, step, follow up, measure.

Thin: each route validates its input with the schemas, calls gridcore and the store, and
assembles the answer. Errors are gridcore exceptions, answered by api/errors.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from api.deps import CityDep, ClockDep, PrincipalDep, ScopeDep, StoreDep
from api.schemas import (
    CaseActionCreate,
    CaseCreate,
    CaseCreated,
    CaseEventPublic,
    CaseMetricsPublic,
    CaseMetricsRow,
    CasePublic,
    DepartmentPublic,
    EventClassPublic,
    FollowUpCreate,
    FollowUpPublic,
    IsoDate,
    StageDeadlinePublic,
)
from gridcore import app
from gridcore._time import city_day_bounds
from gridcore.access import Permission, authorize
from gridcore.app import DUPLICATE_RADIUS_M, DUPLICATE_WINDOW_H
from gridcore.cases import (
    ACTION_ROLES,
    OPEN_STATES,
    Action,
    Case,
    CaseState,
    FollowUp,
    MetricsBy,
    allowed_actions,
    case_metrics,
    departments,
    event_class,
    event_classes,
    find_duplicates,
    stage_deadlines,
)
from gridcore.crs import to_wgs84, validate_lonlat
from gridcore.worktime import WorkCalendar

router = APIRouter(prefix="/v1", tags=["cases 案卷"])



def get_now(clock: ClockDep) -> dt.datetime:
    """Return the instant of the loop (aware, UTC) from the app's clock."""
    return clock.now_utc()


NowDep = Annotated[dt.datetime, Depends(get_now)]


def get_today(now: NowDep, clock: ClockDep) -> dt.date:
    """Return the city's date at ``now``: whose cells a chief has is decided on it."""
    return clock.local(now).date()


TodayDep = Annotated[dt.date, Depends(get_today)]


# --------------------------------------------------------------------------- helpers

def _department_name(code: str | None) -> str | None:
    if code is None:
        return None
    table = departments()
    return str(table.loc[code, "name"]) if code in table.index else None


def case_to_public(case: Case, now: dt.datetime,
                   calendar: WorkCalendar | None = None) -> CasePublic:
    """Assemble the public view of a case (stage deadlines on ``calendar``: China's)."""
    return CasePublic(
        id=case.id, state=case.state, event_class=case.event_class,
        event_class_name=event_class(case.event_class).name, lon=case.lon, lat=case.lat,
        description=case.description, reporter=case.reporter, reported_at=case.reported_at,
        cell_code=case.cell_code, street_code=case.street_code,
        component_code=case.component_code, photo_ref=case.photo_ref,
        department=case.department, department_name=_department_name(case.department),
        time_limit_hours=case.time_limit_hours, deadline=case.deadline,
        deadline_status=case.deadline_status(now), closed_at=case.closed_at,
        rework_count=case.rework_count, allowed_actions=allowed_actions(case.state),
        events=[CaseEventPublic(**vars(e)) for e in case.events],
        deadlines=[StageDeadlinePublic(**vars(d), on_time=d.on_time())
                   for d in stage_deadlines(case, calendar or _calendar())],
    )


@lru_cache(maxsize=4)
def _calendar(tz: str | None = None) -> WorkCalendar:
    return WorkCalendar.china(tz=tz)


def _request_hash(body: CaseCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- routes

@router.post(
    "/cases", status_code=status.HTTP_201_CREATED, response_model=CaseCreated,
    summary="Report a case (上报)",
    responses={409: {"description": "Idempotency-Key reused with another body"},
               404: {"description": "Position outside the city"}},
)
def create_case(
    body: CaseCreate,
    store: StoreDep,
    city: CityDep,
    scope: ScopeDep,
    now: NowDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Client-chosen key (幂等键): a retried report with "
                                           "the same key and body creates one case."),
    ] = None,
) -> CaseCreated:
    """Report a problem at a position; the case starts in state ``reported``."""
    principal = scope.principal
    authorize(principal, Permission.REPORT_CASE)
    klass = event_class(body.event_class)
    lon, lat = to_wgs84([body.lon], [body.lat], crs=body.crs)
    validate_lonlat(lon, lat)
    lon, lat = float(lon[0]), float(lat[0])
    done = app.report_case(
        store, city, event_class_code=klass.code, lon=lon, lat=lat,
        description=body.description, reporter=principal.name, role=principal.role, at=now,
        component_code=body.component_code, photo_ref=body.photo_ref,
        idempotency_key=idempotency_key, request_hash=_request_hash(body),
        principal=f"{principal.role.value}:{principal.subject}", scope=scope,
    )
    if not done.created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/cases/{done.case.id}"
    return CaseCreated(id=done.case.id, cell_code=done.case.cell_code,
                       street_code=done.case.street_code, duplicate_of=done.duplicate_of)


@router.get("/cases", response_model=list[CasePublic], summary="List cases (案卷列表)")
def list_cases(
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
    state: Annotated[list[CaseState] | None, Query(description="Only these states.")] = None,
    open_only: Annotated[bool, Query(description="Only open cases (未结案).")] = False,
    street_code: Annotated[str | None, Query(pattern=r"^[0-9]{9}$",
                                             description="Only this street (街道).")] = None,
    cell_code: Annotated[str | None, Query(pattern=r"^[0-9]{15}$",
                                           description="Only this cell (单元网格).")] = None,
    department: Annotated[str | None, Query(max_length=20,
                                            description="Only this department.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Rows to skip.")] = 0,
) -> list[CasePublic]:
    """List the cases the caller may see (`gridcore.access`), newest first."""
    authorize(scope.principal, Permission.READ_CASES)
    states = set(state) if state else None
    if open_only:
        states = (states or set(CaseState)) & OPEN_STATES
    cases = store.list_cases(
        states=sorted(states) if states is not None else None,
        cell_codes=[cell_code] if cell_code else None, street_code=street_code,
        department=department, limit=limit, offset=offset, visible=scope.case_filter())
    return [case_to_public(c, now) for c in cases]


@router.get("/cases/{case_id}", response_model=CasePublic, summary="Read a case (案卷)")
def get_case(
    case_id: Annotated[int, Path(ge=1, le=2**62, description="Case id.")],
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
) -> CasePublic:
    """Read a case with its deadline status and audit trail."""
    authorize(scope.principal, Permission.READ_CASES)
    return case_to_public(scope.check_case(store.get_case(case_id)), now)


@router.get("/cases/{case_id}/duplicates", response_model=list[int],
            summary="Possible duplicates (疑似重复)")
def case_duplicates(
    case_id: Annotated[int, Path(ge=1, le=2**62, description="Case id.")],
    store: StoreDep,
    scope: ScopeDep,
    radius_m: Annotated[float, Query(gt=0, le=5000, description="Radius, metres.")] = (
        DUPLICATE_RADIUS_M),
    window_hours: Annotated[float, Query(gt=0, le=24 * 90, description="Window, hours.")] = (
        DUPLICATE_WINDOW_H),
) -> list[int]:
    """Open cases of the same class near this one in space and time, nearest first.

    Only cases the caller may see are listed.
    """
    authorize(scope.principal, Permission.READ_CASES)
    case = scope.check_case(store.get_case(case_id))
    frame = store.open_cases_frame(event_class=case.event_class)
    frame = frame[frame["id"] != case.id].reset_index(drop=True)
    pos = find_duplicates(case.lon, case.lat, case.event_class, case.reported_at, frame,
                          radius_m=radius_m, window_hours=window_hours)
    near = [int(i) for i in frame["id"].to_numpy()[pos]]
    if not near or scope.case_filter().everything:
        return near
    seen = {c.id for c in store.list_cases(ids=near, visible=scope.case_filter())}
    return [i for i in near if i in seen]


@router.post("/cases/{case_id}/followups", response_model=FollowUpPublic,
             status_code=status.HTTP_201_CREATED, summary="Record a follow-up (回访)")
def add_followup(
    case_id: Annotated[int, Path(ge=1, le=2**62, description="Case id.")],
    body: FollowUpCreate,
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
) -> FollowUpPublic:
    """Record the reporter's answer at the 12345 follow-up call of a closed case (else 409)."""
    authorize(scope.principal, Permission.FOLLOW_UP)
    fu = FollowUp(case_id=case_id, at=now, responded=body.responded, resolved=body.resolved,
                  satisfaction=body.satisfaction, note=body.note)
    fid = app.record_followup(store, fu, scope=scope)
    return FollowUpPublic(id=fid, case_id=case_id, at=now, **body.model_dump())


_STEP_DOCS = {
    Action.FILE: ("File a case (立案)", "Accept a reported case as a case to handle."),
    Action.REJECT: ("Reject a report (不予立案)", "Refuse to file a report; say why in the note."),
    Action.DISPATCH: ("Dispatch (派遣)", "Send a filed case to the department in charge "
                                         "(default: the event class's)."),
    Action.HANDLE: ("Report handling (处置反馈)", "The department reports the problem dealt "
                                                 "with; only the department it was sent to."),
    Action.CLOSE: ("Check passed, close (核查通过, 结案)", "The on-site check confirms the "
                                                        "problem is gone."),
    Action.REWORK: ("Check failed, rework (核查不通过, 返工)", "Send the case back to the same "
                                                           "department."),
}


def _step_route(action: Action):
    summary, doc = _STEP_DOCS[action]

    def step(
        case_id: Annotated[int, Path(ge=1, le=2**62, description="Case id.")],
        store: StoreDep,
        scope: ScopeDep,
        now: NowDep,
        body: CaseActionCreate | None = None,
    ) -> CasePublic:
        body = body or CaseActionCreate()
        principal = scope.principal
        authorize(principal, action)
        case = app.step_case(
            store, case_id, action, actor=principal.name, role=principal.role, at=now,
            note=body.note, department=body.department, scope=scope,
            actor_department=scope.actor_department(),
        )
        return case_to_public(case, now)

    step.__name__ = f"case_{action.value}"
    step.__doc__ = (f"{doc} Allowed roles: "
                    f"{', '.join(sorted(r.value for r in ACTION_ROLES[action]))}. "
                    "A step not allowed from the case's state answers 409 naming the "
                    "allowed ones.")
    router.post(f"/cases/{{case_id}}/{action.value}", response_model=CasePublic,
                summary=summary,
                responses={409: {"description": "Step not allowed from the case's state"}},
                )(step)


for _action in _STEP_DOCS:
    _step_route(_action)


def _nan_to_none(x: float) -> float | None:
    return None if x != x else float(x)  # NaN is the only value unequal to itself


@router.get("/metrics/cases", response_model=CaseMetricsPublic,
            summary="Case measures (结案率, 按期结案率, 返工率, 响应率/解决率/满意率)")
def metrics(
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
    clock: ClockDep,
    by: Annotated[MetricsBy, Query(description="Group by street, department or period.")] = (
        MetricsBy.STREET),
    freq: Annotated[str, Query(pattern="^(D|W|M|Q|Y)$",
                               description="Period length when by=period: D, W, M, Q, Y.")
                    ] = "M",
    since: Annotated[IsoDate | None, Query(description="Cases reported on or after this "
                                                       "day of the city (YYYY-MM-DD).")] = None,
    until: Annotated[IsoDate | None, Query(description="Cases reported before this day "
                                                       "of the city (YYYY-MM-DD).")] = None,
) -> CaseMetricsPublic:
    """Measure the loop and the 12345 three rates per street, department or period.

    Over the cases the caller may see (`gridcore.access`).

    Days, months and the ``since``/``until`` days are the city's: they start at its
    midnight (00:00 Beijing time is 16:00 UTC the day before), not UTC's.
    """
    authorize(scope.principal, Permission.READ_METRICS)

    def _start(d: dt.date | None) -> dt.datetime | None:
        return None if d is None else city_day_bounds(d, clock.tz)[0]

    frame = store.cases_frame(reported_since=_start(since), reported_before=_start(until),
                              visible=scope.case_filter())
    table = case_metrics(frame, store.followups_frame(), by=by, now=now, freq=freq,
                         clock=clock)
    rows = [
        CaseMetricsRow(key=str(key), **{
            col: (_nan_to_none(val) if col.endswith("_rate") else int(val))
            for col, val in row.items()
        })
        for key, row in table.iterrows()
    ]
    return CaseMetricsPublic(by=by, now=now, groups=rows)


@router.get("/event-classes", response_model=list[EventClassPublic],
            summary="Event classes (事件类别) and their time limits")
def list_event_classes(principal: PrincipalDep) -> list[EventClassPublic]:
    """List the legacy event classes: code, names, time limit, default department."""
    authorize(principal, Permission.READ_REFERENCE)
    rows = event_classes().reset_index(drop=True).to_dict(orient="records")
    return [EventClassPublic(**r) for r in rows]


@router.get("/departments", response_model=list[DepartmentPublic],
            summary="Departments in charge (主管部门)")
def list_departments(principal: PrincipalDep) -> list[DepartmentPublic]:
    """Department codes cases are dispatched to."""
    authorize(principal, Permission.READ_REFERENCE)
    return [DepartmentPublic(**r)
            for r in departments().reset_index(drop=True).to_dict(orient="records")]
