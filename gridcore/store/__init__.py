"""Persistence: one protocol per aggregate, a `Store` that combines them, two backends.

- `SQLiteStore`: the embedded default, one file (WAL mode).
- `PostgresStore`: PostgreSQL/PostGIS for many workers and hosts
  (``GRIDCORE_DB=postgresql://user:password@host:port/db``).

`open_store` opens either from a path or URL. Both pass the same contract suite
(``tests/store/``). The store persists what the domain modules define and decides
nothing: rules live in `gridcore.app`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._time import Clock
from ._base import StoreError
from ._protocols import (
    AlertStore,
    CaseStore,
    ChiefStore,
    ComponentStore,
    DisputeStore,
    GridStore,
    Store,
    TokenStore,
)
from ._schema import SCHEMA_VERSION
from .sqlite import SQLiteStore

DEFAULT_DB = "gridcore.db"

__all__ = [
    "DEFAULT_DB", "SCHEMA_VERSION", "AlertStore", "CaseStore", "ChiefStore", "ComponentStore",
    "DisputeStore", "GridStore", "PostgresStore", "SQLiteStore", "Store", "StoreError",
    "TokenStore", "default_db_path", "default_db", "is_postgres_url", "open_store", "redact",
]


def default_db() -> str:
    """Return ``$GRIDCORE_DB`` (a file path or a ``postgresql://`` URL) or ``gridcore.db``."""
    return os.environ.get("GRIDCORE_DB") or DEFAULT_DB


def default_db_path() -> Path:
    """Return the SQLite file named by ``$GRIDCORE_DB`` (or ``./gridcore.db``)."""
    return Path(default_db())


def is_postgres_url(db: str | os.PathLike) -> bool:
    """Return True when ``db`` names a PostgreSQL server rather than a file."""
    return str(db).startswith(("postgresql://", "postgres://"))


def redact(db: str | os.PathLike) -> str:
    """Return the store's name as it may be printed: a URL's password hidden."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(db))


def open_store(db: str | os.PathLike | None = None, *, clock: Clock | None = None) -> Store:
    """Open the store named by ``db`` (default ``$GRIDCORE_DB``): a file or a URL.

    Parameters
    ----------
    db : str or path, optional
        A SQLite file path, or ``postgresql://user:password@host:port/db``.
    clock : gridcore._time.Clock, optional
        Where the store's "now" and "today" come from.

    Raises
    ------
    StoreError
        A PostgreSQL server that cannot be reached, or a schema newer than this gridcore.
    """
    db = default_db() if db is None else db
    if is_postgres_url(db):
        from .postgres import PostgresStore

        return PostgresStore(str(db), clock=clock)
    return SQLiteStore(db, clock=clock)


def __getattr__(name: str):
    if name == "PostgresStore":  # psycopg is imported only when PostgreSQL is used
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)
