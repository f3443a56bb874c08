import numpy as np
import pytest

from gridcore import crs
from gridcore.errors import CoordinateError, CRSError

# Published WGS84 -> GCJ-02 pairs (eviltransform test fixtures): (wgs lon, lat, gcj lon, lat)
KNOWN = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


def _metres(lon1, lat1, lon2, lat2):
    from pyproj import Geod

    return Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize("wlon,wlat,glon,glat", KNOWN)
def test_known_pairs_forward_and_exact_inverse(wlon, wlat, glon, glat):
    lon, lat = crs.wgs84_to_gcj02(wlon, wlat)
    assert abs(lon - glon) < 1e-9 and abs(lat - glat) < 1e-9
    lon, lat = crs.gcj02_to_wgs84(glon, glat)
    assert _metres(lon, lat, wlon, wlat) < 0.01


@pytest.fixture(scope="module")
def china_points():
    rng = np.random.default_rng(42)
    n = 100_000
    x0, y0, x1, y1 = crs.CHINA_BOUNDS
    return rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)


@pytest.mark.parametrize(
    "forward,inverse",
    [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
        (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
    ],
)
def test_round_trip_below_one_centimetre(china_points, forward, inverse):
    lon, lat = china_points
    back_lon, back_lat = inverse(*forward(lon, lat))
    err = _metres(lon, lat, back_lon, back_lat)
    assert err.shape == lon.shape
    assert np.max(err) < 0.01


def test_shift_is_hundreds_of_metres_in_beijing():
    lon, lat = crs.wgs84_to_gcj02(116.3756, 39.911)
    assert 300 < _metres(116.3756, 39.911, lon, lat) < 800
    lon, lat = crs.wgs84_to_bd09(116.3756, 39.911)
    assert 800 < _metres(116.3756, 39.911, lon, lat) < 1500


def test_to_and_from_wgs84_are_inverse_for_every_crs():
    for c in crs.CRS:
        lon, lat = crs.wgs84_to(116.3756, 39.911, crs=c)
        back = crs.to_wgs84(lon, lat, crs=c)
        assert _metres(116.3756, 39.911, *back) < 0.01


def test_projected_round_trip_and_scale():
    lon = np.array([116.3756, 116.2])
    lat = np.array([39.911, 39.8])
    x, y = crs.wgs84_to_projected(lon, lat)
    assert 400_000 < x[0] < 600_000 and 4_000_000 < y[0] < 5_000_000
    assert abs(np.hypot(x[1] - x[0], y[1] - y[0]) - _metres(lon[0], lat[0], lon[1], lat[1])) < 5
    blon, blat = crs.projected_to_wgs84(x, y)
    assert np.max(np.abs(blon - lon)) < 1e-9 and np.max(np.abs(blat - lat)) < 1e-9


@pytest.mark.parametrize(
    "lon,lat,match",
    [
        (float("nan"), 39.9, "lon is NaN: coordinates must be finite numbers"),
        (116.4, float("inf"), "lat is inf: coordinates must be finite numbers"),
        (39.911, 116.3756, r"lat 116.3756 is outside -90..90; lon and lat look swapped "
                           r"\(116.3756, 39.911 would be in China\)"),
        (200.0, 39.9, r"lon 200 is outside -180..180"),
        (116.4, -95.0, r"lat -95 is outside -90..90"),
        (2.35, 48.85, "outside China"),
    ],
)
def test_bad_coordinates_raise_clear_errors(lon, lat, match):
    with pytest.raises(CoordinateError, match=match):
        crs.to_wgs84([lon], [lat], crs="wgs84")
    with pytest.raises(CoordinateError, match=match):
        crs.wgs84_to_gcj02(lon, lat)


def test_one_bad_point_in_an_array_is_named():
    with pytest.raises(CoordinateError, match="position 2"):
        crs.gcj02_to_wgs84([116.4, 116.5, np.nan], [39.9, 39.9, 39.9])


def test_crs_must_be_explicit_and_known():
    with pytest.raises(CRSError, match="explicitly"):
        crs.to_wgs84(116.4, 39.9, crs=None)
    with pytest.raises(CRSError, match="wgs84, gcj02, bd09"):
        crs.to_wgs84(116.4, 39.9, crs="epsg:3857")
    assert crs.CRS.parse("GCJ-02") is crs.CRS.GCJ02
    assert crs.CRS.parse("EPSG:4326") is crs.CRS.WGS84


def test_transform_geometry_moves_every_vertex_exactly():
    import shapely

    poly = shapely.box(116.37, 39.90, 116.38, 39.91)
    gcj = crs.transform_geometry(poly, src="wgs84", dst="gcj02")
    back = crs.transform_geometry(gcj, src="gcj02", dst="wgs84")
    assert not gcj.equals(poly)
    assert np.max(np.abs(shapely.get_coordinates(back) - shapely.get_coordinates(poly))) < 1e-10


def test_inverse_of_a_vertex_does_not_depend_on_its_array():
    few = crs.gcj02_to_wgs84([116.384047, 116.5], [39.913345, 39.9])
    among = crs.gcj02_to_wgs84([116.384047, 87.6, 121.5], [39.913345, 43.8, 31.2])
    assert few[0][0] == among[0][0] and few[1][0] == among[1][0]
    # one point takes the scalar path: same answer to well below a micrometre
    alone = crs.gcj02_to_wgs84(116.384047, 39.913345)
    assert abs(alone[0] - among[0][0]) < 1e-12 and abs(alone[1] - among[1][0]) < 1e-12


def test_shared_district_border_stays_shared_after_conversion(city):
    d = city.divisions.districts.set_index("code").geometry
    xicheng = set(map(tuple, shapely_coords(d["110102"])))
    fengtai = set(map(tuple, shapely_coords(d["110106"])))
    assert len(xicheng & fengtai) > 50  # the converted vertices of the line are identical


def shapely_coords(geom):
    import shapely

    return shapely.get_coordinates(geom)


@pytest.mark.parametrize(("lon", "lat", "words"), [
    (39.9, 116.4, "lat 116.4 is outside -90..90; lon and lat look swapped "
                  "(116.4, 39.9 would be in the city)"),
    (40.0, 80.0, "lon 40, lat 80 lies outside China; lon and lat look swapped "
                 "(80, 40 would be in China)"),  # swapped, in China but not in the city
    (float("-inf"), float("nan"), "lon is -inf and lat is NaN: coordinates must be finite"),
    (200.0, 100.0, "lon 200 is outside -180..180; lat 100 is outside -90..90"),
    (2.35, 48.85, "lon 2.35, lat 48.85 lies outside China (lon 73.66..135.05"),
    (449_000.0, 4_414_000.0, "lon 449000 is outside -180..180; lat 4414000 is outside -90..90; "
                             "these look like projected metres"),
])
def test_describe_lonlat_says_what_is_wrong(lon, lat, words):
    beijing = (115.4, 39.4, 117.5, 41.1)
    assert crs.describe_lonlat(lon, lat, city_bounds=beijing).startswith(words)
    assert crs.describe_lonlat(116.4, 39.9, city_bounds=beijing) is None
    assert crs.describe_lonlat(2.35, 48.85, region="world") is None
