"""Joint tasks of cross-boundary cases, and the responsibility overrides between sides.

A task is written whole (its row and every child row) inside one transaction, so a
failure leaves no half-made task. Which open task an incident joins is decided by
`gridcore.disputes.open_or_join`, called by the application layer through
`add_or_join_dispute` inside the store's transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import shapely

from ..codes import Level
from ..disputes import (
    AppliedOverride,
    Department,
    JointTask,
    LeadRule,
    Meeting,
    Override,
    PartyRole,
    Step,
    StepAction,
    TaskParty,
    TaskStatus,
)
from ..errors import NotFoundError
from ._base import Tx, to_day, to_instant

_TASK_COLUMNS = ("id", "level", "event_class", "description", "status", "lead_code",
                 "lead_rule", "geom", "footprint", "footprint_key", "accuracy_m", "opened_at",
                 "opened_by", "deadline", "closed_at", "overrides")


class DisputesMixin:
    """`gridcore.store.DisputeStore` over SQL."""

    def add_or_join_dispute(self, *, event_class: str, level: str, since: dt.datetime,
                            decide: Callable[[list[JointTask]], tuple[JointTask, bool]]
                            ) -> tuple[JointTask, bool]:
        """Store the task ``decide(open_tasks)`` returns, atomically with reading them.

        ``open_tasks`` are the open tasks of the class and level opened since ``since``;
        ``decide`` returns the task to store (a new one or one of them, joined) and
        whether it is new. Concurrent callers for the same class and level queue.
        """
        with self._begin() as tx:
            self.dialect.lock(tx, f"dispute:{event_class}:{level}")
            ids = [r["id"] for r in tx.rows(
                "SELECT id FROM dispute_tasks WHERE status != 'closed' AND event_class = ? "
                "AND level = ? AND opened_at >= ? ORDER BY opened_at, id",
                (event_class, level, self.dialect.instant(since)))]
            task, opened = decide([self._load_dispute(tx, i) for i in ids])
            self._write_dispute(tx, task)
        return task, opened

    def get_dispute(self, task_id: str) -> JointTask:
        """Return a joint task by id.

        Raises
        ------
        NotFoundError
            No joint task has this id.
        """
        with self._reading() as tx:
            return self._load_dispute(tx, task_id)

    def update_dispute(self, task_id: str, change: Callable[[JointTask], object]) -> JointTask:
        """Apply ``change(task)`` (a JointTask method call) and store the result atomically.

        If ``change`` raises (an illegal step, a non-party), nothing is written.
        """
        with self._begin() as tx:
            task = self._load_dispute(tx, task_id, lock=True)
            change(task)
            self._write_dispute(tx, task)
        return task

    def list_disputes(self, *, party_codes=None, status=None, level=None,
                      department: str | None = None, opened_by: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[JointTask]:
        """List joint tasks, newest first.

        Parameters
        ----------
        party_codes : iterable of str, optional
            Only tasks with a party on the same branch as one of these codes: the code
            itself, a division inside it, or one containing it (a street sees the
            district-level tasks of its district).
        status : iterable of str, optional
        level : str, optional
        department : str, optional
            Only tasks that called this department.
        opened_by : str, optional
        limit, offset : int
        """
        where, params = [], []
        if party_codes is not None:
            codes = list(party_codes)
            if not codes:
                return []
            alts = " OR ".join(["(p.code LIKE ? || '%' OR ? LIKE p.code || '%')"] * len(codes))
            where.append(f"EXISTS (SELECT 1 FROM dispute_parties p WHERE p.task_id = t.id "
                         f"AND ({alts}))")
            for code in codes:
                params += [code, code]
        if status:
            clause, p = self.dialect.in_values("t.status",
                                               [str(getattr(x, "value", x)) for x in status])
            where.append(clause)
            params += p
        if level is not None:
            where.append("t.level = ?")
            params.append(str(getattr(level, "value", level)))
        if department is not None:
            where.append("EXISTS (SELECT 1 FROM dispute_departments d "
                         "WHERE d.task_id = t.id AND d.code = ?)")
            params.append(department)
        if opened_by is not None:
            where.append("t.opened_by = ?")
            params.append(opened_by)
        sql = "SELECT t.id FROM dispute_tasks t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.opened_at DESC, t.id LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
        with self._reading() as tx:
            ids = [r["id"] for r in tx.rows(sql, params)]
            return [self._load_dispute(tx, i) for i in ids]

    def count_dispute_steps(self) -> int:
        """Return how many joint-task steps are stored (all tasks)."""
        return int(self._scalar("SELECT COUNT(*) FROM dispute_steps"))

    def save_dispute_override(self, override: Override) -> None:
        """Store (or replace) a responsibility override (an agreement between sides)."""
        day = self.dialect.day
        with self._begin() as tx:
            tx.execute(
                "INSERT INTO dispute_overrides (id, name, level, assigned_code, valid_from, "
                f"valid_to, agreed_by, buffer_m, geom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                f"{self.dialect.geom_in()}) ON CONFLICT (id) DO UPDATE SET "
                "name = excluded.name, level = excluded.level, "
                "assigned_code = excluded.assigned_code, valid_from = excluded.valid_from, "
                "valid_to = excluded.valid_to, agreed_by = excluded.agreed_by, "
                "buffer_m = excluded.buffer_m, geom = excluded.geom",
                (override.id, override.name, str(getattr(override.level, "value", override.level)),
                 override.assigned_code, day(override.valid_from), day(override.valid_to),
                 json.dumps(list(override.agreed_by), ensure_ascii=False),
                 float(override.buffer_m), shapely.to_wkb(override.geometry)))

    def dispute_overrides(self) -> list[Override]:
        """Return every stored responsibility override (list of Override)."""
        rows = self._rows(
            "SELECT id, name, level, assigned_code, valid_from, valid_to, agreed_by, buffer_m, "
            f"{self.dialect.geom_out('geom')} FROM dispute_overrides ORDER BY id")
        return [
            Override(id=r["id"], name=r["name"], level=r["level"],
                     assigned_code=r["assigned_code"], valid_from=to_day(r["valid_from"]),
                     valid_to=to_day(r["valid_to"]), agreed_by=tuple(json.loads(r["agreed_by"])),
                     buffer_m=float(r["buffer_m"]), geometry=shapely.from_wkb(bytes(r["geom"])))
            for r in rows
        ]

    def _write_dispute(self, tx: Tx, task: JointTask) -> None:
        ts = self.dialect.instant
        g = self.dialect.geom_in()
        tx.execute("DELETE FROM dispute_tasks WHERE id = ?", (task.id,))  # children cascade
        tx.execute(
            f"INSERT INTO dispute_tasks ({', '.join(_TASK_COLUMNS)}) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, {g}, {g}, ?, ?, ?, ?, ?, ?, ?)",
            (task.id, task.level.value, task.event_class, task.description, task.status.value,
             task.lead_code, task.lead_rule.value, shapely.to_wkb(task.geometry),
             shapely.to_wkb(task.footprint), task.footprint_key, float(task.accuracy_m),
             ts(task.opened_at), task.opened_by, ts(task.deadline), ts(task.closed_at),
             json.dumps([_override_audit(o) for o in task.overrides], ensure_ascii=False)))
        tx.executemany(
            "INSERT INTO dispute_parties (task_id, code, name, share, role, checked_in_at, part, "
            "done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(task.id, p.code, p.name, float(p.share), p.role.value, ts(p.checked_in_at),
              p.part, ts(p.done_at)) for p in task.parties])
        tx.executemany(
            "INSERT INTO dispute_departments (task_id, code, name, called_by, called_at, "
            "reported_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(task.id, d.code, d.name, d.called_by, ts(d.called_at), ts(d.reported_at))
             for d in task.departments])
        tx.executemany(
            "INSERT INTO dispute_meetings (task_id, seq, at, place, convened_by, attendees, "
            "notes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(task.id, i, ts(m.at), m.place, m.convened_by,
              json.dumps(list(m.attendees), ensure_ascii=False), m.notes)
             for i, m in enumerate(task.meetings)])
        tx.executemany(
            "INSERT INTO dispute_steps (task_id, seq, at, actor, party_code, action, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(task.id, i, ts(s.at), s.actor, s.party_code, s.action.value,
              json.dumps(s.detail, ensure_ascii=False, default=str))
             for i, s in enumerate(task.history)])

    def _load_dispute(self, tx: Tx, task_id: str, *, lock: bool = False) -> JointTask:
        t = to_instant
        cols = ", ".join(self.dialect.geom_out(c) if c in ("geom", "footprint") else c
                         for c in _TASK_COLUMNS)
        row = tx.one(f"SELECT {cols} FROM dispute_tasks WHERE id = ?"
                     + (self.dialect.for_update if lock else ""), (task_id,))
        if row is None:
            raise NotFoundError(f"no joint task has id {task_id!r}")
        parties = [
            TaskParty(code=r["code"], name=r["name"], share=r["share"],
                      role=PartyRole(r["role"]), checked_in_at=t(r["checked_in_at"]),
                      part=r["part"], done_at=t(r["done_at"]))
            for r in tx.rows("SELECT code, name, share, role, checked_in_at, part, done_at "
                             "FROM dispute_parties WHERE task_id = ? ORDER BY share DESC, code",
                             (task_id,))
        ]
        departments = [
            Department(code=r["code"], name=r["name"], called_by=r["called_by"],
                       called_at=t(r["called_at"]), reported_at=t(r["reported_at"]))
            for r in tx.rows("SELECT code, name, called_by, called_at, reported_at "
                             "FROM dispute_departments WHERE task_id = ? ORDER BY called_at, "
                             "code", (task_id,))
        ]
        meetings = [
            Meeting(at=t(r["at"]), place=r["place"], convened_by=r["convened_by"],
                    attendees=tuple(json.loads(r["attendees"])), notes=r["notes"])
            for r in tx.rows("SELECT at, place, convened_by, attendees, notes "
                             "FROM dispute_meetings WHERE task_id = ? ORDER BY seq", (task_id,))
        ]
        history = [
            Step(at=t(r["at"]), actor=r["actor"], party_code=r["party_code"],
                 action=StepAction(r["action"]), detail=json.loads(r["detail"]))
            for r in tx.rows("SELECT at, actor, party_code, action, detail FROM dispute_steps "
                             "WHERE task_id = ? ORDER BY seq", (task_id,))
        ]
        overrides = tuple(
            AppliedOverride(id=o["id"], name=o["name"], assigned_code=o["assigned_code"],
                            share=o["share"], agreed_by=tuple(o["agreed_by"]),
                            valid_from=to_day(o["valid_from"]), valid_to=to_day(o["valid_to"]))
            for o in json.loads(row["overrides"])
        )
        return JointTask(
            id=row["id"], level=Level(row["level"]), event_class=row["event_class"],
            description=row["description"], parties=parties, lead_code=row["lead_code"],
            lead_rule=LeadRule(row["lead_rule"]), geometry=shapely.from_wkb(bytes(row["geom"])),
            footprint=shapely.from_wkb(bytes(row["footprint"])),
            footprint_key=row["footprint_key"], accuracy_m=row["accuracy_m"],
            opened_at=t(row["opened_at"]), opened_by=row["opened_by"],
            status=TaskStatus(row["status"]), deadline=t(row["deadline"]),
            departments=departments, meetings=meetings, overrides=overrides, history=history,
            closed_at=t(row["closed_at"]))


def _override_audit(o: AppliedOverride) -> dict:
    return {"id": o.id, "name": o.name, "assigned_code": o.assigned_code, "share": o.share,
            "agreed_by": list(o.agreed_by), "valid_from": o.valid_from.isoformat(),
            "valid_to": o.valid_to.isoformat() if o.valid_to else None}
