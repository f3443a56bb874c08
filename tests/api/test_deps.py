"""The city the service answers from: it follows the grid version in force.

Its warm-up never reads a store that was closed.
"""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gridcore import app as gapp
from gridcore._time import FixedClock, SystemClock
from gridcore.grid import GridVersion
from tests.api.conftest import LiveServer

XICHENG = {"lon": 116.3756, "lat": 39.911, "crs": "wgs84"}  # 堂子胡同, 西城
DONGCHENG = {"lon": 116.4177, "lat": 39.9130, "crs": "wgs84"}  # 东城


def _add_dongcheng_only(store, valid_from: dt.date) -> tuple[int, int]:
    """Store a new grid version holding only 东城's cells; return (its id, its size)."""
    cells = store.load_grid()
    part = cells[cells["district_code"] == "110101"].reset_index(drop=True)
    return gapp.add_grid_version(store, GridVersion(valid_from, part, source="test")), len(part)


def test_a_version_whose_day_arrives_is_served_without_restart(store_copy, make_token):
    clock = FixedClock(dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC))  # 20:00 in Beijing
    # a recheck that never comes due: only the city's day changing makes the holder ask
    app = create_app(Settings(db=store_copy.url, warm_up=False, grid_recheck_seconds=3600),
                     clock=clock)
    headers = make_token("supervisor")
    with TestClient(app) as c:
        before = c.get("/health").json()
        assert c.get("/v1/locate", params=XICHENG, headers=headers).status_code == 200
        vid, n = _add_dongcheng_only(store_copy, dt.date(2026, 7, 2))
        assert c.get("/health").json()["grid_version"] == before["grid_version"]

        clock.advance(dt.timedelta(hours=4))  # 00:00 on 2 July in Beijing
        now = c.get("/health").json()
        assert (now["grid_version"], now["cells"]) == (vid, n)
        assert now["cells"] < before["cells"]
        # the locator follows the city: 西城 is no longer in the grid, 东城 still is
        assert c.get("/v1/locate", params=XICHENG, headers=headers).status_code == 404
        assert c.get("/v1/locate", params=DONGCHENG, headers=headers).status_code == 200


def test_a_version_imported_while_serving_is_served_at_the_next_check(store_copy):
    clock = FixedClock(dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC))
    app = create_app(Settings(db=store_copy.url, warm_up=False, grid_recheck_seconds=0),
                     clock=clock)
    with TestClient(app) as c:
        before = c.get("/health").json()["grid_version"]
        later, _ = _add_dongcheng_only(store_copy, dt.date(2026, 9, 1))
        assert c.get("/health").json()["grid_version"] == before  # not valid yet
        vid, n = _add_dongcheng_only(store_copy, dt.date(2026, 7, 1))  # valid today
        assert c.get("/health").json()["grid_version"] == vid != later


def test_a_live_server_switches_to_a_version_valid_today(store_copy):
    server = LiveServer(store_copy.url, env={"GRIDCORE_GRID_RECHECK_SECONDS": "0.5",
                                             "GRIDCORE_WARM_UP": "false"})
    server.start()
    try:
        before = httpx.get(server.url + "/health", timeout=30).json()
        vid, n = _add_dongcheng_only(store_copy, SystemClock().today())
        deadline = time.monotonic() + 30
        now = before
        while now["grid_version"] != vid and time.monotonic() < deadline:
            time.sleep(0.3)
            now = httpx.get(server.url + "/health", timeout=30).json()
        assert (now["grid_version"], now["cells"]) == (vid, n), before
    finally:
        server.stop()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_closing_an_app_at_once_leaves_the_warm_up_quiet(store_copy):
    """The warm-up reads the store; closing the app first must not make it read a closed one."""
    import api.deps

    for _ in range(3):
        api.deps._SHARED.clear()  # no cached locator: the warm-up must read the store
        app = create_app(Settings(db=store_copy.url, warm_up=True))
        with TestClient(app):
            pass  # shut down while the warm-up is reading components
        warm_up = app.state.city._warm_up
        assert warm_up is not None and not warm_up.is_alive()
