"""Schemathesis against the app's own OpenAPI schema: no 500, no schema violation.

Bounded: a fixed number of examples per operation, no deadline per example. Every check
runs except ``positive_data_acceptance``: some schema-valid input is rejected on purpose
by rules OpenAPI cannot express (a position outside China or the city, a code of the
right length that no cell has), with a 404/422 problem, which the schema documents.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance


@pytest.fixture(scope="module")
def api_app(tmp_path_factory, city_db):
    import shutil

    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings
    from gridcore.store import SQLiteStore

    db = tmp_path_factory.mktemp("schema") / "schema.db"
    shutil.copy(city_db, db)
    store = SQLiteStore(db)
    token = store.create_token(role="admin", name="schemathesis")
    store.close()
    app = create_app(Settings(db=db))
    with TestClient(app):  # runs the lifespan: store, city, locator
        app.state.test_token = token
        yield app


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, api_app):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_app.state.test_token}"},
                           excluded_checks=[positive_data_acceptance])
