"""Cells and divisions over HTTP, and the public grid layer."""

import math

import pytest
import shapely


def test_cell_by_code_is_a_wgs84_feature(client, make_token, city):
    auth = make_token("supervisor")
    code = city.cells.code.iloc[123]
    r = client.get(f"/v1/cells/{code}", headers=auth)
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["properties"]["code"] == code
    geom = shapely.geometry.shape(f["geometry"])
    assert geom.equals_exact(city.cells.geometry.iloc[123], 1e-9)
    assert f["properties"]["district_name"] in {"东城区", "西城区", "丰台区"}


def test_cells_and_divisions_in_a_bbox(client, make_token, city):
    auth = make_token("supervisor")
    bbox = "116.370,39.905,116.380,39.915"
    r = client.get("/v1/cells", params={"bbox": bbox}, headers=auth)
    assert r.status_code == 200
    codes = {f["properties"]["code"] for f in r.json()["features"]}
    expected = set(city.cells.code[city.cells.intersects(shapely.box(116.37, 39.905, 116.38,
                                                                     39.915))])
    assert codes == expected and len(codes) > 50
    r = client.get("/v1/divisions", params={"level": "street", "bbox": bbox}, headers=auth)
    assert "110102001" in {f["properties"]["code"] for f in r.json()["features"]}
    r = client.get("/v1/divisions/110102020", headers=auth)
    assert r.json()["properties"]["name"] == "广安门外街道"
    assert r.json()["properties"]["synthetic"] is True


def test_no_token_is_401_and_the_grid_layer_is_public(client):
    r = client.get("/v1/cells/110102001019033")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/v1/cells/110102001019033", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = client.get("/grid/cells.geojson", params={"bbox": "116.370,39.905,116.380,39.915"})
    assert r.status_code == 200 and r.json()["features"]
    assert client.get("/").status_code == 200
    assert client.get("/health").json()["status"] == "ok"


def test_gaode_layer_is_shifted_to_gcj02(client, city):
    from gridcore.crs import wgs84_to_gcj02

    bbox = "116.370,39.905,116.380,39.915"
    osm = client.get("/grid/cells.geojson", params={"bbox": bbox}).json()
    gx0, gy0 = wgs84_to_gcj02(116.370, 39.905)
    gx1, gy1 = wgs84_to_gcj02(116.380, 39.915)
    gbbox = f"{gx0},{gy0},{gx1},{gy1}"
    gaode = client.get("/grid/cells.geojson", params={"bbox": gbbox, "basemap": "gaode"}).json()
    by_code = {f["properties"]["code"]: f for f in gaode["features"]}
    f = osm["features"][0]
    a = shapely.geometry.shape(f["geometry"]).centroid
    b = shapely.geometry.shape(by_code[f["properties"]["code"]]["geometry"]).centroid
    ex, ey = wgs84_to_gcj02(a.x, a.y)
    assert math.hypot(b.x - ex, b.y - ey) < 1e-6  # shifted exactly, ~500 m off WGS84
    assert math.hypot(b.x - a.x, b.y - a.y) > 0.004


@pytest.mark.parametrize(
    "url,status",
    [
        ("/v1/cells/123", 422),
        ("/v1/cells/110102001999999", 404),
        ("/v1/cells/11010200101903x", 422),
        ("/v1/divisions/999999", 404),
        ("/v1/divisions?level=province", 422),
        ("/v1/cells?bbox=1,2,3", 422),
        ("/v1/cells?bbox=a,b,c,d", 422),
        ("/v1/cells?bbox=39.905,116.37,39.915,116.38", 422),
        ("/v1/cells?bbox=116.38,39.915,116.37,39.905", 422),
        ("/v1/cells?bbox=nan,39.9,116.4,40.0", 422),
        ("/v1/cells?bbox=116.0,39.6,116.6,40.1", 422),  # too many cells
        ("/grid/cells.geojson?bbox=116.37,39.905,116.38,39.915&basemap=google", 422),
        ("/v1/nothing-here", 404),
    ],
)
def test_bad_requests_are_problems(client, make_token, url, status):
    r = client.get(url, headers=make_token("supervisor"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["detail"]


def test_a_swapped_bbox_says_so(client, make_token):
    r = client.get("/v1/cells?bbox=116.37,39.905,39.915,116.38",
                   headers=make_token("supervisor"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == ("bbox max_lon,max_lat: lat 116.38 is outside -90..90; lon "
                                  "and lat look swapped (116.38, 39.915 would be in China)")


def test_oversized_body_is_413(client, make_token):
    r = client.post("/v1/cases", content=b"x" * 2_000_000,
                    headers={**make_token("supervisor"), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
