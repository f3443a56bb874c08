"""Who may do what, on which object: the one access policy.

Every route and every command asks this module; nothing else decides. It answers two
questions:

1. **May this role do this at all?** `authorize` (``principal``, `Permission`), from the
   one table `GRANTS` (the loop's steps come from the workflow's own
   `gridcore.cases.ACTION_ROLES`).
2. **Which objects are theirs?** `scope_of` computes a caller's `Scope` for a day of the
   city (today unless the role is allowed history): the territory (cells, or division
   codes, or the whole city), the department, the reports that are theirs. Its methods
   filter and check cases, cells, alerts, chiefs and joint tasks.

========== ================================ ==================================================
role       token subject                    territory and objects
========== ================================ ==================================================
admin      (name)                           everything
dispatcher (name) or a district code        the city, or one district (区指挥中心)
department ``CODE`` or ``CODE:DIVISION``    cases dispatched to CODE (in DIVISION); JD needs one
street     9-digit street code              its street; handles the JD cases dispatched there
chief      chief id                         the cells of their alleys (today; past days: then)
volunteer  chief id (the chief helped)      that chief's cells, today; reports only there
supervisor (name) or a division code        what they reported, and the division in their care
========== ================================ ==================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from .auth import Principal, Role
from .cases import ACTION_ROLES, Action, Case, CaseFilter
from .codes import Level, ancestor_code, division_level, is_within, validate_division_code
from .errors import InvalidCodeError, NotFoundError, PermissionDeniedError

if TYPE_CHECKING:
    from .disputes import JointTask
    from .store import Store

__all__ = [
    "GRANTS",
    "Permission",
    "Scope",
    "authorize",
    "check_subject",
    "scope_of",
]


#: ``cells_of(chief_id, day)``: the cells of a chief's alleys on a day.
CellsOf = Callable[[str, dt.date], set[str]]


class Permission(StrEnum):
    """What a route or a command does, as the policy knows it."""

    READ_GRID = "read_grid"  # cells and divisions (the grid is also public on the pages)
    READ_REFERENCE = "read_reference"  # event classes, departments
    LOCATE = "locate"
    REPORT_CASE = "report_case"
    READ_CASES = "read_cases"
    FOLLOW_UP = "follow_up"
    READ_METRICS = "read_metrics"
    READ_CHIEFS = "read_chiefs"
    READ_CHIEF_VIEW = "read_chief_view"
    ASSIGN_CHIEF = "assign_chief"
    READ_ALERTS = "read_alerts"
    SCREEN_DISPUTE = "screen_dispute"
    OPEN_JOINT_TASK = "open_joint_task"
    CASE_TO_JOINT_TASK = "case_to_joint_task"
    READ_JOINT_TASKS = "read_joint_tasks"
    ACT_IN_JOINT_TASK = "act_in_joint_task"
    REPORT_DEPARTMENT_IN = "report_department_in"
    READ_OVERRIDES = "read_overrides"
    RECORD_OVERRIDE = "record_override"
    MANAGE_TOKENS = "manage_tokens"


_EVERYONE = frozenset(Role)
_DESK = frozenset({Role.DISPATCHER, Role.ADMIN})

#: The roles allowed each permission; what they then see is their `Scope`.
GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.READ_GRID: _EVERYONE,
    Permission.READ_REFERENCE: _EVERYONE,
    Permission.LOCATE: _EVERYONE,
    Permission.REPORT_CASE: ACTION_ROLES[Action.REPORT],
    Permission.READ_CASES: _EVERYONE,
    Permission.FOLLOW_UP: _DESK,
    Permission.READ_METRICS: _EVERYONE - {Role.VOLUNTEER},
    Permission.READ_CHIEFS: _EVERYONE - {Role.DEPARTMENT},
    Permission.READ_CHIEF_VIEW: frozenset({Role.CHIEF, Role.VOLUNTEER, Role.STREET}) | _DESK,
    Permission.ASSIGN_CHIEF: frozenset({Role.ADMIN}),
    Permission.READ_ALERTS: _EVERYONE,
    Permission.SCREEN_DISPUTE: _EVERYONE - {Role.VOLUNTEER},
    Permission.OPEN_JOINT_TASK: frozenset({Role.SUPERVISOR, Role.CHIEF, Role.STREET}) | _DESK,
    Permission.CASE_TO_JOINT_TASK: frozenset({Role.CHIEF, Role.STREET}) | _DESK,
    Permission.READ_JOINT_TASKS: _EVERYONE - {Role.VOLUNTEER},
    Permission.ACT_IN_JOINT_TASK: frozenset({Role.CHIEF, Role.STREET}) | _DESK,
    Permission.REPORT_DEPARTMENT_IN: frozenset({Role.DEPARTMENT}) | _DESK,
    Permission.READ_OVERRIDES: _EVERYONE - {Role.VOLUNTEER},
    Permission.RECORD_OVERRIDE: frozenset({Role.ADMIN}),
    Permission.MANAGE_TOKENS: frozenset({Role.ADMIN}),
}

#: Roles whose scope may be taken on a past day (their own history).
HISTORY_ROLES = frozenset({Role.CHIEF, Role.DISPATCHER, Role.ADMIN})


def _roles_text(roles: Iterable[Role]) -> str:
    return ", ".join(sorted(r.value for r in roles))


def authorize(principal: Principal, permission: Permission | Action) -> None:
    """Refuse a caller whose role may not do ``permission`` (a case step: an `Action`).

    Raises
    ------
    PermissionDeniedError
        Naming the caller's role and the roles allowed.
    """
    if isinstance(permission, Action):
        roles, what = ACTION_ROLES[permission], f"{permission.value!r} a case"
    else:
        roles, what = GRANTS[permission], permission.value.replace("_", " ")
    if principal.role not in roles:
        raise PermissionDeniedError(
            f"role {principal.role.value!r} may not {what}; allowed roles: "
            f"{_roles_text(roles)}")


# ------------------------------------------------------------------ subjects

def _split_department(subject: str) -> tuple[str, str | None]:
    code, _, division = subject.partition(":")
    return code.strip(), (division.strip() or None)


def check_subject(role: Role, subject: str, *, chief_ids: Iterable[str] = (),
                  department_codes: Iterable[str] = ()) -> str:
    """Return a token's subject normalised, or say what a subject for ``role`` must be.

    Raises
    ------
    InvalidCodeError
        A chief or volunteer without a stored chief id, a department without a known
        code (or JD without its street or district), a street office without a
        9-digit street code, a division code that is not one.
    """
    subject = subject.strip()
    if role in (Role.CHIEF, Role.VOLUNTEER):
        ids = set(chief_ids)
        if subject not in ids:
            who = "the chief's id" if role is Role.CHIEF else "the id of the chief it helps"
            raise InvalidCodeError(
                f"a {role.value} token needs {who} as subject; {subject!r} is no stored "
                f"chief (known: {', '.join(sorted(ids)[:5])}...)")
        return subject
    if role is Role.DEPARTMENT:
        code, division = _split_department(subject)
        known = set(department_codes)
        if code not in known:
            raise InvalidCodeError(
                f"a department token needs a department code as subject (optionally "
                f"CODE:DIVISION); {code!r} is none; known: {', '.join(sorted(known))}")
        if code == "JD" and division is None:
            raise InvalidCodeError(
                "JD is the territorial street office (属地): its token names its street or "
                "district, e.g. --subject JD:110101001 (or make a 'street' token)")
        if division is not None:
            division = validate_division_code(division)
            if division_level(division) not in (Level.DISTRICT, Level.STREET):
                raise InvalidCodeError(
                    f"a department's jurisdiction is a district or a street code; "
                    f"{division!r} is a {division_level(division).value} code")
            return f"{code}:{division}"
        return code
    if role is Role.STREET:
        return validate_division_code(subject, Level.STREET)
    if role in (Role.SUPERVISOR, Role.DISPATCHER) and subject.isdigit():
        code = validate_division_code(subject)
        if role is Role.DISPATCHER and division_level(code) is not Level.DISTRICT:
            raise InvalidCodeError(
                f"a district command centre's subject is its 6-digit district code; "
                f"{code!r} is a {division_level(code).value} code")
        return code
    return subject


# ------------------------------------------------------------------ scopes

@dataclass(frozen=True)
class Scope:
    """What one caller may see on one day of the city.

    ``cells`` and ``divisions`` are the territory (both None: the whole city);
    ``department`` the department whose cases they are; ``reporter`` the name whose
    reports are theirs whatever the territory.
    """

    principal: Principal
    on: dt.date
    cells: frozenset[str] | None = None
    divisions: tuple[str, ...] | None = None
    department: str | None = None
    reporter: str | None = None
    cells_of: CellsOf | None = field(default=None, repr=False, compare=False)

    @property
    def role(self) -> Role:
        """The caller's role."""
        return self.principal.role

    @property
    def everywhere(self) -> bool:
        """Whether the territory is the whole city."""
        return self.cells is None and self.divisions is None

    # -- places

    def covers_cell(self, cell_code: str | None) -> bool:
        """Whether a cell lies in the caller's territory."""
        return self.case_filter_territory().in_territory(cell_code)

    def covers_any(self, cell_codes: Iterable[str]) -> bool:
        """Whether any of the cells lies in the territory."""
        return any(self.covers_cell(c) for c in cell_codes)

    def streets(self) -> set[str]:
        """Return the streets the caller answers for (a chief: of their cells)."""
        if self.cells is not None:
            return {ancestor_code(c, Level.STREET) for c in self.cells}
        return {d for d in self.divisions or () if division_level(d) is Level.STREET}

    # -- cases

    def case_filter_territory(self) -> CaseFilter:
        """Return the territory alone, as a `gridcore.cases.CaseFilter`."""
        return CaseFilter(cells=self.cells, divisions=self.divisions)

    def case_filter(self) -> CaseFilter:
        """Return the cases this caller may see, as data for `Store.list_cases`."""
        return CaseFilter(cells=self.cells, divisions=self.divisions,
                          department=self.department, reporter=self.reporter)

    def may_read_case(self, case: Case) -> bool:
        """Whether the caller may read ``case``."""
        return self.case_filter().matches(case)

    def check_case(self, case: Case) -> Case:
        """Return ``case`` if the caller may read it.

        Raises
        ------
        PermissionDeniedError
            Naming why, without a word about the case's content.
        """
        if not self.may_read_case(case):
            raise PermissionDeniedError(f"case {case.id} is not among the cases you may "
                                        f"see ({self.describe()})")
        return case

    def check_report_at(self, cell_code: str | None) -> None:
        """Refuse a volunteer's report outside their chief's cells.

        Raises
        ------
        PermissionDeniedError
        """
        if self.role is Role.VOLUNTEER and not self.covers_cell(cell_code):
            raise PermissionDeniedError(
                "a volunteer (小巷管家) reports in the alleys of the chief it helps; this "
                "position lies outside them")

    def actor_department(self) -> str | None:
        """Return the department a caller handles cases as (a street office: JD)."""
        if self.role is Role.STREET:
            return "JD"
        return self.department

    def describe(self) -> str:
        """Say in words what the caller's scope is."""
        p = self.principal
        if self.everywhere and self.department is None:
            return f"{p.role.value}: the whole city"
        parts = []
        if self.cells is not None:
            parts.append(f"the {len(self.cells)} cells of chief {p.subject!r}")
        if self.divisions:
            parts.append("division " + ", ".join(self.divisions))
        if self.department:
            parts.append(f"cases dispatched to {self.department}")
        if self.reporter:
            parts.append(f"reports by {self.reporter}")
        return f"{p.role.value}: " + "; ".join(parts)

    def sees_detail_at(self, cell_code: str | None) -> bool:
        """Whether the caller may see who and what is at a cell (components, owners, chiefs).

        Supervisors report anywhere and need the nearest components' owners to do so;
        everyone else sees them in their own territory.
        """
        return self.everywhere or self.role is Role.SUPERVISOR or self.covers_cell(cell_code)

    # -- alerts, chiefs

    def alerts(self, rows: Iterable[dict]) -> list[dict]:
        """Keep the alerts that touch the caller's territory."""
        return [r for r in rows if self.covers_any(_alert_cells(r))]

    def chief_ids(self, store: Store) -> set[str] | None:
        """Return the chiefs the caller may read (None: every chief)."""
        if self.role in (Role.CHIEF, Role.VOLUNTEER):
            return {self.principal.subject}
        if self.everywhere:
            return None
        return {cid for cid in store.chief_ids()
                if self.cells_of is not None and self.covers_any(self.cells_of(cid, self.on))}

    def check_chief(self, store: Store, chief_id: str, *, on: dt.date) -> None:
        """Refuse to show a chief's view that is not the caller's.

        Raises
        ------
        PermissionDeniedError
        """
        authorize(self.principal, Permission.READ_CHIEF_VIEW)
        if on != self.on and self.role not in HISTORY_ROLES:
            raise PermissionDeniedError(
                f"role {self.role.value!r} reads today's view only; past days are for "
                f"{_roles_text(HISTORY_ROLES)}")
        allowed = self.chief_ids(store)
        if allowed is not None and chief_id not in allowed:
            raise PermissionDeniedError(
                f"chief {chief_id!r} is not yours to read ({self.describe()})")

    # -- joint tasks

    def may_read_task(self, task: JointTask) -> bool:
        """Whether the caller may read a joint task."""
        if self.everywhere and self.department is None and self.reporter is None:
            return True
        if self.role is Role.DEPARTMENT:
            return any(d.code == self.department for d in task.departments)
        if self.role is Role.SUPERVISOR:
            if any(s.actor == self.principal.name for s in task.history) \
                    or task.opened_by == self.principal.name:
                return True
        codes = self._task_codes()
        return any(is_within(a, b) or is_within(b, a) for a in codes for b in task.party_codes)

    def check_task(self, task: JointTask) -> JointTask:
        """Return ``task`` if the caller may read it.

        Raises
        ------
        PermissionDeniedError
        """
        if not self.may_read_task(task):
            raise PermissionDeniedError(
                f"joint task {task.id} is between {', '.join(task.party_codes)}; you are "
                "not party to it")
        return task

    def task_party_codes(self) -> list[str] | None:
        """Division codes whose tasks the caller lists (None: every task)."""
        if self.everywhere and self.department is None and self.reporter is None:
            return None
        return sorted(self._task_codes())

    def _task_codes(self) -> set[str]:
        if self.cells is not None:
            return self.streets()
        return set(self.divisions or ())

    def acting_party(self, task: JointTask, asked: str | None) -> str:
        """Return the party the caller acts for in ``task``: their own side only.

        A chief or a street office acts for its street (or a community in it), a
        district command centre for a side in its district; the city's desk names the
        side it acts for. Reading a task is wider (a street reads its district's task);
        acting is not.

        Raises
        ------
        PermissionDeniedError
        """
        authorize(self.principal, Permission.ACT_IN_JOINT_TASK)
        self.check_task(task)
        if self.everywhere:
            if asked is None:
                raise PermissionDeniedError(
                    "say which party you act for: party_code, one of "
                    + ", ".join(task.party_codes))
            task.party(asked)  # a non-party: PermissionDeniedError naming the parties
            return asked
        mine = [p for p in task.party_codes
                if any(is_within(p, own) for own in self._task_codes())]
        if asked is not None:
            task.party(asked)
            if asked not in mine:
                raise PermissionDeniedError(
                    f"you may act only for your own side ({', '.join(mine) or 'none here'})"
                    f", not for {asked}")
            return asked
        if len(mine) != 1:
            raise PermissionDeniedError(
                f"you are not party to joint task {task.id}" if not mine
                else "you are on the side of several parties: say which with party_code")
        return mine[0]

    def joint_task_filter(self) -> dict:
        """Keyword filters of `Store.list_disputes` for the tasks the caller may list."""
        if self.role is Role.DEPARTMENT:
            return {"department": self.department}
        if self.role is Role.SUPERVISOR and not self.divisions:
            return {"opened_by": self.principal.name}
        return {"party_codes": self.task_party_codes()}


def _alert_cells(row: dict) -> list[str]:
    cells = row.get("cell_codes")
    if cells is None:
        cells = [row.get("cell_code")]
    elif isinstance(cells, str):
        cells = [c for c in cells.replace(";", ",").split(",") if c]
    return [c for c in cells if c]


def scope_of(store: Store, principal: Principal, *, cells_of: CellsOf,
             on: dt.date | None = None, today: dt.date | None = None) -> Scope:
    """Return what ``principal`` may see on the city's day ``on`` (default today).

    ``cells_of(chief_id, day)`` gives a chief's cells on a day (the application layer
    derives them: `gridcore.app.chief_cells`); `gridcore.app.scope_of` passes it.
    ``today`` is the city's today (default the store's clock's).

    Raises
    ------
    PermissionDeniedError
        ``on`` is a past or future day and the role reads only today.
    NotFoundError
        A chief's or volunteer's token whose chief is no longer stored.
    """
    today = today or store.clock.today()
    day = on or today
    if day != today and principal.role not in HISTORY_ROLES:
        raise PermissionDeniedError(
            f"role {principal.role.value!r} reads today only; other days are for "
            f"{_roles_text(HISTORY_ROLES)}")
    role, subject = principal.role, principal.subject
    if role is Role.ADMIN:
        return Scope(principal, day, cells_of=cells_of)
    if role is Role.DISPATCHER:
        if subject.isdigit():
            return Scope(principal, day, divisions=(subject,), cells_of=cells_of)
        return Scope(principal, day, cells_of=cells_of)
    if role in (Role.CHIEF, Role.VOLUNTEER):
        if subject not in set(store.chief_ids()):
            raise NotFoundError(f"chief {subject!r} of this token is no longer stored")
        return Scope(principal, day, cells=frozenset(cells_of(subject, day)),
                     cells_of=cells_of)
    if role is Role.STREET:
        return Scope(principal, day, divisions=(subject,), cells_of=cells_of)
    if role is Role.DEPARTMENT:
        code, division = _split_department(subject)
        if code == "JD" and division is None:  # a first-release JD token: no street, nothing
            return Scope(principal, day, divisions=(), department=code)
        return Scope(principal, day, divisions=(division,) if division else None,
                     department=code)
    if role is Role.SUPERVISOR:
        divisions = (subject,) if subject.isdigit() else ()
        return Scope(principal, day, divisions=divisions, reporter=principal.name)
    raise PermissionDeniedError(f"role {role.value!r} has no scope")  # pragma: no cover
