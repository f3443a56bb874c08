"""Generated requests against every /v1/disputes operation: never a 500 (schemathesis)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, city_db):
    import sqlite3

    from api.main import create_app
    from api.settings import Settings
    from gridcore.store import SQLiteStore

    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(path) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(path)
    token = store.create_token(role="admin", name="fuzz")
    store.close()
    app = create_app(Settings(db=path, build_if_empty=False))
    with TestClient(app):  # runs the lifespan: store and city on app.state
        yield app, token


def test_no_operation_answers_500(fuzz_app):
    app, token = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex="^/v1/disputes"
    )
    failures, seen = [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        _exercise(op, token, failures)
        seen += 1
    assert seen >= 15  # every disputes operation was exercised
    assert not failures, failures


def _exercise(op, token, failures):
    @given(op.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        resp = case.call()
        if resp.status_code >= 500:
            failures.append((op.label, resp.status_code, resp.text[:200]))
        elif resp.status_code >= 400:
            ctype = resp.headers.get("content-type") or [""]
            ctype = ctype[0] if isinstance(ctype, list) else ctype
            assert ctype.startswith("application/problem+json"), (op.label, resp.text[:200])

    run()
