import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore.components import move_component, new_components, retire_component
from gridcore.crs import wgs84_to, wgs84_to_projected
from gridcore.errors import (
    CoordinateError,
    CRSError,
    DataFileError,
    InvalidCodeError,
    NotFoundError,
    OutsideCityError,
)
from gridcore.locate import Locator, locate_csv
from tests.synthetic_grid import synthetic_city


@pytest.fixture(scope="module")
def synth():
    cells, divisions = synthetic_city()
    rng = np.random.default_rng(2)
    xmin, ymin, xmax, ymax = cells.total_bounds
    n = 3000
    lon, lat = rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)
    base = Locator(cells, divisions)
    cell_codes = base.cell_locator.locate_codes(lon, lat)
    recs = gpd.GeoDataFrame(
        {"class_code": rng.choice(["0101", "0102", "0118", "0213", "0305"], n)},
        geometry=shapely.points(lon, lat), crs="EPSG:4326",
    )
    comps = new_components(recs, cell_codes=cell_codes)
    comps = retire_component(comps, comps["code"].iloc[0])
    loc = Locator(cells, divisions, components=comps, cell_locator=base.cell_locator)
    return cells, divisions, comps, loc


def test_locate_names_cell_and_divisions(synth):
    cells, divisions, comps, loc = synth
    for i in [0, 100, 400, len(cells) - 1]:
        p = shapely.point_on_surface(cells.geometry.iloc[i])
        got = loc.locate(p.x, p.y, crs="wgs84", k=0)
        row = cells.iloc[i]
        assert got.cell_code == row["code"]
        assert (got.community_code, got.street_code, got.district_code) == (
            row["community_code"], row["street_code"], row["district_code"])
        assert got.district_name == divisions.name_of(row["district_code"])
        assert got.street_name == divisions.name_of(row["street_code"])
        assert got.community_name == divisions.name_of(row["community_code"])
        assert got.nearby == ()


def test_nearby_components_equal_brute_force(synth):
    cells, divisions, comps, loc = synth
    x, y = wgs84_to_projected(comps.geometry.x.to_numpy(), comps.geometry.y.to_numpy())
    live = comps["status"].to_numpy() != "移除"
    p = shapely.point_on_surface(cells.geometry.iloc[300])
    got = loc.locate(p.x, p.y, crs="wgs84", k=6)
    qx, qy = wgs84_to_projected([p.x], [p.y])
    d = np.sqrt((x - qx[0]) ** 2 + (y - qy[0]) ** 2)
    d[~live] = np.inf
    exp = np.argsort(d, kind="stable")[:6]
    assert [c.code for c in got.nearby] == list(comps["code"].iloc[exp])
    np.testing.assert_allclose([c.distance_m for c in got.nearby], d[exp])
    first = got.nearby[0]
    row = comps.iloc[exp[0]]
    assert (first.class_code, first.dept_name) == (row["class_code"], row["dept_name"])
    assert first.class_name == loc.table.class_name(row["class_code"])
    assert got.to_dict()["nearby"][0]["code"] == first.code
    only = loc.locate(p.x, p.y, crs="wgs84", k=3, classes="0213")
    assert all(c.class_code == "0213" for c in only.nearby) and len(only.nearby) == 3


def test_retired_component_not_listed(synth):
    cells, divisions, comps, loc = synth
    retired = comps.iloc[0]
    got = loc.locate(retired.geometry.x, retired.geometry.y, crs="wgs84", k=5)
    assert retired["code"] not in [c.code for c in got.nearby]


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "WGS84"])
def test_locate_in_other_crs(synth, crs):
    cells, divisions, comps, loc = synth
    p = shapely.point_on_surface(cells.geometry.iloc[200])
    lon, lat = wgs84_to(p.x, p.y, crs=crs.lower())
    assert abs(float(lon) - p.x) > 1e-3 or crs == "WGS84"  # the shift is real
    got = loc.locate(float(lon), float(lat), crs=crs, k=1)
    assert got.cell_code == cells["code"].iloc[200]
    assert got.lon == pytest.approx(p.x, abs=1e-9)


def test_locate_errors(synth):
    cells, divisions, comps, loc = synth
    with pytest.raises(OutsideCityError, match="outside every unit grid cell.*m away"):
        loc.locate(116.20, 39.95, crs="wgs84")
    with pytest.raises(CoordinateError, match="swapped"):
        loc.locate(39.91, 116.40, crs="wgs84")
    with pytest.raises(CoordinateError, match="finite"):
        loc.locate(float("nan"), 39.9, crs="wgs84")
    with pytest.raises(CoordinateError, match="outside China"):
        loc.locate(2.35, 48.85, crs="wgs84")
    with pytest.raises(CRSError, match="wgs84, gcj02, bd09"):
        loc.locate(116.4, 39.9, crs="epsg:3857")
    with pytest.raises(CRSError, match="explicitly"):
        loc.locate(116.4, 39.9, crs=None)


def test_locate_component_by_code(synth):
    cells, divisions, comps, loc = synth
    row = comps.iloc[10]
    got = loc.locate_component(row["code"], k=4)
    assert got.component.code == row["code"]
    assert got.cell_code == row["cell_code"]
    assert row["code"] not in [c.code for c in got.nearby] and len(got.nearby) == 4
    short = row["code"][6:10] + row["code"][-4:]
    by_short = loc.locate_component(short, district=row["code"][:6])
    assert by_short.component.code == row["code"] and by_short.cell_code == row["cell_code"]


def test_locate_component_errors(synth):
    cells, divisions, comps, loc = synth
    with pytest.raises(InvalidCodeError, match="district="):
        loc.locate_component("01010001")
    with pytest.raises(NotFoundError, match="no component has code 1101010101009999"):
        loc.locate_component("01019999", district="110101")
    with pytest.raises(InvalidCodeError, match="not in the CJ/T 214"):
        loc.locate_component("1101019999000001")
    with pytest.raises(NotFoundError, match="no components"):
        Locator(cells, divisions, cell_locator=loc.cell_locator).locate_component(
            comps["code"].iloc[1])


def test_apply_changes_keeps_the_index_live(synth):
    cells, divisions, comps, base = synth
    loc = Locator(cells, divisions, components=comps, cell_locator=base.cell_locator)
    code = comps["code"].iloc[7]
    same = np.flatnonzero(cells["district_code"].to_numpy() == code[:6])[10]
    target = shapely.point_on_surface(cells.geometry.iloc[same])
    # move a component onto the target: it becomes the nearest
    moved = move_component(comps, code, target.x, target.y, cell_code=cells["code"].iloc[same])
    loc.apply_changes(moved.iloc[[7]])
    got = loc.locate(target.x, target.y, crs="wgs84", k=2)
    assert got.nearby[0].code == code and got.nearby[0].distance_m == pytest.approx(0, abs=1e-6)
    assert loc.locate_component(code).lon == target.x
    # retire it: gone from the answers
    loc.apply_changes(retire_component(moved, code).iloc[[7]])
    assert code not in [c.code for c in loc.locate(target.x, target.y, crs="wgs84", k=5).nearby]
    # register a new one right there
    new = new_components(
        gpd.GeoDataFrame({"class_code": ["0602"]}, geometry=[target], crs="EPSG:4326"),
        cell_codes=loc.cell_locator.locate_codes([target.x], [target.y]),
        existing_codes=comps["code"])
    loc.apply_changes(new)
    got = loc.locate(target.x, target.y, crs="wgs84", k=1, classes="0602")
    assert [c.code for c in got.nearby] == list(new["code"])
    assert got.nearby[0].class_name == "工地"
    # a locator built without components accepts changes too
    empty = Locator(cells, divisions, cell_locator=base.cell_locator)
    empty.apply_changes(new)
    assert empty.locate_component(new["code"].iloc[0]).component.code == new["code"].iloc[0]


def test_locate_many_matches_single(synth):
    cells, divisions, comps, loc = synth
    rng = np.random.default_rng(9)
    xmin, ymin, xmax, ymax = cells.total_bounds
    lon, lat = rng.uniform(xmin - 0.01, xmax, 300), rng.uniform(ymin, ymax + 0.01, 300)
    glon, glat = wgs84_to(lon, lat, crs="gcj02")
    many = loc.locate_many(glon, glat, crs="gcj02")
    for i in range(300):
        try:
            one = loc.locate(glon[i], glat[i], crs="gcj02", k=0)
            assert many.iloc[i].tolist() == [one.cell_code, one.community_code,
                                             one.street_code, one.district_code]
        except OutsideCityError:
            assert many.iloc[i].tolist() == ["", "", "", ""]
    assert (many["cell_code"] == "").sum() > 10


# ---- locate_csv ---------------------------------------------------------------------------


def _sjoin_csv(cells, path):
    """The same job written the plain way: pandas + geopandas.sjoin."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(df["lon"].astype(float), df["lat"].astype(float)),
        crs="EPSG:4326",
    )
    j = gpd.sjoin(pts, cells, predicate="intersects", how="inner")
    best = j.sort_values("code").groupby(level=0).first()
    for col, src in [("cell_code", "code"), ("community_code", "community_code"),
                     ("street_code", "street_code"), ("district_code", "district_code")]:
        df[col] = best[src].reindex(df.index).fillna("")
    return df


@pytest.mark.parametrize(
    "note, newline, chunksize",
    [("备注, quoted", "\n", 1234),  # quoted fields: the pandas path
     ("plain", "\n", 17),  # one record per line: the byte pass-through path
     ("plain", "\r\n", 999)],  # CRLF: the pandas path
)
def test_locate_csv_equals_sjoin(synth, tmp_path, note, newline, chunksize):
    cells, divisions, comps, loc = synth
    rng = np.random.default_rng(4)
    xmin, ymin, xmax, ymax = cells.total_bounds
    n = 5000
    lon = rng.uniform(xmin - 0.005, xmax + 0.005, n)
    lat = rng.uniform(ymin - 0.005, ymax + 0.005, n)
    co = shapely.get_coordinates(cells.geometry.values)
    lon[:500], lat[:500] = co[:500, 0], co[:500, 1]  # vertices: ties between cells
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": np.arange(n), "lon": [repr(float(v)) for v in lon],
                  "lat": [repr(float(v)) for v in lat], "note": note}).to_csv(
        src, index=False, lineterminator=newline)
    out = tmp_path / "out.csv"
    res = locate_csv(src, out, crs="wgs84", locator=loc, chunksize=chunksize, progress=False)
    assert res.rows == n and res.invalid == 0 and res.outside > 100
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    exp = _sjoin_csv(cells, src)
    pd.testing.assert_frame_equal(got, exp)
    assert res.located == (got["cell_code"] != "").sum()
    if newline == "\n":  # the same bytes pandas would write
        exp.to_csv(tmp_path / "exp.csv", index=False, lineterminator="\n")
        assert out.read_bytes() == (tmp_path / "exp.csv").read_bytes()


def test_locate_csv_plain_edge_cases(synth, tmp_path):
    cells, divisions, comps, loc = synth
    p = shapely.point_on_surface(cells.geometry.values[:3])
    rows = [f"{float(a)!r},x{i},{float(b)!r}" for i, (a, b) in
            enumerate(zip(shapely.get_x(p), shapely.get_y(p), strict=True))]
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("lon,name,lat\n" + "\n".join(rows))  # no final newline
    assert locate_csv(src, out, crs="wgs84", locator=loc, progress=False).located == 3
    lines = out.read_text().splitlines()
    assert lines[0] == "lon,name,lat,cell_code,community_code,street_code,district_code"
    assert lines[2].startswith(rows[1] + "," + cells["code"].iloc[1] + ",")
    src.write_text("lon,name,lat\n" + rows[0] + "\n" + rows[1] + ",extra\n")
    with pytest.raises(DataFileError, match="line 3 has 4 fields but the header has 3"):
        locate_csv(src, out, crs="wgs84", locator=loc, progress=False)
    src.write_text("lon,lat,lon\n116.4,39.9,1\n")
    with pytest.raises(DataFileError, match="repeats a column"):
        locate_csv(src, out, crs="wgs84", locator=loc, progress=False)


def test_locate_csv_gcj02(synth, tmp_path):
    cells, divisions, comps, loc = synth
    p = shapely.point_on_surface(cells.geometry.values[:50])
    glon, glat = wgs84_to(shapely.get_x(p), shapely.get_y(p), crs="gcj02")
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"lat": glat, "lon": glon}).to_csv(src, index=False)
    locate_csv(src, out, crs="gcj02", locator=loc, progress=True)
    got = pd.read_csv(out, dtype=str)
    assert list(got.columns) == ["lat", "lon", "cell_code", "community_code", "street_code",
                                 "district_code"]
    assert list(got["cell_code"]) == list(cells["code"].iloc[:50])


def test_locate_csv_bad_rows(synth, tmp_path):
    cells, divisions, comps, loc = synth
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("lon,lat\n116.40,39.91\n,39.9\nabc,39.9\n39.91,116.40\n116.40,39.91\n")
    with pytest.raises(CoordinateError, match="line 3: lon='', lat='39.9'.*invalid_rows"):
        locate_csv(src, out, crs="wgs84", locator=loc, progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]  # nothing half-written
    res = locate_csv(src, out, crs="wgs84", locator=loc, invalid_rows="empty", progress=False)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (res.rows, res.invalid, res.located) == (5, 3, 2)
    assert list(got["cell_code"] != "") == [True, False, False, False, True]
    assert got["lon"].tolist()[:3] == ["116.40", "", "abc"]  # passed through untouched
    src.write_text("lon,lat\n39.91,116.40\n")
    with pytest.raises(CoordinateError, match="line 2.*swapped"):
        locate_csv(src, out, crs="wgs84", locator=loc, progress=False)
    with pytest.raises(ValueError, match="error, empty"):
        locate_csv(src, out, crs="wgs84", locator=loc, invalid_rows="skip")


@pytest.mark.parametrize(
    "text, match",
    [("", "is empty"), ("\n", "no header"), ("x,y\n1,2\n", "lacks column"),
     ("lon,lat,cell_code\n116.4,39.9,1\n", "already has column")],
)
def test_locate_csv_bad_files(synth, tmp_path, text, match):
    cells, divisions, comps, loc = synth
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text)
    with pytest.raises(DataFileError, match=match):
        locate_csv(src, out, crs="wgs84", locator=loc, progress=False)
    assert not out.exists()


def test_locate_csv_paths_and_header_only(synth, tmp_path):
    cells, divisions, comps, loc = synth
    src = tmp_path / "in.csv"
    with pytest.raises(DataFileError, match="does not exist"):
        locate_csv(src, tmp_path / "o.csv", crs="wgs84", locator=loc)
    src.write_text("lon,lat\n")
    with pytest.raises(DataFileError, match="must differ"):
        locate_csv(src, src, crs="wgs84", locator=loc)
    res = locate_csv(src, tmp_path / "o.csv", crs="wgs84", locator=loc, progress=False)
    assert res.rows == 0
    assert (tmp_path / "o.csv").read_text().strip() == (
        "lon,lat,cell_code,community_code,street_code,district_code")
    with pytest.raises(CRSError):
        locate_csv(src, tmp_path / "o.csv", crs="utm", locator=loc)


# ---- on the sample city ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(city):
    from gridcore.census import synthesise_components

    census = synthesise_components(city.cells, n=300_000, seed=1)
    return census, Locator.from_city(city, components=census)


def test_sample_tangzi_hutong(city, sample):
    census, loc = sample
    # 堂子胡同, 西长安街街道, Xicheng (domain brief: 39.911 N, 116.3756 E, WGS84)
    got = loc.locate(116.3756, 39.911, crs="wgs84", k=5)
    assert (got.district_code, got.district_name) == ("110102", "西城区")
    assert got.street_name == "西长安街街道"
    assert got.cell_code.startswith(got.community_code) and got.community_code.startswith(
        got.street_code)
    assert len(got.nearby) == 5 and got.nearby[0].distance_m < 50  # dense old city
    assert all(c.code.startswith(("110101", "110102", "110106")) for c in got.nearby)
    glon, glat = wgs84_to(116.3756, 39.911, crs="gcj02")
    assert loc.locate(float(glon), float(glat), crs="gcj02").cell_code == got.cell_code


def test_sample_outside_and_by_code(city, sample):
    census, loc = sample
    with pytest.raises(OutsideCityError, match="outside every unit grid cell"):
        loc.locate(116.60, 40.08, crs="wgs84")  # Capital airport, Shunyi
    row = census[census["code"].str.slice(-6).astype(int) <= 9999].iloc[1234]
    got = loc.locate_component(row["code"][6:10] + row["code"][-4:], district=row["code"][:6])
    assert got.component.code == row["code"] and got.cell_code == row["cell_code"]
    big = census[census["code"].str.slice(-6).astype(int) > 9999]
    assert len(big) > 0  # a 2004-style 8-digit code cannot hold a dense district's classes
    from gridcore.components import component_code_to_short
    with pytest.raises(InvalidCodeError, match="no longer fits"):
        component_code_to_short(big["code"].iloc[0])


def test_sample_locate_csv_equals_sjoin(city, sample, tmp_path):
    census, loc = sample
    rng = np.random.default_rng(12345)
    xmin, ymin, xmax, ymax = city.cells.total_bounds
    n = 20_000
    lon, lat = rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)
    co = shapely.get_coordinates(city.cells.geometry.values)
    pick = rng.integers(0, len(co), 2000)
    lon[:2000], lat[:2000] = co[pick, 0], co[pick, 1]
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"lon": [repr(float(v)) for v in lon],
                  "lat": [repr(float(v)) for v in lat]}).to_csv(src, index=False)
    res = locate_csv(src, out, crs="wgs84", locator=loc, progress=False)
    assert res.rows == n and 0 < res.outside < n
    pd.testing.assert_frame_equal(pd.read_csv(out, dtype=str, keep_default_na=False),
                                  _sjoin_csv(city.cells, src))
