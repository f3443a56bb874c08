"""Cases (案卷) and the closed loop of grid-based city management.

A case is reported (上报), filed (立案) or rejected (不予立案), dispatched (派遣) to the
department in charge, handled (处置), then checked (核查): a pass closes it (结案), a
fail sends it back to the same department (返工). Every step appends an event to the
case's audit trail (who, role, action, when, note).

This module is pure domain: dataclasses, a transition table, numpy/pandas calculations.
It never touches the store or the web.

The clock of a case runs from its report to its closure, against the time limit of its
event class (``gridcore/data/event_classes_legacy.csv``; the limits are our reading).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd

from gridcore._data import read_data_csv
from gridcore._time import Clock, city_tz, default_clock, to_utc
from gridcore.auth import Role
from gridcore.codes import is_within
from gridcore.errors import (
    DataFileError,
    InvalidCodeError,
    PermissionDeniedError,
    TransitionError,
)
from gridcore.worktime import LimitClock, WorkCalendar

__all__ = [
    "Action",
    "ACTION_ROLES",
    "Case",
    "CaseEvent",
    "CaseFilter",
    "Stage",
    "StageDeadline",
    "CaseState",
    "DeadlineStatus",
    "EventClass",
    "FollowUp",
    "MetricsBy",
    "OPEN_STATES",
    "Satisfaction",
    "SATISFACTION_WEIGHTS",
    "TRANSITIONS",
    "allowed_actions",
    "apply_action",
    "case_metrics",
    "cases_to_frame",
    "deadline_status",
    "departments",
    "event_class",
    "event_classes",
    "find_duplicates",
    "report_case",
    "stage_deadlines",
    "stage_limits",
]

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius; haversine error < 0.5 % at city scale


class CaseState(StrEnum):
    """Where a case stands in the loop."""

    REPORTED = "reported"  # 上报
    FILED = "filed"  # 立案
    DISPATCHED = "dispatched"  # 派遣 (also after 返工)
    HANDLED = "handled"  # 处置 reported back, awaiting 核查
    CLOSED = "closed"  # 结案
    REJECTED = "rejected"  # 不予立案


class Action(StrEnum):
    """A step of the loop, as named in the audit trail and the API."""

    REPORT = "report"  # 上报
    FILE = "file"  # 立案
    REJECT = "reject"  # 不予立案
    DISPATCH = "dispatch"  # 派遣
    HANDLE = "handle"  # 处置 (处理反馈)
    CLOSE = "close"  # 核查通过 → 结案
    REWORK = "rework"  # 核查不通过 → 返工


#: (state, action) -> next state. Anything not here is refused with TransitionError.
TRANSITIONS: dict[tuple[CaseState, Action], CaseState] = {
    (CaseState.REPORTED, Action.FILE): CaseState.FILED,
    (CaseState.REPORTED, Action.REJECT): CaseState.REJECTED,
    (CaseState.FILED, Action.DISPATCH): CaseState.DISPATCHED,
    (CaseState.DISPATCHED, Action.HANDLE): CaseState.HANDLED,
    (CaseState.HANDLED, Action.CLOSE): CaseState.CLOSED,
    (CaseState.HANDLED, Action.REWORK): CaseState.DISPATCHED,
}

#: Who may take each step. The command centre (dispatcher) files, dispatches and closes;
#: supervisors report and check on site; a department handles only its own cases.
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.REPORT: frozenset({Role.SUPERVISOR, Role.CHIEF, Role.VOLUNTEER, Role.STREET,
                              Role.DISPATCHER, Role.ADMIN}),
    Action.FILE: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.REJECT: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.DISPATCH: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Action.HANDLE: frozenset({Role.DEPARTMENT, Role.STREET, Role.ADMIN}),
    Action.CLOSE: frozenset({Role.SUPERVISOR, Role.DISPATCHER, Role.ADMIN}),
    Action.REWORK: frozenset({Role.SUPERVISOR, Role.DISPATCHER, Role.ADMIN}),
}

OPEN_STATES: frozenset[CaseState] = frozenset(
    {CaseState.REPORTED, CaseState.FILED, CaseState.DISPATCHED, CaseState.HANDLED}
)


class DeadlineStatus(StrEnum):
    """Traffic light of a case against its time limit."""

    GREEN = "green"  # under 80 % of the limit used
    YELLOW = "yellow"  # 80 % to 100 %
    RED = "red"  # overdue


class Satisfaction(StrEnum):
    """Answer of the reporter at the 12345 follow-up (回访)."""

    SATISFIED = "满意"
    BASICALLY_SATISFIED = "基本满意"
    UNSATISFIED = "不满意"


#: Weight of each answer in 满意率. 基本满意 counts 0.9 of 满意, after one published
#: formula (domain brief section 1); the official weights are not public.
SATISFACTION_WEIGHTS: dict[Satisfaction, float] = {
    Satisfaction.SATISFIED: 1.0,
    Satisfaction.BASICALLY_SATISFIED: 0.9,
    Satisfaction.UNSATISFIED: 0.0,
}


class MetricsBy(StrEnum):
    """How to group case metrics."""

    STREET = "street"
    DEPARTMENT = "department"
    PERIOD = "period"


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class EventClass:
    """One row of the event class table."""

    code: str
    major_code: str
    major_name: str
    name: str
    time_limit_hours: float
    default_department: str


@lru_cache(maxsize=1)
def _event_class_table() -> pd.DataFrame:
    table = read_data_csv("event_classes_legacy.csv")
    needed = {"code", "major_code", "major_name", "name", "time_limit_hours",
              "default_department"}
    missing = needed - set(table.columns)
    if missing:
        raise DataFileError(
            f"event_classes_legacy.csv lacks columns {sorted(missing)}; needs {sorted(needed)}"
        )
    table["time_limit_hours"] = table["time_limit_hours"].astype(float)
    return table.set_index("code", drop=False).sort_index()


def event_classes() -> pd.DataFrame:
    """Return the legacy event class table.

    Returns
    -------
    pandas.DataFrame
        Indexed by the 4-digit ``code``, columns ``code``, ``major_code``,
        ``major_name``, ``name`` (Chinese), ``time_limit_hours`` (float),
        ``default_department`` (a code of :func:`departments`).

    Example
    -------
    >>> event_classes().loc["0506", "name"]
    '非机动车乱停放'
    """
    return _event_class_table().copy()


@lru_cache(maxsize=1)
def _department_table() -> pd.DataFrame:
    table = read_data_csv("departments_legacy.csv")
    return table.set_index("code", drop=False).sort_index()


def departments() -> pd.DataFrame:
    """Return the departments in charge (主管部门) cases are dispatched to.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code``, columns ``code`` and ``name`` (Chinese).
    """
    return _department_table().copy()


def event_class(code: str) -> EventClass:
    """Look up one event class by its 4-digit legacy code.

    Parameters
    ----------
    code : str
        E.g. ``"0506"`` (非机动车乱停放).

    Returns
    -------
    EventClass

    Raises
    ------
    InvalidCodeError
        If the code is not 4 digits or not in the table; the message lists known codes.
    """
    return _event_class(code)


def _event_class(code: str) -> EventClass:
    table = _event_class_table()
    if not isinstance(code, str) or len(code) != 4 or not code.isdigit():
        raise InvalidCodeError(
            f"event class {code!r} is not a 4-digit legacy code such as '0506'"
        )
    if code not in table.index:
        raise InvalidCodeError(
            f"unknown event class {code!r}; known codes: {', '.join(table.index)}"
        )
    row = table.loc[code]
    return EventClass(
        code=code,
        major_code=row["major_code"],
        major_name=row["major_name"],
        name=row["name"],
        time_limit_hours=float(row["time_limit_hours"]),
        default_department=row["default_department"],
    )


def _validate_department(code: str) -> str:
    table = _department_table()
    if code not in table.index:
        raise InvalidCodeError(
            f"unknown department {code!r}; known departments: {', '.join(table.index)}"
        )
    return code


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class CaseEvent:
    """One line of a case's audit trail."""

    action: Action
    actor: str
    role: Role
    at: dt.datetime
    from_state: CaseState | None
    to_state: CaseState
    note: str = ""
    department: str | None = None


@dataclass(frozen=True)
class Case:
    """A case (案卷). Positions are WGS84; times are timezone-aware UTC instants.

    ``department`` is the department in charge once dispatched; a rework keeps it.
    """

    event_class: str
    lon: float
    lat: float
    description: str
    reported_at: dt.datetime
    reporter: str
    state: CaseState = CaseState.REPORTED
    id: int | None = None
    cell_code: str | None = None
    street_code: str | None = None
    component_code: str | None = None
    photo_ref: str | None = None
    department: str | None = None
    time_limit_hours: float = 0.0
    closed_at: dt.datetime | None = None
    events: tuple[CaseEvent, ...] = field(default_factory=tuple)

    @property
    def rework_count(self) -> int:
        """How many times the check failed (返工)."""
        return sum(e.action is Action.REWORK for e in self.events)

    @property
    def deadline(self) -> dt.datetime:
        """The moment the time limit runs out."""
        return self.reported_at + dt.timedelta(hours=self.time_limit_hours)

    def deadline_status(self, now: dt.datetime | None = None, *,
                        clock: Clock | None = None) -> DeadlineStatus:
        """Traffic light of this case at ``now``, frozen at closure for closed cases.

        ``now`` defaults to the clock's (`default_clock` when no clock is given).
        """
        status = deadline_status(
            [self.reported_at], [self.time_limit_hours], now,
            closed_at=[self.closed_at], clock=clock,
        )
        return DeadlineStatus(status[0])


class Stage(StrEnum):
    """Stages of the loop that have their own time limit."""

    FILE = "file"  # 立案: from the report to filing (or rejection)
    DISPATCH = "dispatch"  # 派遣: from filing to dispatch
    HANDLE = "handle"  # 处置: from dispatch to the handling report
    CHECK = "check"  # 核查: from the handling report to the check (close or rework)


#: Which action starts a stage (None: the report) and which actions end it.
_STAGE_BOUNDS: dict[Stage, tuple[Action | None, frozenset[Action]]] = {
    Stage.FILE: (None, frozenset({Action.FILE, Action.REJECT})),
    Stage.DISPATCH: (Action.FILE, frozenset({Action.DISPATCH})),
    Stage.HANDLE: (Action.DISPATCH, frozenset({Action.HANDLE})),
    Stage.CHECK: (Action.HANDLE, frozenset({Action.CLOSE, Action.REWORK})),
}


@dataclass(frozen=True)
class StageDeadline:
    """The time limit of one stage of a case: when it started, is due, ended."""

    stage: Stage
    started_at: dt.datetime
    due_at: dt.datetime
    clock: LimitClock
    done_at: dt.datetime | None

    def on_time(self) -> bool | None:
        """Whether the stage ended by its deadline (None while it runs)."""
        return None if self.done_at is None else self.done_at <= self.due_at


@lru_cache(maxsize=1)
def stage_limits() -> pd.DataFrame:
    """Return the stage time limits (gridcore/data/stage_limits.csv), by class and stage."""
    table = read_data_csv("stage_limits.csv")
    table["stage"] = [Stage(s).value for s in table["stage"]]
    table["clock"] = [LimitClock.parse(c).value for c in table["clock"]]
    return table.set_index(["event_class", "stage"])


def _stage_limit(event_class_code: str, stage: Stage) -> tuple[float, LimitClock]:
    table = stage_limits()
    for key in ((event_class_code, stage.value), ("*", stage.value)):
        if key in table.index:
            row = table.loc[key]
            hours = row["limit_hours"]
            if not str(hours).strip():  # empty: the class's own time limit
                hours = event_class(event_class_code).time_limit_hours
            return float(hours), LimitClock.parse(row["clock"])
    raise InvalidCodeError(f"no time limit for stage {stage.value!r} of class "
                           f"{event_class_code}")


def stage_deadlines(case: Case, calendar: WorkCalendar) -> list[StageDeadline]:
    """Return the deadline of each stage the case has reached, on its clock.

    A stage starts at the step that opens it (the latest one, after a rework) and ends at
    the step that closes it; its limit (`stage_limits`) runs on working time
    (`gridcore.worktime.WorkCalendar`) or calendar time.
    """
    out = []
    for stage, (opener, closers) in _STAGE_BOUNDS.items():
        if opener is None:
            started = case.reported_at
        else:
            opened = [e.at for e in case.events if e.action is opener]
            if not opened:
                continue
            started = opened[-1]
        done = next((e.at for e in case.events if e.action in closers and e.at >= started),
                    None)
        hours, clock = _stage_limit(case.event_class, stage)
        due = calendar.add(started, hours=hours, clock=clock)
        out.append(StageDeadline(stage, started, due.astimezone(dt.UTC), clock, done))
    return out


@dataclass(frozen=True)
class CaseFilter:
    """Which cases someone may see, as data a store turns into one query.

    A case matches when it lies in the territory *and* is with ``department`` (when
    given), *or* when ``reporter`` reported it. The territory is every cell when both
    ``cells`` and ``divisions`` are None; else the listed cells and/or the cells under the
    listed division codes. `gridcore.access` builds these; `matches` is the same rule on
    one case (the store contract tests hold the two to each other).
    """

    cells: frozenset[str] | None = None
    divisions: tuple[str, ...] | None = None
    department: str | None = None
    reporter: str | None = None

    @property
    def everything(self) -> bool:
        """Whether every case matches."""
        return (self.cells is None and self.divisions is None and self.department is None)

    def in_territory(self, cell_code: str | None) -> bool:
        """Whether a cell lies in the territory (a case with no cell lies in none)."""
        if self.cells is None and self.divisions is None:
            return True
        if cell_code is None:
            return False
        return ((self.cells is not None and cell_code in self.cells)
                or (self.divisions is not None
                    and any(is_within(cell_code, d) for d in self.divisions)))

    def matches(self, case: Case) -> bool:
        """Whether ``case`` is one of the cases this filter lets through."""
        if self.reporter is not None and case.reporter == self.reporter:
            return True
        return (self.in_territory(case.cell_code)
                and (self.department is None or case.department == self.department))


def _utc(t: dt.datetime, tz=None) -> dt.datetime:
    """Return ``t`` in UTC; a naive datetime is read as the city's wall-clock time."""
    if not isinstance(t, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    return to_utc(t, tz)


def _utc_series(values, tz=None) -> pd.Series:
    """Datetimes (aware, or naive read as city time; None/NaT kept) as a UTC Series."""
    if isinstance(values, dt.datetime):
        values = [values]
    if isinstance(values, pd.Index):
        values = pd.Series(values)
    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is None:  # naive wall-clock times of the city
            values = values.dt.tz_localize(tz or city_tz())
        return values.dt.tz_convert("UTC")
    index = values.index if isinstance(values, pd.Series) else None
    items = [None if v is None or v is pd.NaT
             else to_utc(v, tz) if isinstance(v, dt.datetime) else v
             for v in values]
    return pd.to_datetime(pd.Series(items, index=index, dtype=object), utc=True)


def state_at(case: Case, t: dt.datetime) -> CaseState | None:
    """Return the state a case was in at instant ``t`` (None: not yet reported).

    Replays the audit trail: the state after the last step taken at or before ``t``.

    Examples
    --------
    >>> c = report_case(event_class="0506", lon=116.37, lat=39.91, description="x",
    ...                 reporter="r", at=dt.datetime(2026, 4, 1, 8, tzinfo=dt.UTC))
    >>> state_at(c, dt.datetime(2026, 4, 1, 7, tzinfo=dt.UTC)) is None
    True
    >>> state_at(c, dt.datetime(2026, 4, 2, tzinfo=dt.UTC)).value
    'reported'
    """
    state = None
    for event in case.events:
        if event.at > t:
            break
        state = event.to_state
    return state


def allowed_actions(state: CaseState) -> list[Action]:
    """List the actions allowed from ``state``, in loop order."""
    return [a for (s, a) in TRANSITIONS if s is CaseState(state)]


def _check_role(action: Action, role: Role) -> None:
    roles = ACTION_ROLES[action]
    if role not in roles:
        raise PermissionDeniedError(
            f"role {role.value!r} may not {action.value!r} a case; "
            f"allowed roles: {', '.join(sorted(r.value for r in roles))}"
        )


def report_case(
    *,
    event_class: str,
    lon: float,
    lat: float,
    description: str,
    reporter: str,
    role: Role = Role.SUPERVISOR,
    at: dt.datetime,
    cell_code: str | None = None,
    street_code: str | None = None,
    component_code: str | None = None,
    photo_ref: str | None = None,
    note: str = "",
) -> Case:
    """Create a reported case (上报) with its first audit event.

    Parameters
    ----------
    event_class : str
        4-digit legacy event class code, e.g. ``"0506"``.
    lon, lat : float
        WGS84 position (already converted and validated by the caller).
    description : str
        What the reporter saw.
    reporter : str
        Name of whoever reports.
    role : Role
        Role of the reporter; must be allowed to report.
    at : datetime
        When the report was made (naive is read as city time), normally the clock's
        ``now_utc()``.
    cell_code, street_code, component_code, photo_ref : str, optional
        Where it is and what it concerns, as located by the caller.
    note : str
        Free text for the audit trail.

    Returns
    -------
    Case
        In state ``reported``, with the class's time limit.

    Raises
    ------
    InvalidCodeError
        Unknown event class.
    PermissionDeniedError
        The role may not report.

    Example
    -------
    >>> c = report_case(event_class="0506", lon=116.3756, lat=39.911,
    ...                 description="外卖电动车堵塞胡同", reporter="王",
    ...                 at=dt.datetime(2026, 4, 10, 12, tzinfo=dt.UTC))
    >>> c.state, c.time_limit_hours
    (<CaseState.REPORTED: 'reported'>, 4.0)
    """
    klass = _event_class(event_class)
    role = Role(role)
    _check_role(Action.REPORT, role)
    if not description or not description.strip():
        raise ValueError("a case needs a description of what was seen; got an empty one")
    at = _utc(at)
    first = CaseEvent(
        action=Action.REPORT, actor=reporter, role=role, at=at,
        from_state=None, to_state=CaseState.REPORTED, note=note,
    )
    return Case(
        event_class=klass.code, lon=float(lon), lat=float(lat), description=description,
        reported_at=at, reporter=reporter, cell_code=cell_code, street_code=street_code,
        component_code=component_code, photo_ref=photo_ref,
        time_limit_hours=klass.time_limit_hours, events=(first,),
    )


def apply_action(
    case: Case,
    action: Action | str,
    *,
    actor: str,
    role: Role | str,
    at: dt.datetime,
    note: str = "",
    department: str | None = None,
    actor_department: str | None = None,
) -> Case:
    """Take one step of the loop and return the updated case (the input is unchanged).

    Parameters
    ----------
    case : Case
    action : Action or str
        One of ``file``, ``reject``, ``dispatch``, ``handle``, ``close``, ``rework``.
    actor : str
        Who acts, for the audit trail.
    role : Role or str
        The actor's role; see :data:`ACTION_ROLES`.
    at : datetime
        When; not earlier than the case's last event.
    note : str
        Free text for the audit trail (reason of a rejection or a failed check...).
    department : str, optional
        For ``dispatch`` only: the department in charge; defaults to the event class's
        default department. A rework always goes back to the same department.
    actor_department : str, optional
        For ``handle`` by the ``department`` role: the actor's own department, which
        must be the case's.

    Returns
    -------
    Case

    Raises
    ------
    TransitionError
        The action is not allowed from the current state (the message names the state
        and the allowed actions), or ``at`` is before the last event.
    PermissionDeniedError
        The role may not take this action, or a department handles another's case.
    InvalidCodeError
        Unknown action or department.
    """
    try:
        action = Action(action)
    except ValueError:
        raise InvalidCodeError(
            f"unknown action {action!r}; valid actions: {', '.join(a.value for a in Action)}"
        ) from None
    role = Role(role)
    at = _utc(at)
    _check_role(action, role)  # before the state, so a refusal reveals nothing about it
    nxt = TRANSITIONS.get((case.state, action))
    if nxt is None:
        allowed = allowed_actions(case.state)
        allowed_text = ", ".join(a.value for a in allowed) if allowed else "none (final state)"
        raise TransitionError(
            f"cannot {action.value!r} a case in state {case.state.value!r}; "
            f"allowed actions: {allowed_text}"
        )
    if case.events and at < case.events[-1].at:
        raise TransitionError(
            f"{action.value!r} at {at.isoformat()} is before the case's last event at "
            f"{case.events[-1].at.isoformat()}; steps must be in time order"
        )
    changes: dict = {"state": nxt}
    event_department = case.department
    if action is Action.DISPATCH:
        dept = department or event_class(case.event_class).default_department
        event_department = _validate_department(dept)
        changes["department"] = event_department
    elif department is not None and department != case.department:
        raise TransitionError(
            f"only 'dispatch' chooses a department; {action.value!r} keeps "
            f"{case.department!r} (a rework goes back to the same department)"
        )
    if (action is Action.HANDLE and role in (Role.DEPARTMENT, Role.STREET)
            and actor_department != case.department):
        raise PermissionDeniedError(
            f"case is with department {case.department!r}; "
            f"department {actor_department!r} may not handle it"
        )
    if nxt is CaseState.CLOSED:
        changes["closed_at"] = at
    event = CaseEvent(
        action=action, actor=actor, role=role, at=at, from_state=case.state,
        to_state=nxt, note=note, department=event_department,
    )
    changes["events"] = case.events + (event,)
    return dataclasses.replace(case, **changes)


# --------------------------------------------------------------------------- deadlines


def _hours(values) -> np.ndarray:
    """Hours since the Unix epoch of datetimes (aware or naive-as-city); NaN for None/NaT."""
    stamps = _utc_series(values)
    naive = stamps.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    out = naive.astype(np.int64).astype(float) / 3.6e9
    out[np.isnat(naive)] = np.nan
    return out


def deadline_status(
    reported_at: Sequence[dt.datetime] | pd.Series,
    time_limit_hours: Sequence[float] | np.ndarray,
    now: dt.datetime | None = None,
    *,
    closed_at: Sequence[dt.datetime | None] | pd.Series | None = None,
    clock: Clock | None = None,
) -> np.ndarray:
    """Traffic light of many cases at ``now``.

    The share of the limit used is ``(min(now, closed_at) - reported_at) / limit``:
    green under 0.8, yellow from 0.8 up to and including 1.0, red above 1.0 (overdue).
    A closed case keeps the colour it had when it closed.

    Parameters
    ----------
    reported_at : sequence of datetime
    time_limit_hours : sequence of float
        Positive limits.
    now : datetime, optional
        The instant judged at; default ``clock.now_utc()``.
    closed_at : sequence of datetime or None, optional
        Closure times, None (or NaT) for open cases.
    clock : Clock, optional
        Where ``now`` comes from when not given (default `default_clock`).

    Returns
    -------
    numpy.ndarray of str
        ``"green"``, ``"yellow"`` or ``"red"`` per case.

    Example
    -------
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> deadline_status([t0, t0, t0], [10, 10, 10], t0 + dt.timedelta(hours=9)).tolist()
    ['yellow', 'yellow', 'yellow']
    """
    start = _hours(reported_at)
    limit = np.asarray(time_limit_hours, dtype=float)
    if limit.shape != start.shape:
        raise ValueError(
            f"{start.size} report times but {limit.size} time limits; give one per case"
        )
    if np.any(~(limit > 0)):
        raise ValueError("time limits must be positive hours")
    if np.any(np.isnan(start)):
        raise ValueError("every case needs a report time; got None/NaT")
    if now is None:
        now = (clock or default_clock()).now_utc()
    end = np.full(start.shape, _hours(now)[0])
    if closed_at is not None:
        closed = _hours(closed_at)
        end = np.fmin(end, closed)  # fmin ignores NaN: open cases run to now
    used = (end - start) / limit
    return np.select(
        [used > 1.0, used >= 0.8],
        [DeadlineStatus.RED.value, DeadlineStatus.YELLOW.value],
        DeadlineStatus.GREEN.value,
    ).astype(object)


# --------------------------------------------------------------------------- duplicates


def _haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float))
                              for v in (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def find_duplicates(
    lon: float,
    lat: float,
    event_class: str,
    reported_at: dt.datetime,
    open_cases: pd.DataFrame,
    *,
    radius_m: float = 50.0,
    window_hours: float = 24.0,
) -> np.ndarray:
    """Find open cases that may be the same problem as a new report.

    A candidate has the same event class, lies within ``radius_m`` (great-circle
    distance on WGS84) and was reported within ``window_hours`` before or after.

    Parameters
    ----------
    lon, lat : float
        WGS84 position of the new report.
    event_class : str
        4-digit class of the new report.
    reported_at : datetime
        Time of the new report.
    open_cases : pandas.DataFrame
        Columns ``lon``, ``lat``, ``event_class``, ``reported_at``: the cases to search.
    radius_m, window_hours : float
        How near in space and time counts as a duplicate.

    Returns
    -------
    numpy.ndarray of int
        Positions into ``open_cases``, nearest first.

    Example
    -------
    >>> t = dt.datetime(2026, 4, 10, 12, tzinfo=dt.UTC)
    >>> df = pd.DataFrame({"lon": [116.3756, 116.40], "lat": [39.911, 39.911],
    ...                    "event_class": ["0506", "0506"], "reported_at": [t, t]})
    >>> find_duplicates(116.3757, 39.911, "0506", t, df).tolist()
    [0]
    """
    if not (radius_m >= 0 and window_hours >= 0):
        raise ValueError("radius_m and window_hours must be non-negative numbers")
    if len(open_cases) == 0:
        return np.empty(0, dtype=np.intp)
    missing = {"lon", "lat", "event_class", "reported_at"} - set(open_cases.columns)
    if missing:
        raise ValueError(f"open_cases lacks columns {sorted(missing)}")
    # the class test is the cheapest and the most selective: do the arithmetic on its hits
    pos = np.flatnonzero(open_cases["event_class"].to_numpy() == event_class)
    dist = _haversine_m(lon, lat, open_cases["lon"].to_numpy()[pos],
                        open_cases["lat"].to_numpy()[pos])
    gap_h = np.abs(_hours(open_cases["reported_at"].iloc[pos]) - _hours(reported_at)[0])
    keep = (dist <= radius_m) & (gap_h <= window_hours)
    pos, dist = pos[keep], dist[keep]
    return pos[np.argsort(dist, kind="stable")].astype(np.intp)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class FollowUp:
    """A 12345-style follow-up call (回访) on a case."""

    case_id: int
    at: dt.datetime
    responded: bool
    resolved: bool
    satisfaction: Satisfaction
    note: str = ""


_CASE_COLUMNS = ["id", "event_class", "state", "street_code", "department", "reported_at",
                 "closed_at", "time_limit_hours", "rework_count", "handled_count"]


def cases_to_frame(cases: Iterable[Case]) -> pd.DataFrame:
    """Flatten cases to the frame :func:`case_metrics` reads.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``event_class``, ``state``, ``street_code``, ``department``,
        ``reported_at``, ``closed_at`` (UTC, NaT if open), ``time_limit_hours``,
        ``rework_count``, ``handled_count``.
    """
    rows = [
        {
            "id": c.id, "event_class": c.event_class, "state": c.state.value,
            "street_code": c.street_code, "department": c.department,
            "reported_at": c.reported_at, "closed_at": c.closed_at,
            "time_limit_hours": c.time_limit_hours, "rework_count": c.rework_count,
            "handled_count": sum(e.action is Action.HANDLE for e in c.events),
        }
        for c in cases
    ]
    frame = pd.DataFrame(rows, columns=_CASE_COLUMNS)
    frame["reported_at"] = _utc_series(frame["reported_at"])
    frame["closed_at"] = _utc_series(frame["closed_at"])
    return frame


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def case_metrics(
    cases: pd.DataFrame,
    followups: pd.DataFrame | None = None,
    *,
    by: MetricsBy | str = MetricsBy.STREET,
    now: dt.datetime | None = None,
    freq: str = "M",
    clock: Clock | None = None,
) -> pd.DataFrame:
    """Compute the loop's measures and the 12345 three rates per group.

    Definitions (counts over the cases of a group; a rate is NaN when its denominator
    is 0):

    - 立案数 ``filed``: cases that were filed, i.e. not still ``reported`` nor
      ``rejected``.
    - 结案率 ``closure_rate`` = closed / filed.
    - 按期结案率 ``on_time_rate`` = closed within the time limit / 应结案数, where
      应结案数 ``due`` counts filed cases that are closed or whose deadline has passed at
      ``now`` (an open case still inside its limit is not judged yet).
    - 返工率 ``rework_rate`` = cases reworked at least once / cases handled at least once.
    - 12345 rates over the cases with a follow-up (the latest follow-up per case counts):
      响应率 ``response_rate`` = responded / followed up;
      解决率 ``resolution_rate`` = resolved / followed up;
      满意率 ``satisfaction_rate`` = (满意 + 0.9 × 基本满意) / followed up.

    Parameters
    ----------
    cases : pandas.DataFrame
        As made by :func:`cases_to_frame`.
    followups : pandas.DataFrame, optional
        Columns ``case_id``, ``at``, ``responded``, ``resolved``, ``satisfaction``
        (满意/基本满意/不满意).
    by : MetricsBy or str
        ``street`` (``street_code``), ``department``, or ``period`` (of ``reported_at``,
        in the city's calendar: days and months start at the city's midnight, so a case
        reported at 07:00 Beijing time on 1 April, 23:00 UTC on 31 March, is April's).
    now : datetime, optional
        When the measures are taken; default ``clock.now_utc()``.
    freq : str
        pandas period frequency for ``by="period"``, e.g. ``"M"`` (month), ``"W"``,
        ``"D"``.
    clock : Clock, optional
        The city's clock: its time zone cuts the periods, and it gives ``now`` when
        that is not given (default `default_clock`).

    Returns
    -------
    pandas.DataFrame
        One row per group (index named after ``by``), columns ``reported``, ``filed``,
        ``closed``, ``due``, ``closed_on_time``, ``handled``, ``reworked``,
        ``followed_up``, ``closure_rate``, ``on_time_rate``, ``rework_rate``,
        ``response_rate``, ``resolution_rate``, ``satisfaction_rate``.
    """
    try:
        by = MetricsBy(by)
    except ValueError:
        raise ValueError(
            f"cannot group metrics by {by!r}; valid: {', '.join(m.value for m in MetricsBy)}"
        ) from None
    clock = clock or default_clock()
    now_ts = pd.Timestamp(_utc(now, clock.tz) if now is not None else clock.now_utc())
    df = cases.copy()
    df["reported_at"] = _utc_series(df["reported_at"], clock.tz)
    df["closed_at"] = _utc_series(df["closed_at"], clock.tz)
    if by is MetricsBy.PERIOD:
        # the city's calendar: wall-clock time in its zone, then the period
        local = df["reported_at"].dt.tz_convert(clock.tz).dt.tz_localize(None)
        key = local.dt.to_period(freq).astype(str)
    elif by is MetricsBy.STREET:
        key = df["street_code"].fillna("")
    else:
        key = df["department"].fillna("")
    df["_key"] = key.to_numpy()
    deadline = df["reported_at"] + pd.to_timedelta(df["time_limit_hours"].astype(float), "h")
    state = df["state"].astype(str)
    closed = state == CaseState.CLOSED.value
    filed = ~state.isin([CaseState.REPORTED.value, CaseState.REJECTED.value])
    df["_reported"] = 1
    df["_filed"] = filed.astype(int)
    df["_closed"] = closed.astype(int)
    df["_due"] = (filed & (closed | (deadline < now_ts))).astype(int)
    df["_on_time"] = (closed & (df["closed_at"] <= deadline)).astype(int)
    df["_handled"] = (df["handled_count"] > 0).astype(int)
    df["_reworked"] = (df["rework_count"] > 0).astype(int)
    for col in ("_followed", "_responded", "_resolved", "_satisfied"):
        df[col] = 0.0
    if followups is not None and len(followups):
        fu = followups.copy()
        fu["at"] = _utc_series(fu["at"], clock.tz)
        fu = fu.sort_values("at").drop_duplicates("case_id", keep="last").set_index("case_id")
        answers = fu["satisfaction"].astype(str)
        weights = answers.map({s.value: w for s, w in SATISFACTION_WEIGHTS.items()})
        if weights.isna().any():
            bad = answers[weights.isna()].iloc[0]
            raise ValueError(
                f"{bad!r} is not a follow-up answer; satisfaction must be one of "
                f"{', '.join(s.value for s in Satisfaction)}"
            )
        ids = df["id"]
        has = ids.isin(fu.index)
        df.loc[has, "_followed"] = 1.0
        df.loc[has, "_responded"] = ids[has].map(fu["responded"].astype(float)).to_numpy()
        df.loc[has, "_resolved"] = ids[has].map(fu["resolved"].astype(float)).to_numpy()
        df.loc[has, "_satisfied"] = ids[has].map(weights.astype(float)).to_numpy()
    sums = df.groupby("_key", sort=True)[
        ["_reported", "_filed", "_closed", "_due", "_on_time", "_handled", "_reworked",
         "_followed", "_responded", "_resolved", "_satisfied"]
    ].sum()
    sums.columns = [c.lstrip("_") for c in sums.columns]
    out = pd.DataFrame(index=sums.index.rename(by.value))
    out["reported"] = sums["reported"].astype(int)
    out["filed"] = sums["filed"].astype(int)
    out["closed"] = sums["closed"].astype(int)
    out["due"] = sums["due"].astype(int)
    out["closed_on_time"] = sums["on_time"].astype(int)
    out["handled"] = sums["handled"].astype(int)
    out["reworked"] = sums["reworked"].astype(int)
    out["followed_up"] = sums["followed"].astype(int)
    out["closure_rate"] = _ratio(sums["closed"], sums["filed"])
    out["on_time_rate"] = _ratio(sums["on_time"], sums["due"])
    out["rework_rate"] = _ratio(sums["reworked"], sums["handled"])
    out["response_rate"] = _ratio(sums["responded"], sums["followed"])
    out["resolution_rate"] = _ratio(sums["resolved"], sums["followed"])
    out["satisfaction_rate"] = _ratio(sums["satisfied"], sums["followed"])
    return out
