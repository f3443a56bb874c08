"""Persistence: the `Store` interface and its embedded SQLite implementation.

Geometries are stored as WKB in EPSG:4326. The SQLite file runs in WAL mode and every
write is one transaction, so a failed import leaves nothing behind. A PostgreSQL/PostGIS
store implements the same `Store` protocol.

Sections below the divisions/grid core are owned by the domain they persist (components,
cases, disputes, alerts): each keeps its tables in `_SCHEMA` and its methods together.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .auth import Principal, Role, hash_token, issue_token, verify_token
from .cases import (
    OPEN_STATES,
    Action,
    Case,
    CaseEvent,
    CaseState,
    FollowUp,
    Satisfaction,
    apply_action,
    departments,
)
from .chiefs import ChiefRoster, alleys_to_cells, load_sample_roster, validate_assignments
from .codes import Level, validate_cell_code
from .crs import GEOGRAPHIC_EPSG
from .disputes import (
    AppliedOverride,
    Department,
    JointTask,
    LeadRule,
    Meeting,
    Override,
    PartyRole,
    Screening,
    Step,
    StepAction,
    TaskParty,
    TaskStatus,
    open_or_join,
)
from .divisions import DIVISION_COLUMNS, Divisions
from .errors import (
    AuthenticationError,
    CellNotFoundError,
    ConflictError,
    InvalidCodeError,
    NotFoundError,
)
from .grid import CELL_COLUMNS, GridVersion

DEFAULT_DB = "gridcore.db"


def default_db_path() -> Path:
    """Return the store path: ``$GRIDCORE_DB`` or ``./gridcore.db``."""
    return Path(os.environ.get("GRIDCORE_DB") or DEFAULT_DB)


@runtime_checkable
class Store(Protocol):
    """What gridcore needs from a store of divisions and grid versions."""

    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions."""

    def load_divisions(self) -> Divisions:
        """Return the stored divisions."""

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version and return its id."""

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions (id, valid_from, source, n_cells, created_at)."""

    def load_grid(self, version: int | None = None, *, on: date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a version (default: the one valid today)."""

    def get_cell(self, code: str, version: int | None = None) -> pd.Series:
        """Return one cell by code."""


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS divisions (
        code TEXT PRIMARY KEY,
        level TEXT NOT NULL CHECK (level IN ('district', 'street', 'community')),
        name TEXT NOT NULL,
        parent_code TEXT,
        synthetic INTEGER NOT NULL,
        geom BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS grid_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        valid_from TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cells (
        version_id INTEGER NOT NULL REFERENCES grid_versions(id),
        code TEXT NOT NULL,
        community_code TEXT NOT NULL,
        street_code TEXT NOT NULL,
        district_code TEXT NOT NULL,
        area_m2 REAL NOT NULL,
        geom BLOB NOT NULL,
        PRIMARY KEY (version_id, code))""",
    # ---- cases (gridcore/cases.py, chiefs.py, auth.py) ----
    """CREATE TABLE IF NOT EXISTS cases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_class TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('reported', 'filed', 'dispatched', 'handled', 'closed', 'rejected')),
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        description TEXT NOT NULL,
        reporter TEXT NOT NULL,
        reported_at TEXT NOT NULL,
        cell_code TEXT,
        street_code TEXT,
        component_code TEXT,
        photo_ref TEXT,
        department TEXT,
        time_limit_hours REAL NOT NULL,
        closed_at TEXT,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cases_state ON cases (state, event_class)",
    "CREATE INDEX IF NOT EXISTS cases_cell ON cases (cell_code)",
    "CREATE INDEX IF NOT EXISTS cases_reported ON cases (reported_at)",
    """CREATE TABLE IF NOT EXISTS case_events (
        case_id INTEGER NOT NULL REFERENCES cases(id),
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        at TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        department TEXT,
        PRIMARY KEY (case_id, seq))""",
    """CREATE TABLE IF NOT EXISTS case_followups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id INTEGER NOT NULL REFERENCES cases(id),
        at TEXT NOT NULL,
        responded INTEGER NOT NULL,
        resolved INTEGER NOT NULL,
        satisfaction TEXT NOT NULL CHECK (satisfaction IN ('满意', '基本满意', '不满意')),
        note TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        case_id INTEGER NOT NULL REFERENCES cases(id),
        created_at TEXT NOT NULL,
        PRIMARY KEY (principal, key))""",
    """CREATE TABLE IF NOT EXISTS chiefs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, title TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS alleys (
        name TEXT PRIMARY KEY, synthetic INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
        geom BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chief_assignments (
        chief_id TEXT NOT NULL REFERENCES chiefs(id),
        alley TEXT NOT NULL REFERENCES alleys(name),
        valid_from TEXT NOT NULL,
        PRIMARY KEY (alley, valid_from))""",
    """CREATE TABLE IF NOT EXISTS alley_cells (
        version_id INTEGER NOT NULL REFERENCES grid_versions(id),
        alley TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        PRIMARY KEY (version_id, alley, cell_code))""",
    """CREATE TABLE IF NOT EXISTS alley_cells_done (
        version_id INTEGER PRIMARY KEY REFERENCES grid_versions(id))""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN
            ('supervisor', 'dispatcher', 'department', 'chief', 'admin')),
        name TEXT NOT NULL,
        subject TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT)""",
    # ---- components (gridcore.components)
    """CREATE TABLE IF NOT EXISTS components (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        class_code TEXT NOT NULL,
        dept_code TEXT NOT NULL,
        dept_name TEXT NOT NULL,
        owner TEXT NOT NULL,
        maintainer TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('完好', '破损', '丢失', '废弃', '移除')),
        first_survey_date TEXT NOT NULL,
        change_date TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('实测', '地形图', '其他')),
        accuracy_m REAL,
        synthetic INTEGER NOT NULL,
        geom BLOB NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS components_cell ON components (cell_code)""",


    # ---- disputes (gridcore/disputes.py): joint tasks of cross-boundary cases ----
    """CREATE TABLE IF NOT EXISTS dispute_tasks (
        id TEXT PRIMARY KEY,
        level TEXT NOT NULL,
        event_class TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'closed')),
        lead_code TEXT NOT NULL,
        lead_rule TEXT NOT NULL,
        geom BLOB NOT NULL,
        footprint BLOB NOT NULL,
        footprint_key TEXT NOT NULL,
        accuracy_m REAL NOT NULL,
        opened_at TEXT NOT NULL,
        opened_by TEXT NOT NULL,
        deadline TEXT,
        closed_at TEXT,
        overrides TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS dispute_tasks_open
        ON dispute_tasks (status, event_class, level, opened_at)""",
    """CREATE TABLE IF NOT EXISTS dispute_parties (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        share REAL NOT NULL,
        role TEXT NOT NULL,
        checked_in_at TEXT,
        part TEXT NOT NULL,
        done_at TEXT,
        PRIMARY KEY (task_id, code))""",
    """CREATE INDEX IF NOT EXISTS dispute_parties_code ON dispute_parties (code)""",
    """CREATE TABLE IF NOT EXISTS dispute_departments (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        called_by TEXT NOT NULL,
        called_at TEXT NOT NULL,
        reported_at TEXT,
        PRIMARY KEY (task_id, code))""",
    """CREATE TABLE IF NOT EXISTS dispute_meetings (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        place TEXT NOT NULL,
        convened_by TEXT NOT NULL,
        attendees TEXT NOT NULL,
        notes TEXT NOT NULL,
        PRIMARY KEY (task_id, seq))""",
    """CREATE TABLE IF NOT EXISTS dispute_steps (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        party_code TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (task_id, seq))""",
    """CREATE TABLE IF NOT EXISTS dispute_overrides (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        level TEXT NOT NULL,
        assigned_code TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_to TEXT,
        agreed_by TEXT NOT NULL,
        buffer_m REAL NOT NULL,
        geom BLOB NOT NULL)""",


    # ---- alerts (gridcore/heatmap.py) ----
    """CREATE TABLE IF NOT EXISTS heat_alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        cell_codes TEXT NOT NULL,
        start TEXT NOT NULL,
        end TEXT NOT NULL,
        peak TEXT NOT NULL,
        hour_of_week INTEGER NOT NULL,
        cell_count REAL NOT NULL,
        count REAL NOT NULL,
        baseline REAL NOT NULL,
        expected REAL NOT NULL,
        z REAL NOT NULL,
        p REAL NOT NULL,
        q REAL NOT NULL,
        fdr REAL NOT NULL,
        recurrence INTEGER NOT NULL,
        reason_zh TEXT NOT NULL,
        reason_en TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS heat_alerts_start ON heat_alerts (start)""",
    """CREATE INDEX IF NOT EXISTS heat_alerts_cell ON heat_alerts (cell_code)"""
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """The embedded store: one SQLite file (WAL mode), geometries as WKB (EPSG:4326).

    Parameters
    ----------
    path : str or Path, optional
        The database file; default `default_db_path` (``$GRIDCORE_DB`` or ``./gridcore.db``).

    Examples
    --------
    >>> store = SQLiteStore(":memory:")
    >>> store.is_empty()
    True
    """

    schema: list[str] = _SCHEMA

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._memory = str(self.path) == ":memory:"
        if not self._memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: the service answers requests from a thread pool, and
        # two threads sharing one connection would nest BEGINs ("cannot start a
        # transaction within a transaction") and read each other's uncommitted writes.
        # WAL lets those connections read concurrently while one writes. An in-memory
        # database exists only on its own connection, so it keeps one, behind a lock.
        self._local = threading.local()
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()  # re-entrant: a nested BEGIN errors, never hangs
        self._connections: list[sqlite3.Connection] = []
        self._shared = self._connect() if self._memory else None
        with self.transaction() as c:
            for stmt in self.schema:
                c.execute(stmt)

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False,
                               isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._connections.append(conn)
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        """The calling thread's connection (opened on first use)."""
        if self._shared is not None:
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction: all of it lands, or none."""
        c = self._conn
        # Writers of this process queue on a Python lock, which hands over at once; left
        # to SQLite's busy handler they poll with growing sleeps (p99 of 8 concurrent
        # reports ~270 ms with the lock, ~400 ms without; bench/bench_cases.py).
        with self._lock if self._shared is not None else self._write_lock:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            else:
                c.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Run a read query and return its rows."""
        return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def get_meta(self, key: str) -> str | None:
        """Return a value from the meta table."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the meta table."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ divisions/grid
    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""
        return not self.query("SELECT 1 FROM grid_versions LIMIT 1")

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions (one transaction)."""
        rows = []
        for level in ("district", "street", "community"):
            f = divisions.level(level)
            wkb = shapely.to_wkb(np.asarray(f.geometry.values))
            rows += [
                (code, level, name, parent, int(bool(syn)), blob)
                for code, name, parent, syn, blob in zip(
                    f["code"], f["name"], f["parent_code"], f["synthetic"], wkb, strict=True)
            ]
        with self.transaction() as c:
            c.execute("DELETE FROM divisions")
            c.executemany(
                "INSERT INTO divisions (code, level, name, parent_code, synthetic, geom) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)

    def load_divisions(self) -> Divisions:
        """Return the stored divisions.

        Raises
        ------
        NotFoundError
            The store holds no divisions.
        """
        frame = pd.read_sql_query(
            "SELECT code, level, name, parent_code, synthetic, geom FROM divisions "
            "ORDER BY code", self._conn)
        if frame.empty:
            raise NotFoundError("the store holds no divisions: run `gridcore build` first")
        frame["synthetic"] = frame["synthetic"].astype(bool)
        frame["parent_code"] = frame["parent_code"].astype(object).where(
            frame["parent_code"].notna(), None)
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"),
                               geometry=shapely.from_wkb(frame["geom"].to_numpy()),
                               crs=GEOGRAPHIC_EPSG)
        parts = [
            geo[geo["level"] == lvl][DIVISION_COLUMNS].reset_index(drop=True)
            for lvl in ("district", "street", "community")
        ]
        return Divisions(*parts)

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version in one transaction and return its id."""
        cells = version.cells
        wkb = shapely.to_wkb(np.asarray(cells.geometry.values))
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO grid_versions (valid_from, source, created_at) VALUES (?, ?, ?)",
                (version.valid_from.isoformat(), version.source, _now()))
            vid = int(cur.lastrowid)
            c.executemany(
                "INSERT INTO cells (version_id, code, community_code, street_code, "
                "district_code, area_m2, geom) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (vid, code, cc, sc, dc, float(a), blob)
                    for code, cc, sc, dc, a, blob in zip(
                        cells["code"], cells["community_code"], cells["street_code"],
                        cells["district_code"], cells["area_m2"], wkb, strict=True)
                ])
        return vid

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions: id, valid_from, source, n_cells, created_at."""
        return pd.read_sql_query(
            "SELECT v.id, v.valid_from, v.source, COUNT(c.code) AS n_cells, v.created_at "
            "FROM grid_versions v LEFT JOIN cells c ON c.version_id = v.id "
            "GROUP BY v.id ORDER BY v.valid_from, v.id", self._conn)

    def current_version(self, *, on: date | None = None) -> int:
        """Return the id of the version valid on ``on`` (default today).

        The latest version whose valid-from is on or before that day; among versions with
        the same valid-from, the one stored last.

        Raises
        ------
        NotFoundError
            No version is valid on that day.
        """
        day = (on or date.today()).isoformat()
        rows = self.query(
            "SELECT id FROM grid_versions WHERE valid_from <= ? "
            "ORDER BY valid_from DESC, id DESC LIMIT 1", (day,))
        if not rows:
            raise NotFoundError(f"no grid version is valid on {day}: run `gridcore build`")
        return int(rows[0]["id"])

    def _resolve(self, version: int | None, on: date | None) -> int:
        if version is None:
            return self.current_version(on=on)
        if not self.query("SELECT 1 FROM grid_versions WHERE id = ?", (int(version),)):
            raise NotFoundError(f"grid version {version} does not exist")
        return int(version)

    def load_grid(self, version: int | None = None, *, on: date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a grid version (default: the one valid today)."""
        vid = self._resolve(version, on)
        frame = pd.read_sql_query(
            "SELECT code, community_code, street_code, district_code, area_m2, geom "
            "FROM cells WHERE version_id = ? ORDER BY code", self._conn, params=(vid,))
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"),
                               geometry=shapely.from_wkb(frame["geom"].to_numpy()),
                               crs=GEOGRAPHIC_EPSG)
        geo.attrs["version_id"] = vid
        return geo[CELL_COLUMNS]

    def get_cell(self, code: str, version: int | None = None) -> pd.Series:
        """Return one cell (code, community/street/district codes, area_m2, geometry).

        Raises
        ------
        InvalidCodeError
            Not a well-formed 15-digit code.
        CellNotFoundError
            No such cell in the version.
        """
        code = validate_cell_code(code)
        vid = self._resolve(version, None)
        rows = self.query(
            "SELECT code, community_code, street_code, district_code, area_m2, geom "
            "FROM cells WHERE version_id = ? AND code = ?", (vid, code))
        if not rows:
            raise CellNotFoundError(f"no unit grid cell has code {code} in grid version {vid}")
        r = dict(rows[0])
        r["geometry"] = shapely.from_wkb(r.pop("geom"))
        return pd.Series(r)

    # ================================================================== cases
    # Cases, their audit trail, follow-ups, chiefs, alley assignments, tokens and
    # idempotency keys. Owned by gridcore/cases.py, chiefs.py and auth.py.
    # Times are ISO 8601 UTC text; a case's steps run inside one IMMEDIATE transaction
    # (read, apply the domain transition, write), so two concurrent steps cannot both
    # succeed from the same state.

    @staticmethod
    def _iso(t: datetime | None) -> str | None:
        if t is None:
            return None
        return t.astimezone(UTC).isoformat(timespec="microseconds")

    @staticmethod
    def _dt(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text)

    def _case_from_rows(self, row: sqlite3.Row, events: list[sqlite3.Row]) -> Case:
        return Case(
            id=int(row["id"]), event_class=row["event_class"], lon=row["lon"], lat=row["lat"],
            description=row["description"], reported_at=self._dt(row["reported_at"]),
            reporter=row["reporter"], state=CaseState(row["state"]),
            cell_code=row["cell_code"], street_code=row["street_code"],
            component_code=row["component_code"], photo_ref=row["photo_ref"],
            department=row["department"], time_limit_hours=row["time_limit_hours"],
            closed_at=self._dt(row["closed_at"]),
            events=tuple(
                CaseEvent(
                    action=Action(e["action"]), actor=e["actor"], role=Role(e["role"]),
                    at=self._dt(e["at"]),
                    from_state=CaseState(e["from_state"]) if e["from_state"] else None,
                    to_state=CaseState(e["to_state"]), note=e["note"],
                    department=e["department"],
                )
                for e in events
            ),
        )

    def _insert_events(self, c: sqlite3.Connection, case_id: int, events, start: int) -> None:
        c.executemany(
            "INSERT INTO case_events (case_id, seq, action, actor, role, at, from_state, "
            "to_state, note, department) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (case_id, start + i, e.action.value, e.actor, e.role.value, self._iso(e.at),
                 e.from_state.value if e.from_state else None, e.to_state.value, e.note,
                 e.department)
                for i, e in enumerate(events)
            ])

    def _write_case_row(self, c: sqlite3.Connection, case: Case) -> None:
        c.execute(
            "UPDATE cases SET state = ?, department = ?, closed_at = ?, updated_at = ? "
            "WHERE id = ?",
            (case.state.value, case.department, self._iso(case.closed_at), _now(), case.id))

    def add_case(
        self,
        case: Case,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        principal: str = "",
    ) -> tuple[int, bool]:
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
        with self.transaction() as c:
            if idempotency_key is not None:
                rows = c.execute(
                    "SELECT case_id, request_hash FROM idempotency_keys "
                    "WHERE principal = ? AND key = ?", (principal, idempotency_key)).fetchall()
                if rows:
                    if rows[0]["request_hash"] != (request_hash or ""):
                        raise ConflictError(
                            f"Idempotency-Key {idempotency_key!r} was already used for a "
                            "different request; use a new key for a new report")
                    return int(rows[0]["case_id"]), False
            cur = c.execute(
                "INSERT INTO cases (event_class, state, lon, lat, description, reporter, "
                "reported_at, cell_code, street_code, component_code, photo_ref, department, "
                "time_limit_hours, closed_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (case.event_class, case.state.value, case.lon, case.lat, case.description,
                 case.reporter, self._iso(case.reported_at), case.cell_code, case.street_code,
                 case.component_code, case.photo_ref, case.department, case.time_limit_hours,
                 self._iso(case.closed_at), _now()))
            case_id = int(cur.lastrowid)
            self._insert_events(c, case_id, case.events, 0)
            if idempotency_key is not None:
                c.execute(
                    "INSERT INTO idempotency_keys (principal, key, request_hash, case_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    (principal, idempotency_key, request_hash or "", case_id, _now()))
        return case_id, True

    def _load_case(self, c: sqlite3.Connection, case_id: int) -> Case:
        row = c.execute("SELECT * FROM cases WHERE id = ?", (int(case_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no case has id {case_id}")
        events = c.execute(
            "SELECT * FROM case_events WHERE case_id = ? ORDER BY seq", (int(case_id),)
        ).fetchall()
        return self._case_from_rows(row, events)

    def get_case(self, case_id: int) -> Case:
        """Return one case with its audit trail.

        Raises
        ------
        NotFoundError
            No case has this id.
        """
        return self._load_case(self._conn, case_id)

    def transition_case(self, case_id: int, action: Action | str, **kwargs) -> Case:
        """Apply one step of the loop (see `gridcore.cases.apply_action`) and store it.

        Reading, checking and writing happen in one IMMEDIATE transaction.

        Raises
        ------
        NotFoundError, TransitionError, PermissionDeniedError, InvalidCodeError
        """
        with self.transaction() as c:
            case = self._load_case(c, case_id)
            new = apply_action(case, action, **kwargs)
            self._insert_events(c, case.id, new.events[len(case.events):], len(case.events))
            self._write_case_row(c, new)
        return new

    def list_cases(
        self,
        *,
        states: Sequence[CaseState | str] | None = None,
        cell_codes: Sequence[str] | None = None,
        street_code: str | None = None,
        department: str | None = None,
        event_class: str | None = None,
        reported_since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Case]:
        """Return cases matching all the given filters, newest report first."""
        where, params = self._case_filters(states, cell_codes, street_code, department,
                                           event_class, reported_since)
        sql = f"SELECT * FROM cases {where} ORDER BY reported_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        rows = self._conn.execute(sql, params).fetchall()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        ev: dict[int, list] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for e in self._conn.execute(
                f"SELECT * FROM case_events WHERE case_id IN ({','.join('?' * len(part))}) "
                "ORDER BY case_id, seq", part):
                ev[e["case_id"]].append(e)
        return [self._case_from_rows(r, ev[r["id"]]) for r in rows]

    @staticmethod
    def _case_filters(states, cell_codes, street_code, department, event_class,
                      reported_since) -> tuple[str, list]:
        clauses, params = [], []
        if states is not None:
            states = [CaseState(s).value for s in states]
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            params += states
        if cell_codes is not None:
            cell_codes = list(cell_codes)
            if not cell_codes:
                clauses.append("0")
            else:
                clauses.append("cell_code IN (SELECT value FROM json_each(?))")
                params.append(json.dumps(cell_codes))
        for col, val in (("street_code", street_code), ("department", department),
                         ("event_class", event_class)):
            if val is not None:
                clauses.append(f"{col} = ?")
                params.append(val)
        if reported_since is not None:
            clauses.append("reported_at >= ?")
            params.append(SQLiteStore._iso(reported_since))
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def cases_frame(
        self,
        *,
        reported_since: datetime | None = None,
        reported_before: datetime | None = None,
    ) -> pd.DataFrame:
        """Return cases flat for `gridcore.cases.case_metrics` (one SQL query)."""
        clauses, params = [], []
        if reported_since is not None:
            clauses.append("c.reported_at >= ?")
            params.append(self._iso(reported_since))
        if reported_before is not None:
            clauses.append("c.reported_at < ?")
            params.append(self._iso(reported_before))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        frame = pd.read_sql_query(
            "SELECT c.id, c.event_class, c.state, c.street_code, c.department, "
            "c.reported_at, c.closed_at, c.time_limit_hours, "
            "COALESCE(SUM(e.action = 'rework'), 0) AS rework_count, "
            "COALESCE(SUM(e.action = 'handle'), 0) AS handled_count "
            f"FROM cases c LEFT JOIN case_events e ON e.case_id = c.id {where} "
            "GROUP BY c.id ORDER BY c.id", self._conn, params=params)
        frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True, format="ISO8601")
        frame["closed_at"] = pd.to_datetime(frame["closed_at"], utc=True, format="ISO8601")
        return frame

    def open_cases_frame(self, *, event_class: str | None = None,
                         reported_since: datetime | None = None) -> pd.DataFrame:
        """Return id, lon, lat, event_class, reported_at of open cases (for duplicates)."""
        where, params = self._case_filters(
            sorted(OPEN_STATES), None, None, None, event_class, reported_since)
        frame = pd.read_sql_query(
            f"SELECT id, lon, lat, event_class, reported_at FROM cases {where} ORDER BY id",
            self._conn, params=params)
        frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True, format="ISO8601")
        return frame

    def add_followup(self, followup: FollowUp) -> int:
        """Store a follow-up call on a case and return its id.

        Raises
        ------
        NotFoundError
            No case has this id.
        """
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM cases WHERE id = ?",
                         (int(followup.case_id),)).fetchone() is None:
                raise NotFoundError(f"no case has id {followup.case_id}")
            cur = c.execute(
                "INSERT INTO case_followups (case_id, at, responded, resolved, satisfaction, "
                "note) VALUES (?, ?, ?, ?, ?, ?)",
                (int(followup.case_id), self._iso(followup.at), int(followup.responded),
                 int(followup.resolved), Satisfaction(followup.satisfaction).value,
                 followup.note))
        return int(cur.lastrowid)

    def followups_frame(self) -> pd.DataFrame:
        """Return every follow-up: case_id, at, responded, resolved, satisfaction."""
        frame = pd.read_sql_query(
            "SELECT case_id, at, responded, resolved, satisfaction FROM case_followups "
            "ORDER BY id", self._conn)
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        frame["responded"] = frame["responded"].astype(bool)
        frame["resolved"] = frame["resolved"].astype(bool)
        return frame

    # ------------------------------------------------------------------ chiefs
    def save_roster(self, roster: ChiefRoster) -> None:
        """Replace the stored chiefs, alleys and assignments (one transaction)."""
        assignments = validate_assignments(roster.assignments, chiefs=roster.chiefs,
                                           alleys=roster.alleys)
        wkb = shapely.to_wkb(np.asarray(roster.alleys.to_crs(GEOGRAPHIC_EPSG).geometry.values))
        with self.transaction() as c:
            c.execute("DELETE FROM alley_cells")
            c.execute("DELETE FROM chief_assignments")
            c.execute("DELETE FROM alleys")
            c.execute("DELETE FROM chiefs")
            c.executemany("INSERT INTO chiefs (id, name, title) VALUES (?, ?, ?)",
                          roster.chiefs[["id", "name", "title"]].astype(str).values.tolist())
            c.executemany(
                "INSERT INTO alleys (name, synthetic, note, geom) VALUES (?, ?, ?, ?)",
                [(n, int(bool(s)), str(note), blob) for n, s, note, blob in zip(
                    roster.alleys["name"], roster.alleys["synthetic"],
                    roster.alleys.get("note", pd.Series([""] * len(roster.alleys))), wkb,
                    strict=True)])
            c.executemany(
                "INSERT INTO chief_assignments (chief_id, alley, valid_from) VALUES (?, ?, ?)",
                [(a, b, d.date().isoformat()) for a, b, d in assignments[
                    ["chief_id", "alley", "valid_from"]].itertuples(index=False)])

    def seed_sample_roster(self) -> bool:
        """Store the sample chiefs when none are stored; return True if it did."""
        if self.query("SELECT 1 FROM chiefs LIMIT 1"):
            return False
        self.save_roster(load_sample_roster())
        return True

    def load_roster(self) -> ChiefRoster:
        """Return the stored chiefs, alleys (EPSG:4326) and assignments."""
        chiefs = pd.read_sql_query("SELECT id, name, title FROM chiefs ORDER BY id", self._conn)
        raw = pd.read_sql_query("SELECT name, synthetic, note, geom FROM alleys ORDER BY name",
                                self._conn)
        alleys = gpd.GeoDataFrame(
            {"name": raw["name"], "synthetic": raw["synthetic"].astype(bool),
             "note": raw["note"]},
            geometry=shapely.from_wkb(raw["geom"].to_numpy()), crs=GEOGRAPHIC_EPSG)
        assignments = pd.read_sql_query(
            "SELECT chief_id, alley, valid_from FROM chief_assignments "
            "ORDER BY alley, valid_from", self._conn)
        assignments["valid_from"] = pd.to_datetime(assignments["valid_from"])
        return ChiefRoster(chiefs=chiefs, alleys=alleys, assignments=assignments)

    def get_chief(self, chief_id: str) -> dict:
        """Return a chief's id, name and title.

        Raises
        ------
        NotFoundError
            No chief has this id.
        """
        rows = self.query("SELECT id, name, title FROM chiefs WHERE id = ?", (chief_id,))
        if not rows:
            raise NotFoundError(f"no chief has id {chief_id!r}")
        return dict(rows[0])

    def add_assignment(self, chief_id: str, alley: str, valid_from: date) -> None:
        """Record that ``alley`` is ``chief_id``'s from ``valid_from`` on.

        Raises
        ------
        NotFoundError
            Unknown chief or alley.
        ConflictError
            The alley already has an assignment from that date.
        """
        with self.transaction() as c:
            if c.execute("SELECT 1 FROM chiefs WHERE id = ?", (chief_id,)).fetchone() is None:
                raise NotFoundError(f"no chief has id {chief_id!r}")
            if c.execute("SELECT 1 FROM alleys WHERE name = ?", (alley,)).fetchone() is None:
                raise NotFoundError(f"no street or alley is named {alley!r}")
            try:
                c.execute("INSERT INTO chief_assignments (chief_id, alley, valid_from) "
                          "VALUES (?, ?, ?)", (chief_id, alley, valid_from.isoformat()))
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"{alley!r} already has an assignment from {valid_from}; "
                    "a handover needs another date") from None

    def chiefs_of_cell(self, cell_code: str, *, on: date | None = None) -> list[dict]:
        """Return the chiefs whose alleys cross a cell on a day (default today).

        One query over the alley/cell cache and the assignments: for each alley through
        the cell, the chief of its latest assignment on or before ``on``. The same rule
        as `gridcore.chiefs.chiefs_of_cells`, for the one-cell case on a hot path.
        """
        vid = self.current_version(on=on)
        if not self.query("SELECT 1 FROM alley_cells_done WHERE version_id = ?", (vid,)):
            self.alley_cells(vid)  # fills the cache for this grid version on first use
        day = (on or date.today()).isoformat()
        rows = self.query(
            "SELECT c.id, c.name, c.title, a.alley FROM alley_cells ac "
            "JOIN chief_assignments a ON a.alley = ac.alley "
            "JOIN chiefs c ON c.id = a.chief_id "
            "WHERE ac.version_id = ? AND ac.cell_code = ? AND a.valid_from <= ? "
            "AND a.valid_from = (SELECT MAX(b.valid_from) FROM chief_assignments b "
            "                    WHERE b.alley = a.alley AND b.valid_from <= ?) "
            "ORDER BY a.alley, c.id", (vid, cell_code, day, day))
        return [dict(r) for r in rows]

    def alley_cells(self, version: int | None = None) -> pd.DataFrame:
        """Return which cells each alley runs through in a grid version (cached).

        Computed with `gridcore.chiefs.alleys_to_cells` the first time a version is
        asked for, then read from the ``alley_cells`` table.
        """
        vid = self._resolve(version, None)
        frame = pd.read_sql_query(
            "SELECT alley, cell_code FROM alley_cells WHERE version_id = ? "
            "ORDER BY alley, cell_code", self._conn, params=(vid,))
        if len(frame) or not self.query("SELECT 1 FROM alleys LIMIT 1"):
            return frame
        if self.query("SELECT 1 FROM alley_cells_done WHERE version_id = ?", (vid,)):
            return frame
        joined = alleys_to_cells(self.load_roster().alleys, self.load_grid(vid))
        with self.transaction() as c:
            c.execute("DELETE FROM alley_cells WHERE version_id = ?", (vid,))
            c.executemany(
                "INSERT INTO alley_cells (version_id, alley, cell_code) VALUES (?, ?, ?)",
                [(vid, a, code) for a, code in zip(joined["alley"], joined["cell_code"],
                                                   strict=True)])
            c.execute("INSERT OR REPLACE INTO alley_cells_done (version_id) VALUES (?)", (vid,))
        return joined[["alley", "cell_code"]]

    # ------------------------------------------------------------------ tokens
    def create_token(self, *, role: Role | str, name: str, subject: str | None = None) -> str:
        """Create a bearer token, store its hash, and return the token (shown once).

        This is what ``gridcore token create --role ROLE --name NAME`` prints. For role
        ``chief`` the subject (default: the name) must be a stored chief id; for role
        ``department`` a department code of `gridcore.cases.departments`.

        Raises
        ------
        ValueError
            Unknown role or empty name.
        InvalidCodeError
            A subject that names no stored chief / no department.
        """
        token, record = issue_token(role=role, name=name, subject=subject)
        if record.role is Role.CHIEF:
            if not self.query("SELECT 1 FROM chiefs WHERE id = ?", (record.subject,)):
                known = [r["id"] for r in self.query("SELECT id FROM chiefs ORDER BY id")]
                raise InvalidCodeError(
                    f"a chief token needs a chief id as subject (or name); "
                    f"{record.subject!r} is none; known chiefs: {', '.join(known) or 'none'}")
        if record.role is Role.DEPARTMENT and record.subject not in departments().index:
            raise InvalidCodeError(
                f"a department token needs a department code as subject (or name); "
                f"{record.subject!r} is none; known: {', '.join(departments().index)}")
        with self.transaction() as c:
            c.execute(
                "INSERT INTO tokens (token_hash, role, name, subject, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (record.token_hash, record.role.value, record.name, record.subject,
                 self._iso(record.created_at)))
        return token

    def principal_for_token(self, token: str) -> Principal:
        """Return who a bearer token belongs to.

        Raises
        ------
        AuthenticationError
            Unknown or revoked token.
        """
        digest = hash_token(token)
        rows = self.query(
            "SELECT token_hash, role, name, subject FROM tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL", (digest,))
        if not rows or not verify_token(token, rows[0]["token_hash"]):
            raise AuthenticationError("the bearer token is unknown or revoked")
        r = rows[0]
        return Principal(name=r["name"], role=Role(r["role"]), subject=r["subject"])

    def revoke_token(self, token: str) -> None:
        """Revoke a token; later calls with it get 401."""
        with self.transaction() as c:
            c.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ?",
                      (_now(), hash_token(token)))

    # ------------------------------------------------------------------ components
    # (gridcore.components): component records, one row per code ever issued; removed
    # components keep their row with status 移除 so their codes are never reissued.

    def _component_rows(self, frame: gpd.GeoDataFrame) -> list[tuple]:
        from .components import COMPONENT_COLUMNS

        cols = []
        for col in COMPONENT_COLUMNS:
            v = frame[col]
            if col in ("first_survey_date", "change_date"):
                v = pd.to_datetime(v).dt.strftime("%Y-%m-%d")
            elif col == "synthetic":
                v = v.astype(int)
            elif col == "accuracy_m":
                v = v.astype(float).astype(object).where(v.notna(), None)
            cols.append(v.tolist())
        cols.append(shapely.to_wkb(np.asarray(frame.geometry.values)).tolist())
        return list(zip(*cols, strict=True))

    def _checked_components(self, frame: gpd.GeoDataFrame, table=None) -> gpd.GeoDataFrame:
        from .components import check_components_in_cells, validate_components

        frame = validate_components(frame, table=table)
        check_components_in_cells(frame, self.load_grid())
        return frame

    def add_components(self, components: gpd.GeoDataFrame, *, table=None) -> int:
        """Store new components (validated, each in its cell) in one transaction.

        Raises
        ------
        DataFileError, InvalidCodeError
            Schema, code or cell problems (nothing is written).
        ConflictError
            A code that is already stored (nothing is written).
        """
        from .errors import ConflictError

        frame = self._checked_components(components, table)
        rows = self._component_rows(frame)
        if not rows:
            return 0
        placeholders = ", ".join("?" * len(rows[0]))
        try:
            with self.transaction() as c:
                c.executemany(f"INSERT INTO components VALUES ({placeholders})", rows)
                _bump_components_version(c)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(
                f"a component code is already stored ({exc}); codes are issued once: use "
                f"register_components for new components or update_components for edits"
            ) from None
        return len(rows)

    def register_components(self, records: gpd.GeoDataFrame, *, table=None,
                            on: date | None = None) -> gpd.GeoDataFrame:
        """Register new components: find their cells, issue codes, store them.

        ``records`` need Point geometry (EPSG:4326) and ``class_code``; see
        `gridcore.components.new_components` for defaults. Returns the stored rows.

        Raises
        ------
        InvalidCodeError
            Unknown class, or a point outside every cell (nothing is written).
        """
        from .components import new_components
        from .grid import point_to_cell

        cells = self.load_grid()
        pos = point_to_cell(cells, records.geometry.x.to_numpy(), records.geometry.y.to_numpy())
        codes = np.where(pos >= 0, cells["code"].to_numpy(dtype=object)[np.maximum(pos, 0)], "")
        existing = [r["code"] for r in self.query("SELECT code FROM components")]
        new = new_components(records, cell_codes=codes, existing_codes=existing, table=table,
                             date=on)
        self.add_components(new, table=table)
        return new

    def update_components(self, components: gpd.GeoDataFrame, *, table=None) -> int:
        """Replace stored components by code (edits, moves, retirements), one transaction.

        Raises
        ------
        NotFoundError
            A code that is not stored (nothing is written).
        """
        frame = self._checked_components(components, table)
        codes = frame["code"].tolist()
        known = {r["code"] for r in self._codes_in(codes)}
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise NotFoundError(f"no stored component has code {unknown[0]}; register it first")
        rows = self._component_rows(frame)
        if not rows:
            return 0
        with self.transaction() as c:
            _bump_components_version(c)
            c.executemany(
                f"INSERT OR REPLACE INTO components VALUES ({', '.join('?' * len(rows[0]))})",
                rows)
        return len(rows)

    def _codes_in(self, codes: list[str]) -> list[sqlite3.Row]:
        out: list[sqlite3.Row] = []
        for i in range(0, len(codes), 900):
            chunk = codes[i:i + 900]
            out += self.query(
                f"SELECT code FROM components WHERE code IN ({', '.join('?' * len(chunk))})",
                tuple(chunk))
        return out

    def components_in_cells(self, cell_codes: Sequence[str]) -> pd.DataFrame:
        """Return the components in the given cells: code, class, status, cell, lon/lat.

        A light read for views and maps (a few columns, no validation pass).
        """
        codes = list(dict.fromkeys(cell_codes))
        frames = []
        for i in range(0, len(codes), 500):  # SQLite's parameter limit
            chunk = codes[i:i + 500]
            frames.append(pd.read_sql_query(
                "SELECT code, name, class_code, dept_code, dept_name, status, cell_code, geom "
                f"FROM components WHERE cell_code IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY code", self._conn, params=tuple(chunk)))
        cols = ["code", "name", "class_code", "dept_code", "dept_name", "status", "cell_code"]
        if not frames:
            return pd.DataFrame(columns=[*cols, "lon", "lat"])
        frame = pd.concat(frames, ignore_index=True)
        pts = shapely.from_wkb(frame.pop("geom").to_numpy())
        frame["lon"], frame["lat"] = shapely.get_x(pts), shapely.get_y(pts)
        return frame

    def components_version(self) -> int:
        """Return a counter that changes with every write to the components table."""
        return int(self.get_meta("components_version") or 0)

    def load_components(self, *, district: str | None = None,
                        cell_code: str | None = None) -> gpd.GeoDataFrame:
        """Return stored components (all, or one district's, or one cell's), by code."""
        from .components import COMPONENT_COLUMNS, validate_components

        where, params = [], []
        if district is not None:
            where.append("code LIKE ?")
            params.append(f"{district}%")
        if cell_code is not None:
            where.append("cell_code = ?")
            params.append(cell_code)
        sql = "SELECT * FROM components" + (" WHERE " + " AND ".join(where) if where else "")
        frame = pd.read_sql_query(sql + " ORDER BY code", self._conn, params=tuple(params))
        frame["synthetic"] = frame["synthetic"].astype(bool)
        frame["accuracy_m"] = frame["accuracy_m"].astype(float)
        geo = gpd.GeoDataFrame(frame.drop(columns="geom"),
                               geometry=shapely.from_wkb(frame["geom"].to_numpy()),
                               crs=GEOGRAPHIC_EPSG)
        if len(geo) == 0:
            from .components import empty_components

            return empty_components()
        layout_table = None
        if geo["code"].str.len().iloc[0] == 17:
            from .components import gbt47678_class_table

            layout_table = gbt47678_class_table()
        return validate_components(geo[[*COMPONENT_COLUMNS, "geometry"]], table=layout_table)

    def get_component(self, code: str):
        """Return one component as a `gridcore.components.Component`.

        Raises
        ------
        InvalidCodeError
            A malformed code.
        NotFoundError
            No stored component has this code.
        """
        from .components import Component, parse_component_code

        parse_component_code(code)
        rows = self.query("SELECT * FROM components WHERE code = ?", (code,))
        if not rows:
            raise NotFoundError(f"no component has code {code}")
        r = dict(rows[0])
        r["geometry"] = shapely.from_wkb(r.pop("geom"))
        return Component.from_row(pd.Series(r))

    def import_components(self, path: str | Path, *, crs=None, table=None) -> int:
        """Import components from GeoPackage/GeoJSON/CSV; all rows land or none.

        Files with a ``code`` column hold registered components and are stored as they
        are (validated: schema, codes, classes, each point in its cell). Files without
        one hold new components (``class_code`` and a position): they are registered
        and get cells and codes.

        Raises
        ------
        DataFileError, CoordinateError, InvalidCodeError, ConflictError
            Any problem with the file or a row; the store is unchanged.
        """
        from .components import read_components_file

        frame = read_components_file(path, crs=crs)
        if "code" in frame.columns and (frame["code"] != "").any():
            return self.add_components(frame, table=table)
        return len(self.register_components(frame, table=table))

    def export_components(self, path: str | Path, *, district: str | None = None) -> Path:
        """Write stored components to GeoPackage/GeoJSON/CSV (by the file's extension)."""
        from .components import write_components_file

        return write_components_file(self.load_components(district=district), path)


    # ------------------------------------------------------------------ disputes
    # Joint tasks of cross-boundary cases (gridcore/disputes.py). A task is written whole
    # (its row and every child row) inside one transaction, so a failure leaves no
    # half-made task; opening checks for an open duplicate in the same transaction.

    def open_dispute(self, screening: Screening, *, event_class: str, description: str,
                     opened_by: str, at: datetime, receiving_code: str | None = None,
                     window: timedelta | None = None,
                     min_overlap: float = 0.8) -> tuple[JointTask, bool]:
        """Open a joint task, or join the open one the same incident already has.

        Parameters
        ----------
        screening : gridcore.disputes.Screening
            Must be joint.
        event_class, description, opened_by : str
        at : datetime
        receiving_code : str, optional
            The receiving side (接诉方).
        window : timedelta, optional
            How far back an open task with the same class and footprint is joined
            (default 3 days).
        min_overlap : float
            Footprint overlap (intersection over union) that counts as the same incident.

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
        window = window if window is not None else _DISPUTE_WINDOW
        with self.transaction() as c:
            ids = [r["id"] for r in c.execute(
                "SELECT id FROM dispute_tasks WHERE status != 'closed' AND event_class = ? "
                "AND level = ? AND opened_at >= ?",
                (event_class, screening.level.value, (at - window).isoformat()))]
            existing = [self._load_dispute(c, i) for i in ids]
            task, opened = open_or_join(
                screening, existing=existing, event_class=event_class,
                description=description, opened_by=opened_by, at=at,
                receiving_code=receiving_code, task_id=f"jt-{uuid.uuid4().hex[:16]}",
                window=window, min_overlap=min_overlap)
            self._write_dispute(c, task)
        return task, opened

    def get_dispute(self, task_id: str) -> JointTask:
        """Return a joint task by id.

        Raises
        ------
        NotFoundError
            No joint task has this id.
        """
        with self.transaction() as c:
            return self._load_dispute(c, task_id)

    def update_dispute(self, task_id: str,
                       change: Callable[[JointTask], object]) -> JointTask:
        """Apply ``change(task)`` (a JointTask method call) and store the result atomically.

        If ``change`` raises (an illegal step, a non-party), nothing is written.

        Returns
        -------
        JointTask
            The task after the change.
        """
        with self.transaction() as c:
            task = self._load_dispute(c, task_id)
            change(task)
            self._write_dispute(c, task)
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
            st = [str(getattr(x, "value", x)) for x in status]
            where.append(f"t.status IN ({', '.join('?' * len(st))})")
            params += st
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
        with self.transaction() as c:
            ids = [r["id"] for r in c.execute(sql, params)]
            return [self._load_dispute(c, i) for i in ids]

    def save_dispute_override(self, override: Override) -> None:
        """Store (or replace) a responsibility override (an agreement between sides)."""
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO dispute_overrides (id, name, level, assigned_code, "
                "valid_from, valid_to, agreed_by, buffer_m, geom) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (override.id, override.name, str(getattr(override.level, "value", override.level)),
                 override.assigned_code, override.valid_from.isoformat(),
                 override.valid_to.isoformat() if override.valid_to else None,
                 json.dumps(list(override.agreed_by), ensure_ascii=False),
                 float(override.buffer_m), shapely.to_wkb(override.geometry)))

    def dispute_overrides(self) -> list[Override]:
        """Return every stored responsibility override (list of Override)."""
        return [
            Override(id=r["id"], name=r["name"], level=r["level"],
                     assigned_code=r["assigned_code"],
                     valid_from=date.fromisoformat(r["valid_from"]),
                     valid_to=date.fromisoformat(r["valid_to"]) if r["valid_to"] else None,
                     agreed_by=tuple(json.loads(r["agreed_by"])), buffer_m=r["buffer_m"],
                     geometry=shapely.from_wkb(r["geom"]))
            for r in self.query("SELECT * FROM dispute_overrides ORDER BY id")
        ]

    @staticmethod
    def _write_dispute(c: sqlite3.Connection, task: JointTask) -> None:
        iso = _iso_or_none
        c.execute("DELETE FROM dispute_tasks WHERE id = ?", (task.id,))  # children cascade
        c.execute(
            "INSERT INTO dispute_tasks (id, level, event_class, description, status, lead_code, "
            "lead_rule, geom, footprint, footprint_key, accuracy_m, opened_at, opened_by, "
            "deadline, closed_at, overrides) VALUES (" + ", ".join("?" * 16) + ")",
            (task.id, task.level.value, task.event_class, task.description, task.status.value,
             task.lead_code, task.lead_rule.value, shapely.to_wkb(task.geometry),
             shapely.to_wkb(task.footprint), task.footprint_key, float(task.accuracy_m),
             task.opened_at.isoformat(), task.opened_by, iso(task.deadline),
             iso(task.closed_at), json.dumps([_override_audit(o) for o in task.overrides],
                                             ensure_ascii=False)))
        c.executemany(
            "INSERT INTO dispute_parties (task_id, code, name, share, role, checked_in_at, part, "
            "done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(task.id, p.code, p.name, float(p.share), p.role.value, iso(p.checked_in_at),
              p.part, iso(p.done_at)) for p in task.parties])
        c.executemany(
            "INSERT INTO dispute_departments (task_id, code, name, called_by, called_at, "
            "reported_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(task.id, d.code, d.name, d.called_by, d.called_at.isoformat(), iso(d.reported_at))
             for d in task.departments])
        c.executemany(
            "INSERT INTO dispute_meetings (task_id, seq, at, place, convened_by, attendees, "
            "notes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(task.id, i, m.at.isoformat(), m.place, m.convened_by,
              json.dumps(list(m.attendees), ensure_ascii=False), m.notes)
             for i, m in enumerate(task.meetings)])
        c.executemany(
            "INSERT INTO dispute_steps (task_id, seq, at, actor, party_code, action, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(task.id, i, s.at.isoformat(), s.actor, s.party_code, s.action.value,
              json.dumps(s.detail, ensure_ascii=False, default=str))
             for i, s in enumerate(task.history)])

    @staticmethod
    def _load_dispute(c: sqlite3.Connection, task_id: str) -> JointTask:
        dt = _dt_or_none
        row = c.execute("SELECT * FROM dispute_tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no joint task has id {task_id!r}")
        parties = [
            TaskParty(code=r["code"], name=r["name"], share=r["share"],
                      role=PartyRole(r["role"]), checked_in_at=dt(r["checked_in_at"]),
                      part=r["part"], done_at=dt(r["done_at"]))
            for r in c.execute("SELECT * FROM dispute_parties WHERE task_id = ? "
                               "ORDER BY share DESC, code", (task_id,))
        ]
        departments = [
            Department(code=r["code"], name=r["name"], called_by=r["called_by"],
                       called_at=dt(r["called_at"]), reported_at=dt(r["reported_at"]))
            for r in c.execute("SELECT * FROM dispute_departments WHERE task_id = ? "
                               "ORDER BY called_at, code", (task_id,))
        ]
        meetings = [
            Meeting(at=dt(r["at"]), place=r["place"], convened_by=r["convened_by"],
                    attendees=tuple(json.loads(r["attendees"])), notes=r["notes"])
            for r in c.execute("SELECT * FROM dispute_meetings WHERE task_id = ? ORDER BY seq",
                               (task_id,))
        ]
        history = [
            Step(at=dt(r["at"]), actor=r["actor"], party_code=r["party_code"],
                 action=StepAction(r["action"]), detail=json.loads(r["detail"]))
            for r in c.execute("SELECT * FROM dispute_steps WHERE task_id = ? ORDER BY seq",
                               (task_id,))
        ]
        overrides = tuple(
            AppliedOverride(id=o["id"], name=o["name"], assigned_code=o["assigned_code"],
                            share=o["share"], agreed_by=tuple(o["agreed_by"]),
                            valid_from=date.fromisoformat(o["valid_from"]),
                            valid_to=date.fromisoformat(o["valid_to"]) if o["valid_to"] else None)
            for o in json.loads(row["overrides"])
        )
        return JointTask(
            id=row["id"], level=Level(row["level"]), event_class=row["event_class"],
            description=row["description"], parties=parties, lead_code=row["lead_code"],
            lead_rule=LeadRule(row["lead_rule"]), geometry=shapely.from_wkb(row["geom"]),
            footprint=shapely.from_wkb(row["footprint"]), footprint_key=row["footprint_key"],
            accuracy_m=row["accuracy_m"], opened_at=dt(row["opened_at"]),
            opened_by=row["opened_by"], status=TaskStatus(row["status"]),
            deadline=dt(row["deadline"]), departments=departments, meetings=meetings,
            overrides=overrides, history=history, closed_at=dt(row["closed_at"]))


    # ------------------------------------------------------------------ alerts (heatmap.py)
    _ALERT_FIELDS = (
        "cell_code", "cell_codes", "start", "end", "peak", "hour_of_week", "cell_count",
        "count", "baseline", "expected", "z", "p", "q", "fdr", "recurrence", "reason_zh",
        "reason_en",
    )

    def replace_heat_alerts(self, dataset: str, alerts: Sequence) -> int:
        """Replace the stored alerts of ``dataset`` (one transaction); return how many.

        ``alerts`` are `gridcore.heatmap.Alert` objects (or their ``to_dict()``).
        """
        rows = []
        for a in alerts:
            d = a.to_dict() if hasattr(a, "to_dict") else dict(a)
            d["cell_codes"] = json.dumps(list(d["cell_codes"]))
            rows.append((dataset, *(d[k] for k in self._ALERT_FIELDS), _now()))
        cols = ", ".join(("dataset", *(f'"{k}"' for k in self._ALERT_FIELDS), "created_at"))
        marks = ", ".join("?" * (len(self._ALERT_FIELDS) + 2))
        with self.transaction() as c:
            c.execute("DELETE FROM heat_alerts WHERE dataset = ?", (dataset,))
            c.executemany(f"INSERT INTO heat_alerts ({cols}) VALUES ({marks})", rows)
        return len(rows)

    def heat_alerts(self, *, start: str | None = None, end: str | None = None,
                    cell_code: str | None = None, dataset: str | None = None,
                    limit: int = 100, offset: int = 0) -> list[dict]:
        """Return stored alerts, oldest first, filtered by window overlap, cell, dataset.

        ``start``/``end`` are ISO timestamps: an alert is kept when its window
        ``[start, end)`` overlaps ``[start, end)``. ``cell_code`` matches any cell of it.
        """
        where, params = [], []
        if start is not None:
            where.append('"end" > ?')
            params.append(start)
        if end is not None:
            where.append('"start" < ?')
            params.append(end)
        if cell_code is not None:
            where.append("(cell_code = ? OR cell_codes LIKE ?)")
            params += [cell_code, f'%"{cell_code}"%']
        if dataset is not None:
            where.append("dataset = ?")
            params.append(dataset)
        sql = "SELECT * FROM heat_alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY "start", z DESC LIMIT ? OFFSET ?'
        out = []
        for r in self.query(sql, (*params, int(limit), int(offset))):
            d = dict(r)
            d["cell_codes"] = json.loads(d["cell_codes"])
            out.append(d)
        return out

    def count_heat_alerts(self, dataset: str | None = None) -> int:
        """Return how many alerts are stored (of ``dataset`` if given)."""
        if dataset is None:
            return self.query("SELECT COUNT(*) AS n FROM heat_alerts")[0]["n"]
        return self.query("SELECT COUNT(*) AS n FROM heat_alerts WHERE dataset = ?",
                          (dataset,))[0]["n"]


# ---- disputes helpers ----
_DISPUTE_WINDOW = timedelta(days=3)


def _iso_or_none(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _dt_or_none(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _override_audit(o: AppliedOverride) -> dict:
    return {"id": o.id, "name": o.name, "assigned_code": o.assigned_code, "share": o.share,
            "agreed_by": list(o.agreed_by), "valid_from": o.valid_from.isoformat(),
            "valid_to": o.valid_to.isoformat() if o.valid_to else None}


def _bump_components_version(c: sqlite3.Connection) -> None:
    """Count a write to the components table (caches of components key on it)."""
    c.execute("INSERT INTO meta (key, value) VALUES ('components_version', '1') "
              "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")
