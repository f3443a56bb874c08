"""The boundary-dispute API over HTTP (TestClient) on a real SQLite copy of the sample city."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import LineString, Point, mapping, shape

from api.routes.disputes import get_now
from gridcore import app as gapp
from tests.test_disputes import border_frame, rect, to_deg

XC, FT, DC = "110102", "110106", "110101"
GW, TPQ = "110102020", "110106002"  # 广安门外街道, 太平桥街道
FTZF = "CGZF"  # 城管执法局, a department code of gridcore.cases.departments()
T0 = dt.datetime(2018, 1, 8, 9, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def frame(city):
    d = city.divisions.districts
    return border_frame(d[d["code"].isin([XC, FT])].reset_index(drop=True))


def _street_chiefs(store):
    """One chief per street (广外, 太平桥, 东华门), each with a short alley inside it."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import LineString as Line

    from gridcore.chiefs import ChiefRoster

    streets = store.load_divisions().streets.set_index("code").geometry
    rows = [
        ("gw01", "广外街巷长", GW),
        ("tpq01", "太平桥街巷长", TPQ),
        ("dc01", "东华门街巷长", "110101001"),
    ]
    alleys = []
    for cid, _, code in rows:
        p = streets[code].representative_point()
        alleys.append(
            {
                "name": f"{cid}巷",
                "synthetic": True,
                "note": "test",
                "geometry": Line([(p.x - 5e-5, p.y), (p.x + 5e-5, p.y)]),
            }
        )
    return ChiefRoster(
        chiefs=pd.DataFrame(
            [(c, n, f"{code} 街巷长") for c, n, code in rows], columns=["id", "name", "title"]
        ),
        alleys=gpd.GeoDataFrame(alleys, crs=4326),
        assignments=pd.DataFrame(
            {
                "chief_id": [r[0] for r in rows],
                "alley": [f"{r[0]}巷" for r in rows],
                "valid_from": pd.to_datetime(["2017-06-01"] * 3),
            }
        ),
    )


_CLOCK = {"now": T0}
_DISPUTE_TABLES = (
    "dispute_steps",
    "dispute_meetings",
    "dispute_departments",
    "dispute_parties",
    "dispute_tasks",
    "dispute_overrides",
)


@pytest.fixture(scope="module")
def _app(city_db, tmp_path_factory):
    """One app per module on a private copy of the sample store (start-up takes seconds)."""
    import sqlite3

    from api.main import create_app
    from api.settings import Settings
    from gridcore.store import SQLiteStore

    path = tmp_path_factory.mktemp("disputes_api") / "city.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(path) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(path)
    store.save_roster(_street_chiefs(store))
    tokens = {
        "admin": gapp.issue_token(store, role="admin", name="管理员"),
        "dispatcher": gapp.issue_token(store, role="dispatcher", name="指挥中心"),
        "supervisor": gapp.issue_token(store, role="supervisor", name="王监督员"),
        # street offices act through their street-and-alley chiefs (街巷长)
        "GW": gapp.issue_token(store, role="chief", name="广安门外街道", subject="gw01"),
        "TPQ": gapp.issue_token(store, role="chief", name="太平桥街道", subject="tpq01"),
        "DC1": gapp.issue_token(store, role="chief", name="东华门街道", subject="dc01"),
        "FTZF": gapp.issue_token(store, role="department", name="丰台城管", subject=FTZF),
        # district command centres act for their district's side of a district-level task
        "XCD": gapp.issue_token(store, role="dispatcher", name="西城区指挥中心", subject=XC),
        "FTD": gapp.issue_token(store, role="dispatcher", name="丰台区指挥中心", subject=FT),
    }
    app = create_app(Settings(db=path, build_if_empty=False))
    app.dependency_overrides[get_now] = lambda: _CLOCK["now"]
    with TestClient(app) as client:
        client.tokens = tokens
        client.store = store
        yield client
    store.close()


@pytest.fixture
def clock():
    _CLOCK["now"] = T0
    return _CLOCK


@pytest.fixture
def api(_app, clock):
    """The module's client, with no joint task or override left from another test."""
    with _app.store._begin() as c:
        for table in _DISPUTE_TABLES:
            c.execute(f"DELETE FROM {table}")
    return _app


@pytest.fixture
def store_copy(_app):
    return _app.store


def _h(api, who):
    return {"Authorization": f"Bearer {api.tokens[who]}"}


def _problem(resp, *statuses):
    assert resp.status_code in statuses, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return resp.json()


def _straddling(frame, **kw):
    p0, p1, u, n = frame
    return rect((p0 + p1) / 2, u, n, **{"along": 20, "into_xc": 9, "into_ft": 11, **kw})


def _body(geom, **extra):
    return {
        "geometry": mapping(geom),
        "crs": "wgs84",
        "accuracy_m": 0,
        "level": "district",
        **extra,
    }


def _case(geom, **extra):
    return _body(geom, event_class="0101", description="跨界违建", **extra)


def _count(api):
    return len(api.get("/v1/disputes/tasks", headers=_h(api, "admin")).json())


def test_screen_answers_without_opening(api, frame):
    p0, p1, u, n = frame
    mid = (p0 + p1) / 2
    r = api.post(
        "/v1/disputes/screen", json=_body(_straddling(frame)), headers=_h(api, "supervisor")
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["joint"] is True and {p["code"] for p in got["parties"]} == {XC, FT}
    assert abs(sum(p["share"] for p in got["parties"]) - 1) < 1e-9
    assert got["parties"][0] == {"code": FT, "name": "丰台区", "share": pytest.approx(11 / 20)}
    inside = api.post(
        "/v1/disputes/screen",
        json=_body(to_deg(Point(mid - 300 * n).buffer(30))),
        headers=_h(api, "supervisor"),
    ).json()
    assert inside["joint"] is False and [p["code"] for p in inside["parties"]] == [FT]
    near = to_deg(Point(mid - 5 * n))
    for acc, joint in ((20, True), (2, False)):
        got = api.post(
            "/v1/disputes/screen", json=_body(near, accuracy_m=acc), headers=_h(api, "GW")
        ).json()
        assert got["joint"] is joint
    line = api.post(
        "/v1/disputes/screen", json=_body(to_deg(LineString([p0, p1]))), headers=_h(api, "GW")
    ).json()
    assert line["kind"] == "line" and line["parties"][0]["share"] == pytest.approx(0.5)
    assert _count(api) == 0


def test_open_is_idempotent_and_not_joint_is_refused(api, frame, clock):
    r = api.post(
        "/v1/disputes", json=_case(_straddling(frame), receiving_code=XC), headers=_h(api, "GW")
    )
    assert r.status_code == 201, r.text
    task = r.json()["task"]
    assert (
        r.json()["opened"] is True and r.headers["location"] == f"/v1/disputes/tasks/{task['id']}"
    )
    assert {p["code"]: p["role"] for p in task["parties"]} == {XC: "receiving", FT: "whistled"}
    assert task["lead_code"] == XC and task["lead_rule"] == "receiving"
    clock["now"] = T0 + 2 * H
    again = api.post("/v1/disputes", json=_case(_straddling(frame)), headers=_h(api, "supervisor"))
    assert again.status_code == 200 and again.json()["opened"] is False
    assert again.json()["task"]["id"] == task["id"]
    assert again.json()["task"]["history"][-1]["action"] == "join"
    p0, p1, u, n = frame
    alone = to_deg(Point((p0 + p1) / 2 - 300 * n).buffer(30))
    _problem(api.post("/v1/disputes", json=_case(alone), headers=_h(api, "GW")), 409)
    _problem(
        api.post(
            "/v1/disputes",
            json=_case(_straddling(frame, along=10), receiving_code=DC),
            headers=_h(api, "GW"),
        ),
        422,
    )
    for who in ("FTZF", "DC1"):  # a department; a street office of neither side
        r = api.post("/v1/disputes", json=_case(_straddling(frame)), headers=_h(api, who))
        _problem(r, 403)
    assert _count(api) == 1


def test_a_street_office_opening_is_the_receiving_side(api, frame):
    r = api.post("/v1/disputes", json=_case(_straddling(frame)), headers=_h(api, "GW"))
    task = r.json()["task"]
    assert r.status_code == 201 and task["lead_code"] == XC and task["lead_rule"] == "receiving"
    assert {p["code"]: p["role"] for p in task["parties"]} == {XC: "receiving", FT: "whistled"}


BAD = [
    ({"geometry": {"type": "Polygon", "coordinates": []}}, (422,)),
    ({"geometry": {"type": "Point", "coordinates": ["a", "b"]}}, (422,)),
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [116.35, 39.87],
                        [116.36, 39.88],
                        [116.36, 39.87],
                        [116.35, 39.88],
                        [116.35, 39.87],
                    ]
                ],
            }
        },
        (422,),
    ),
    ({"geometry": {"type": "Point", "coordinates": [116.32, 39.89]}, "crs": "epsg:3857"}, (422,)),
    ({"geometry": {"type": "Point", "coordinates": [449000.0, 4414000.0]}}, (422,)),
    ({"geometry": {"type": "Point", "coordinates": [39.89, 116.32]}}, (422,)),
    ({"geometry": {"type": "Point", "coordinates": [117.2, 39.1]}, "accuracy_m": 5}, (404,)),
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[116.30, 39.80], [116.40, 39.80], [116.40, 39.90], [116.30, 39.80]]
                ],
            }
        },
        (422,),
    ),
    ({"geometry": {"type": "GeometryCollection", "geometries": []}}, (422,)),
    ({"accuracy_m": -1}, (422,)),
    ({"level": "province"}, (422,)),
    ({"crs": None}, (422,)),
    ({"event_class": "1"}, (422,)),
]


@pytest.mark.parametrize(("patch", "statuses"), BAD)
def test_bad_input_is_a_4xx_problem_and_opens_nothing(api, frame, patch, statuses):
    body = {**_case(_straddling(frame)), **patch}
    _problem(api.post("/v1/disputes", json=body, headers=_h(api, "GW")), *statuses)
    if "event_class" not in patch:
        screen = {k: v for k, v in body.items() if k not in ("event_class", "description")}
        _problem(api.post("/v1/disputes/screen", json=screen, headers=_h(api, "GW")), *statuses)
    assert _count(api) == 0


def test_malformed_json_and_no_token(api):
    r = api.post(
        "/v1/disputes/screen",
        content=b"{not json",
        headers={**_h(api, "GW"), "content-type": "application/json"},
    )
    _problem(r, 400, 422)
    _problem(api.post("/v1/disputes/screen", json={}), 401)
    _problem(api.get("/v1/disputes/tasks/jt-0000000000000000", headers=_h(api, "admin")), 404)
    _problem(api.get("/v1/disputes/tasks/nope", headers=_h(api, "admin")), 422)


def test_the_joint_task_over_http(api, frame, clock):
    task = api.post(
        "/v1/disputes", json=_case(_straddling(frame), receiving_code=XC), headers=_h(api, "GW")
    ).json()["task"]
    url = f"/v1/disputes/tasks/{task['id']}"

    def step(who, path, body=None, at=None):
        clock["now"] = at or clock["now"] + H
        return api.post(url + path, json=body or {}, headers=_h(api, who))

    # 东城 is no party: cannot read, cannot check in
    _problem(api.get(url, headers=_h(api, "DC1")), 403)
    _problem(step("DC1", "/check-in"), 403)
    _problem(step("DC1", "/check-in", {"party_code": DC}), 403)
    # a chief reads its district's task, but acts only for its own street's side: not for
    # the whole of 西城 (the prefix match let it), nor for the other side
    assert api.get(url, headers=_h(api, "GW")).status_code == 200
    _problem(step("GW", "/check-in"), 403)
    _problem(step("GW", "/check-in", {"party_code": XC}), 403)
    _problem(step("GW", "/check-in", {"party_code": FT}), 403)
    # a district command centre acts for its own district only
    _problem(step("XCD", "/check-in", {"party_code": FT}), 403)
    _problem(step("XCD", "/check-in", {"party_code": FT}), 403)
    assert step("XCD", "/check-in").status_code == 200
    _problem(step("XCD", "/check-in"), 409)  # already checked in
    _problem(
        step(
            "XCD",
            "/agreement",
            {"division_of_labour": {XC: "a", FT: "b"}, "deadline": "2018-05-31T18:00:00+08:00"},
        ),
        409,
    )
    assert step("FTD", "/check-in").status_code == 200
    r = step("FTD", "/departments", {"department_code": FTZF})
    assert r.status_code == 200, r.text
    _problem(api.post(url + "/departments/CGZF/report", headers=_h(api, "supervisor")), 403)
    assert api.get(url, headers=_h(api, "FTZF")).status_code == 200  # called, so it sees it
    assert api.post(url + "/departments/CGZF/report", headers=_h(api, "FTZF")).status_code == 200
    meeting = {
        "meeting_at": "2018-01-12T09:00:00+08:00",
        "place": "广安门外街道办事处",
        "attendees": [XC, FT, FTZF],
        "notes": "现场踏勘",
    }
    assert step("XCD", "/meetings", meeting).status_code == 200
    _problem(step("XCD", "/meetings", {**meeting, "meeting_at": "2018-01-12T09:00:00"}), 422)
    _problem(
        step(
            "FTD",
            "/agreement",
            {"division_of_labour": {XC: "a", FT: "b"}, "deadline": "2018-05-31T18:00:00+08:00"},
        ),
        403,
    )
    r = step(
        "XCD",
        "/agreement",
        {
            "division_of_labour": {XC: "西侧拆除", FT: "东侧拆除, 清运"},
            "deadline": "2018-05-31T18:00:00+08:00",
        },
    )
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    assert step("FTD", "/reports", {"text": "东侧已拆", "done": True}).status_code == 200
    _problem(step("XCD", "/close", {"note": "x"}), 409)  # 西城 has not reported done
    assert step("XCD", "/reports", {"text": "西侧已拆", "done": True}).status_code == 200
    r = step("XCD", "/close", {"note": "联合拆除完毕"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "closed" and all(p["done_at"] for p in done["parties"])
    assert [s["action"] for s in done["history"]] == [
        "open",
        "check_in",
        "check_in",
        "call_department",
        "department_report",
        "meeting",
        "agree",
        "report",
        "report",
        "close",
    ]
    assert [s["actor"] for s in done["history"]][:3] == [
        "广安门外街道",
        "西城区指挥中心",
        "丰台区指挥中心",
    ]
    # nothing more on a closed task
    _problem(step("FTD", "/reports", {"text": "again"}), 409)
    _problem(step("XCD", "/meetings", meeting), 409)
    assert len(api.get(url, headers=_h(api, "FTD")).json()["history"]) == 10


def test_who_sees_which_tasks(api, frame, clock):
    a = api.post(
        "/v1/disputes", json=_case(_straddling(frame)), headers=_h(api, "supervisor")
    ).json()["task"]["id"]

    def ids(who, q=""):
        return [t["id"] for t in api.get("/v1/disputes/tasks" + q, headers=_h(api, who)).json()]

    assert ids("admin") == [a] and ids("dispatcher") == [a]
    assert ids("GW") == [a] and ids("TPQ") == [a] and ids("supervisor") == [a]
    assert ids("DC1") == [] and ids("FTZF") == []
    assert ids("admin", f"?district={XC}") == [a] and ids("admin", f"?district={DC}") == []
    assert ids("admin", f"?street={GW}&status=open") == [a]
    assert ids("admin", "?status=closed") == []
    assert ids("GW", f"?district={DC}") == []
    _problem(api.get("/v1/disputes/tasks?status=lost", headers=_h(api, "admin")), 422)
    _problem(api.get("/v1/disputes/tasks?district=12", headers=_h(api, "admin")), 422)


def test_shared_border_as_geojson(api, frame):
    geod = Geod(ellps="WGS84")
    r = api.get(f"/v1/disputes/border?codes={XC},{FT}", headers=_h(api, "GW"))
    assert r.status_code == 200 and r.json()["type"] == "Feature"
    assert 8_500 < geod.geometry_length(shape(r.json()["geometry"])) < 9_300
    task = api.post("/v1/disputes", json=_case(_straddling(frame)), headers=_h(api, "GW")).json()[
        "task"
    ]
    tb = api.get(f"/v1/disputes/tasks/{task['id']}/border", headers=_h(api, "TPQ")).json()
    assert geod.geometry_length(shape(tb["geometry"])) == pytest.approx(
        geod.geometry_length(shape(r.json()["geometry"])), rel=1e-6
    )
    _problem(api.get(f"/v1/disputes/border?codes={XC},{GW}", headers=_h(api, "GW")), 422)
    _problem(api.get(f"/v1/disputes/border?codes={XC}", headers=_h(api, "GW")), 422)
    _problem(api.get(f"/v1/disputes/border?codes={XC},{XC}", headers=_h(api, "GW")), 422)
    apart = api.get(f"/v1/disputes/border?codes={GW},{TPQ[:6]}001", headers=_h(api, "GW")).json()
    assert apart["geometry"] == {"type": "MultiLineString", "coordinates": []}
    street = api.get(f"/v1/disputes/border?codes={GW},{TPQ}", headers=_h(api, "GW")).json()
    assert geod.geometry_length(shape(street["geometry"])) > 200  # they face each other


def test_an_override_moves_the_case_and_is_audited(api, frame):
    p0, p1, u, n = frame
    market = rect((p0 + p1) / 2, u, n, along=60, into_xc=40, into_ft=40)
    body = {
        "id": "market-2018",
        "name": "农贸市场",
        "geometry": mapping(market),
        "crs": "wgs84",
        "level": "district",
        "assigned_code": XC,
        "valid_from": "2018-06-01",
        "agreed_by": ["广安门外街道", "太平桥街道"],
    }
    _problem(api.post("/v1/disputes/overrides", json=body, headers=_h(api, "GW")), 403)
    _problem(
        api.post(
            "/v1/disputes/overrides",
            json={**body, "assigned_code": "110999"},
            headers=_h(api, "admin"),
        ),
        422,
    )
    assert (
        api.post("/v1/disputes/overrides", json=body, headers=_h(api, "admin")).status_code == 201
    )

    def screen(on):
        body = _body(_straddling(frame), on=on)
        return api.post("/v1/disputes/screen", json=body, headers=_h(api, "GW")).json()

    after, before = screen("2018-07-01"), screen("2018-05-01")
    assert after["joint"] is False and [p["code"] for p in after["parties"]] == [XC]
    assert after["overrides"][0]["id"] == "market-2018"
    assert after["overrides"][0]["agreed_by"] == ["广安门外街道", "太平桥街道"]
    assert before["joint"] is True and before["overrides"] == []
    listed = api.get("/v1/disputes/overrides", headers=_h(api, "TPQ")).json()
    assert [o["id"] for o in listed] == ["market-2018"]


def test_open_from_an_existing_case(api, frame, city, store_copy, clock):
    from gridcore.cases import report_case

    p0, p1, u, n = frame
    pt = to_deg(Point((p0 + p1) / 2 - 5 * n))  # 5 m inside 丰台
    cells = city.cells
    street = str(cells["street_code"].iloc[cells.sindex.query(pt, predicate="intersects")[0]])
    assert street.startswith(FT)
    case = report_case(
        event_class="0501",
        lon=pt.x,
        lat=pt.y,
        description="无照经营游商",
        reporter="王监督员",
        at=T0 - H,
        street_code=street,
    )
    case_id, _ = store_copy.add_case(case)
    url = f"/v1/disputes/from-case/{case_id}"
    _problem(api.post(url, json={"accuracy_m": 2}, headers=_h(api, "dispatcher")), 409)
    _problem(api.post(url, json={"accuracy_m": 20}, headers=_h(api, "supervisor")), 403)
    _problem(api.post("/v1/disputes/from-case/999999", json={}, headers=_h(api, "admin")), 404)
    r = api.post(url, json={"accuracy_m": 20}, headers=_h(api, "dispatcher"))
    assert r.status_code == 201, r.text
    task = r.json()["task"]
    assert {p["code"] for p in task["parties"]} == {XC, FT} and task["event_class"] == "0501"
    assert task["lead_code"] == FT and task["lead_rule"] == "receiving"  # the case's street
    assert f"案卷 {case_id}" in task["description"]
    again = api.post(url, json={"accuracy_m": 20}, headers=_h(api, "dispatcher"))
    assert again.status_code == 200 and again.json()["task"]["id"] == task["id"]


# ---- malformed geometry is named in words (gridcore.geojson), never numpy's or GEOS's --

_RING = [[116.35, 39.87], [116.36, 39.87], [116.36, 39.88], [116.35, 39.88], [116.35, 39.87]]
MALFORMED = [
    ({"type": "Polygon", "coordinates": [_RING[:2]]},
     "the outer ring of the Polygon has 2 positions; a ring needs at least 4"),
    ({"type": "Polygon", "coordinates": [_RING[:4]]},
     "the outer ring of the Polygon is not closed: it starts at (116.35, 39.87) and ends at "
     "(116.35, 39.88)"),
    ({"type": "Polygon", "coordinates": _RING},  # one level too shallow: gufunc before
     "coordinates of a Polygon must be a list of lists of positions; these are nested 1 "
     "level too shallow"),
    ({"type": "Point", "coordinates": [[116.35, 39.87]]}, "nested one level too deep"),
    ({"type": "Point", "coordinates": [116.35]}, "coordinates has 1 number"),
    ({"type": "LineString", "coordinates": [[116.35, 39.87]]},
     "a LineString needs at least 2 positions, got 1"),
    ({"type": "LineString", "coordinates": [[116.35, 39.87], "east"]},
     "coordinates[1] must be a position [lon, lat], not 'east'"),
    ({"type": "MultiPolygon", "coordinates": [_RING]},
     "nested 1 level too shallow (they read as a Polygon or MultiLineString)"),
    ({"type": "Polygon", "coordinates": [[[116.35, 39.87], [116.36, 39.88], [116.36, 39.87],
                                          [116.35, 39.88], [116.35, 39.87]]]},
     "not a valid polygon: its boundary crosses itself or another of its rings near "
     "(116.355, 39.875)"),
    ({"type": "Polygon", "coordinates": [[[116.35, 39.87], [116.36, 39.87], [116.36, 39.88],
                                          [116.35, 39.87]],
                                         [[116.351, 39.871], [116.352, 39.871],
                                          [116.352, 39.872], [116.351, 39.872]]]},
     "the hole 1 of the Polygon is not closed"),
    ({"type": "Point", "coordinates": [39.87, 116.35]},
     "coordinates: lat 116.35 is outside -90..90; lon and lat look swapped (116.35, 39.87"),
    ({"type": "LineString", "coordinates": [[116.35, 39.87], [116.36, 139.87]]},
     "coordinates[1]: lat 139.87 is outside -90..90"),
    ({"type": "Point", "coordinates": [449000.0, 4414000.0]}, "look like projected metres"),
]


@pytest.mark.parametrize(("geometry", "words"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_geometry_is_named_in_words(api, geometry, words):
    body = {"geometry": geometry, "crs": "wgs84"}
    for path, extra in (("/v1/disputes/screen", {}),
                        ("/v1/disputes", {"event_class": "0101", "description": "x"})):
        p = _problem(api.post(path, json={**body, **extra}, headers=_h(api, "GW")), 422)
        assert p["detail"].startswith("geometry: "), p["detail"]
        assert words in p["detail"], p["detail"]
        for internal in ("gufunc", "signature", "shapely", "numpy", "Exception", "linearring"):
            assert internal.lower() not in p["detail"].lower(), p["detail"]
    override = {"id": "o1", "name": "市场", "geometry": geometry, "crs": "wgs84",
                "level": "district", "assigned_code": XC, "valid_from": "2018-01-01",
                "agreed_by": [XC, FT]}
    p = _problem(api.post("/v1/disputes/overrides", json=override, headers=_h(api, "admin")),
                 422)
    assert words in p["detail"], p["detail"]
    assert _count(api) == 0 and api.get("/v1/disputes/overrides",
                                        headers=_h(api, "admin")).json() == []
