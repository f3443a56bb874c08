"""What every SQL backend shares: the dialect seam, the transaction helper, the codecs.

Aggregate code (``_grid.py``, ``_cases.py``...) is written once against `Tx`, with ``?``
placeholders and portable SQL; a `Dialect` fills in what differs (types, geometry in
and out, sets of values, row locks, bulk loads). Nothing here leaves the package: the
store's public methods take and return domain objects, frames and plain values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import shapely

from .._time import Clock, decode_instant, default_clock, encode_instant
from ..errors import GridcoreError, InvalidValueError
from ._schema import MIGRATIONS, SCHEMA_VERSION


class StoreError(GridcoreError, RuntimeError):
    """The store cannot be opened or used as asked (a newer schema, a bad URL...)."""


class Dialect:
    """How one database spells what differs. Subclasses: SQLite, PostgreSQL/PostGIS."""

    name = "sql"
    types: dict[str, str] = {}
    spatial_indexes = False

    def ddl(self, statement: str) -> str:
        """Fill the type words of a DDL statement."""
        return statement.format(**self.types)

    def sql(self, statement: str) -> str:
        """Translate portable SQL (``?`` placeholders) to the driver's paramstyle."""
        return statement

    def geom_in(self) -> str:
        """Return the SQL of a geometry parameter (WKB bytes)."""
        return "?"

    def geom_out(self, column: str) -> str:
        """Return the SQL that reads a geometry column as WKB, named after the column."""
        return column

    def instant(self, t: dt.datetime | None) -> Any:
        """Return a datetime as the driver stores it."""
        return encode_instant(t)

    def day(self, d: dt.date | None) -> Any:
        """Return a calendar date as the driver stores it."""
        return None if d is None else d.isoformat()

    def in_values(self, column: str, values: Sequence) -> tuple[str, list]:
        """Return a ``column IN (values)`` clause and its parameters, for any number of values."""
        raise NotImplementedError

    for_update = ""

    def lock(self, tx: Tx, key: str) -> None:
        """Serialise the transactions that take the same ``key`` (until they end)."""

    integrity_errors: tuple[type[BaseException], ...] = ()

    def bulk_insert(self, tx: Tx, table: str, columns: Sequence[str],
                    rows: Iterable[Sequence], *, geom_columns: Sequence[str] = ()) -> None:
        """Insert many rows (geometry columns given as WKB bytes)."""
        marks = ", ".join(self.geom_in() if c in geom_columns else "?" for c in columns)
        tx.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                       list(rows))


class Tx:
    """The statements of one transaction (or one consistent read) on one connection."""

    def __init__(self, conn, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence | None = ()) -> Any:
        """Run one statement; return the driver's cursor (private to the package)."""
        params = tuple(params or ())
        _refuse_nul(params)
        return self._conn.execute(self.dialect.sql(sql), params)

    def rows(self, sql: str, params: Sequence | None = ()) -> list[dict]:
        """Run a query and return its rows as dicts."""
        cur = self.execute(sql, params)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence | None = ()) -> dict | None:
        """Return the first row of a query, or None."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence | None = ()) -> Any:
        """Return the first column of the first row, or None."""
        cur = self.execute(sql, params)
        row = cur.fetchone()
        return None if row is None else row[0]

    def frame(self, sql: str, params: Sequence | None = ()) -> pd.DataFrame:
        """Run a query and return a DataFrame (its columns even when it has no rows)."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        return pd.DataFrame.from_records(list(cur.fetchall()), columns=names)

    def executemany(self, sql: str, seq: Iterable[Sequence]) -> None:
        """Run one statement for each parameter row."""
        seq = [tuple(r) for r in seq]
        for row in seq:
            _refuse_nul(row)
        if seq:
            self._conn.cursor().executemany(self.dialect.sql(sql), seq)

    def insert_id(self, sql: str, params: Sequence) -> int:
        """Run an INSERT and return the new row's ``id``."""
        return int(self.scalar(sql + " RETURNING id", params))


def _refuse_nul(params: Sequence) -> None:
    """Refuse text holding a NUL character, on every backend alike.

    PostgreSQL cannot store one in text; SQLite can, so without this check one backend
    would keep what the other refuses.
    """
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidValueError(
                f"text may not contain a NUL character (\\x00): {value[:40]!r}")


def wkb(geoms) -> list[bytes]:
    """WKB of each geometry (EPSG:4326 by convention)."""
    return shapely.to_wkb(np.asarray(geoms, dtype=object)).tolist()


def from_wkb(values) -> np.ndarray:
    """Geometries from WKB values (bytes or memoryview)."""
    return shapely.from_wkb(np.asarray([bytes(v) for v in values], dtype=object))


def to_day(value) -> dt.date | None:
    """Return a stored calendar date (text or date) as a date."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def to_instant(value) -> dt.datetime | None:
    """Return a stored instant (text or datetime) as an aware UTC datetime."""
    return decode_instant(value)


def instants(series: pd.Series) -> pd.Series:
    """Return a column of stored instants as pandas UTC timestamps (NaT for none)."""
    if series.empty:
        return pd.to_datetime(series, utc=True)
    return pd.to_datetime(series, utc=True, format="ISO8601")


class SQLStoreBase:
    """The plumbing every SQL store shares: transactions, reads, meta, migrations, clock.

    Backends implement `_begin` (a write transaction) and `_reading` (a consistent read),
    each a context manager yielding a `Tx`.
    """

    dialect: Dialect
    clock: Clock

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or default_clock()

    # ---- backend hooks
    def _begin(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def close(self) -> None:
        """Release every connection."""

    def _now(self) -> dt.datetime:
        return self.clock.now_utc()

    # ---- reads
    def _rows(self, sql: str, params: Sequence = ()) -> list[dict]:
        with self._reading() as tx:
            return tx.rows(sql, params)

    def _frame(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        with self._reading() as tx:
            return tx.frame(sql, params)

    def _scalar(self, sql: str, params: Sequence = ()) -> Any:
        with self._reading() as tx:
            return tx.scalar(sql, params)

    # ---- meta and schema
    def get_meta(self, key: str) -> str | None:
        """Return a value from the store's meta table (None if unset)."""
        return self._scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the store's meta table."""
        with self._begin() as tx:
            _set_meta(tx, key, value)

    def schema_version(self) -> int:
        """Return the version of the store's schema (see `gridcore.store._schema`)."""
        return int(self.get_meta("schema_version") or 0)

    def _migrate(self) -> None:
        """Bring the schema to `SCHEMA_VERSION`, each migration in one transaction."""
        with self._begin() as tx:
            self.dialect.lock(tx, "gridcore:migrate")
            tx.execute(self.dialect.ddl(MIGRATIONS[0].statements[0]))  # meta
            current = _current_version(tx)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema version {current}, newer than this gridcore "
                    f"({SCHEMA_VERSION}): upgrade gridcore")
        for m in MIGRATIONS:
            if m.version <= current:
                continue
            with self._begin() as tx:
                self.dialect.lock(tx, "gridcore:migrate")
                if _current_version(tx) >= m.version:
                    continue  # another process got there first
                for stmt in m.statements:
                    tx.execute(self.dialect.ddl(stmt))
                if self.dialect.spatial_indexes:
                    for stmt in m.spatial:
                        tx.execute(stmt)
                if m.run is not None:
                    m.run(tx)
                _set_meta(tx, "schema_version", str(m.version))


def _current_version(tx: Tx) -> int:
    value = tx.scalar("SELECT value FROM meta WHERE key = 'schema_version'")
    if value is not None:
        return int(value)
    # A file of the first release: its tables exist, it has no version.
    has_tables = tx.scalar("SELECT COUNT(*) FROM meta") or _has_table(tx, "grid_versions")
    return 1 if has_tables else 0


def _has_table(tx: Tx, name: str) -> bool:
    if tx.dialect.name == "sqlite":
        return tx.scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                         (name,)) > 0
    return tx.scalar("SELECT to_regclass(?) IS NOT NULL", (name,))


def _set_meta(tx: Tx, key: str, value: str) -> None:
    tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def bump_counter(tx: Tx, key: str) -> None:
    """Add one to an integer kept in the meta table (caches key on such counters)."""
    tx.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE "
               "SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)", (key,))


def chunks(values: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of at most ``size`` values."""
    for i in range(0, len(values), size):
        yield values[i:i + size]
