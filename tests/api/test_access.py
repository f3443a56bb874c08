"""The access policy, proven by a matrix: every route of the OpenAPI schema under every role.

The world: chief c002 (西长安街街道 110102001, 西城) and chief c003 (交道口街道, 东城); one
case in a cell of c002's (reported by the supervisor) and one in a cell of c003's (by the
command centre), both dispatched to the street office (JD); one district-level joint task
on the 西城/丰台 line. Each role is asked for every route, against the object in its scope
and the one outside; the table below says, written by hand from the README's roles table,
which answers are allowed and which refused (403). No answer, allowed or refused, may carry
a marker of an object outside the caller's scope. A route without a row fails the test.

The leaks the issue lists each have their own test after the matrix.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import mapping

from gridcore import app as gapp
from gridcore._time import FixedClock
from tests.test_disputes import border_frame, rect

T0 = dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
XC, FT = "110102", "110106"
STREET = "110102001"  # 西长安街街道: chief c002's cells lie in it
IN_MARK, OUT_MARK, TASK_MARK = "IN-3k7-描述", "OUT-7q2-描述", "TASK-9z4-描述"
ALERT_MARK = "ALERT-5m8-东城的报警"
OTHER_CHIEF_NAME = "陈静"  # c003, in 东城

ROLES = ("admin", "dispatcher", "district", "cgzf", "jd", "street", "chief", "volunteer",
         "supervisor")
DESK = {"admin", "dispatcher"}


def _tokens(store) -> dict[str, str]:
    make = gapp.issue_token
    return {
        "admin": make(store, role="admin", name="管理员"),
        "dispatcher": make(store, role="dispatcher", name="市指挥中心"),
        "district": make(store, role="dispatcher", name="西城区指挥中心", subject=XC),
        "cgzf": make(store, role="department", name="城管执法", subject="CGZF"),
        "jd": make(store, role="department", name="西长安街属地", subject=f"JD:{STREET}"),
        "street": make(store, role="street", name="西长安街街道办", subject=STREET),
        "chief": make(store, role="chief", name="刘强", subject="c002"),
        "volunteer": make(store, role="volunteer", name="小巷管家老李", subject="c002"),
        "supervisor": make(store, role="supervisor", name="王监督员"),
    }


def _cell_point(city, code: str) -> tuple[float, float]:
    cell = city.cells.loc[city.cells["code"] == code].geometry.iloc[0]
    p = cell.representative_point()
    return p.x, p.y


@pytest.fixture(scope="module")
def world(city_db, city, tmp_path_factory):
    """One app on a private copy of the sample city, with the objects of the matrix."""
    from api.main import create_app
    from api.settings import Settings
    from gridcore.store import SQLiteStore

    path = tmp_path_factory.mktemp("access") / "city.db"
    src = sqlite3.connect(city_db)
    with sqlite3.connect(path) as out:
        src.backup(out)
    src.close()
    store = SQLiteStore(path, clock=FixedClock(T0 + dt.timedelta(hours=1)))
    gapp.seed_sample_roster(store)
    today = store.clock.today()
    mine = sorted(gapp.chief_cells(store, "c002", on=today))
    theirs = sorted(gapp.chief_cells(store, "c003", on=today) - set(mine))
    assert mine and theirs and all(c.startswith(STREET) for c in mine)
    tokens = _tokens(store)
    # an alert in chief c003's cell (the sample's alerts all lie around 堂子胡同)
    row = store.heat_alerts(limit=1)[0]
    outside = {k: v for k, v in row.items() if k not in ("id", "dataset", "created_at")}
    outside.update(cell_code=theirs[0], cell_codes=[theirs[0]], reason_zh=ALERT_MARK,
                   reason_en=ALERT_MARK)
    store.replace_heat_alerts("matrix-outside", [outside])
    clock = FixedClock(T0)
    app = create_app(Settings(db=path, build_if_empty=False, warm_up=False), clock=clock)
    with TestClient(app) as client:
        def h(role):
            return {"Authorization": f"Bearer {tokens[role]}"}

        def report(role, cell, mark):
            lon, lat = _cell_point(city, cell)
            r = client.post("/v1/cases", headers=h(role), json={
                "event_class": "0506", "lon": lon, "lat": lat, "crs": "wgs84",
                "description": mark})
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            for step in ("file", "dispatch"):
                clock.advance(dt.timedelta(minutes=5))
                r = client.post(f"/v1/cases/{cid}/{step}", headers=h("admin"),
                                json={"department": "JD"} if step == "dispatch" else {})
                assert r.status_code == 200, r.text
            return cid

        ctx = {
            "h": h, "city": city, "mine": mine, "theirs": theirs,
            "in": report("supervisor", mine[0], IN_MARK),
            "out": report("dispatcher", theirs[0], OUT_MARK),
        }
        d = city.divisions.districts
        p0, p1, u, n = border_frame(d[d["code"].isin([XC, FT])].reset_index(drop=True))
        ctx["frame"] = (p0, p1, u, n)
        task = client.post("/v1/disputes", headers=h("admin"), json={
            "geometry": mapping(rect((p0 + p1) / 2, u, n, along=20, into_xc=9, into_ft=11)),
            "crs": "wgs84", "accuracy_m": 0, "level": "district", "event_class": "0101",
            "description": TASK_MARK, "receiving_code": XC})
        assert task.status_code == 201, task.text
        ctx["task"] = task.json()["task"]["id"]
        client.ctx = ctx
        client.tokens = tokens
        yield client
    store.close()


# ----------------------------------------------------------------------- the table
#
# A row: (label, url(ctx), body(ctx) or None, allowed roles). Every other role must get 403;
# "all" means every role; PUBLIC rows need no token at all.

ALL = set(ROLES)
PUBLIC = "public"
READ_IN = DESK | {"district", "jd", "street", "chief", "volunteer", "supervisor"}


def _pos(which):
    def url(ctx):
        lon, lat = _cell_point(ctx["city"], ctx[which][0])
        return lon, lat
    return url


def _case_body(which):
    def body(ctx):
        lon, lat = _pos(which)(ctx)
        return {"event_class": "0506", "lon": lon, "lat": lat, "crs": "wgs84",
                "description": "矩阵测试"}
    return body


def _o311_body(which):
    def body(ctx):
        lon, lat = _pos(which)(ctx)
        return {"service_code": "0506", "lat": lat, "long": lon, "description": "矩阵测试"}
    return body


def _locate(which):
    def url(ctx):
        lon, lat = _pos(which)(ctx)
        return f"/v1/locate?lon={lon}&lat={lat}&crs=wgs84&k=5"
    return url


def _opening(ctx):
    p0, p1, u, n = ctx["frame"]
    geom = rect(p0 + 0.3 * (p1 - p0), u, n, along=20, into_xc=9, into_ft=11)
    return {"geometry": mapping(geom), "crs": "wgs84", "accuracy_m": 0, "level": "district",
            "event_class": "0101", "description": "矩阵另开"}


def _screen(ctx):
    b = _opening(ctx)
    return {k: b[k] for k in ("geometry", "crs", "accuracy_m", "level")}


def _bbox(ctx):
    lon, lat = _pos("mine")(ctx)
    return f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"


def _task(suffix=""):
    return lambda ctx: f"/v1/disputes/tasks/{ctx['task']}{suffix}"


def _case(which, suffix=""):
    return lambda ctx: f"/v1/cases/{ctx[which]}{suffix}"


_AS_XC = {"party_code": XC}
_ACT_ROLES = DESK | {"district"}  # a district-level task: the district's side, not a street's

ROWS: dict[tuple[str, str], list[tuple]] = {
    ("GET", "/health"): [("up", lambda c: "/health", None, PUBLIC)],
    ("GET", "/"): [("page", lambda c: "/", None, PUBLIC)],
    ("GET", "/chief"): [("page", lambda c: "/chief", None, PUBLIC)],
    ("GET", "/grid/cells.geojson"): [
        ("bbox", lambda c: f"/grid/cells.geojson?bbox={_bbox(c)}", None, PUBLIC)],
    ("GET", "/grid/cell.geojson"): [
        ("at", lambda c: "/grid/cell.geojson?lon={}&lat={}".format(*_pos("mine")(c)), None,
         PUBLIC)],
    ("GET", "/grid/divisions.geojson"): [
        ("streets", lambda c: "/grid/divisions.geojson?level=district", None, PUBLIC)],
    ("GET", "/v1/cells/{code}"): [("mine", lambda c: f"/v1/cells/{c['mine'][0]}", None, ALL)],
    ("GET", "/v1/cells"): [("bbox", lambda c: f"/v1/cells?bbox={_bbox(c)}", None, ALL)],
    ("GET", "/v1/divisions/{code}"): [("street", lambda c: f"/v1/divisions/{STREET}", None,
                                       ALL)],
    ("GET", "/v1/divisions"): [("districts", lambda c: "/v1/divisions?level=district", None,
                                ALL)],
    ("GET", "/v1/locate"): [("in", _locate("mine"), None, ALL),
                            ("out", _locate("theirs"), None, ALL)],
    ("POST", "/v1/cases"): [
        ("in", lambda c: "/v1/cases", _case_body("mine"),
         DESK | {"district", "street", "chief", "volunteer", "supervisor"}),
        ("out", lambda c: "/v1/cases", _case_body("theirs"),
         DESK | {"district", "street", "chief", "supervisor"})],
    ("GET", "/v1/cases"): [("list", lambda c: "/v1/cases?limit=500", None, ALL)],
    ("GET", "/v1/cases/{case_id}"): [("in", _case("in"), None, READ_IN),
                                     ("out", _case("out"), None, DESK)],
    ("GET", "/v1/cases/{case_id}/duplicates"): [
        ("in", _case("in", "/duplicates?radius_m=5000&window_hours=2000"), None, READ_IN),
        ("out", _case("out", "/duplicates?radius_m=5000"), None, DESK)],
    ("POST", "/v1/cases/{case_id}/followups"): [
        ("in", _case("in", "/followups"),
         lambda c: {"responded": True, "resolved": True, "satisfaction": "满意"},
         DESK | {"district"}),
        ("out", _case("out", "/followups"),
         lambda c: {"responded": True, "resolved": True, "satisfaction": "满意"}, DESK)],
    **{("POST", f"/v1/cases/{{case_id}}/{step}"): [
        ("in", _case("in", f"/{step}"), lambda c: {}, DESK | {"district"}),
        ("out", _case("out", f"/{step}"), lambda c: {}, DESK)]
       for step in ("file", "reject", "dispatch")},
    ("POST", "/v1/cases/{case_id}/handle"): [
        ("in", _case("in", "/handle"), lambda c: {}, {"admin", "jd", "street"}),
        ("out", _case("out", "/handle"), lambda c: {}, {"admin"})],
    **{("POST", f"/v1/cases/{{case_id}}/{step}"): [
        ("in", _case("in", f"/{step}"), lambda c: {}, DESK | {"district", "supervisor"}),
        ("out", _case("out", f"/{step}"), lambda c: {}, DESK)]
       for step in ("close", "rework")},
    ("GET", "/v1/metrics/cases"): [("street", lambda c: "/v1/metrics/cases?by=street", None,
                                    ALL - {"volunteer"})],
    ("GET", "/v1/event-classes"): [("all", lambda c: "/v1/event-classes", None, ALL)],
    ("GET", "/v1/departments"): [("all", lambda c: "/v1/departments", None, ALL)],
    ("GET", "/v1/chiefs"): [("list", lambda c: "/v1/chiefs", None, ALL - {"cgzf", "jd"})],
    ("GET", "/v1/chiefs/me/view"): [("me", lambda c: "/v1/chiefs/me/view", None,
                                     {"chief", "volunteer"})],
    ("GET", "/v1/chiefs/{chief_id}/view"): [
        ("in", lambda c: "/v1/chiefs/c002/view", None,
         DESK | {"district", "street", "chief", "volunteer"}),
        ("out", lambda c: "/v1/chiefs/c003/view", None, DESK),
        ("past", lambda c: "/v1/chiefs/c002/view?on=2025-01-01", None,
         DESK | {"district", "chief"})],
    ("GET", "/v1/chiefs/{chief_id}/view.geojson"): [
        ("in", lambda c: "/v1/chiefs/c002/view.geojson", None,
         DESK | {"district", "street", "chief", "volunteer"}),
        ("out", lambda c: "/v1/chiefs/c003/view.geojson", None, DESK)],
    ("POST", "/v1/chiefs/{chief_id}/assignments"): [
        ("any", lambda c: "/v1/chiefs/c002/assignments",
         lambda c: {"alley": "不存在的胡同", "valid_from": "2026-03-01"}, {"admin"})],
    ("POST", "/v1/tokens"): [
        ("any", lambda c: "/v1/tokens", lambda c: {"role": "supervisor", "name": "新人"},
         {"admin"})],
    ("POST", "/v1/disputes/screen"): [("screen", lambda c: "/v1/disputes/screen", _screen,
                                       ALL - {"volunteer"})],
    ("POST", "/v1/disputes"): [("open", lambda c: "/v1/disputes", _opening,
                                DESK | {"district", "street", "chief", "supervisor"})],
    ("POST", "/v1/disputes/from-case/{case_id}"): [
        ("in", lambda c: f"/v1/disputes/from-case/{c['in']}", lambda c: {},
         DESK | {"district", "street", "chief"}),
        ("out", lambda c: f"/v1/disputes/from-case/{c['out']}", lambda c: {}, DESK)],
    ("GET", "/v1/disputes/tasks"): [("list", lambda c: "/v1/disputes/tasks", None,
                                     ALL - {"volunteer"})],
    ("GET", "/v1/disputes/overrides"): [("list", lambda c: "/v1/disputes/overrides", None,
                                         ALL - {"volunteer"})],
    ("POST", "/v1/disputes/overrides"): [
        ("new", lambda c: "/v1/disputes/overrides",
         lambda c: {**{k: v for k, v in _screen(c).items() if k != "accuracy_m"}, "id": "m-1",
                    "name": "矩阵协议", "assigned_code": XC,
                    "valid_from": "2030-01-01", "agreed_by": [XC, FT]}, {"admin"})],
    ("GET", "/v1/disputes/border"): [("line", lambda c: f"/v1/disputes/border?codes={XC},{FT}",
                                      None, ALL - {"volunteer"})],
    ("GET", "/v1/disputes/tasks/{task_id}"): [
        ("task", _task(), None, DESK | {"district", "street", "chief"})],
    ("GET", "/v1/disputes/tasks/{task_id}/border"): [
        ("task", _task("/border"), None, DESK | {"district", "street", "chief"})],
    ("POST", "/v1/disputes/tasks/{task_id}/check-in"): [
        ("xc", _task("/check-in"), lambda c: _AS_XC, _ACT_ROLES)],
    ("POST", "/v1/disputes/tasks/{task_id}/departments"): [
        ("xc", _task("/departments"), lambda c: {**_AS_XC, "department_code": "CGZF"},
         _ACT_ROLES)],
    ("POST", "/v1/disputes/tasks/{task_id}/departments/{department_code}/report"): [
        ("cgzf", _task("/departments/CGZF/report"), None, _ACT_ROLES | {"cgzf"})],
    ("POST", "/v1/disputes/tasks/{task_id}/meetings"): [
        ("xc", _task("/meetings"), lambda c: {**_AS_XC, "meeting_at": "2026-03-03T09:00:00+08:00",
                                              "place": "西城", "attendees": [XC, FT]},
         _ACT_ROLES)],
    ("POST", "/v1/disputes/tasks/{task_id}/agreement"): [
        ("xc", _task("/agreement"),
         lambda c: {**_AS_XC, "division_of_labour": {XC: "a", FT: "b"},
                    "deadline": "2026-05-31T18:00:00+08:00"}, _ACT_ROLES)],
    ("POST", "/v1/disputes/tasks/{task_id}/reports"): [
        ("xc", _task("/reports"), lambda c: {**_AS_XC, "text": "进展"}, _ACT_ROLES)],
    ("POST", "/v1/disputes/tasks/{task_id}/close"): [
        ("xc", _task("/close"), lambda c: {**_AS_XC, "note": "办结"}, _ACT_ROLES)],
    ("GET", "/open311/v2/discovery.{fmt}"): [
        ("json", lambda c: "/open311/v2/discovery.json", None, PUBLIC)],
    ("GET", "/open311/v2/services.{fmt}"): [
        ("xml", lambda c: "/open311/v2/services.xml", None, PUBLIC)],
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): [
        ("json", lambda c: "/open311/v2/services/0506.json", None, PUBLIC)],
    ("POST", "/open311/v2/requests.{fmt}"): [
        ("in", lambda c: "/open311/v2/requests.json", _o311_body("mine"),
         DESK | {"district", "street", "chief", "volunteer", "supervisor"}),
        ("out", lambda c: "/open311/v2/requests.json", _o311_body("theirs"),
         DESK | {"district", "street", "chief", "supervisor"})],
    ("GET", "/open311/v2/requests.{fmt}"): [
        ("json", lambda c: "/open311/v2/requests.json?page_size=500", None, ALL),
        ("xml", lambda c: "/open311/v2/requests.xml?page_size=500", None, ALL)],
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): [
        ("in", lambda c: f"/open311/v2/requests/{c['in']}.json", None, READ_IN),
        ("out", lambda c: f"/open311/v2/requests/{c['out']}.xml", None, DESK)],
    ("GET", "/open311/v2/tokens/{token}.{fmt}"): [
        ("unknown", lambda c: "/open311/v2/tokens/nobody-posted-this.json", None, ALL)],
    ("GET", "/v1/alerts"): [("list", lambda c: "/v1/alerts?limit=1000", None, ALL)],
    ("GET", "/v1/alerts/map"): [("map", lambda c: "/v1/alerts/map", None, ALL)],
}

#: What no answer to a role may contain: markers of objects outside its scope.
FORBIDDEN: dict[str, set[str]] = {
    "admin": set(), "dispatcher": set(),
    "district": {OUT_MARK, OTHER_CHIEF_NAME, ALERT_MARK},
    "cgzf": {IN_MARK, OUT_MARK, TASK_MARK},
    "jd": {OUT_MARK, TASK_MARK, OTHER_CHIEF_NAME, ALERT_MARK},
    "street": {OUT_MARK, OTHER_CHIEF_NAME, ALERT_MARK},
    "chief": {OUT_MARK, OTHER_CHIEF_NAME, ALERT_MARK},
    "volunteer": {OUT_MARK, TASK_MARK, OTHER_CHIEF_NAME, ALERT_MARK},
    "supervisor": {OUT_MARK, TASK_MARK, ALERT_MARK},
}


def _schema_routes(client) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in client.app.openapi()["paths"].items() for m in ops}


def test_every_route_has_a_row(world):
    routes = _schema_routes(world)
    assert routes - set(ROWS) == set(), "routes without a row in the access matrix"
    assert set(ROWS) - routes == set(), "rows for routes that no longer exist"


def _cases():
    for (method, path), rows in ROWS.items():
        for label, url, body, allowed in rows:
            yield pytest.param(method, url, body, allowed, id=f"{method} {path} [{label}]")


@pytest.mark.parametrize(("method", "url", "body", "allowed"), list(_cases()))
def test_matrix(world, method, url, body, allowed):
    ctx = world.ctx
    target = url(ctx)
    payload = body(ctx) if body else None
    open311 = target.startswith("/open311/")  # the spec: 403 for a missing key, its shape
    if allowed != PUBLIC:
        anon = world.request(method, target, json=payload)
        assert anon.status_code == (403 if open311 else 401), (target, anon.text)
    for role in ROLES:
        r = world.request(method, target, json=payload, headers=ctx["h"](role))
        may = allowed == PUBLIC or role in allowed
        if may:
            assert r.status_code not in (401, 403), (role, target, r.text)
            assert r.status_code < 500, (role, target, r.text)
        else:
            assert r.status_code == 403, (role, target, r.status_code, r.text[:300])
            kind = "application/problem+json"
            if open311:
                kind = "text/xml" if target.split("?")[0].endswith(".xml") else "application/json"
            assert r.headers["content-type"].startswith(kind), r.headers["content-type"]
        leaked = [m for m in FORBIDDEN[role] if m in r.text]
        assert not leaked, (role, target, leaked)


# ----------------------------------------------------------------------- the leaks, one by one

def test_duplicates_with_a_wide_radius_list_only_the_callers_cases(world):
    """Before: radius 5 km returned the ids of cases in other chiefs' cells."""
    ctx, h = world.ctx, world.ctx["h"]
    far = world.post("/v1/cases", headers=h("dispatcher"), json=_case_body("theirs")(ctx))
    near = world.post("/v1/cases", headers=h("chief"), json=_case_body("mine")(ctx))
    assert far.status_code == near.status_code == 201
    far, near = far.json()["id"], near.json()["id"]
    url = f"/v1/cases/{near}/duplicates?radius_m=5000&window_hours=2000"
    everyone = world.get(url, headers=h("admin")).json()
    assert far in everyone  # the same class, open, within 5 km: a duplicate candidate
    mine = world.get(url, headers=h("chief")).json()
    assert far not in mine and set(mine) <= {c["id"] for c in world.get(
        "/v1/cases?limit=500", headers=h("chief")).json()}


def test_alerts_only_in_the_callers_cells(world):
    """Before: GET /v1/alerts gave the whole city's alerts to any token."""
    h = world.ctx["h"]
    every = world.get("/v1/alerts?limit=1000", headers=h("admin")).json()
    assert any(a["cell_codes"] == [world.ctx["theirs"][0]] for a in every)
    mine = set(world.ctx["mine"])
    for role in ("chief", "volunteer"):
        got = world.get("/v1/alerts?limit=1000", headers=h(role)).json()
        assert all(mine & set(a["cell_codes"]) for a in got)
        assert len(got) == sum(bool(mine & set(a["cell_codes"])) for a in every)
    street = world.get("/v1/alerts?limit=1000", headers=h("street")).json()
    assert all(any(c.startswith(STREET) for c in a["cell_codes"]) for a in street)
    assert world.get("/v1/alerts?limit=1000", headers=h("supervisor")).json() == []


def test_locate_hides_owners_and_chiefs_outside_the_callers_cells(world):
    """Before: any token got every nearby component's owner and other chiefs' names."""
    ctx, h = world.ctx, world.ctx["h"]
    out = _locate("theirs")(ctx)
    full = world.get(out, headers=h("admin")).json()
    assert full["nearest_components"] and OTHER_CHIEF_NAME in {c["name"] for c in full["chiefs"]}
    for role in ("chief", "volunteer", "street", "jd"):
        got = world.get(out, headers=h(role)).json()
        assert got["cell"] == full["cell"]  # where it is: the grid is public
        assert got["nearest_components"] == [] and got["chiefs"] == []
    inside = world.get(_locate("mine")(ctx), headers=h("chief")).json()
    assert inside["nearest_components"] and inside["chiefs"]
    code = full["nearest_components"][0]["code"]
    r = world.get(f"/v1/locate?code={code}", headers=h("chief"))
    owner = full["nearest_components"][0]["owner"]
    assert r.status_code == 403 and owner not in r.text


def test_a_jd_token_sees_only_its_streets_cases(world):
    """Before: a JD token saw every JD case of the city, and JD had no street at all."""
    h = world.ctx["h"]
    ids = {c["id"] for c in world.get("/v1/cases?limit=500", headers=h("jd")).json()}
    assert world.ctx["in"] in ids and world.ctx["out"] not in ids
    with pytest.raises(Exception, match="JD is the territorial street office"):
        gapp.issue_token(world.app.state.store, role="department", name="x", subject="JD")


def test_a_supervisor_who_joined_a_task_reads_it(world):
    """Before: joining answered 200 (recorded in the history), then reading it 403."""
    h = world.ctx["h"]
    body = _opening(world.ctx)
    p0, p1, u, n = world.ctx["frame"]
    body["geometry"] = mapping(rect(p0 + 0.6 * (p1 - p0), u, n, along=20, into_xc=9,
                                    into_ft=11))
    opened = world.post("/v1/disputes", headers=h("admin"), json=body)
    assert opened.status_code == 201
    joined = world.post("/v1/disputes", headers=h("supervisor"), json=body)
    assert joined.status_code == 200 and joined.json()["opened"] is False
    task_id = joined.json()["task"]["id"]
    r = world.get(f"/v1/disputes/tasks/{task_id}", headers=h("supervisor"))
    assert r.status_code == 200 and r.json()["history"][-1]["actor"] == "王监督员"


def test_a_volunteer_reports_only_in_its_chiefs_alleys(world):
    ctx, h = world.ctx, world.ctx["h"]
    ok = world.post("/v1/cases", headers=h("volunteer"), json=_case_body("mine")(ctx))
    assert ok.status_code == 201
    case = world.get(f"/v1/cases/{ok.json()['id']}", headers=h("volunteer")).json()
    assert case["reporter"] == "小巷管家老李" and case["cell_code"] in ctx["mine"]
    before = len(world.get("/v1/cases?limit=500", headers=h("admin")).json())
    no = world.post("/v1/cases", headers=h("volunteer"), json=_case_body("theirs")(ctx))
    assert no.status_code == 403 and "小巷管家" in no.json()["detail"]
    assert len(world.get("/v1/cases?limit=500", headers=h("admin")).json()) == before
    view = world.get("/v1/chiefs/me/view", headers=h("volunteer")).json()
    assert view["chief"]["id"] == "c002" and view["cells"] == ctx["mine"]
    r = world.get("/v1/chiefs/c002/view?on=2025-01-01", headers=h("volunteer"))
    assert r.status_code == 403  # today only


def test_lists_hold_only_what_the_caller_may_see(world):
    ctx, h = world.ctx, world.ctx["h"]
    listed = {role: {c["id"] for c in world.get("/v1/cases?limit=500", headers=h(role)).json()}
              for role in ROLES}
    assert ctx["in"] in listed["admin"] and ctx["out"] in listed["admin"]
    for role in ("district", "street", "chief", "volunteer", "jd"):
        assert ctx["in"] in listed[role] and ctx["out"] not in listed[role], role
    assert listed["cgzf"] == set() or ctx["in"] not in listed["cgzf"]
    assert ctx["in"] in listed["supervisor"] and ctx["out"] not in listed["supervisor"]
    chiefs = {role: {c["id"] for c in world.get("/v1/chiefs", headers=h(role)).json()}
              for role in ("chief", "volunteer", "street", "district", "admin")}
    assert chiefs["chief"] == chiefs["volunteer"] == {"c002"}
    assert "c002" in chiefs["street"] and "c003" not in chiefs["street"]
    assert "c003" not in chiefs["district"] and {"c002", "c003"} <= chiefs["admin"]
