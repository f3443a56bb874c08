"""Cross-boundary cases (跨区吹哨) over HTTP: screen, open the joint task, act, read.

Thin: each route validates with the schemas, calls gridcore.disputes and the store, and
assembles the answer. Errors are gridcore exceptions, answered by api/errors.py as
problem+json.

Who sees and does what is `gridcore.access`'s: admin and the city's dispatcher (指挥中心)
see every joint task; a district command centre, a street office and a chief (街巷长,
through the streets of their assigned cells) read the tasks with a party on their branch
of the hierarchy (a street reads its district's district-level tasks) and act only for
their own side (a party equal to or inside their district or street). A department sees
the tasks that called it (报到), a supervisor those they opened or joined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from shapely.geometry import mapping

from api.deps import CityDep, ClockDep, PrincipalDep, ScopeDep, StoreDep
from api.schemas import (
    DisputeActAs,
    DisputeAgreementCreate,
    DisputeCheckInCreate,
    DisputeCloseCreate,
    DisputeCreate,
    DisputeDepartmentCreate,
    DisputeFromCaseCreate,
    DisputeLevel,
    DisputeMeetingCreate,
    DisputeOpened,
    DisputeOverrideApplied,
    DisputeOverrideCreate,
    DisputePartyShare,
    DisputePublic,
    DisputeReportCreate,
    DisputeScreenCreate,
    DisputeScreenPublic,
)
from gridcore import app
from gridcore.access import Permission, Scope, authorize
from gridcore.auth import Role
from gridcore.codes import is_within
from gridcore.crs import transform_geometry
from gridcore.disputes import (
    DisputeScreener,
    JointTask,
    Override,
    Screening,
    TaskStatus,
)
from gridcore.errors import InvalidCodeError, PermissionDeniedError, TransitionError
from gridcore.geojson import geojson_to_geometry

router = APIRouter(prefix="/v1/disputes", tags=["disputes 跨区吹哨"])

# how long an open joint task catches the same incident reported again (idempotent opening)
JOIN_WINDOW = dt.timedelta(days=3)
JOIN_MIN_OVERLAP = 0.8
_ID = Annotated[str, Path(pattern=r"^jt-[0-9a-f]{16}$", description="Joint task id.")]


def get_now(clock: ClockDep) -> dt.datetime:
    """Return the instant of joint tasks (aware, UTC) from the app's clock."""
    return clock.now_utc()


NowDep = Annotated[dt.datetime, Depends(get_now)]


def get_today(now: NowDep, clock: ClockDep) -> dt.date:
    """Return the city's date at ``now``: the day whose overrides apply."""
    return clock.local(now).date()


TodayDep = Annotated[dt.date, Depends(get_today)]


# --------------------------------------------------------------------------- helpers

_screeners: dict[tuple, DisputeScreener] = {}


def _screener(city: Any, store: Any, level: DisputeLevel | str) -> DisputeScreener:
    """Return the screener of a city, level and set of overrides (built once, reused)."""
    overrides = store.dispute_overrides()
    key = (
        id(city.divisions),
        str(level),
        tuple((o.id, o.valid_from, o.valid_to, o.assigned_code) for o in overrides),
    )
    if key not in _screeners:
        if len(_screeners) > 32:
            _screeners.clear()
        _screeners[key] = DisputeScreener(city.divisions, level=str(level), overrides=overrides)
    return _screeners[key]


def _screen(body: DisputeScreenCreate, city: Any, store: Any, today: dt.date) -> Screening:
    geometry = geojson_to_geometry(body.geometry.model_dump(), what="geometry")
    return _screener(city, store, body.level).screen_one(
        geometry, crs=body.crs.value, accuracy_m=body.accuracy_m, on=body.on or today
    )


def _same_branch(a: str, b: str) -> bool:
    return is_within(a, b) or is_within(b, a)


def _line_geojson(line: Any) -> dict[str, Any]:
    """GeoJSON of a border; an empty one (no shared border) as an empty MultiLineString."""
    return {"type": "MultiLineString", "coordinates": []} if line.is_empty else mapping(line)


def _shares(s: Screening) -> list[DisputePartyShare]:
    return [DisputePartyShare(code=p.code, name=p.name, share=p.share) for p in s.parties]


def _override_public(o: Any) -> DisputeOverrideApplied:
    return DisputeOverrideApplied(
        id=o.id,
        name=o.name,
        assigned_code=o.assigned_code,
        share=o.share,
        agreed_by=list(o.agreed_by),
        valid_from=o.valid_from,
        valid_to=o.valid_to,
    )


def task_to_public(task: JointTask, now: dt.datetime) -> DisputePublic:
    """Assemble the public view of a joint task."""
    return DisputePublic(
        id=task.id,
        level=task.level.value,
        event_class=task.event_class,
        description=task.description,
        status=task.status.value,
        lead_code=task.lead_code,
        lead_rule=task.lead_rule.value,
        parties=[
            dict(
                code=p.code,
                name=p.name,
                share=p.share,
                role=p.role.value,
                lead=p.code == task.lead_code,
                checked_in_at=p.checked_in_at,
                part=p.part,
                done_at=p.done_at,
            )
            for p in task.parties
        ],
        departments=[vars(d) for d in task.departments],
        meetings=[dict(vars(m), attendees=list(m.attendees)) for m in task.meetings],
        deadline=task.deadline,
        overdue=task.is_overdue(now),
        opened_at=task.opened_at,
        opened_by=task.opened_by,
        closed_at=task.closed_at,
        overrides=[_override_public(o) for o in task.overrides],
        geometry=mapping(task.geometry),
        history=[
            dict(
                at=s.at,
                actor=s.actor,
                party_code=s.party_code,
                action=s.action.value,
                detail=s.detail,
            )
            for s in task.history
        ],
    )


def _act(
    store: Any,
    scope: Scope,
    now: dt.datetime,
    task_id: str,
    body: DisputeActAs,
    step: Callable[[JointTask, str], Any],
) -> DisputePublic:
    """Load, check the caller, apply one step and store it, all in one transaction."""

    def change(task: JointTask) -> None:
        step(task, scope.acting_party(task, body.party_code))

    return task_to_public(app.change_joint_task(store, task_id, change), now)


# --------------------------------------------------------------------------- routes


@router.post(
    "/screen",
    response_model=DisputeScreenPublic,
    summary="Screen an incident for a cross-boundary case (跨界研判)",
)
def screen(
    body: DisputeScreenCreate, store: StoreDep, city: CityDep, principal: PrincipalDep,
    today: TodayDep,
) -> DisputeScreenPublic:
    """Every side the incident touches and its share; opens nothing."""
    authorize(principal, Permission.SCREEN_DISPUTE)
    s = _screen(body, city, store, today)
    return DisputeScreenPublic(
        joint=s.joint,
        parties=_shares(s),
        level=s.level.value,
        kind=s.kind.value,
        measure_unit=s.measure_unit,
        outside_share=s.outside_share,
        overrides=[_override_public(o) for o in s.overrides],
    )


@router.post(
    "",
    response_model=DisputeOpened,
    status_code=status.HTTP_201_CREATED,
    summary="Open the joint task of a cross-boundary case (跨区吹哨)",
    responses={
        200: {"description": "The same incident joined its open task"},
        409: {"description": "Not a cross-boundary case: one side holds it all"},
    },
)
def open_dispute(
    body: DisputeCreate,
    store: StoreDep,
    city: CityDep,
    scope: ScopeDep,
    now: NowDep,
    today: TodayDep,
    response: Response,
) -> DisputeOpened:
    """Open one joint task for every side; the same incident again joins the open task.

    A street office (a chief's token) opening it is the receiving side (接诉方) unless the
    body names another party; it may open only what touches its own side.
    """
    principal = scope.principal
    authorize(principal, Permission.OPEN_JOINT_TASK)
    s = _screen(body, city, store, today)
    receiving = body.receiving_code
    if principal.role in (Role.CHIEF, Role.STREET) and s.joint:
        # a street office opens what touches its own side, and is the receiving side
        mine = [c for c in s.codes if any(_same_branch(c, m) for m in scope.streets())]
        if not mine:
            raise PermissionDeniedError(
                f"the incident lies in {', '.join(s.codes)}; a street office opens joint "
                "tasks of its own side (report it as a case instead)"
            )
        if receiving is None and len(mine) == 1:
            receiving = mine[0]
    task, opened = app.open_joint_task(
        store,
        s,
        event_class=body.event_class,
        description=body.description,
        opened_by=principal.name,
        at=now,
        receiving_code=receiving,
        window=JOIN_WINDOW,
        min_overlap=JOIN_MIN_OVERLAP,
    )
    if not opened:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/disputes/tasks/{task.id}"
    return DisputeOpened(opened=opened, parties=_shares(s), task=task_to_public(task, now))


@router.post(
    "/from-case/{case_id}",
    response_model=DisputeOpened,
    status_code=status.HTTP_201_CREATED,
    summary="Open the joint task of an existing case (案卷转跨区吹哨)",
    responses={
        200: {"description": "The case joined its open joint task"},
        409: {"description": "Not a cross-boundary case"},
    },
)
def open_from_case(
    case_id: Annotated[int, Path(ge=1, le=2**62)],
    body: DisputeFromCaseCreate,
    store: StoreDep,
    city: CityDep,
    scope: ScopeDep,
    now: NowDep,
    today: TodayDep,
    response: Response,
) -> DisputeOpened:
    """Screen a reported case's position; if it is joint, open (or join) its joint task."""
    principal = scope.principal
    authorize(principal, Permission.CASE_TO_JOINT_TASK)
    case = scope.check_case(store.get_case(case_id))
    screen_body = DisputeScreenCreate(
        geometry={"type": "Point", "coordinates": [case.lon, case.lat]},
        crs="wgs84",
        accuracy_m=body.accuracy_m,
        level=body.level,
    )
    s = _screen(screen_body, city, store, today)
    receiving = body.receiving_code
    if receiving is None and case.street_code:
        receiving = next((c for c in s.codes if _same_branch(c, case.street_code)), None)
    task, opened = app.open_joint_task(
        store,
        s,
        event_class=case.event_class,
        description=body.description or f"案卷 {case.id}: {case.description}",
        opened_by=principal.name,
        at=now,
        receiving_code=receiving,
        window=JOIN_WINDOW,
        min_overlap=JOIN_MIN_OVERLAP,
    )
    if not opened:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/disputes/tasks/{task.id}"
    return DisputeOpened(opened=opened, parties=_shares(s), task=task_to_public(task, now))


@router.get("/tasks", response_model=list[DisputePublic], summary="List joint tasks (联合任务列表)")
def list_disputes(
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
    district: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}$", description="Party on this district's branch.")
    ] = None,
    street: Annotated[
        str | None, Query(pattern=r"^[0-9]{9}$", description="Party on this street's branch.")
    ] = None,
    status_: Annotated[
        list[TaskStatus] | None, Query(alias="status", description="Only these statuses.")
    ] = None,
    level: Annotated[DisputeLevel | None, Query(description="Only this level.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[DisputePublic]:
    """Joint tasks the caller may see, newest first."""
    authorize(scope.principal, Permission.READ_JOINT_TASKS)
    wanted = [c for c in (district, street) if c]
    kw: dict[str, Any] = dict(status=status_, level=level.value if level else None)
    kw.update(scope.joint_task_filter())
    codes = kw.pop("party_codes", None)
    if codes is None:
        codes = wanted or None
    elif wanted:
        codes = [c for c in codes if all(_same_branch(c, w) for w in wanted)]
    tasks = store.list_disputes(party_codes=codes, limit=limit, offset=offset, **kw)
    if wanted and codes is None:
        tasks = [
            t for t in tasks if all(any(_same_branch(w, p) for p in t.party_codes) for w in wanted)
        ]
    return [task_to_public(t, now) for t in tasks]


@router.get("/overrides", summary="Responsibility overrides (责任协议)")
def list_overrides(store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every stored agreement that gives an area to one side."""
    authorize(principal, Permission.READ_OVERRIDES)
    return [
        dict(
            id=o.id,
            name=o.name,
            level=str(getattr(o.level, "value", o.level)),
            assigned_code=o.assigned_code,
            valid_from=o.valid_from.isoformat(),
            valid_to=o.valid_to.isoformat() if o.valid_to else None,
            agreed_by=list(o.agreed_by),
            buffer_m=o.buffer_m,
            geometry=mapping(o.geometry),
        )
        for o in store.dispute_overrides()
    ]


@router.post(
    "/overrides",
    status_code=status.HTTP_201_CREATED,
    summary="Record a responsibility override (admin)",
)
def create_override(
    body: DisputeOverrideCreate, store: StoreDep, city: CityDep, principal: PrincipalDep
) -> dict[str, str]:
    """Store an agreement; it applies to screenings from valid_from on."""
    authorize(principal, Permission.RECORD_OVERRIDE)
    geom = transform_geometry(geojson_to_geometry(body.geometry.model_dump(), what="geometry"),
                              src=body.crs.value)
    o = Override(
        id=body.id,
        name=body.name,
        geometry=geom,
        level=body.level.value,
        assigned_code=body.assigned_code,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        agreed_by=tuple(body.agreed_by),
        buffer_m=body.buffer_m,
    )
    if o.valid_to is not None and o.valid_to < o.valid_from:
        raise TransitionError("valid_to must not be before valid_from")
    DisputeScreener(city.divisions, level=o.level, overrides=[o])  # checks code and level
    store.save_dispute_override(o)
    return {"id": o.id}


@router.get("/border", summary="The shared border of divisions, GeoJSON (共同边界)")
def border_of(
    city: CityDep,
    store: StoreDep,
    principal: PrincipalDep,
    codes: Annotated[
        str,
        Query(
            pattern=r"^[0-9]{6,12}(,[0-9]{6,12}){1,9}$",
            description="Two or more codes of one level, comma-separated.",
        ),
    ],
) -> dict[str, Any]:
    """Return the border the given divisions share, as a GeoJSON Feature (WGS84)."""
    authorize(principal, Permission.SCREEN_DISPUTE)
    code_list = codes.split(",")
    level = {6: "district", 9: "street", 12: "community"}.get(len(code_list[0]))
    if level is None or any(len(c) != len(code_list[0]) for c in code_list):
        raise InvalidCodeError("give codes of one level: all 6, 9 or 12 digits")
    line = _screener(city, store, level).shared_border(code_list)
    return {
        "type": "Feature",
        "geometry": _line_geojson(line),
        "properties": {"codes": code_list, "level": level},
    }


@router.get("/tasks/{task_id}", response_model=DisputePublic, summary="Read a joint task")
def read_dispute(
    task_id: _ID, store: StoreDep, scope: ScopeDep, now: NowDep
) -> DisputePublic:
    """One joint task, with its whole history."""
    authorize(scope.principal, Permission.READ_JOINT_TASKS)
    return task_to_public(scope.check_task(store.get_dispute(task_id)), now)


@router.get("/tasks/{task_id}/border", summary="The parties' shared border, GeoJSON")
def task_border(
    task_id: _ID, store: StoreDep, city: CityDep, scope: ScopeDep, now: NowDep
) -> dict[str, Any]:
    """Return the border the task's parties share, as a GeoJSON Feature (WGS84)."""
    authorize(scope.principal, Permission.READ_JOINT_TASKS)
    task = scope.check_task(store.get_dispute(task_id))
    line = _screener(city, store, task.level.value).shared_border(list(task.party_codes))
    return {
        "type": "Feature",
        "geometry": _line_geojson(line),
        "properties": {"task_id": task.id, "codes": list(task.party_codes)},
    }


@router.post("/tasks/{task_id}/check-in", response_model=DisputePublic, summary="Check in (接哨)")
def check_in(
    task_id: _ID, body: DisputeCheckInCreate, store: StoreDep, scope: ScopeDep, now: NowDep
) -> DisputePublic:
    """Check a side in: it acknowledges the whistle and joins the work."""
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.check_in(p, actor=scope.principal.name, at=now),
    )


@router.post(
    "/tasks/{task_id}/departments",
    response_model=DisputePublic,
    summary="Whistle a department (吹哨)",
)
def call_department(
    task_id: _ID,
    body: DisputeDepartmentCreate,
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
) -> DisputePublic:
    """Call a department on behalf of a side; it must then report (报到)."""
    from gridcore.cases import departments

    table = departments()
    if body.department_code not in table.index:
        raise InvalidCodeError(
            f"unknown department {body.department_code!r}; known: {', '.join(table.index)}"
        )
    name = body.department_name or str(table.loc[body.department_code, "name"])
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.call_department(p, body.department_code, name,
                                       actor=scope.principal.name, at=now),
    )


@router.post(
    "/tasks/{task_id}/departments/{department_code}/report",
    response_model=DisputePublic,
    summary="A department reports in (报到)",
)
def department_report(
    task_id: _ID,
    department_code: Annotated[str, Path(min_length=1, max_length=40)],
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
) -> DisputePublic:
    """Report a called department in (its own token, or an admin/dispatcher)."""
    authorize(scope.principal, Permission.REPORT_DEPARTMENT_IN)
    if scope.role is Role.DEPARTMENT and scope.department != department_code:
        raise PermissionDeniedError(f"only department {department_code} reports itself in")

    def change(task: JointTask) -> None:
        if scope.role is not Role.DEPARTMENT:
            scope.check_task(task)  # a district desk reports in for its own tasks only
        task.department_report(department_code, actor=scope.principal.name, at=now)

    return task_to_public(app.change_joint_task(store, task_id, change), now)


@router.post(
    "/tasks/{task_id}/meetings",
    response_model=DisputePublic,
    summary="Hold a joint meeting (联席会议)",
)
def hold_meeting(
    task_id: _ID, body: DisputeMeetingCreate, store: StoreDep, scope: ScopeDep, now: NowDep
) -> DisputePublic:
    """Record a joint meeting: time, place, attendees, notes."""
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.hold_meeting(
            p,
            meeting_at=body.meeting_at,
            place=body.place,
            attendees=body.attendees,
            notes=body.notes,
            actor=scope.principal.name,
            at=now,
        ),
    )


@router.post(
    "/tasks/{task_id}/agreement",
    response_model=DisputePublic,
    summary="Agree the division of labour and the deadline (分工, 时限)",
)
def agree(
    task_id: _ID,
    body: DisputeAgreementCreate,
    store: StoreDep,
    scope: ScopeDep,
    now: NowDep,
) -> DisputePublic:
    """Record who does what and the one shared deadline (by the lead)."""
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.agree(
            p,
            division_of_labour=body.division_of_labour,
            deadline=body.deadline,
            actor=scope.principal.name,
            at=now,
        ),
    )


@router.post(
    "/tasks/{task_id}/reports",
    response_model=DisputePublic,
    summary="Report on a side's part (反馈)",
)
def report(
    task_id: _ID, body: DisputeReportCreate, store: StoreDep, scope: ScopeDep, now: NowDep
) -> DisputePublic:
    """Report a side's progress; done=true when its part is finished."""
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.report(p, text=body.text, done=body.done,
                              actor=scope.principal.name, at=now),
    )


@router.post(
    "/tasks/{task_id}/close", response_model=DisputePublic, summary="Close jointly (联合办结)"
)
def close(
    task_id: _ID, body: DisputeCloseCreate, store: StoreDep, scope: ScopeDep, now: NowDep
) -> DisputePublic:
    """Close the task jointly (the lead, once every side has reported done)."""
    return _act(
        store,
        scope,
        now,
        task_id,
        body,
        lambda t, p: t.close(p, actor=scope.principal.name, at=now, note=body.note),
    )
