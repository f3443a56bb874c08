"""The components section of gridcore/store.py."""

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore import app
from gridcore.census import synthesise_components
from gridcore.components import (
    ComponentStatus,
    edit_component,
    move_component,
    retire_component,
    write_components_file,
)
from gridcore.crs import wgs84_to
from gridcore.errors import (
    ConflictError,
    CoordinateError,
    DataFileError,
    InvalidCodeError,
    NotFoundError,
)


@pytest.fixture
def store_copy(store_copy):
    """The sample store with its grid but without the sample census (these tests count)."""
    with store_copy._begin() as c:
        c.execute("DELETE FROM components")
    return store_copy


@pytest.fixture(scope="module")
def census(city):
    return synthesise_components(city.cells, n=3000, seed=11)


def _count(store):
    return store.count_components()


@pytest.fixture()
def empty_store(store_copy):
    """A private copy of the sample store with its components table emptied.

    The sample city ships a census; these tests bring their own.
    """
    with store_copy._begin() as c:
        c.execute("DELETE FROM components")
    assert _count(store_copy) == 0
    return store_copy


def test_add_load_round_trip(empty_store, census):
    assert app.add_components(empty_store, census) == len(census)
    back = empty_store.load_components()
    pd.testing.assert_frame_equal(pd.DataFrame(back.drop(columns="geometry")),
                                  pd.DataFrame(census.drop(columns="geometry")))
    assert back.geometry.geom_equals_exact(census.geometry, 0).all()
    one = empty_store.get_component(census["code"].iloc[5])
    assert one.code == census["code"].iloc[5] and one.cell_code == census["cell_code"].iloc[5]
    dong = empty_store.load_components(district="110101")
    assert len(dong) == census["code"].str.startswith("110101").sum()
    with pytest.raises(ConflictError, match="already stored"):
        app.add_components(empty_store, census.iloc[[0]])
    assert _count(empty_store) == len(census)
    with pytest.raises(NotFoundError):
        empty_store.get_component("1101010101999999")


def test_register_issues_codes_after_stored_ones(empty_store, census, city):
    app.add_components(empty_store, census)
    cell = city.cells.iloc[100]
    p = shapely.point_on_surface(cell.geometry)
    recs = gpd.GeoDataFrame({"class_code": ["0101", "0213"]},
                            geometry=[p, p], crs="EPSG:4326")
    new = app.register_components(empty_store, recs, on=dt.date(2026, 1, 5))
    assert list(new["cell_code"]) == [cell["code"]] * 2
    district = cell["district_code"]
    for code, cls in zip(new["code"], ["0101", "0213"], strict=True):
        used = census["code"][census["code"].str.startswith(district + cls)]
        top = used.str.slice(-6).astype(int).max() if len(used) else 0
        assert code == f"{district}{cls}{top + 1:06d}"
    assert _count(empty_store) == len(census) + 2
    outside = gpd.GeoDataFrame({"class_code": ["0101"]}, geometry=[shapely.Point(116.6, 40.08)],
                               crs="EPSG:4326")
    with pytest.raises(InvalidCodeError, match="outside every unit grid cell"):
        app.register_components(empty_store, outside)
    assert _count(empty_store) == len(census) + 2


def test_update_persists_edit_move_retire(empty_store, census, city):
    app.add_components(empty_store, census)
    code = census["code"].iloc[0]
    frame = empty_store.load_components()
    frame = edit_component(frame, code, owner="某物业公司", date=dt.date(2026, 2, 1))
    g = frame.geometry.iloc[0]
    frame = move_component(frame, code, g.x, g.y, cell_code=frame["cell_code"].iloc[0])
    frame = retire_component(frame, census["code"].iloc[1])
    assert app.update_components(empty_store, frame.iloc[[0, 1]]) == 2
    again = empty_store.load_components()
    assert again["owner"].iloc[0] == "某物业公司"
    assert again["status"].iloc[1] == ComponentStatus.REMOVED.value
    assert list(again["code"]) == list(census["code"])  # codes stable
    ghost = frame.iloc[[2]].copy()
    ghost["code"] = ghost["code"].str.slice(0, 10) + "999999"
    with pytest.raises(NotFoundError, match="register it first"):
        app.update_components(empty_store, ghost)


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv"])
def test_export_import_round_trip(empty_store, census, tmp_path, suffix):
    app.add_components(empty_store, census)
    path = app.export_components(empty_store, tmp_path / f"c{suffix}")
    with empty_store._begin() as c:
        c.execute("DELETE FROM components")
    assert _count(empty_store) == 0
    n = app.import_components(empty_store, path, crs="wgs84" if suffix == ".csv" else None)
    assert n == len(census)
    back = empty_store.load_components()
    pd.testing.assert_frame_equal(pd.DataFrame(back.drop(columns="geometry")),
                                  pd.DataFrame(census.drop(columns="geometry")))
    np.testing.assert_array_equal(back.geometry.x, census.geometry.x)


def test_import_new_components_from_gcj02_csv(empty_store, city, tmp_path):
    pts = shapely.point_on_surface(city.cells.geometry.values[:5])
    glon, glat = wgs84_to(shapely.get_x(pts), shapely.get_y(pts), crs="gcj02")
    src = tmp_path / "new.csv"
    pd.DataFrame({"lon": glon, "lat": glat, "class_code": "0305",
                  "owner": "环卫所"}).to_csv(src, index=False)
    assert app.import_components(empty_store, src, crs="gcj02") == 5
    got = empty_store.load_components()
    assert list(got["cell_code"]) == list(city.cells["code"].iloc[:5])
    assert (got["owner"] == "环卫所").all() and got["code"].str.slice(6, 10).eq("0305").all()


def _bad_csv(census, tmp_path, mutate):
    path = write_components_file(census, tmp_path / "bad.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    mutate(df)
    df.to_csv(path, index=False)
    return path


def _set(row, col, value):
    def mutate(d):
        d.loc[row, col] = value
    return mutate


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (_set(7, "lon", ""), CoordinateError, "finite"),
        (_set(3, ["lon", "lat"], ["39.9", "116.4"]), CoordinateError, "swapped"),
        (_set(4, "class_code", "0999"), InvalidCodeError, "class"),
        (_set(9, "cell_code", "110101999999999"), InvalidCodeError,
         "not a cell of the current grid"),
        (_set(2, "status", "坏了"), InvalidCodeError, "status"),
        (_set(5, "code", "1101060101000001x"), InvalidCodeError, "16 digits"),
    ],
)
def test_bad_csv_changes_nothing(empty_store, census, tmp_path, mutate, error, match):
    app.add_components(empty_store, census.iloc[:10])
    path = _bad_csv(census.iloc[10:30].reset_index(drop=True), tmp_path, mutate)
    with pytest.raises(error, match=match):
        app.import_components(empty_store, path, crs="wgs84")
    assert _count(empty_store) == 10


def test_wrong_crs_in_file_changes_nothing(empty_store, census, tmp_path):
    # a GCJ-02 export mislabelled as WGS84: positions land ~500 m off their cells
    sub = census.iloc[:50].copy()
    glon, glat = wgs84_to(sub.geometry.x, sub.geometry.y, crs="gcj02")
    sub = sub.set_geometry(gpd.points_from_xy(glon, glat), crs="EPSG:4326")
    path = write_components_file(sub, tmp_path / "gcj.gpkg")
    with pytest.raises(InvalidCodeError, match="outside its cell.*CRS"):
        app.import_components(empty_store, path)
    no_crs = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="crs"):  # pyogrio warns, as it should
        census.iloc[:5].set_crs(None, allow_override=True).to_file(no_crs, driver="GPKG")
    with pytest.raises(DataFileError, match="declares no CRS"):
        app.import_components(empty_store, no_crs)
    with pytest.raises(DataFileError, match="own CRS"):
        app.import_components(empty_store, path, crs="gcj02")
    assert _count(empty_store) == 0


@pytest.mark.parametrize("name, text, match", [
    ("empty.csv", "", "is empty"),
    ("nohead.csv", "\n", "no header"),
    ("cols.csv", "x,y\n1,2\n", "lacks column"),
    ("rows.csv", "lon,lat,class_code\n", "no rows"),
    ("bad.txt", "lon,lat\n", "cannot tell the format"),
])
def test_bad_files_change_nothing(empty_store, tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError, match=match):
        app.import_components(empty_store, path, crs="wgs84")
    assert _count(empty_store) == 0


def test_csv_needs_crs(empty_store, census, tmp_path):
    path = write_components_file(census.iloc[:3], tmp_path / "c.csv")
    with pytest.raises(DataFileError, match="give the CRS"):
        app.import_components(empty_store, path)
    assert _count(empty_store) == 0
