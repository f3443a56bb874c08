"""The case loop over HTTP (TestClient) against a real SQLite file holding the sample city."""

import contextlib
import datetime as dt
import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from gridcore import app as gapp
from gridcore._time import FixedClock
from gridcore.crs import wgs84_to

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 8, tzinfo=UTC)
H = dt.timedelta(hours=1)
TANGZI = (116.3755, 39.91105)  # on the sample 堂子胡同 line, 西城
NANLUO = (116.39715, 39.9370)  # on the sample 南锣鼓巷 line, 东城


@pytest.fixture
def clock():
    """The app's clock, stopped at T0; tests move it with ``advance`` and ``set``."""
    return FixedClock(T0)


@contextlib.contextmanager
def _client(store, clock):
    """A client of the app on ``store`` (a copy of the sample city), tokens per role."""
    from api.main import create_app
    from api.settings import Settings

    gapp.seed_sample_roster(store)
    tokens = {
        "supervisor": gapp.issue_token(store, role="supervisor", name="王监督员"),
        "dispatcher": gapp.issue_token(store, role="dispatcher", name="指挥中心"),
        "admin": gapp.issue_token(store, role="admin", name="管理员"),
        "JD": gapp.issue_token(store, role="department", name="街道", subject="JD:110102"),
        "CGZF": gapp.issue_token(store, role="department", name="城管", subject="CGZF"),
        "c001": gapp.issue_token(store, role="chief", name="张丽", subject="c001"),
        "c003": gapp.issue_token(store, role="chief", name="陈静", subject="c003"),
    }
    app = create_app(Settings(db=store.path, build_if_empty=False), clock=clock)
    with TestClient(app) as client:
        client.tokens = tokens
        yield client


@pytest.fixture
def api(store_copy, clock):
    """A client on a private copy of the sample store, for tests that need it empty."""
    with _client(store_copy, clock) as client:
        yield client


@pytest.fixture(scope="module")
def shared_api(city_db, tmp_path_factory):
    """One client for the tests that only read or are refused (faster)."""
    from gridcore.store import SQLiteStore

    dst = tmp_path_factory.mktemp("shared") / "shared.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(dst)
    with _client(store, FixedClock(T0)) as client:
        yield client
    store.close()


def _h(api, who, **extra):
    return {"Authorization": f"Bearer {api.tokens[who]}", **extra}


def _report(api, lon=TANGZI[0], lat=TANGZI[1], crs="wgs84", code="0506", who="supervisor",
            **headers):
    body = {"lon": lon, "lat": lat, "crs": crs, "event_class": code,
            "description": "外卖电动车堵塞胡同"}
    return api.post("/v1/cases", json=body, headers=_h(api, who, **headers))


def _problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


def test_no_token_401_bad_token_401(shared_api):
    api = shared_api
    body = {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84", "event_class": "0506",
            "description": "x"}
    _problem(api.post("/v1/cases", json=body), 401)
    _problem(api.get("/v1/cases/1"), 401)
    _problem(api.get("/v1/cases/1", headers={"Authorization": "Bearer gc_nope"}), 401)
    _problem(api.get("/v1/metrics/cases", headers={"Authorization": "Basic abc"}), 401)


def test_report_and_read_back(api):
    r = _report(api)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.headers["location"] == f"/v1/cases/{cid}"
    got = api.get(f"/v1/cases/{cid}", headers=_h(api, "dispatcher")).json()
    assert got["state"] == "reported" and got["event_class_name"] == "非机动车乱停放"
    assert got["cell_code"] == r.json()["cell_code"] and len(got["cell_code"]) == 15
    assert got["cell_code"].startswith("110102")  # 西城
    assert got["time_limit_hours"] == 4.0 and got["deadline_status"] == "green"
    assert got["allowed_actions"] == ["file", "reject"]
    assert got["events"][0]["actor"] == "王监督员" and got["events"][0]["role"] == "supervisor"
    assert got["lon"] == pytest.approx(TANGZI[0]) and got["lat"] == pytest.approx(TANGZI[1])


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_report_in_gcj02_and_bd09_lands_in_the_same_cell(api, crs):
    lon, lat = wgs84_to([TANGZI[0]], [TANGZI[1]], crs=crs)
    assert abs(lon[0] - TANGZI[0]) > 0.004  # the shift is hundreds of metres
    a = _report(api).json()
    b = _report(api, lon=float(lon[0]), lat=float(lat[0]), crs=crs).json()
    assert a["cell_code"] == b["cell_code"]
    got = api.get(f"/v1/cases/{b['id']}", headers=_h(api, "admin")).json()
    assert got["lon"] == pytest.approx(TANGZI[0], abs=1e-7)


def test_whole_loop_with_rework_and_roles(api, clock):
    cid = _report(api).json()["id"]

    def step(action, who, hours=0.5, **body):
        clock.advance(hours * H)
        return api.post(f"/v1/cases/{cid}/{action}", json=body or None, headers=_h(api, who))

    _problem(step("file", "supervisor"), 403)  # supervisors do not file
    assert step("file", "dispatcher", note="属实").json()["state"] == "filed"
    d = step("dispatch", "dispatcher").json()
    assert d["department"] == "JD" and d["department_name"] == "属地街道办事处"
    _problem(step("handle", "CGZF"), 403)  # another department's case
    assert step("handle", "JD", note="已清理").json()["state"] == "handled"
    r = step("rework", "supervisor", note="仍有车辆").json()
    assert r["state"] == "dispatched" and r["department"] == "JD" and r["rework_count"] == 1
    assert step("handle", "JD").json()["state"] == "handled"
    c = step("close", "supervisor").json()
    assert c["state"] == "closed" and c["allowed_actions"] == []
    assert [e["action"] for e in c["events"]] == [
        "report", "file", "dispatch", "handle", "rework", "handle", "close"]
    assert [e["actor"] for e in c["events"]][-2:] == ["街道", "王监督员"]
    # 0.5 h per successful step and per refused one: closed 4.0 h after the report
    assert dt.datetime.fromisoformat(c["closed_at"]) == T0 + 4.0 * H
    assert c["deadline_status"] == "yellow"  # 4.0 / 4 h: all of the limit used, not over
    p = _problem(step("dispatch", "dispatcher"), 409)
    assert "closed" in p["detail"] and "none" in p["detail"]


def test_illegal_transition_is_409_naming_state_and_allowed(api):
    cid = _report(api).json()["id"]
    p = _problem(api.post(f"/v1/cases/{cid}/close", headers=_h(api, "admin")), 409)
    assert "'reported'" in p["detail"] and "file, reject" in p["detail"]
    assert api.post(f"/v1/cases/{cid}/report", headers=_h(api, "admin")).status_code == 404
    assert api.post(f"/v1/cases/{cid}/approve", headers=_h(api, "admin")).status_code == 404
    _problem(api.post("/v1/cases/999999/file", headers=_h(api, "admin")), 404)
    r = api.post(f"/v1/cases/{cid}/file", headers=_h(api, "admin"))
    _problem(api.post(f"/v1/cases/{r.json()['id']}/dispatch", json={"department": "NOPE"},
                      headers=_h(api, "admin")), 422)


def test_idempotency_key(api):
    a = _report(api, **{"Idempotency-Key": "abc-1"})
    b = _report(api, **{"Idempotency-Key": "abc-1"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"] and b.headers["idempotent-replayed"] == "true"
    listed = api.get("/v1/cases", headers=_h(api, "admin")).json()
    assert [c["id"] for c in listed] == [a.json()["id"]]
    p = _problem(_report(api, code="0505", **{"Idempotency-Key": "abc-1"}), 409)
    assert "abc-1" in p["detail"]


def test_duplicate_hint(api, clock):
    first = _report(api).json()["id"]
    clock.advance(H)
    second = _report(api, lon=TANGZI[0] + 0.0002).json()  # ~17 m east, same class
    assert second["duplicate_of"] == [first]
    other = _report(api, code="0505").json()  # another class at the same spot
    assert other["duplicate_of"] == []
    clock.advance(30 * H)
    late = _report(api).json()  # more than a day later
    assert late["duplicate_of"] == []
    got = api.get(f"/v1/cases/{first}/duplicates", headers=_h(api, "dispatcher")).json()
    assert got == [second["id"]]


BAD_BODIES = [
    ("malformed json", '{"lon": 116.3, "lat": '),
    ("wrong types", {"lon": "east", "lat": 39.9, "crs": "wgs84", "event_class": "0506",
                     "description": "x"}),
    ("NaN", '{"lon": NaN, "lat": 39.9, "crs": "wgs84", "event_class": "0506",'
            ' "description": "x"}'),
    ("out of range", {"lon": 200, "lat": 39.9, "crs": "wgs84", "event_class": "0506",
                      "description": "x"}),
    ("swapped", {"lon": 39.911, "lat": 116.3756, "crs": "wgs84", "event_class": "0506",
                 "description": "x"}),
    ("unknown crs", {"lon": 116.3, "lat": 39.9, "crs": "utm", "event_class": "0506",
                     "description": "x"}),
    ("missing crs", {"lon": 116.3, "lat": 39.9, "event_class": "0506", "description": "x"}),
    ("unknown class", {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84",
                       "event_class": "0599", "description": "x"}),
    ("malformed class", {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84",
                         "event_class": "506", "description": "x"}),
    ("empty description", {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84",
                           "event_class": "0506", "description": ""}),
    ("extra field", {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84",
                     "event_class": "0506", "description": "x", "priority": 1}),
    ("not an object", "[1, 2, 3]"),
]


@pytest.mark.parametrize(("name", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_reports_are_4xx_problems(shared_api, name, body):
    api = shared_api
    before = len(api.get("/v1/cases?limit=500", headers=_h(api, "admin")).json())
    data = body if isinstance(body, str) else json.dumps(body)
    r = api.post("/v1/cases", content=data,
                 headers=_h(api, "supervisor", **{"Content-Type": "application/json"}))
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(api.get("/v1/cases?limit=500", headers=_h(api, "admin")).json()) == before


def test_oversized_report_is_413(shared_api):
    api = shared_api
    body = {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84", "event_class": "0506",
            "description": "堵" * 2_000_000}
    _problem(api.post("/v1/cases", json=body, headers=_h(api, "supervisor")), 413)


def test_position_outside_the_city_is_404(shared_api):
    api = shared_api
    # 上海 人民广场: in China, valid, not in the sample city
    p = _problem(_report(api, lon=121.4737, lat=31.2304), 404)
    assert "outside" in p["detail"]


def test_chief_sees_own_grids_only(api):
    mine = _report(api).json()  # in 堂子胡同, chief c001 (2017-2023), c002 from 2024
    theirs = _report(api, lon=NANLUO[0], lat=NANLUO[1], code="0101").json()  # c003's
    v = api.get("/v1/chiefs/c003/view", headers=_h(api, "c003")).json()
    assert v["chief"]["name"] == "陈静" and v["alleys"] == ["南锣鼓巷"]
    assert theirs["cell_code"] in v["cells"]
    assert [c["id"] for c in v["open_cases"]] == [theirs["id"]]
    assert v["open_cases"][0]["deadline_status"] == "green"
    assert api.get("/v1/chiefs/me/view", headers=_h(api, "c003")).json() == v
    # c001 handed 堂子胡同 to c002 on 2024-01-01: today (2026) c001 has no grids
    now_view = api.get("/v1/chiefs/c001/view", headers=_h(api, "c001")).json()
    assert now_view["cells"] == [] and now_view["open_cases"] == []
    old = api.get("/v1/chiefs/c001/view?on=2018-04-10", headers=_h(api, "c001")).json()
    assert old["alleys"] == ["堂子胡同"] and mine["cell_code"] in old["cells"]
    _problem(api.get("/v1/chiefs/c003/view", headers=_h(api, "c001")), 403)
    _problem(api.get(f"/v1/cases/{theirs['id']}", headers=_h(api, "c001")), 403)
    assert api.get(f"/v1/cases/{theirs['id']}", headers=_h(api, "c003")).status_code == 200
    listed = api.get("/v1/cases", headers=_h(api, "c003")).json()
    assert [c["id"] for c in listed] == [theirs["id"]]
    admin = api.get("/v1/chiefs/c002/view", headers=_h(api, "admin")).json()
    assert [c["id"] for c in admin["open_cases"]] == [mine["id"]]
    _problem(api.get("/v1/chiefs/c999/view", headers=_h(api, "admin")), 404)
    _problem(api.get("/v1/chiefs/c003/view", headers=_h(api, "JD")), 403)
    chiefs = api.get("/v1/chiefs", headers=_h(api, "c003")).json()
    assert [c["id"] for c in chiefs] == ["c003"]


def test_assignment_by_admin_moves_the_view(api):
    body = {"alley": "南锣鼓巷", "valid_from": "2026-01-01"}
    _problem(api.post("/v1/chiefs/c001/assignments", json=body, headers=_h(api, "c001")), 403)
    assert api.post("/v1/chiefs/c001/assignments", json=body,
                    headers=_h(api, "admin")).status_code == 201
    _problem(api.post("/v1/chiefs/c001/assignments", json=body, headers=_h(api, "admin")), 409)
    v = api.get("/v1/chiefs/c001/view", headers=_h(api, "c001")).json()
    assert v["alleys"] == ["南锣鼓巷"]
    assert api.get("/v1/chiefs/c003/view", headers=_h(api, "c003")).json()["cells"] == []


def test_metrics_on_known_data(api, clock, store_copy):
    def run(lon, lat, code, plan, followup=None):
        cid = _report(api, lon=lon, lat=lat, code=code).json()["id"]
        for action, hours, who in plan:
            clock.advance(hours * H)
            r = api.post(f"/v1/cases/{cid}/{action}", headers=_h(api, who))
            assert r.status_code == 200, r.text
        if followup:
            r = api.post(f"/v1/cases/{cid}/followups", json=followup,
                         headers=_h(api, "dispatcher"))
            assert r.status_code == 201, r.text
        return cid

    quick = [("file", 0.5, "dispatcher"), ("dispatch", 0.5, "dispatcher"),
             ("handle", 0.5, "JD"), ("close", 0.5, "supervisor")]
    slow = [("file", 1, "dispatcher"), ("dispatch", 1, "dispatcher"), ("handle", 1, "JD"),
            ("rework", 1, "supervisor"), ("handle", 1, "JD"), ("close", 1, "supervisor")]
    # street of 堂子胡同: one 0506 closed in 2 h (on time), one closed in 6 h (late,
    # reworked), one rejected; street of 南锣鼓巷: one 0101 filed (168 h, not due)
    t_start = clock.now_utc()
    run(*TANGZI, "0506", quick, {"responded": True, "resolved": True, "satisfaction": "满意"})
    clock.set(t_start)
    run(*TANGZI, "0506", slow, {"responded": True, "resolved": False,
                                "satisfaction": "基本满意"})
    run(*TANGZI, "0506", [("reject", 1, "dispatcher")])
    filed = run(*NANLUO, "0101", [("file", 1, "dispatcher")])
    # a follow-up asks about a finished case: on an open one it is refused
    _problem(api.post(f"/v1/cases/{filed}/followups", headers=_h(api, "dispatcher"),
                      json={"responded": False, "resolved": False, "satisfaction": "不满意"}),
             409)
    _problem(api.post("/v1/cases/1/followups", json={"responded": True, "resolved": True,
                                                     "satisfaction": "很好"},
                      headers=_h(api, "dispatcher")), 422)
    m = api.get("/v1/metrics/cases?by=street", headers=_h(api, "dispatcher")).json()
    listed = api.get("/v1/cases?limit=500", headers=_h(api, "admin")).json()
    street_of = {c["event_class"]: c["street_code"] for c in listed}  # 西城 / 东城
    rows = {g["key"]: g for g in m["groups"]}
    assert set(rows) == {street_of["0506"], street_of["0101"]}
    t, n = rows[street_of["0506"]], rows[street_of["0101"]]
    assert (t["reported"], t["filed"], t["closed"], t["due"], t["closed_on_time"]) == (
        3, 2, 2, 2, 1)
    assert t["closure_rate"] == 1.0 and t["on_time_rate"] == 0.5
    assert (t["handled"], t["reworked"], t["rework_rate"]) == (2, 1, 0.5)
    assert t["response_rate"] == 1.0 and t["resolution_rate"] == 0.5
    assert t["satisfaction_rate"] == pytest.approx((1 + 0.9) / 2)
    assert n["closure_rate"] == 0.0 and n["on_time_rate"] is None
    assert n["rework_rate"] is None and n["satisfaction_rate"] is None
    d = api.get("/v1/metrics/cases?by=department", headers=_h(api, "admin")).json()
    # the rejected case and the filed-only one were never dispatched: key ""
    assert {g["key"]: (g["reported"], g["closed"]) for g in d["groups"]} == {
        "": (2, 0), "JD": (2, 2)}
    p = api.get("/v1/metrics/cases?by=period&freq=M", headers=_h(api, "admin")).json()
    assert [(g["key"], g["reported"]) for g in p["groups"]] == [("2026-03", 4)]
    # a street office measures the cases it may see, and only those (none of 南锣鼓巷's)
    office = gapp.issue_token(store_copy, role="street", name="街道办",
                              subject=street_of["0506"])
    sm = api.get("/v1/metrics/cases?by=street",
                 headers={"Authorization": f"Bearer {office}"}).json()
    assert [(g["key"], g["reported"]) for g in sm["groups"]] == [(street_of["0506"], 3)]
    _problem(api.get("/v1/metrics/cases?by=community", headers=_h(api, "admin")), 422)


def test_reference_tables_and_token_route(shared_api):
    api = shared_api
    classes = api.get("/v1/event-classes", headers=_h(api, "supervisor")).json()
    assert {"code": "0506", "name": "非机动车乱停放"}.items() <= next(
        c for c in classes if c["code"] == "0506").items()
    deps = api.get("/v1/departments", headers=_h(api, "supervisor")).json()
    assert "JD" in {d["code"] for d in deps}
    body = {"role": "chief", "name": "刘强", "subject": "c002"}
    _problem(api.post("/v1/tokens", json=body, headers=_h(api, "dispatcher")), 403)
    r = api.post("/v1/tokens", json=body, headers=_h(api, "admin"))
    assert r.status_code == 201
    tok = r.json()["token"]
    v = api.get("/v1/chiefs/me/view", headers={"Authorization": f"Bearer {tok}"}).json()
    assert v["chief"]["id"] == "c002" and v["alleys"] == ["堂子胡同"]
    _problem(api.post("/v1/tokens", json={"role": "chief", "name": "x", "subject": "c999"},
                      headers=_h(api, "admin")), 422)


def test_chief_geojson(api, clock):
    case = _report(api, lon=NANLUO[0], lat=NANLUO[1], code="0101").json()
    clock.advance(200 * H)  # past the 168 h limit of 0101
    r = api.get("/v1/chiefs/c003/view.geojson", headers=_h(api, "c003"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    cells = [f for f in fc["features"] if f["properties"]["kind"] == "cell"]
    cases = [f for f in fc["features"] if f["properties"]["kind"] == "case"]
    view = api.get("/v1/chiefs/c003/view", headers=_h(api, "c003")).json()
    assert sorted(f["properties"]["code"] for f in cells) == view["cells"]
    assert all(f["geometry"]["type"] == "Polygon" for f in cells)
    assert [f["properties"]["id"] for f in cases] == [case["id"]]
    assert cases[0]["properties"]["deadline_status"] == "red"
    _problem(api.get("/v1/chiefs/c003/view.geojson", headers=_h(api, "c001")), 403)


def test_the_sample_city_ships_its_chiefs_and_an_own_grid_gets_none(store_copy, tmp_path):
    from gridcore.store import SQLiteStore

    assert store_copy.get_chief("c001")["name"] == "张丽"
    other = SQLiteStore(tmp_path / "own.db")  # no sample grid in it
    assert len(other.chief_ids()) == 0
    other.close()


def test_405_allows_every_method_of_the_path(shared_api):
    r = shared_api.put("/v1/cases", headers=_h(shared_api, "admin"))
    assert r.status_code == 405
    assert {"GET", "POST"} <= set(r.headers["allow"].replace(" ", "").split(","))


def test_chief_view_lists_components_in_own_cells_only(api, store_copy):
    import geopandas as gpd
    import shapely

    records = gpd.GeoDataFrame(
        {"class_code": ["0101", "0305"]},
        geometry=[shapely.Point(*NANLUO), shapely.Point(*TANGZI)], crs="EPSG:4326")
    stored = gapp.register_components(store_copy, records)
    mine = stored.loc[stored["class_code"] == "0101", "code"].item()
    theirs = stored.loc[stored["class_code"] == "0305", "code"].item()
    v = api.get("/v1/chiefs/c003/view", headers=_h(api, "c003")).json()
    codes = {c["code"] for c in v["components"]}
    assert mine in codes and theirs not in codes
    assert all(c["cell_code"] in v["cells"] for c in v["components"])
    got = next(c for c in v["components"] if c["code"] == mine)
    assert got["lon"] == pytest.approx(NANLUO[0]) and got["lat"] == pytest.approx(NANLUO[1])


# ----------------------------------------------------------------- the city's clock

APRIL_1_0700_BJ = dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC)  # 07:00 on 1 April, Beijing


def test_metrics_cut_days_and_months_at_the_citys_midnight(api, clock):
    clock.set(APRIL_1_0700_BJ - 2 * H)  # 05:00 on 1 April in Beijing, 21:00 UTC 31 March
    early = _report(api).json()["id"]
    clock.set(APRIL_1_0700_BJ - 8 * H)  # 23:00 on 31 March in Beijing
    march = _report(api).json()["id"]
    clock.set(APRIL_1_0700_BJ)
    april = _report(api).json()["id"]
    got = api.get(f"/v1/cases/{april}", headers=_h(api, "admin")).json()
    assert dt.datetime.fromisoformat(got["reported_at"]) == APRIL_1_0700_BJ  # aware
    assert dt.datetime.fromisoformat(got["deadline"]).utcoffset() is not None

    def groups(query):
        r = api.get(f"/v1/metrics/cases?{query}", headers=_h(api, "admin"))
        assert r.status_code == 200, r.text
        return {g["key"]: g["reported"] for g in r.json()["groups"]}

    assert groups("by=period&freq=M") == {"2026-03": 1, "2026-04": 2}
    assert groups("by=period&freq=D") == {"2026-03-31": 1, "2026-04-01": 2}
    # plain dates are the city's days: 1 April starts at 16:00 UTC on 31 March
    assert groups("by=period&freq=D&since=2026-04-01") == {"2026-04-01": 2}
    assert groups("by=period&freq=D&until=2026-04-01") == {"2026-03-31": 1}
    assert {early, march, april} == {c["id"] for c in api.get(
        "/v1/cases", headers=_h(api, "admin")).json()}
    r = api.get("/v1/metrics/cases?by=street", headers=_h(api, "admin")).json()
    assert dt.datetime.fromisoformat(r["now"]) == APRIL_1_0700_BJ


def test_deadline_colour_follows_the_apps_clock(api, clock):
    cid = _report(api).json()["id"]  # 0506: 4 h

    def colour():
        return api.get(f"/v1/cases/{cid}", headers=_h(api, "admin")).json()["deadline_status"]

    assert colour() == "green"
    clock.advance(3.5 * H)
    assert colour() == "yellow"
    clock.advance(H)
    assert colour() == "red"


def test_a_chiefs_today_is_the_citys_date(api, clock, store_copy):
    # 堂子胡同 passes from c001 to c002 on 2024-01-01 (city date)
    mine = _report(api).json()
    api.tokens["c002"] = gapp.issue_token(store_copy, role="chief", name="刘强",
                                          subject="c002")
    clock.set(dt.datetime(2023, 12, 31, 15, 59, tzinfo=UTC))  # 23:59 on 31 Dec in Beijing
    assert mine["cell_code"] in api.get("/v1/chiefs/me/view",
                                        headers=_h(api, "c001")).json()["cells"]
    assert api.get(f"/v1/cases/{mine['id']}", headers=_h(api, "c001")).status_code == 200
    clock.set(dt.datetime(2023, 12, 31, 23, 0, tzinfo=UTC))  # 07:00 on 1 Jan 2024 in Beijing
    v = api.get("/v1/chiefs/me/view", headers=_h(api, "c001")).json()
    assert v["on"] == "2024-01-01" and v["cells"] == []
    _problem(api.get(f"/v1/cases/{mine['id']}", headers=_h(api, "c001")), 403)
    assert mine["cell_code"] in api.get("/v1/chiefs/me/view",
                                        headers=_h(api, "c002")).json()["cells"]


def test_a_cases_component_must_be_stored_and_in_its_district(shared_api, store):
    """Before: any component code was accepted (201), even one of another district."""
    api = shared_api
    near = store.components_near(*TANGZI, radius_m=300)
    far = store.components_near(*NANLUO, radius_m=300)
    here, there = str(near["code"].iloc[0]), str(far["code"].iloc[0])
    assert here[:6] == "110102" and there[:6] == "110101"

    def report(code):
        body = {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84", "event_class": "0506",
                "description": "井盖破损", "component_code": code}
        return api.post("/v1/cases", json=body, headers=_h(api, "supervisor"))

    ok = report(here)
    assert ok.status_code == 201, ok.text
    assert api.get(f"/v1/cases/{ok.json()['id']}", headers=_h(api, "admin")).json()[
        "component_code"] == here
    missing = here[:-6] + ("999999" if here[-6:] != "999999" else "999998")
    assert "not in the store" in _problem(report(missing), 422)["detail"]
    assert "district 110101" in _problem(report(there), 422)["detail"]


def test_stage_deadlines_run_on_the_working_calendar(api, clock):
    """Each stage reached has its deadline; 立案 in 30 working minutes rolls over a weekend."""
    clock.set(dt.datetime(2026, 3, 6, 9, 45, tzinfo=UTC))  # Friday 17:45 in Beijing
    cid = _report(api).json()["id"]
    case = api.get(f"/v1/cases/{cid}", headers=_h(api, "admin")).json()
    (file_,) = case["deadlines"]
    assert file_["stage"] == "file" and file_["clock"] == "working"
    # 15 minutes on Friday, 15 on Monday morning: Monday 08:15 in Beijing
    assert dt.datetime.fromisoformat(file_["due_at"]) == dt.datetime(2026, 3, 9, 0, 15,
                                                                      tzinfo=UTC)
    assert file_["done_at"] is None and file_["on_time"] is None
    clock.set(dt.datetime(2026, 3, 9, 0, 30, tzinfo=UTC))  # Monday 08:30: late
    api.post(f"/v1/cases/{cid}/file", headers=_h(api, "dispatcher"))
    case = api.get(f"/v1/cases/{cid}", headers=_h(api, "admin")).json()
    stages = {d["stage"]: d for d in case["deadlines"]}
    assert set(stages) == {"file", "dispatch"}
    assert stages["file"]["on_time"] is False
    assert dt.datetime.fromisoformat(stages["dispatch"]["due_at"]) == dt.datetime(
        2026, 3, 9, 1, 0, tzinfo=UTC)  # 08:30 + 30 working minutes = 09:00
    clock.advance(dt.timedelta(minutes=10))
    api.post(f"/v1/cases/{cid}/dispatch", headers=_h(api, "dispatcher"))
    case = api.get(f"/v1/cases/{cid}", headers=_h(api, "admin")).json()
    stages = {d["stage"]: d for d in case["deadlines"]}
    assert stages["dispatch"]["on_time"] is True and stages["handle"]["clock"] == "natural"
    started = dt.datetime.fromisoformat(stages["handle"]["started_at"])
    assert dt.datetime.fromisoformat(stages["handle"]["due_at"]) - started == dt.timedelta(
        hours=case["time_limit_hours"])
