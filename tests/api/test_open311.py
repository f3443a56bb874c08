"""Open311 GeoReport v2 over HTTP, on SQLite and on PostGIS copies of the sample city.

Every JSON answer is validated against JSON Schemas written here from the GeoReport v2
text (wiki.open311.org/GeoReport_v2 and Service_Discovery): the spec's field names,
types, required fields and enumerations, independent of the implementation. Every XML
answer is parsed and checked against the spec's element names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET

import pytest
from jsonschema import Draft202012Validator

from gridcore import app as gapp
from gridcore._time import FixedClock
from gridcore.cases import event_classes
from gridcore.crs import wgs84_to
from tests.api.test_cases import _client
from tests.conftest import BACKENDS, sample_copy_on

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 8, tzinfo=UTC)  # 16:00 in Beijing
H = dt.timedelta(hours=1)
TANGZI = (116.3755, 39.91105)  # 堂子胡同, 西城 (chief c002 from 2024)
NANLUO = (116.39715, 39.9370)  # 南锣鼓巷, 东城 (chief c003)
BASE = "/open311/v2"

# ------------------------------------------------------------------ the spec's schemas

_OFFSET_TIME = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                r"(Z|[+-][0-9]{2}:[0-9]{2})$")
_TIME = {"type": "string", "pattern": _OFFSET_TIME}
_OPT_TIME = {"anyOf": [_TIME, {"type": "null"}]}
_OPT_TEXT = {"type": ["string", "null"]}

DISCOVERY = {
    "type": "object",
    "required": ["changeset", "contact", "key_service", "endpoints"],
    "properties": {
        "changeset": _TIME, "contact": {"type": "string"}, "key_service": {"type": "string"},
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["specification", "url", "changeset", "type", "formats"],
            "properties": {
                "specification": {"type": "string", "pattern": "GeoReport_v2"},
                "url": {"type": "string", "pattern": "^https?://"},
                "changeset": _TIME,
                "type": {"enum": ["production", "test"]},
                "formats": {"type": "array", "minItems": 1,
                            "items": {"enum": ["text/xml", "application/json"]}},
            }}},
    },
}
SERVICES = {
    "type": "array", "minItems": 1, "items": {
        "type": "object",
        "required": ["service_code", "service_name", "description", "metadata", "type",
                     "keywords", "group"],
        "properties": {
            "service_code": {"type": "string", "minLength": 1},
            "service_name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"},
            "group": {"type": "string"},
        }}}
SERVICE_DEFINITION = {
    "type": "object", "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {"type": "array", "items": {
            "type": "object",
            "required": ["variable", "code", "datatype", "required", "datatype_description",
                         "order", "description"],
            "properties": {
                "variable": {"type": "boolean"}, "code": {"type": "string"},
                "datatype": {"enum": ["string", "number", "datetime", "text",
                                      "singlevaluelist", "multivaluelist"]},
                "required": {"type": "boolean"},
                "datatype_description": {"type": ["string", "null"]},
                "order": {"type": "integer", "minimum": 1},
                "description": {"type": "string"},
                "values": {"type": "array", "items": {
                    "type": "object", "required": ["key", "name"],
                    "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}},
            }}},
    },
}
POST_RESPONSE = {
    "type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object",
        "anyOf": [{"required": ["service_request_id"]}, {"required": ["token"]}],
        "properties": {
            "service_request_id": {"type": "string", "minLength": 1},
            "token": {"type": "string"},
            "service_notice": _OPT_TEXT,
            "account_id": _OPT_TEXT,
        }}}
REQUESTS = {
    "type": "array", "items": {
        "type": "object",
        "required": ["service_request_id", "status", "service_name", "service_code",
                     "requested_datetime", "lat", "long"],
        "properties": {
            "service_request_id": {"type": "string", "minLength": 1},
            "status": {"enum": ["open", "closed"]},
            "status_notes": _OPT_TEXT,
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": _OPT_TEXT,
            "agency_responsible": _OPT_TEXT,
            "service_notice": _OPT_TEXT,
            "requested_datetime": _TIME,
            "updated_datetime": _OPT_TIME,
            "expected_datetime": _OPT_TIME,
            "address": _OPT_TEXT,
            "address_id": _OPT_TEXT,
            "zipcode": _OPT_TEXT,
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "media_url": _OPT_TEXT,
        }}}
TOKENS = {
    "type": "array", "items": {
        "type": "object", "required": ["service_request_id", "token"],
        "properties": {"service_request_id": {"type": ["string", "null"]},
                       "token": {"type": "string"}}}}
ERRORS = {
    "type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["code", "description"],
        "additionalProperties": False,
        "properties": {"code": {"type": "integer"}, "description": {"type": "string",
                                                                    "minLength": 1}}}}

for _schema in (DISCOVERY, SERVICES, SERVICE_DEFINITION, POST_RESPONSE, REQUESTS, TOKENS,
                ERRORS):
    Draft202012Validator.check_schema(_schema)

#: The XML: root, item element, and the child elements an item must have.
XML_REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name",
                      "service_code", "description", "agency_responsible", "service_notice",
                      "requested_datetime", "updated_datetime", "expected_datetime",
                      "address", "address_id", "zipcode", "lat", "long", "media_url"]


def valid(resp, schema, status=200):
    """Assert the status, the JSON content type and the schema; return the data."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    return data


def xml(resp, root, status=200) -> ET.Element:
    """Assert the status, text/xml in UTF-8 with its declaration, and the root element."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/xml")
    assert resp.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    top = ET.fromstring(resp.content)
    assert top.tag == root
    return top


def spec_error(resp, status):
    """Assert an error in the spec's shape, JSON or XML as the path says; return its text."""
    if resp.request.url.path.endswith(".xml"):
        top = xml(resp, "errors", status)
        errs = top.findall("error")
        assert len(errs) == 1 and [c.tag for c in errs[0]] == ["code", "description"]
        assert errs[0].findtext("code") == str(status)
        return errs[0].findtext("description")
    data = valid(resp, ERRORS, status)
    assert data[0]["code"] == status
    return data[0]["description"]


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def api(store_copy, clock):
    """A client of the app on a private store copy (the case tests' client), tokens per role."""
    with _client(store_copy, clock) as client:
        client.tokens["c002"] = gapp.issue_token(store_copy, role="chief", name="街巷长二",
                                                 subject="c002")
        client.store = store_copy
        yield client


@pytest.fixture(scope="module", params=BACKENDS)
def shared_api(request, tmp_path_factory, city_db):
    """One client per backend for the tests that only read or are refused (faster)."""
    import shutil

    from gridcore.store import SQLiteStore

    path = tmp_path_factory.mktemp("open311") / "shared.db"
    shutil.copy(city_db, path)
    sqlite_copy = SQLiteStore(path)
    for store in sample_copy_on(request.param, request, sqlite_copy):
        with _client(store, FixedClock(T0)) as client:
            client.store = store
            yield client
    sqlite_copy.close()


def _key(api, who="supervisor"):
    return api.tokens[who]


def _post(api, fmt="json", *, who="supervisor", lon=TANGZI[0], lat=TANGZI[1], code="0506",
          as_json=False, headers=None, **fields):
    body = {"api_key": _key(api, who), "service_code": code, "lat": lat, "long": lon,
            "description": "外卖电动车堵塞胡同", **fields}
    body = {k: v for k, v in body.items() if v is not None}
    if as_json:
        return api.post(f"{BASE}/requests.{fmt}", json=body, headers=headers)
    return api.post(f"{BASE}/requests.{fmt}", data={k: str(v) for k, v in body.items()},
                    headers=headers)


def _report(api, **kw) -> str:
    return valid(_post(api, **kw), POST_RESPONSE, 201)[0]["service_request_id"]


def _get(api, path, who="supervisor", **params):
    return api.get(f"{BASE}/{path}", params={"api_key": _key(api, who), **params})


def _ids(resp) -> list[str]:
    return [r["service_request_id"] for r in valid(resp, REQUESTS)]


# ------------------------------------------------------------------ discovery, services


def test_discovery_in_both_formats(shared_api):
    api = shared_api
    doc = valid(api.get(f"{BASE}/discovery.json"), DISCOVERY)  # anonymous
    (endpoint,) = doc["endpoints"]
    assert endpoint["url"].endswith("/open311/v2/")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    top = xml(api.get(f"{BASE}/discovery.xml"), "discovery")
    assert [c.tag for c in top] == ["changeset", "contact", "key_service", "endpoints"]
    ep = top.find("endpoints").findall("endpoint")
    assert len(ep) == 1
    assert [c.tag for c in ep[0]] == ["specification", "url", "changeset", "type", "formats"]
    assert {f.text for f in ep[0].find("formats").findall("format")} == set(endpoint["formats"])
    assert top.findtext("changeset") == doc["changeset"]
    assert doc["changeset"].endswith("+08:00")


def test_services_are_the_event_classes_in_both_formats(shared_api):
    api = shared_api
    data = valid(api.get(f"{BASE}/services.json"), SERVICES)
    table = event_classes()
    assert [s["service_code"] for s in data] == sorted(table["code"])
    by_code = {s["service_code"]: s for s in data}
    assert by_code["0506"]["service_name"] == "非机动车乱停放"
    assert by_code["0506"]["group"] == "街面秩序"
    assert "4 小时" in by_code["0506"]["description"]  # its time limit
    top = xml(api.get(f"{BASE}/services.xml"), "services")
    items = top.findall("service")
    assert len(items) == len(data) and len(list(top)) == len(data)
    assert [c.tag for c in items[0]] == ["service_code", "service_name", "description",
                                         "metadata", "type", "keywords", "group"]
    assert items[0].findtext("metadata") == "true" and items[0].findtext("type") == "realtime"
    assert [i.findtext("service_code") for i in items] == [s["service_code"] for s in data]
    # jurisdiction_id is a district code of the city: accepted, checked
    valid(api.get(f"{BASE}/services.json", params={"jurisdiction_id": "110102"}), SERVICES)
    assert "110105" in spec_error(
        api.get(f"{BASE}/services.json", params={"jurisdiction_id": "110105"}), 404)
    spec_error(api.get(f"{BASE}/services.xml", params={"jurisdiction_id": "11010"}), 400)


def test_service_definition_in_both_formats(shared_api):
    api = shared_api
    data = valid(api.get(f"{BASE}/services/0506.json"), SERVICE_DEFINITION)
    assert data["service_code"] == "0506"
    attrs = {a["code"]: a for a in data["attributes"]}
    assert {v["key"] for v in attrs["crs"]["values"]} == {"wgs84", "gcj02", "bd09"}
    assert [a["order"] for a in data["attributes"]] == list(range(1, len(attrs) + 1))
    top = xml(api.get(f"{BASE}/services/0506.xml"), "service_definition")
    assert top.findtext("service_code") == "0506"
    attributes = top.find("attributes").findall("attribute")
    assert len(attributes) == len(attrs)
    first = attributes[0]
    for tag in ("variable", "code", "datatype", "required", "datatype_description", "order",
                "description", "values"):
        assert first.find(tag) is not None, tag
    assert [v.findtext("key") for v in first.find("values").findall("value")] == [
        v["key"] for v in attrs[first.findtext("code")]["values"]]
    assert "0506" in spec_error(api.get(f"{BASE}/services/9999.json"), 404)
    spec_error(api.get(f"{BASE}/services/9999.xml"), 404)


def test_unknown_format_and_resource_answer_in_the_spec_shape(shared_api):
    api = shared_api
    spec_error(api.get(f"{BASE}/services.yaml"), 400)
    spec_error(api.get(f"{BASE}/nothing.json"), 404)
    spec_error(api.get(f"{BASE}/nothing.xml"), 404)
    # the rest of the API keeps problem+json
    r = api.get("/v1/cases")
    assert r.status_code == 401 and r.headers["content-type"].startswith(
        "application/problem+json")


# ------------------------------------------------------------------ POST then GET


def test_post_form_then_get_by_id_and_by_filters(api, clock):
    r = _post(api, headers={"Idempotency-Key": "app-42"})
    (created,) = valid(r, POST_RESPONSE, 201)
    rid = created["service_request_id"]
    assert created["token"] == "app-42"
    assert r.headers["location"] == f"{BASE}/requests/{rid}.json"
    # the same case in the closed loop, through the native API
    native = api.get(f"/v1/cases/{rid}",
                     headers={"Authorization": f"Bearer {_key(api, 'dispatcher')}"}).json()
    assert native["state"] == "reported" and native["event_class"] == "0506"

    (req,) = valid(_get(api, f"requests/{rid}.json"), REQUESTS)
    assert req["service_request_id"] == rid and req["status"] == "open"
    assert req["service_code"] == "0506" and req["service_name"] == "非机动车乱停放"
    assert req["description"] == "外卖电动车堵塞胡同"
    assert req["requested_datetime"] == "2026-03-02T16:00:00+08:00"  # the city's offset
    assert req["expected_datetime"] == "2026-03-02T20:00:00+08:00"  # 4 h limit
    assert req["lat"] == pytest.approx(TANGZI[1]) and req["long"] == pytest.approx(TANGZI[0])
    assert "上报" in req["status_notes"] and req["case_state"] == "reported"
    assert req["grid_code"] == native["cell_code"] and req["street_code"] == "110102001"
    assert req["district_code"] == "110102" and "西城区" in req["address"]
    assert req["agencies"] == [] and req["agency_responsible"]  # the command centre

    # and against what /openapi.json says of it (the docs must not lie)
    documented = api.app.openapi()["paths"][f"{BASE}/requests/{{service_request_id}}.{{fmt}}"]
    schema = documented["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    valid(_get(api, f"requests/{rid}.json"), schema)

    top = xml(_get(api, f"requests/{rid}.xml"), "service_requests")
    (item,) = top.findall("request")
    assert [c.tag for c in item][:len(XML_REQUEST_FIELDS)] == XML_REQUEST_FIELDS
    assert item.findtext("service_request_id") == rid and item.findtext("status") == "open"
    assert item.findtext("grid_code") == req["grid_code"]

    # by filters
    other = _report(api, code="0102", lon=NANLUO[0], lat=NANLUO[1])  # 暴露垃圾, 东城
    both = _ids(_get(api, "requests.json"))
    assert both == [other, rid]  # newest first, the default 90 days hold both
    assert _ids(_get(api, "requests.json", service_code="0506")) == [rid]
    assert _ids(_get(api, "requests.json", service_code="0506,0102")) == [other, rid]
    assert _ids(_get(api, "requests.json", service_request_id=f"{rid},{other}")) == [other, rid]
    assert _ids(_get(api, "requests.json", status="open")) == [other, rid]
    assert _ids(_get(api, "requests.json", status="closed")) == []
    assert _ids(_get(api, "requests.json", start_date="2026-03-02T15:00:00+08:00",
                     end_date="2026-03-02T17:00:00+08:00")) == [other, rid]
    assert _ids(_get(api, "requests.json", start_date="2026-03-02T09:00:00Z")) == []
    assert _ids(_get(api, "requests.json", end_date="2026-03-01")) == []
    assert _ids(_get(api, "requests.json", jurisdiction_id="110101")) == [other]
    assert _ids(_get(api, "requests.json", page_size="1")) == [other]
    assert _ids(_get(api, "requests.json", page_size="1", page="2")) == [rid]
    assert _ids(_get(api, "requests.json", page_size="1", page="3")) == []
    top = xml(_get(api, "requests.xml", service_code="0506,0102"), "service_requests")
    assert [i.findtext("service_request_id") for i in top.findall("request")] == [other, rid]
    # the token finds the request again
    assert valid(_get(api, "tokens/app-42.json"), TOKENS) == [
        {"service_request_id": rid, "token": "app-42"}]
    tok = xml(_get(api, "tokens/app-42.xml"), "service_requests").find("request")
    assert [c.tag for c in tok] == ["service_request_id", "token"]
    # ... and the default window is the spec's 90 days
    clock.advance(dt.timedelta(days=91))
    assert _ids(_get(api, "requests.json")) == []
    assert _ids(_get(api, "requests.json", start_date="2026-03-01")) == [other, rid]


def test_post_json_with_gcj02_attribute_lands_where_wgs84_does(api):
    lon, lat = wgs84_to([TANGZI[0]], [TANGZI[1]], crs="gcj02")
    a = _report(api)
    b = _report(api, as_json=True, lon=float(lon[0]), lat=float(lat[0]),
                **{"attribute[crs]": "gcj02"})
    c = _report(api, as_json=True, lon=float(lon[0]), lat=float(lat[0]),
                attribute={"crs": "gcj02", "component_code": "1101020213000001"})
    got = {r["service_request_id"]: r for r in valid(
        _get(api, "requests.json", service_request_id=f"{a},{b},{c}"), REQUESTS)}
    assert got[a]["grid_code"] == got[b]["grid_code"] == got[c]["grid_code"]
    assert got[b]["long"] == pytest.approx(TANGZI[0], abs=1e-6)  # stored as WGS84
    assert got[c]["component_code"] == "1101020213000001"


def test_post_answers_xml_and_a_retry_with_its_key_is_one_case(api):
    first = xml(_post(api, "xml", headers={"Idempotency-Key": "k1"}), "service_requests", 201)
    (item,) = first.findall("request")
    rid = item.findtext("service_request_id")
    assert item.find("service_notice") is not None and item.find("account_id") is not None
    again = _post(api, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == rid
    changed = _post(api, headers={"Idempotency-Key": "k1"}, description="另一件事")
    spec_error(changed, 409)
    assert _ids(_get(api, "requests.json")) == [rid]


def test_status_follows_the_closed_loop(api, clock):
    rid = _report(api)
    store = api.store
    for action, role, extra in (("file", "dispatcher", {}),
                                ("dispatch", "dispatcher", {"department": "CGZF"})):
        clock.advance(H)
        gapp.step_case(store, int(rid), action, actor="指挥中心", role=role,
                       at=clock.now_utc(), **extra)
    (req,) = valid(_get(api, f"requests/{rid}.json"), REQUESTS)
    assert req["status"] == "open" and req["case_state"] == "dispatched"
    assert "派遣" in req["status_notes"]
    assert req["agency_responsible"] == "城管执法局"
    assert req["agencies"] == [{"code": "CGZF", "name": "城管执法局"}]
    assert req["updated_datetime"] == "2026-03-02T18:00:00+08:00"
    assert _ids(_get(api, "requests.json", updated_after="2026-03-02T17:30:00+08:00")) == [rid]
    assert _ids(_get(api, "requests.json", updated_after="2026-03-02T18:00:00+08:00")) == []
    for action, role, kw in (("handle", "department", {"actor_department": "CGZF"}),
                             ("close", "dispatcher", {"note": "现场核查已清理"})):
        clock.advance(H)
        gapp.step_case(store, int(rid), action, actor="x", role=role, at=clock.now_utc(), **kw)
    (req,) = valid(_get(api, f"requests/{rid}.json"), REQUESTS)
    assert req["status"] == "closed" and req["case_state"] == "closed"
    assert "结案" in req["status_notes"] and "现场核查已清理" in req["status_notes"]
    assert _ids(_get(api, "requests.json", status="closed")) == [rid]
    assert _ids(_get(api, "requests.json", status="open")) == []
    assert _ids(_get(api, "requests.json", status="open,closed")) == [rid]


def test_a_case_in_a_joint_task_names_every_side(api, clock):
    from gridcore.disputes import DisputeScreener
    from gridcore.sample import load_city

    store = api.store
    city = load_city(store)
    d = city.divisions.districts.set_index("code").geometry
    line = d["110102"].boundary.intersection(d["110106"].boundary)
    p = line.interpolate(0.5, normalized=True)  # on the 西城/丰台 line
    rid = _report(api, code="0101", lon=p.x, lat=p.y)
    s = DisputeScreener(city.divisions, level="district").screen_one(
        {"type": "Point", "coordinates": [p.x, p.y]}, crs="wgs84", accuracy_m=30,
        on=clock.today())
    assert s.joint
    gapp.open_joint_task(store, s, event_class="0101", description="跨区违建",
                         opened_by="指挥中心", at=clock.now_utc())
    (req,) = valid(_get(api, f"requests/{rid}.json"), REQUESTS)
    assert {a["code"] for a in req["agencies"]} >= {"110102", "110106"}
    assert {a["name"] for a in req["agencies"]} >= {"西城区", "丰台区"}
    other = _report(api, code="0506", lon=p.x, lat=p.y)  # another class: not in the task
    (req,) = valid(_get(api, f"requests/{other}.json"), REQUESTS)
    assert req["agencies"] == []
    agencies = xml(_get(api, f"requests/{rid}.xml"), "service_requests").find(
        "request").find("agencies").findall("agency")
    assert {a.findtext("code") for a in agencies} >= {"110102", "110106"}


def test_polygon_filter_keeps_the_requests_inside(api):
    a = _report(api)
    b = _report(api, lon=TANGZI[0] + 0.004)  # ~340 m east
    ring = [[TANGZI[0] - 0.001, TANGZI[1] - 0.001], [TANGZI[0] + 0.001, TANGZI[1] - 0.001],
            [TANGZI[0] + 0.001, TANGZI[1] + 0.001], [TANGZI[0] - 0.001, TANGZI[1] + 0.001],
            [TANGZI[0] - 0.001, TANGZI[1] - 0.001]]
    poly = json.dumps({"type": "Polygon", "coordinates": [ring]})
    assert _ids(_get(api, "requests.json", polygon=poly)) == [a]
    wide = json.dumps({"type": "Polygon", "coordinates": [[
        [x + (0.005 if i in (1, 2) else 0), y] for i, (x, y) in enumerate(ring)]]})
    assert _ids(_get(api, "requests.json", polygon=wide)) == [b, a]
    assert _ids(_get(api, "requests.json", polygon=wide, page_size="1", page="2")) == [a]
    for bad in ("not json", '{"type": "Point", "coordinates": [116.3, 39.9]}',
                '{"type": "Polygon", "coordinates": [[[1, 2]]]}',
                '{"type": "Polygon", "coordinates": "x"}',
                json.dumps({"type": "Polygon", "coordinates": [[[116, 39], [117, 39],
                                                                [117, 40], [116, 39]]]})):
        assert "polygon" in spec_error(_get(api, "requests.json", polygon=bad), 400)


# ------------------------------------------------------------------ access and errors


def test_who_sees_which_request(api):
    tz = _report(api)  # 堂子胡同: chief c002's cells
    nl = _report(api, lon=NANLUO[0], lat=NANLUO[1])  # 南锣鼓巷: chief c003's
    assert _ids(_get(api, "requests.json", who="c002")) == [tz]
    assert _ids(_get(api, "requests.json", who="c003")) == [nl]
    assert _ids(_get(api, "requests.json", who="c003", service_request_id=tz)) == []
    valid(_get(api, f"requests/{nl}.json", who="c003"), REQUESTS)
    assert "cell" in spec_error(_get(api, f"requests/{tz}.json", who="c003"), 403)
    spec_error(_get(api, f"requests/{tz}.xml", who="c003"), 403)
    # a department sees what was sent to it
    store = api.store
    gapp.step_case(store, int(tz), "file", actor="x", role="dispatcher")
    gapp.step_case(store, int(tz), "dispatch", actor="x", role="dispatcher", department="CGZF")
    assert _ids(_get(api, "requests.json", who="CGZF")) == [tz]
    assert _ids(_get(api, "requests.json", who="JD")) == []
    spec_error(_get(api, f"requests/{tz}.json", who="JD"), 403)
    # a department may not report
    assert "role" in spec_error(_post(api, who="CGZF"), 403)


def test_api_key_errors_are_403(api):
    rid = _report(api)
    spec_error(api.get(f"{BASE}/requests.json"), 403)
    spec_error(api.get(f"{BASE}/requests/{rid}.xml"), 403)
    spec_error(api.get(f"{BASE}/requests.json", params={"api_key": "gc_nope"}), 403)
    spec_error(api.get(f"{BASE}/tokens/x.json"), 403)
    body = {"service_code": "0506", "lat": TANGZI[1], "long": TANGZI[0]}
    assert "api_key" in spec_error(api.post(f"{BASE}/requests.json", data=body), 403)
    spec_error(api.post(f"{BASE}/requests.xml", data={**body, "api_key": "gc_nope"}), 403)
    # the api_key may also come as a Bearer header
    r = api.post(f"{BASE}/requests.json", data=body,
                 headers={"Authorization": f"Bearer {_key(api)}"})
    valid(r, POST_RESPONSE, 201)


@pytest.mark.parametrize("fields, words", [
    ({"service_code": None}, "service_code"),
    ({"service_code": "9999"}, "9999"),
    ({"lat": None, "long": None, "address_string": "西单北大街"}, "address_string"),
    ({"lat": "north"}, "lat"),
    ({"lat": "nan"}, "lat"),
    ({"lat": TANGZI[0], "lon": None, "long": TANGZI[1]}, "swapped"),
    ({"attribute[crs]": "epsg:3857"}, "crs"),
    ({"attribute[colour]": "red"}, "colour"),
    ({"attribute[component_code]": "12"}, "component_code"),
    ({"media_url": "file:///etc/passwd"}, "media_url"),
    ({"jurisdiction_id": "110101"}, "jurisdiction_id"),  # 堂子胡同 is in 西城, not 东城
    ({"colour": "red"}, "colour"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_bad_input_is_400(shared_api, fields, words, fmt):
    api = shared_api
    text = spec_error(_post(api, fmt, **fields), 400)
    assert re.search(words, text, flags=re.IGNORECASE), text


def test_post_bodies_that_cannot_be_read_are_400(shared_api):
    api = shared_api
    url = f"{BASE}/requests.json"
    spec_error(api.post(url, content=b"\xff\xfe", headers={
        "content-type": "application/x-www-form-urlencoded"}), 400)
    as_json = {"content-type": "application/json"}
    spec_error(api.post(url, content=b"{not json", headers=as_json), 400)
    spec_error(api.post(url, content=b"[1, 2]", headers=as_json), 400)
    spec_error(api.post(url, content=b"<x/>", headers={"content-type": "text/xml"}), 400)
    spec_error(api.post(url, json={"api_key": _key(api), "service_code": "0506", "lat": True,
                                   "long": 116.37}), 400)
    # in a POST an unknown jurisdiction and a position outside the city are bad input
    assert "jurisdiction" in spec_error(_post(api, jurisdiction_id="110105"), 400)
    assert "outside" in spec_error(_post(api, "xml", lat=39.5, lon=116.3), 400)


@pytest.mark.parametrize("params", [
    {"status": "pending"}, {"start_date": "yesterday"}, {"start_date": "0001-01-01"},
    {"end_date": "2026-13-01"}, {"service_code": "0506,9999"}, {"service_request_id": "1,x"},
    {"service_request_id": "0"}, {"page": "0"}, {"page_size": "100000"},
    {"start_date": "2026-03-02", "end_date": "2026-03-01"},
    {"updated_after": "2026-03-02T25:00:00+08:00"}, {"jurisdiction_id": "11"},
])
def test_get_requests_bad_filters_are_400(shared_api, params):
    api = shared_api
    spec_error(_get(api, "requests.json", **params), 400)
    spec_error(_get(api, "requests.xml", **params), 400)


def test_unknown_request_token_and_jurisdiction_are_404(api):
    rid = _report(api)
    spec_error(_get(api, "requests/999999.json"), 404)
    spec_error(_get(api, "requests/999999.xml"), 404)
    spec_error(_get(api, "requests/0.json"), 400)
    spec_error(_get(api, "tokens/never-sent.json"), 404)
    spec_error(_get(api, "tokens/never-sent.xml"), 404)
    spec_error(_get(api, f"requests/{rid}.json", jurisdiction_id="110101"), 404)
    valid(_get(api, f"requests/{rid}.json", jurisdiction_id="110102"), REQUESTS)
    spec_error(_get(api, "requests.json", jurisdiction_id="110105"), 404)
    # another caller's token is not found either
    api.post(f"{BASE}/requests.json", headers={"Idempotency-Key": "mine"},
             data={"api_key": _key(api), "service_code": "0506", "lat": str(TANGZI[1]),
                   "long": str(TANGZI[0])})
    valid(_get(api, "tokens/mine.json"), TOKENS)
    spec_error(_get(api, "tokens/mine.json", who="dispatcher"), 404)
