"""Schemathesis against the app's own OpenAPI schema, on the case, chief and token routes.

Bounded: a few dozen generated requests per operation. Checks: no 500, responses match
their documented schema, and requests the schema forbids are refused.
"""

import sqlite3

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

MINE = r"^/v1/(cases|chiefs|tokens|metrics|event-classes|departments)"


@pytest.fixture(scope="module")
def served(city_db, tmp_path_factory):
    from api.main import create_app
    from api.settings import Settings
    from gridcore.store import SQLiteStore
    from tests.api.test_cases import _include_case_routers

    dst = tmp_path_factory.mktemp("st") / "st.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(dst)
    store.seed_sample_roster()
    token = store.create_token(role="admin", name="schemathesis")
    store.close()
    app = _include_case_routers(create_app(Settings(db=dst, build_if_empty=False)))
    with TestClient(app):
        yield app, token


@pytest.fixture(scope="module")
def api_schema(served):
    app, _ = served
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=MINE)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_case_routes_conform(case, served):
    _, token = served
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[checks.not_a_server_error, checks.response_schema_conformance,
                checks.negative_data_rejection],
    )
