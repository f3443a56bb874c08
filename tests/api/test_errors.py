"""The error table: input errors are 4xx, anything else is a logged 500 problem."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from api.deps import get_city
from api.errors import DEFAULT_STATUS_CODES, PROBLEM_JSON, status_for
from gridcore import errors as e


@pytest.fixture
def app(store_copy):
    from api.main import create_app
    from api.settings import Settings

    return create_app(Settings(db=store_copy.url, warm_up=False))


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyError("k"), TypeError("t"),
                                 e.GridcoreError("not meant for input")])
def test_a_bare_builtin_or_an_unlisted_gridcore_error_is_internal(exc):
    assert status_for(exc) == (500, "Internal error")


def test_only_gridcore_errors_are_in_the_table():
    assert all(issubclass(cls, e.GridcoreError) for cls, _, _ in DEFAULT_STATUS_CODES)
    assert status_for(e.InvalidValueError("x")) == (422, "Invalid value")


@pytest.mark.parametrize("raised", [ValueError("division by a bug"), KeyError("column"),
                                    TypeError("NoneType is not subscriptable")])
def test_an_internal_error_in_a_route_is_a_logged_500_problem(app, caplog, raised):
    def broken_city():
        raise raised

    app.dependency_overrides[get_city] = broken_city
    with caplog.at_level(logging.ERROR, logger="gridcore.api"), \
            TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/health")
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == 500 and body["title"] == "Internal error"
    assert str(raised) not in body["detail"]  # internals stay in the log
    records = [rec for rec in caplog.records if rec.name == "gridcore.api"]
    assert len(records) == 1, [rec.getMessage() for rec in caplog.records]
    assert records[0].exc_info and records[0].exc_info[1] is raised
    assert "broken_city" in caplog.text  # the traceback, down to the raising frame


def test_an_internal_error_in_a_route_function_is_a_logged_500(app, make_token, caplog,
                                                                monkeypatch):
    import api.routes.alerts as alerts

    def broken(*args, **kwargs):
        raise ValueError("a bug, not the client's mistake")

    monkeypatch.setattr(alerts, "validate_cell_code", broken)
    headers = make_token("supervisor")
    with caplog.at_level(logging.ERROR, logger="gridcore.api"), \
            TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/alerts", params={"cell_code": "110102001019032"}, headers=headers)
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    [record] = [rec for rec in caplog.records if rec.name == "gridcore.api"]
    assert isinstance(record.exc_info[1], ValueError)
    assert "in broken" in caplog.text and "a bug, not the client's mistake" in caplog.text


def test_input_errors_stay_4xx_and_are_not_logged(client, make_token, caplog):
    headers = make_token("admin")
    with caplog.at_level(logging.ERROR, logger="gridcore.api"):
        bad_day = client.get("/v1/alerts", params={"start": "2018-02-30"}, headers=headers)
        blank_name = client.post("/v1/tokens", json={"role": "chief", "name": "  "},
                                 headers=headers)
        bad_code = client.get("/v1/cells/110102001019999", headers=headers)
    assert bad_day.status_code == 422, bad_day.text
    assert "2018-02-30" in bad_day.json()["detail"]
    assert blank_name.status_code == 422, blank_name.text
    assert bad_code.status_code in (404, 422)
    assert not [rec for rec in caplog.records if rec.name == "gridcore.api"]


@pytest.mark.parametrize("params", [
    {"end": "2018-04-05T20:00:00", "offset": "2874939802912048621289472"},
    {"offset": str(10**9 + 1)},
    {"offset": "-1"},
    {"limit": "1001"},
])
def test_alert_paging_is_bounded(client, make_token, params):
    r = client.get("/v1/alerts", params=params, headers=make_token("supervisor"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM_JSON


def test_the_largest_offset_is_answered(client, make_token):
    r = client.get("/v1/alerts", params={"offset": str(10**9)},
                   headers=make_token("supervisor"))
    assert r.status_code == 200 and r.json() == []


# ---- oversized bodies on a real server: the client reads the 413 --------------------

FIVE_MB = 5 * 2**20


def _read_problem(conn) -> tuple[int, str, dict]:
    import json

    r = conn.getresponse()
    return r.status, r.getheader("content-type"), json.loads(r.read())


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_a_5mb_body_gets_a_413_the_client_can_read(live_server, connection):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    try:
        # http.client sends the whole body before it reads: a server that answers and
        # closes without reading it (as uvicorn does when the client said "Connection:
        # close") resets the connection under the client's send
        conn.request("POST", "/v1/cases", body=b"x" * FIVE_MB,
                     headers={"Content-Type": "application/json", "Connection": connection})
        status, ctype, body = _read_problem(conn)
    finally:
        conn.close()
    assert status == 413
    assert ctype == PROBLEM_JSON
    assert body["status"] == 413 and "1000000 bytes" in body["detail"]


def test_an_oversized_chunked_body_gets_a_413_not_a_400(live_server):
    import http.client

    def chunks():
        for _ in range(80):  # 5 MB in 64 KiB chunks, no Content-Length
            yield b"y" * 65536

    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    try:
        conn.request("POST", "/v1/cases", body=chunks(), encode_chunked=True,
                     headers={"Content-Type": "application/json", "Connection": "close"})
        status, ctype, body = _read_problem(conn)
    finally:
        conn.close()
    assert status == 413, body
    assert ctype == PROBLEM_JSON
    assert body["title"] == "Payload too large"


def test_a_raw_socket_client_reads_the_413_before_its_body_is_sent(live_server):
    """Expect: 100-continue: the 413 comes before any of the body, none is asked for."""
    import socket

    with socket.create_connection(("127.0.0.1", live_server.port), timeout=30) as s:
        s.sendall(b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % FIVE_MB)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert PROBLEM_JSON.encode() in data.lower()


def test_a_small_body_still_reaches_the_route(live_server):
    r = httpx.post(live_server.url + "/v1/cases", json={})
    assert r.status_code == 401  # past the size check, stopped by the missing token


def test_a_day_with_no_instant_is_a_422_not_a_500(client, make_token):
    # found by the deeper fuzz: the city's midnight of 1 January 0001 has no UTC instant
    headers = make_token("admin")
    r = client.get("/v1/metrics/cases", headers=headers,
                   params={"by": "period", "since": "2000-01-01", "until": "0001-01-01"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "out of range" in r.text
    ok = client.get("/v1/metrics/cases", headers=headers,
                    params={"by": "period", "since": "2000-01-01", "until": "2030-01-01"})
    assert ok.status_code == 200


# ---- coordinates the schema's ranges refuse are said in words, on every route ---------

TANGZI = (116.3756, 39.911)
SWAPPED = "lat 116.3756 is outside -90..90; lon and lat look swapped (116.3756, 39.911 " \
          "would be in the city)"


def _coordinate_requests(lon, lat):
    """Every route taking a lon/lat pair, asked with (lon, lat) as given."""
    report = {"lon": lon, "lat": lat, "crs": "wgs84", "event_class": "0506",
              "description": "外卖电动车堵塞"}
    return [
        ("GET", "/v1/locate", {"params": {"lon": lon, "lat": lat, "crs": "wgs84"}}),
        ("GET", "/grid/cell.geojson", {"params": {"lon": lon, "lat": lat}}),
        ("POST", "/v1/cases", {"content": _json(report)}),
    ]


def _json(body) -> str:
    import json

    return json.dumps(body, allow_nan=True)  # NaN and Infinity, as Python clients send them


@pytest.mark.parametrize(("lon", "lat", "words"), [
    (TANGZI[1], TANGZI[0], SWAPPED),
    (float("nan"), TANGZI[1], "lon is NaN: coordinates must be finite numbers"),
    (TANGZI[0], float("inf"), "lat is inf: coordinates must be finite numbers"),
    (TANGZI[0], float("-inf"), "lat is -inf: coordinates must be finite numbers"),
    (200.0, TANGZI[1], "lon 200 is outside -180..180"),
], ids=["swapped", "nan", "inf", "-inf", "range"])
def test_bad_coordinates_are_said_in_words_on_every_route(client, make_token, store_copy,
                                                          lon, lat, words):
    headers = {**make_token("supervisor"), "Content-Type": "application/json"}
    before = len(store_copy.list_cases(limit=1000))
    for method, path, kw in _coordinate_requests(lon, lat):
        r = client.request(method, path, headers=headers, **kw)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        p = r.json()
        assert p["detail"] == words, (path, p["detail"])
        assert p["title"] == "Bad coordinates"
        assert "less than or equal" not in r.text and "finite number\"" not in r.text
    assert len(store_copy.list_cases(limit=1000)) == before  # nothing was stored


def test_a_coordinate_error_beside_other_errors_keeps_both(client, make_token):
    r = client.post("/v1/cases", headers=make_token("supervisor"),
                    json={"lon": 39.911, "lat": 116.3756, "crs": "utm"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert SWAPPED in detail and "body.crs" in detail and "body.event_class" in detail
    assert r.json()["title"] == "Bad coordinates"


# ---- a body that is not sent as JSON is a 415 ------------------------------------------

JSON_ROUTES = [
    ("/v1/cases", {"lon": TANGZI[0], "lat": TANGZI[1], "crs": "wgs84", "event_class": "0506",
                   "description": "外卖电动车堵塞"}),
    ("/v1/disputes/screen", {"geometry": {"type": "Point", "coordinates": list(TANGZI)},
                             "crs": "wgs84"}),
]


@pytest.mark.parametrize(("ctype", "words"), [
    ("text/plain", "sent as 'text/plain'"),
    ("application/x-www-form-urlencoded", "what curl -d and HTML forms send"),
    ("multipart/form-data; boundary=x", "sent as 'multipart/form-data'"),
    (None, "has no Content-Type"),  # not read as JSON: see api/errors.py
])
def test_a_body_not_sent_as_json_is_a_415(client, make_token, store_copy, ctype, words):
    before = len(store_copy.list_cases(limit=1000))
    for path, body in JSON_ROUTES:
        headers = make_token("admin")
        if ctype:
            headers["Content-Type"] = ctype
        r = client.post(path, content=_json(body).encode(), headers=headers)
        assert r.status_code == 415, (path, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.headers["accept-post"] == "application/json"
        assert words in r.json()["detail"] and "application/json" in r.json()["detail"]
    assert len(store_copy.list_cases(limit=1000)) == before


def test_json_by_any_json_type_is_read(client, make_token):
    path, body = JSON_ROUTES[1]
    for ctype in ("application/json", "application/json; charset=utf-8",
                  "application/geo+json"):
        r = client.post(path, content=_json(body), headers={**make_token("admin"),
                                                             "Content-Type": ctype})
        assert r.status_code == 200, (ctype, r.text)
    # an empty body with another type is no body: the route says what is missing
    r = client.post("/v1/cases", headers={**make_token("admin"), "Content-Type": "text/plain"})
    assert r.status_code == 422 and "body" in r.json()["detail"]
