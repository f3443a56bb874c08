"""Shared fixtures: the sample city is built once per test session into a real SQLite file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def city_db(tmp_path_factory) -> Path:
    """Path of a SQLite store holding the sample city (built once per session).

    With pytest-xdist each worker builds its own copy (a few seconds).
    """
    from gridcore.sample import build_sample_city
    from gridcore.store import SQLiteStore

    path = tmp_path_factory.mktemp("city") / "sample.db"
    store = SQLiteStore(path)
    build_sample_city(store, progress=False)
    store.close()
    return path


@pytest.fixture(scope="session")
def store(city_db):
    """The session's store (read-mostly: tests that write use their own copy)."""
    from gridcore.store import SQLiteStore

    s = SQLiteStore(city_db)
    yield s
    s.close()


@pytest.fixture(scope="session")
def city(store):
    """The sample city (divisions + current grid), loaded from the session store."""
    from gridcore.sample import load_city

    return load_city(store)


@pytest.fixture
def store_copy(city_db, tmp_path):
    """A private copy of the sample store for tests that write to it."""
    import sqlite3

    from gridcore.store import SQLiteStore

    dst = tmp_path / "copy.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()
    s = SQLiteStore(dst)
    yield s
    s.close()


@pytest.fixture
def env_db(store_copy, monkeypatch):
    """Point GRIDCORE_DB at a private copy of the sample store (for CLI/API tests)."""
    monkeypatch.setenv("GRIDCORE_DB", os.fspath(store_copy.path))
    return store_copy.path


# ---- PostgreSQL/PostGIS: a throwaway cluster per session, the sample city built once

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL/PostGIS server for the session (see tests/pgcluster.py)."""
    from tests.pgcluster import start_cluster

    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_sample_url(pg_cluster) -> str:
    """URL of a PostgreSQL database holding the sample city, a template for copies."""
    from gridcore.sample import build_sample_city
    from gridcore.store import PostgresStore

    url = pg_cluster.new_database("gridcore_sample")
    store = PostgresStore(url)
    build_sample_city(store, progress=False)
    store.close()
    return url


def pg_copy(pg_cluster, template_url: str) -> str:
    """A new database copied from ``template_url`` (no session may be connected to it)."""
    import uuid

    import psycopg

    name = f"gridcore_copy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_url.rsplit("/", 1)[1]}"')
    return pg_cluster.url.rsplit("/", 1)[0] + "/" + name


def sample_copy_on(backend: str, request, sqlite_copy):
    """Yield a private copy of the sample city on ``backend`` (for backend fixtures).

    ``sqlite_copy`` is the SQLite copy the caller already has; on PostgreSQL a database
    is made from the session's template and dropped afterwards.
    """
    if backend == "sqlite":
        yield sqlite_copy
        return
    from gridcore.store import open_store

    cluster = request.getfixturevalue("pg_cluster")
    url = pg_copy(cluster, request.getfixturevalue("pg_sample_url"))
    s = open_store(url)
    yield s
    s.close()
    cluster.drop_database(url)
