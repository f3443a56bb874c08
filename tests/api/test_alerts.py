"""GET /v1/alerts on the sample store: the 堂子胡同 alerts are there on a fresh start."""

from __future__ import annotations

import pytest
import shapely

from gridcore import app as gapp
from gridcore.sample_heatmap import SAMPLE_ALERTS_DATASET, TANGZI_HUTONG


@pytest.fixture(scope="module")
def alerts_store(city_db, tmp_path_factory):
    """A private copy of the sample store, shared by this module (seeding takes seconds)."""
    import sqlite3

    from gridcore.store import SQLiteStore

    dst = tmp_path_factory.mktemp("alerts") / "copy.db"
    with sqlite3.connect(city_db) as src, sqlite3.connect(dst) as out:
        src.backup(out)
    s = SQLiteStore(dst)
    yield s
    s.close()


@pytest.fixture(scope="module")
def alerts_client(alerts_store):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    assert alerts_store.count_heat_alerts() > 0  # the sample city ships with its alerts
    with TestClient(create_app(Settings(db=alerts_store.path, warm_up=False))) as c:
        yield c


@pytest.fixture(scope="module")
def token(alerts_store):
    token = gapp.issue_token(alerts_store, role='dispatcher', name='t')
    return {"Authorization": f"Bearer {token}"}


def test_alerts_are_listed_on_a_fresh_start(alerts_client, token, city):
    r = alerts_client.get("/v1/alerts", headers=token)
    assert r.status_code == 200, r.text
    alerts = r.json()
    assert alerts
    first = alerts[0]
    for key in ("cell_code", "start", "end", "z", "p", "q", "reason_zh", "reason_en"):
        assert key in first
    assert first["dataset"] == SAMPLE_ALERTS_DATASET
    lane_cell = city.cells.loc[city.cells.contains(shapely.Point(*TANGZI_HUTONG)), "code"].iloc[0]
    assert lane_cell in first["cell_codes"]
    assert "2018-04-01" <= first["start"] < "2018-04-10"
    assert first["z"] > 10 and first["p"] < 1e-10 and first["q"] <= first["fdr"]
    starts = [a["start"] for a in alerts]
    assert starts == sorted(starts)


def test_alerts_filters(alerts_client, token, city):
    h = token
    lane_cell = city.cells.loc[city.cells.contains(shapely.Point(*TANGZI_HUTONG)), "code"].iloc[0]
    some = alerts_client.get("/v1/alerts", params={"cell_code": lane_cell}, headers=h).json()
    assert some and all(lane_cell in a["cell_codes"] for a in some)
    late = alerts_client.get(
        "/v1/alerts", params={"start": "2018-04-10T00:00:00"}, headers=h
    ).json()
    assert late == []  # the painted parking ended the jam
    page = alerts_client.get("/v1/alerts", params={"limit": 2}, headers=h).json()
    assert len(page) == 2


def test_alerts_errors(alerts_client, token):
    assert alerts_client.get("/v1/alerts").status_code == 401
    r = alerts_client.get("/v1/alerts", params={"cell_code": "12345"}, headers=token)
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")


def test_alerts_map_page(alerts_client, token, city):
    r = alerts_client.get("/v1/alerts/map", params={"basemap": "gaode"}, headers=token)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "热点报警" in html and "autonavi" in html
    assert "cdn.jsdelivr" not in html and "/static/vendor/leaflet/leaflet.js" in html
    n = len(alerts_client.get("/v1/alerts", params={"limit": 1000}, headers=token).json())
    assert html.count("L.circleMarker(") == n
    assert alerts_client.get("/v1/alerts/map").status_code == 401


@pytest.mark.parametrize("bad", ["0.5", "2018-13-01", "yesterday", "2018-04-01T25:00"])
def test_alerts_reject_bad_times(alerts_client, token, bad):
    r = alerts_client.get("/v1/alerts", params={"start": bad}, headers=token)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_alerts_accept_a_plain_date(alerts_client, token):
    r = alerts_client.get(
        "/v1/alerts", params={"start": "2018-04-09", "end": "2018-04-10"}, headers=token
    )
    assert r.status_code == 200 and r.json()
    assert all(a["end"] > "2018-04-09" and a["start"] < "2018-04-10" for a in r.json())
