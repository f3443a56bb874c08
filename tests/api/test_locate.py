"""GET /v1/locate: a position (explicit CRS) or a component code, answered in full."""

import pytest

from gridcore.crs import wgs84_to


def test_locate_tangzi_hutong(client, make_token, city, store_copy):
    from gridcore.grid import point_to_cell

    auth = make_token("supervisor")
    lon, lat = 116.3756, 39.911
    r = client.get("/v1/locate", params={"lon": lon, "lat": lat, "crs": "wgs84"}, headers=auth)
    assert r.status_code == 200, r.text
    loc = r.json()
    want = city.cells.iloc[point_to_cell(city.cells, [lon], [lat])[0]]
    assert loc["cell"]["code"] == want.code
    assert loc["street"] == {"code": "110102001", "name": "西长安街街道"}
    assert loc["district"] == {"code": "110102", "name": "西城区"}
    near = loc["nearest_components"]
    assert len(near) == 5
    assert [c["distance_m"] for c in near] == sorted(c["distance_m"] for c in near)
    assert all(c["dept_name"] and c["owner"] and c["class_name"] for c in near)
    # the chief of 堂子胡同 today (handed from c001 to c002 on 2024-01-01)
    assert any(c["alley"] == "堂子胡同" and c["id"] == "c002" for c in loc["chiefs"])

    # the same place given in GCJ-02 and BD-09 lands in the same cell
    for crs in ("gcj02", "bd09"):
        x, y = wgs84_to(lon, lat, crs=crs)
        r = client.get("/v1/locate", params={"lon": float(x), "lat": float(y), "crs": crs},
                       headers=auth)
        assert r.json()["cell"]["code"] == want.code

    # by component code: the nearest component locates to its own cell
    code = near[0]["code"]
    r = client.get("/v1/locate", params={"code": code}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["component"]["code"] == code
    stored = store_copy.get_component(code)
    assert r.json()["cell"]["code"] == stored.cell_code


@pytest.mark.parametrize(
    "params,status,words",
    [
        ({"lon": 117.5, "lat": 39.9, "crs": "wgs84"}, 404, "outside"),
        ({"lon": 39.911, "lat": 116.3756, "crs": "wgs84"}, 422,
         "lat 116.3756 is outside -90..90; lon and lat look swapped (116.3756, 39.911 would "
         "be in the city)"),
        ({"lon": 39.911, "lat": 116.3756, "crs": "gcj02"}, 422, "look swapped"),
        ({"lon": "nan", "lat": 39.9, "crs": "wgs84"}, 422,
         "lon is NaN: coordinates must be finite numbers"),
        ({"lon": "-Infinity", "lat": 39.9, "crs": "bd09"}, 422,
         "lon is -inf: coordinates must be finite numbers"),
        ({"lon": 116.37, "lat": "inf", "crs": "wgs84"}, 422,
         "lat is inf: coordinates must be finite numbers"),
        ({"lon": 2.35, "lat": 48.85, "crs": "wgs84"}, 422, "lies outside China"),
        ({"lat": 116.3756, "crs": "wgs84"}, 422, "lat 116.3756 is outside -90..90"),
        ({"lon": 116.37, "lat": 39.91}, 422, "crs"),
        ({"lon": 116.37, "lat": 39.91, "crs": "epsg3857"}, 422, ""),
        ({"code": "1101020101999999"}, 404, ""),
        ({"code": "12345"}, 422, ""),
        ({"code": "9901010199999999"}, 422, ""),
    ],
)
def test_locate_bad_input(client, make_token, params, status, words):
    r = client.get("/v1/locate", params=params, headers=make_token("supervisor"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]


def test_routes_that_query_the_locator_stay_on_the_event_loop():
    # The locator's rtree (libspatialindex through ctypes) crashed a worker when several
    # pool threads queried it at once (bench/bench_service.py, 8 keep-alive connections):
    # every route that takes the locator must be a coroutine, run on the one loop thread.
    import importlib
    import inspect
    import pkgutil
    import typing

    import api.routes
    from api.deps import LocatorDep

    users, sync = [], []
    for info in pkgutil.iter_modules(api.routes.__path__):
        module = importlib.import_module(f"api.routes.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            hints = typing.get_type_hints(fn, include_extras=True)
            if any(h == LocatorDep for h in hints.values()):
                users.append(f"{info.name}.{name}")
                if not inspect.iscoroutinefunction(fn):
                    sync.append(f"{info.name}.{name}")
    assert users, "no route takes the locator"
    assert sync == []
