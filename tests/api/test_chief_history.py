"""A chief's view of a past day: that day's cells with the cases open on that day.

堂子胡同 was chief c001's from 2017-06-01 and passes to c002 on 2024-01-01 (the sample
roster). Before, ``?on=2020-05-06`` listed the cells of 2020 with *today's* open cases
in them: c001 read the live cases of a lane handed over years ago, and missed the
cases that were open in 2020 and closed since.
"""

import datetime as dt

import pytest
import shapely
from fastapi.testclient import TestClient

from gridcore import app as gapp
from gridcore._time import FixedClock
from gridcore.cases import report_case

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 1, 2, tzinfo=UTC)


def _case_in(store, cell, at, description):
    point = shapely.get_coordinates(cell.geometry.representative_point())[0]
    case = report_case(event_class="0506", lon=float(point[0]), lat=float(point[1]),
                       description=description, reporter="王", at=at,
                       cell_code=cell.code, street_code=cell.street_code)
    return store.add_case(case)[0]


def _close(store, cid, at):
    h = dt.timedelta(hours=1)
    gapp.step_case(store, cid, "file", actor="d", role="dispatcher", at=at)
    gapp.step_case(store, cid, "dispatch", actor="d", role="dispatcher", at=at + h,
                   department="CGZF")
    gapp.step_case(store, cid, "handle", actor="c", role="department", at=at + 2 * h,
                   actor_department="CGZF")
    gapp.step_case(store, cid, "close", actor="d", role="dispatcher", at=at + 3 * h)


@pytest.fixture
def history(store_copy):
    gapp.seed_sample_roster(store_copy)
    lane = gapp.alley_cells(store_copy)
    lane_cells = set(lane.loc[lane["alley"] == "堂子胡同", "cell_code"])
    others = set(lane.loc[lane["alley"] != "堂子胡同", "cell_code"])
    cells = store_copy.load_grid().set_index("code", drop=False)
    cell = cells.loc[sorted(lane_cells - others)[0]]  # a cell only 堂子胡同 runs through
    ids = {
        "closed_since": _case_in(store_copy, cell, dt.datetime(2020, 5, 1, tzinfo=UTC), "a"),
        "open_since_2020": _case_in(store_copy, cell, dt.datetime(2020, 5, 5, tzinfo=UTC), "b"),
        "reported_today": _case_in(store_copy, cell, NOW - dt.timedelta(hours=1), "c"),
    }
    _close(store_copy, ids["closed_since"], dt.datetime(2020, 5, 20, tzinfo=UTC))
    token = gapp.issue_token(store_copy, role="chief", name="张丽", subject="c001")
    from api.main import create_app
    from api.settings import Settings

    app = create_app(Settings(db=store_copy.url, build_if_empty=False, warm_up=False),
                     clock=FixedClock(NOW))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, ids, cell.code


def test_a_past_day_shows_that_days_cells_and_the_cases_open_then(history):
    client, ids, code = history
    view = client.get("/v1/chiefs/me/view", params={"on": "2020-05-06"})
    assert view.status_code == 200, view.text
    body = view.json()
    assert code in body["cells"]
    listed = {c["id"] for c in body["open_cases"]}
    assert ids["closed_since"] in listed  # open on 6 May 2020, closed on the 20th
    assert ids["open_since_2020"] in listed
    assert ids["reported_today"] not in listed  # not reported yet on that day


def test_today_a_handed_over_lane_shows_nothing_of_it(history):
    client, ids, code = history
    body = client.get("/v1/chiefs/me/view").json()
    assert code not in body["cells"]
    assert not {c["id"] for c in body["open_cases"]} & set(ids.values())
