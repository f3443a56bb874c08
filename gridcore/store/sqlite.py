"""The embedded store: one SQLite file in WAL mode, geometries as WKB (EPSG:4326)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._time import Clock
from ._base import Dialect, StoreError, Tx
from ._store import SQLStore


class SQLiteDialect(Dialect):
    """SQLite: instants as fixed-width UTC text, dates as ISO text, geometry as WKB."""

    name = "sqlite"
    types = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "ts": "TEXT", "day": "TEXT",
             "geom": "BLOB", "real": "REAL"}
    integrity_errors = (sqlite3.IntegrityError,)

    def in_values(self, column: str, values: Sequence) -> tuple[str, list]:  # noqa: D102
        values = list(values)
        if not values:
            return "0", []
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(values)]


class SQLiteStore(SQLStore):
    """The embedded store: one SQLite file (WAL mode, full sync), geometries as WKB.

    Writers queue on one lock per process and on SQLite's own lock across processes;
    readers never wait for a writer (WAL).

    Parameters
    ----------
    path : str or Path, optional
        The database file; default ``$GRIDCORE_DB`` or ``./gridcore.db``.
    clock : gridcore._time.Clock, optional
        Where "now" comes from (default: the system clock in the city's time zone).

    Examples
    --------
    >>> store = SQLiteStore(":memory:")
    >>> store.is_empty()
    True
    """

    def __init__(self, path: str | Path | None = None, *, clock: Clock | None = None) -> None:
        from . import default_db_path

        super().__init__(clock=clock)
        self.dialect = SQLiteDialect()
        self.path = Path(path) if path is not None else default_db_path()
        self.url = str(self.path)
        self._memory = str(self.path) == ":memory:"
        if not self._memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: the service answers requests from a thread pool, and
        # two threads sharing one connection would nest BEGINs and read each other's
        # uncommitted writes. An in-memory database exists only on its own connection,
        # so it keeps one, behind a lock.
        self._local = threading.local()
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()  # re-entrant: a nested BEGIN errors, never hangs
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._shared = self._connect() if self._memory else None
            self._migrate()
        except sqlite3.DatabaseError as exc:  # not a database, a directory, no permission
            self.close()
            why = "it is a directory" if self.path.is_dir() else str(exc)
            raise StoreError(f"cannot open the SQLite store {self.path}: {why}; name a "
                             "gridcore store file, or a new path to start one, with --db or "
                             "GRIDCORE_DB") from None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False,
                               isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._connections.append(conn)
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            from ..errors import StoreClosedError

            raise StoreClosedError(f"the store {self.path} is closed")
        if self._shared is not None:
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _begin(self) -> Iterator[Tx]:
        c = self._conn
        # Writers of this process queue on a Python lock, which hands over at once; left
        # to SQLite's busy handler they poll with growing sleeps.
        with self._lock if self._shared is not None else self._write_lock:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(c, self.dialect)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            else:
                c.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[Tx]:
        c = self._conn
        if self._shared is not None:
            with self._lock:
                yield Tx(c, self.dialect)
            return
        if c.in_transaction:  # a read inside this thread's own write transaction
            yield Tx(c, self.dialect)
            return
        # A deferred transaction: one snapshot for the whole read, no write lock.
        c.execute("BEGIN")
        try:
            yield Tx(c, self.dialect)
        finally:
            c.execute("COMMIT")

    def journal_mode(self) -> str:
        """Return SQLite's journal mode (``wal``)."""
        return self._conn.execute("PRAGMA journal_mode").fetchone()[0]

    def close(self) -> None:
        """Close every connection this store opened; later calls raise StoreClosedError."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
