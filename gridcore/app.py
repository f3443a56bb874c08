"""The application layer: one function per use case, called by the CLI and the routes.

Each reads validate → compute → persist: it checks its input, computes with the domain
modules (`gridcore.cases`, `gridcore.components`, `gridcore.disputes`...) and hands the
result to the store, which only persists. Routes translate HTTP to these calls and the
CLI translates arguments; neither composes rules of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from .access import Scope, check_subject
from .access import scope_of as _scope_of
from .auth import Principal, Role
from .auth import issue_token as _issue_token
from .cases import (
    Action,
    Case,
    CaseState,
    FollowUp,
    apply_action,
    departments,
    event_class,
    find_duplicates,
)
from .cases import (
    report_case as _report_case,
)
from .errors import (
    InvalidCodeError,
    InvalidValueError,
    NotFoundError,
    OutsideCityError,
    TransitionError,
)
from .grid import GridVersion, point_to_cell

if TYPE_CHECKING:
    from .chiefs import ChiefRoster
    from .disputes import JointTask, Screening
    from .sample import City
    from .store import Store

DUPLICATE_RADIUS_M = 50.0  # a report this close to an open one of the same class ...
DUPLICATE_WINDOW_H = 24.0  # ... within this many hours is hinted as a possible duplicate
JOINT_TASK_WINDOW = dt.timedelta(days=3)  # how far back an open joint task is joined


# ---------------------------------------------------------------- grid and divisions

def add_grid_version(store: Store, version: GridVersion) -> int:
    """Store a grid version and compute its alley/cell table; return its id."""
    vid = store.add_grid_version(version)
    if store.has_chiefs():
        _compute_alley_cells(store, vid, version.cells)
    return vid


def locate_point(city: City, lon: float, lat: float) -> tuple[str, str]:
    """Return (cell code, street code) of a WGS84 position in the city's current grid.

    Raises
    ------
    OutsideCityError
        The position lies outside every cell.
    """
    pos = int(point_to_cell(city.cells, [lon], [lat])[0])
    if pos < 0:
        raise OutsideCityError(
            f"position lon={lon:.6f}, lat={lat:.6f} (WGS84) lies outside every unit grid "
            "cell of the city")
    return str(city.cells["code"].iloc[pos]), str(city.cells["street_code"].iloc[pos])


# ---------------------------------------------------------------- chiefs

def save_roster(store: Store, roster: ChiefRoster) -> None:
    """Validate and store a roster of chiefs, then compute today's alley/cell table."""
    from .chiefs import validate_assignments

    validate_assignments(roster.assignments, chiefs=roster.chiefs, alleys=roster.alleys)
    store.save_roster(roster)
    if not store.is_empty():
        alley_cells(store)


def seed_sample_roster(store: Store) -> bool:
    """Store the sample chiefs when none are stored; return True if it did."""
    from .chiefs import load_sample_roster

    if store.has_chiefs():
        return False
    save_roster(store, load_sample_roster())
    return True


def assign_chief(store: Store, chief_id: str, alley: str, valid_from: dt.date) -> None:
    """Hand ``alley`` to ``chief_id`` from ``valid_from`` on (a dated handover)."""
    store.add_assignment(chief_id, alley, valid_from)


def alley_cells(store: Store, version: int | None = None) -> pd.DataFrame:
    """Return which cells each alley runs through in a grid version (default today's).

    Computed once per version with `gridcore.chiefs.alleys_to_cells` and stored; later
    calls read it.
    """
    vid = store.current_version() if version is None else int(version)
    if store.has_chiefs() and not store.has_alley_cells(vid):
        return _compute_alley_cells(store, vid, store.load_grid(vid))
    return store.alley_cells(vid)


def _compute_alley_cells(store: Store, vid: int, cells: gpd.GeoDataFrame) -> pd.DataFrame:
    from .chiefs import alleys_to_cells

    joined = alleys_to_cells(store.load_roster().alleys, cells)[["alley", "cell_code"]]
    joined = joined.sort_values(["alley", "cell_code"], ignore_index=True)
    store.save_alley_cells(vid, joined)
    return joined


def chief_cells(store: Store, chief_id: str, *, on: dt.date | None = None) -> set[str]:
    """Return the cells of a chief's alleys on a day (default: the city's today)."""
    from .chiefs import cells_of_chief

    day = on or store.clock.today()
    vid = store.current_version(on=day)
    return set(cells_of_chief(chief_id, store.load_roster().assignments,
                              alley_cells=alley_cells(store, vid), on=day))


def scope_of(store: Store, principal: Principal, *, on: dt.date | None = None,
             today: dt.date | None = None) -> Scope:
    """Return what ``principal`` may see on the city's day ``on`` (see `gridcore.access`)."""
    return _scope_of(store, principal, on=on, today=today,
                     cells_of=lambda chief_id, day: chief_cells(store, chief_id, on=day))


def open_cases_on(store: Store, cell_codes, day: dt.date) -> list[Case]:
    """Return the cases in ``cell_codes`` that were open at the end of the city's ``day``.

    For today that is "open now"; for a past day the audit trail is replayed, so a case
    closed since still shows, and one reported after it does not.
    """
    from ._time import city_day_bounds
    from .cases import OPEN_STATES, state_at

    now = store.clock.now_utc()
    until = min(city_day_bounds(day, store.clock.tz)[1] - dt.timedelta(microseconds=1), now)
    if until >= now:
        return store.list_cases(states=sorted(OPEN_STATES), cell_codes=list(cell_codes))
    cases = store.list_cases(cell_codes=list(cell_codes))
    return [c for c in cases if state_at(c, until) in OPEN_STATES]


def prepare_store(store: Store) -> None:
    """Fill what a store derives for the grid in force (the alley/cell table)."""
    if not store.is_empty():
        alley_cells(store)


# ---------------------------------------------------------------- tokens

def issue_token(store: Store, *, role: Role | str, name: str, subject: str | None = None,
                expires_at: dt.datetime | None = None,
                expires_in: dt.timedelta | None = None) -> str:
    """Create a bearer token, store its hash and return the token (shown once).

    The subject (default: the name) must suit the role (`gridcore.access.check_subject`:
    a stored chief id for ``chief`` and ``volunteer``, a department code, optionally
    with its jurisdiction ``CODE:DIVISION``, for ``department``, a street code for
    ``street``). A token
    expires at ``expires_at``, or ``expires_in`` from the store's now (see
    `parse_duration`); by default never.

    Raises
    ------
    ValueError
        Unknown role or empty name; both ``expires_at`` and ``expires_in``.
    InvalidCodeError
        A subject that names no stored chief or department.
    """
    now = store.clock.now_utc()
    if expires_in is not None:
        if expires_at is not None:
            raise InvalidValueError("give expires_at or expires_in, not both")
        expires_at = now + expires_in
    token, record = _issue_token(role=role, name=name, subject=subject, now=now)
    checked = check_subject(record.role, record.subject, chief_ids=store.chief_ids(),
                            department_codes=departments().index)
    record = dataclasses.replace(record, subject=checked)
    store.add_token(record, expires_at=expires_at)
    return token


_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_LONGEST_DURATION = dt.timedelta(days=3660)  # ten years: beyond that, say "never"


def parse_duration(text: str) -> dt.timedelta:
    """Return the length of time a text like ``30d``, ``12h`` or ``90m`` names.

    Raises
    ------
    InvalidValueError
        Anything but a whole number of at least 1 followed by ``d``, ``h`` or ``m``, or
        more than ten years.

    Example
    -------
    >>> parse_duration("12h")
    datetime.timedelta(seconds=43200)
    """
    import re

    m = re.fullmatch(r"([0-9]{1,7})([dhm])", str(text).strip(), flags=re.ASCII)
    if m is None or int(m[1]) < 1:
        raise InvalidValueError(f"{text!r} is not a duration; write a whole number of days, "
                                f"hours or minutes, e.g. 30d, 12h, 90m")
    length = dt.timedelta(**{_DURATION_UNITS[m[2]]: int(m[1])})
    if length > _LONGEST_DURATION:
        raise InvalidValueError(f"{text!r} is longer than ten years; leave the expiry out "
                                f"for a token that does not expire")
    return length


def list_tokens(store: Store) -> pd.DataFrame:
    """Return every token's public record: no token, no hash.

    Columns: id, role, name, subject, created_at, expires_at, last_used_at, revoked_at
    (aware UTC datetimes, None when unset), oldest first.
    """
    return store.tokens_frame()[["id", "role", "name", "subject", "created_at",
                                 "expires_at", "last_used_at", "revoked_at"]]


def revoke_token(store: Store, id: str) -> None:
    """Revoke the token with public id ``id``; requests with it answer 401 from now on.

    Raises
    ------
    NotFoundError
        No token has that id, or it is revoked already.
    """
    if not store.revoke_token_id(id):
        known = set(store.tokens_frame()["id"])
        why = "is revoked already" if id in known else "names no token"
        raise NotFoundError(f"token id {id!r} {why}; `gridcore token list` shows the ids")


# ---------------------------------------------------------------- cases

@dataclass(frozen=True)
class Reported:
    """What reporting a case gives back."""

    case: Case
    created: bool
    duplicate_of: list[int]


def report_case(store: Store, city: City, *, event_class_code: str, lon: float, lat: float,
                description: str, reporter: str, role: Role, at: dt.datetime | None = None,
                component_code: str | None = None, photo_ref: str | None = None,
                idempotency_key: str | None = None, request_hash: str | None = None,
                principal: str = "", scope: Scope | None = None) -> Reported:
    """Report a case at a WGS84 position: locate it, store it once, hint duplicates.

    With the reporter's ``scope``, a position they may not report at is refused
    (`gridcore.access.Scope.check_report_at`: a volunteer outside their chief's cells).

    Raises
    ------
    InvalidCodeError
        Unknown event class.
    OutsideCityError
        The position lies outside the city.
    ConflictError
        The idempotency key was used for another report.
    """
    at = at or store.clock.now_utc()
    klass = event_class(event_class_code)
    cell_code, street_code = locate_point(city, lon, lat)
    if scope is not None:
        scope.check_report_at(cell_code)
    if component_code is not None:
        _check_case_component(store, component_code, cell_code)
    case = _report_case(
        event_class=klass.code, lon=lon, lat=lat, description=description, reporter=reporter,
        role=role, at=at, cell_code=cell_code, street_code=street_code,
        component_code=component_code, photo_ref=photo_ref)
    case_id, created = store.add_case(case, idempotency_key=idempotency_key,
                                      request_hash=request_hash, principal=principal)
    since = at - dt.timedelta(hours=DUPLICATE_WINDOW_H)
    open_cases = store.open_cases_frame(event_class=klass.code, reported_since=since)
    open_cases = open_cases[open_cases["id"] != case_id].reset_index(drop=True)
    pos = find_duplicates(lon, lat, klass.code, at, open_cases,
                          radius_m=DUPLICATE_RADIUS_M, window_hours=DUPLICATE_WINDOW_H)
    return Reported(case=store.get_case(case_id), created=created,
                    duplicate_of=[int(i) for i in open_cases["id"].to_numpy()[pos]])


def record_followup(store: Store, followup: FollowUp, *, scope: Scope | None = None) -> int:
    """Store the 12345 follow-up call (回访) of a closed case; return its id.

    Raises
    ------
    NotFoundError
        No such case.
    PermissionDeniedError
        A case outside the caller's ``scope``.
    TransitionError
        The case is not closed: a follow-up asks the reporter about a finished case.
    """
    case = store.get_case(followup.case_id)
    if scope is not None:
        scope.check_case(case)
    if case.state is not CaseState.CLOSED:
        raise TransitionError(
            f"a follow-up (回访) is made on a closed case; case {case.id} is "
            f"{case.state.value!r}")
    return store.add_followup(followup)


def _check_case_component(store: Store, code: str, cell_code: str) -> None:
    """Refuse a case's component code that is not stored, or lies in another district."""
    from .codes import Level, ancestor_code
    from .components import parse_component_code

    parsed = parse_component_code(code)
    try:
        store.get_component(code)
    except NotFoundError:
        raise InvalidCodeError(f"component {code} is not in the store: give the code of a "
                               "stored component (部件), or none") from None
    district = ancestor_code(cell_code, Level.DISTRICT)
    if parsed.district != district:
        raise InvalidCodeError(
            f"component {code} belongs to district {parsed.district}, but the case lies in "
            f"district {district} (cell {cell_code}); check the code or the position")


def step_case(store: Store, case_id: int, action: Action | str, *, actor: str, role: Role,
              at: dt.datetime | None = None, scope: Scope | None = None, **kwargs) -> Case:
    """Take one step of the loop on a stored case (see `gridcore.cases.apply_action`).

    The case is read, checked and written in one transaction, so two concurrent steps
    cannot both succeed from the same state. With the actor's ``scope``, a case they
    may not see is refused before its state is looked at.

    Raises
    ------
    NotFoundError, TransitionError, PermissionDeniedError, InvalidCodeError
    """
    at = at or store.clock.now_utc()

    def change(case: Case) -> Case:
        if scope is not None:
            scope.check_case(case)
        return apply_action(case, action, actor=actor, role=role, at=at, **kwargs)

    return store.update_case(case_id, change)


# ---------------------------------------------------------------- joint tasks

def open_joint_task(store: Store, screening: Screening, *, event_class: str,
                    description: str, opened_by: str, at: dt.datetime | None = None,
                    receiving_code: str | None = None,
                    window: dt.timedelta = JOINT_TASK_WINDOW,
                    min_overlap: float = 0.8) -> tuple[JointTask, bool]:
    """Open a joint task for a cross-boundary incident, or join the open one it has.

    Returns
    -------
    (JointTask, bool)
        The task and whether it was newly opened.

    Raises
    ------
    TransitionError
        The incident is not joint.
    InvalidCodeError
        ``receiving_code`` is not a party.
    """
    from .disputes import open_or_join

    at = at or store.clock.now_utc()

    def decide(existing):
        return open_or_join(screening, existing=existing, event_class=event_class,
                            description=description, opened_by=opened_by, at=at,
                            receiving_code=receiving_code,
                            task_id=f"jt-{uuid.uuid4().hex[:16]}", window=window,
                            min_overlap=min_overlap)

    return store.add_or_join_dispute(event_class=event_class, level=screening.level.value,
                                     since=at - window, decide=decide)


def change_joint_task(store: Store, task_id: str, change) -> JointTask:
    """Apply one step to a joint task (``change(task)``) and store it atomically."""
    return store.update_dispute(task_id, change)


# ---------------------------------------------------------------- components

def register_components(store: Store, records: gpd.GeoDataFrame, *, table=None,
                        on: dt.date | None = None) -> gpd.GeoDataFrame:
    """Register new components: find their cells, issue codes, store them.

    ``records`` need Point geometry (EPSG:4326) and ``class_code``; see
    `gridcore.components.new_components` for defaults. Returns the stored rows.

    Raises
    ------
    InvalidCodeError
        Unknown class, or a point outside every cell (nothing is written).
    """
    from .components import new_components

    cells = store.load_grid()
    pos = point_to_cell(cells, records.geometry.x.to_numpy(), records.geometry.y.to_numpy())
    codes = np.where(pos >= 0, cells["code"].to_numpy(dtype=object)[np.maximum(pos, 0)], "")
    new = new_components(records, cell_codes=codes, existing_codes=store.component_codes(),
                         table=table, date=on or store.clock.today())
    add_components(store, new, table=table, cells=cells)
    return new


def add_components(store: Store, components: gpd.GeoDataFrame, *, table=None,
                   cells: gpd.GeoDataFrame | None = None) -> int:
    """Store registered components (validated, each in its cell); all or none.

    Raises
    ------
    DataFileError, InvalidCodeError
        Schema, code or cell problems (nothing is written).
    ConflictError
        A code that is already stored.
    """
    from .components import check_components_in_cells, validate_components

    frame = validate_components(components, table=table)
    check_components_in_cells(frame, store.load_grid() if cells is None else cells)
    return store.add_components(frame)


def update_components(store: Store, components: gpd.GeoDataFrame, *, table=None) -> int:
    """Edit, move or retire stored components (validated, each in its cell)."""
    from .components import check_components_in_cells, validate_components

    frame = validate_components(components, table=table)
    check_components_in_cells(frame, store.load_grid())
    return store.update_components(frame)


def import_components(store: Store, path: str | Path, *, crs=None, table=None) -> int:
    """Import components from GeoPackage/GeoJSON/CSV; all rows land or none.

    Files with a ``code`` column hold registered components and are stored as they are
    (validated); files without one hold new components, which are registered.
    """
    from .components import read_components_file

    frame = read_components_file(path, crs=crs)
    if "code" in frame.columns and (frame["code"] != "").any():
        return add_components(store, frame, table=table)
    return len(register_components(store, frame, table=table))


def export_components(store: Store, path: str | Path, *, district: str | None = None) -> Path:
    """Write stored components to GeoPackage/GeoJSON/CSV (by the file's extension).

    Raises
    ------
    InvalidCodeError
        ``district`` is not a 6-digit district code (an empty export would hide it).
    """
    from .codes import Level, validate_division_code
    from .components import write_components_file

    if district is not None:
        district = validate_division_code(district, Level.DISTRICT)
    return write_components_file(store.load_components(district=district), path)


# ---------------------------------------------------------------- alerts

def raise_sample_alerts(store: Store, cells: gpd.GeoDataFrame) -> int:
    """Compute and store the alerts of the bundled 堂子胡同 e-bike data set."""
    from .sample_heatmap import seed_sample_alerts

    return seed_sample_alerts(store, cells)
