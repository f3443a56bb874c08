"""Cases, their audit trail, follow-ups and idempotency keys.

A case's step runs inside one transaction that locks the case's row (read, apply the
domain transition, write), so two concurrent steps cannot both succeed from one state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from ..auth import Role
from ..cases import (
    OPEN_STATES,
    Action,
    Case,
    CaseEvent,
    CaseFilter,
    CaseState,
    FollowUp,
    Satisfaction,
)
from ..errors import ConflictError, NotFoundError
from ._base import Tx, chunks, instants, to_instant

_CASE_COLUMNS = (
    "id, event_class, state, lon, lat, description, reporter, reported_at, cell_code, "
    "street_code, component_code, photo_ref, department, time_limit_hours, closed_at")
_EVENT_COLUMNS = "case_id, seq, action, actor, role, at, from_state, to_state, note, department"


def _case_from_rows(row: dict, events: list[dict]) -> Case:
    return Case(
        id=int(row["id"]), event_class=row["event_class"], lon=row["lon"], lat=row["lat"],
        description=row["description"], reported_at=to_instant(row["reported_at"]),
        reporter=row["reporter"], state=CaseState(row["state"]),
        cell_code=row["cell_code"], street_code=row["street_code"],
        component_code=row["component_code"], photo_ref=row["photo_ref"],
        department=row["department"], time_limit_hours=row["time_limit_hours"],
        closed_at=to_instant(row["closed_at"]),
        events=tuple(
            CaseEvent(
                action=Action(e["action"]), actor=e["actor"], role=Role(e["role"]),
                at=to_instant(e["at"]),
                from_state=CaseState(e["from_state"]) if e["from_state"] else None,
                to_state=CaseState(e["to_state"]), note=e["note"], department=e["department"],
            )
            for e in events
        ),
    )


class CasesMixin:
    """`gridcore.store.CaseStore` over SQL."""

    def _insert_events(self, tx: Tx, case_id: int, events, start: int) -> None:
        ts = self.dialect.instant
        tx.executemany(
            f"INSERT INTO case_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(case_id, start + i, e.action.value, e.actor, e.role.value, ts(e.at),
              e.from_state.value if e.from_state else None, e.to_state.value, e.note,
              e.department) for i, e in enumerate(events)])

    def add_case(self, case: Case, *, idempotency_key: str | None = None,
                 request_hash: str | None = None, principal: str = "") -> tuple[int, bool]:
        """Store a new case with its audit trail, once per idempotency key.

        Parameters
        ----------
        case : Case
            A reported case (its ``id`` is ignored).
        idempotency_key : str, optional
            The client's ``Idempotency-Key``; keys are scoped to the ``principal``.
        request_hash : str, optional
            Digest of the request body, so a reused key with another body is caught.
        principal : str
            Who sends it (token subject), the scope of the key.

        Returns
        -------
        (int, bool)
            The case id, and False when the key had already created it (a retry).

        Raises
        ------
        ConflictError
            The key was used before with a different request body.
        """
        ts = self.dialect.instant
        with self._begin() as tx:
            if idempotency_key is not None:
                self.dialect.lock(tx, f"idempotency:{principal}:{idempotency_key}")
                row = tx.one("SELECT case_id, request_hash FROM idempotency_keys "
                             "WHERE principal = ? AND key = ?", (principal, idempotency_key))
                if row:
                    if row["request_hash"] != (request_hash or ""):
                        raise ConflictError(
                            f"Idempotency-Key {idempotency_key!r} was already used for a "
                            "different request; use a new key for a new report")
                    return int(row["case_id"]), False
            case_id = tx.insert_id(
                "INSERT INTO cases (event_class, state, lon, lat, description, reporter, "
                "reported_at, cell_code, street_code, component_code, photo_ref, department, "
                "time_limit_hours, closed_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (case.event_class, case.state.value, float(case.lon), float(case.lat),
                 case.description, case.reporter, ts(case.reported_at), case.cell_code,
                 case.street_code, case.component_code, case.photo_ref, case.department,
                 float(case.time_limit_hours), ts(case.closed_at), ts(self._now())))
            self._insert_events(tx, case_id, case.events, 0)
            if idempotency_key is not None:
                tx.execute(
                    "INSERT INTO idempotency_keys (principal, key, request_hash, case_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    (principal, idempotency_key, request_hash or "", case_id, ts(self._now())))
        return case_id, True

    def case_for_idempotency_key(self, key: str, *, principal: str) -> int | None:
        """Return the id of the case ``principal`` reported with this key (None: none)."""
        with self._reading() as tx:
            row = tx.one("SELECT case_id FROM idempotency_keys WHERE principal = ? AND key = ?",
                         (principal, key))
        return None if row is None else int(row["case_id"])

    def _load_case(self, tx: Tx, case_id: int, *, lock: bool = False) -> Case:
        row = tx.one(f"SELECT {_CASE_COLUMNS} FROM cases WHERE id = ?"
                     + (self.dialect.for_update if lock else ""), (int(case_id),))
        if row is None:
            raise NotFoundError(f"no case has id {case_id}")
        events = tx.rows(f"SELECT {_EVENT_COLUMNS} FROM case_events WHERE case_id = ? "
                         "ORDER BY seq", (int(case_id),))
        return _case_from_rows(row, events)

    def get_case(self, case_id: int) -> Case:
        """Return one case with its audit trail.

        Raises
        ------
        NotFoundError
            No case has this id.
        """
        with self._reading() as tx:
            return self._load_case(tx, case_id)

    def update_case(self, case_id: int, change) -> Case:
        """Apply ``change(case) -> Case`` (a domain transition) and store it atomically.

        The case's row is locked while ``change`` runs; if it raises (an illegal step, a
        wrong role), nothing is written. Only new audit events are appended.
        """
        ts = self.dialect.instant
        with self._begin() as tx:
            case = self._load_case(tx, case_id, lock=True)
            new = change(case)
            self._insert_events(tx, case.id, new.events[len(case.events):], len(case.events))
            tx.execute("UPDATE cases SET state = ?, department = ?, closed_at = ?, "
                       "updated_at = ? WHERE id = ?",
                       (new.state.value, new.department, ts(new.closed_at), ts(self._now()),
                        case.id))
        return new

    def list_cases(self, *, states: Sequence[CaseState | str] | None = None,
                   cell_codes: Sequence[str] | None = None, street_code: str | None = None,
                   department: str | None = None,
                   event_class: str | Sequence[str] | None = None,
                   reported_since: dt.datetime | None = None,
                   reported_before: dt.datetime | None = None,
                   updated_since: dt.datetime | None = None,
                   ids: Sequence[int] | None = None, limit: int | None = None,
                   offset: int = 0, visible: CaseFilter | None = None) -> list[Case]:
        """Return cases matching all the given filters, newest report first.

        ``event_class`` is one code or several; ``reported_since`` is inclusive,
        ``reported_before`` exclusive; ``updated_since`` keeps the cases with a step of
        their audit trail strictly after it; ``ids`` only these cases; ``visible`` (from
        `gridcore.access`) only the cases someone may see.
        """
        where, params = self._case_filters(
            states, cell_codes, street_code, department, event_class, reported_since,
            reported_before=reported_before, updated_since=updated_since, ids=ids,
            visible=visible)
        sql = f"SELECT {_CASE_COLUMNS} FROM cases {where} ORDER BY reported_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        with self._reading() as tx:
            rows = tx.rows(sql, params)
            ev: dict[int, list] = {int(r["id"]): [] for r in rows}
            for part in chunks(list(ev), 500):
                clause, p = self.dialect.in_values("case_id", part)
                for e in tx.rows(f"SELECT {_EVENT_COLUMNS} FROM case_events WHERE {clause} "
                                 "ORDER BY case_id, seq", p):
                    ev[int(e["case_id"])].append(e)
        return [_case_from_rows(r, ev[int(r["id"])]) for r in rows]

    def count_cases(self, *, states: Sequence[CaseState | str] | None = None) -> int:
        """Return how many cases are stored (in the given states)."""
        where, params = self._case_filters(states, None, None, None, None, None)
        return int(self._scalar(f"SELECT COUNT(*) FROM cases {where}", params))

    def _case_filters(self, states, cell_codes, street_code, department, event_class,
                      reported_since, *, reported_before=None, updated_since=None,
                      ids=None, visible=None) -> tuple[str, list]:
        clauses, params = [], []
        if ids is not None:
            clause, p = self.dialect.in_values("id", [int(i) for i in ids])
            clauses.append(clause)
            params += p
        if visible is not None and not visible.everything:
            clause, p = self._visible_clause(visible, "")
            clauses.append(clause)
            params += p
        if event_class is not None and not isinstance(event_class, str):
            clause, p = self.dialect.in_values("event_class", list(event_class))
            clauses.append(clause)
            params += p
            event_class = None
        if states is not None:
            clause, p = self.dialect.in_values("state", [CaseState(s).value for s in states])
            clauses.append(clause)
            params += p
        if cell_codes is not None:
            clause, p = self.dialect.in_values("cell_code", list(cell_codes))
            clauses.append(clause)
            params += p
        for col, val in (("street_code", street_code), ("department", department),
                         ("event_class", event_class)):
            if val is not None:
                clauses.append(f"{col} = ?")
                params.append(val)
        if reported_since is not None:
            clauses.append("reported_at >= ?")
            params.append(self.dialect.instant(reported_since))
        if reported_before is not None:
            clauses.append("reported_at < ?")
            params.append(self.dialect.instant(reported_before))
        if updated_since is not None:
            clauses.append("id IN (SELECT case_id FROM case_events WHERE at > ?)")
            params.append(self.dialect.instant(updated_since))
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _visible_clause(self, f: CaseFilter, prefix: str) -> tuple[str, list]:
        """Write `gridcore.cases.CaseFilter.matches` as SQL (the same rule, in the database)."""
        territory, params = [], []
        if f.cells is not None:
            clause, p = self.dialect.in_values(f"{prefix}cell_code", sorted(f.cells))
            territory.append(clause)
            params += p
        for code in f.divisions or ():
            territory.append(f"{prefix}cell_code LIKE ?")
            params.append(code + "%")  # division codes are digits only: no wildcard inside
        if f.cells is None and f.divisions is None:
            where = "1 = 1"
        else:
            where = "(" + (" OR ".join(territory) or "1 = 0") + ")"
        if f.department is not None:
            where += f" AND {prefix}department = ?"
            params.append(f.department)
        if f.reporter is not None:
            where = f"(({where}) OR {prefix}reporter = ?)"
            params.append(f.reporter)
        return f"({where})", params

    def cases_frame(self, *, reported_since: dt.datetime | None = None,
                    reported_before: dt.datetime | None = None,
                    visible: CaseFilter | None = None) -> pd.DataFrame:
        """Return cases flat for `gridcore.cases.case_metrics` (one SQL query).

        ``visible`` (from `gridcore.access`) keeps only the cases someone may see.
        """
        clauses, params = [], []
        if visible is not None and not visible.everything:
            clause, p = self._visible_clause(visible, "c.")
            clauses.append(clause)
            params += p
        if reported_since is not None:
            clauses.append("c.reported_at >= ?")
            params.append(self.dialect.instant(reported_since))
        if reported_before is not None:
            clauses.append("c.reported_at < ?")
            params.append(self.dialect.instant(reported_before))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        frame = self._frame(
            "SELECT c.id, c.event_class, c.state, c.street_code, c.department, "
            "c.reported_at, c.closed_at, c.time_limit_hours, "
            "COALESCE(SUM(CASE WHEN e.action = 'rework' THEN 1 ELSE 0 END), 0) "
            "AS rework_count, "
            "COALESCE(SUM(CASE WHEN e.action = 'handle' THEN 1 ELSE 0 END), 0) "
            "AS handled_count "
            f"FROM cases c LEFT JOIN case_events e ON e.case_id = c.id {where} "
            "GROUP BY c.id ORDER BY c.id", params)
        for col in ("id", "rework_count", "handled_count"):
            frame[col] = frame[col].astype("int64")
        frame["time_limit_hours"] = frame["time_limit_hours"].astype(float)
        frame["reported_at"] = instants(frame["reported_at"])
        frame["closed_at"] = instants(frame["closed_at"])
        return frame

    def open_cases_frame(self, *, event_class: str | None = None,
                         reported_since: dt.datetime | None = None) -> pd.DataFrame:
        """Return id, lon, lat, event_class, reported_at of open cases (for duplicates)."""
        where, params = self._case_filters(sorted(OPEN_STATES), None, None, None, event_class,
                                           reported_since)
        frame = self._frame(
            f"SELECT id, lon, lat, event_class, reported_at FROM cases {where} ORDER BY id",
            params)
        frame["id"] = frame["id"].astype("int64")
        frame["lon"] = frame["lon"].astype(float)
        frame["lat"] = frame["lat"].astype(float)
        frame["reported_at"] = instants(frame["reported_at"])
        return frame

    def add_followup(self, followup: FollowUp) -> int:
        """Store a follow-up call on a case and return its id.

        Raises
        ------
        NotFoundError
            No case has this id.
        """
        with self._begin() as tx:
            if tx.one("SELECT 1 AS x FROM cases WHERE id = ?", (int(followup.case_id),)) is None:
                raise NotFoundError(f"no case has id {followup.case_id}")
            return tx.insert_id(
                "INSERT INTO case_followups (case_id, at, responded, resolved, satisfaction, "
                "note) VALUES (?, ?, ?, ?, ?, ?)",
                (int(followup.case_id), self.dialect.instant(followup.at),
                 int(followup.responded), int(followup.resolved),
                 Satisfaction(followup.satisfaction).value, followup.note))

    def followups_frame(self) -> pd.DataFrame:
        """Return every follow-up: case_id, at, responded, resolved, satisfaction."""
        frame = self._frame("SELECT case_id, at, responded, resolved, satisfaction "
                            "FROM case_followups ORDER BY id")
        frame["case_id"] = frame["case_id"].astype("int64")
        frame["at"] = instants(frame["at"])
        frame["responded"] = frame["responded"].astype(bool)
        frame["resolved"] = frame["resolved"].astype(bool)
        return frame
