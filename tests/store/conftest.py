"""The store contract suite: every test here runs on SQLite and on PostgreSQL/PostGIS."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, sample_copy_on


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The backend under test."""
    return request.param


@pytest.fixture
def new_store(backend, tmp_path, request):
    """Make empty stores on the backend under test: ``new_store(clock=None)``."""
    from gridcore.store import PostgresStore, SQLiteStore

    made = []

    def make(clock=None):
        if backend == "sqlite":
            s = SQLiteStore(tmp_path / f"store{len(made)}.db", clock=clock)
        else:
            cluster = request.getfixturevalue("pg_cluster")
            s = PostgresStore(cluster.new_database(), clock=clock)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
        if backend == "postgresql":
            request.getfixturevalue("pg_cluster").drop_database(s.url)


@pytest.fixture
def store_copy(store_copy, backend, request):
    """A private copy of the sample city on the backend under test."""
    yield from sample_copy_on(backend, request, store_copy)
