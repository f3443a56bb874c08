import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box

from gridcore._time import FixedClock
from gridcore.chiefs import (
    alleys_to_cells,
    assignments_on,
    cells_of_chief,
    chief_record,
    chiefs_of_cells,
    load_sample_roster,
    validate_assignments,
)
from gridcore.errors import DataFileError, NotFoundError

CRS = "EPSG:4548"


def _code(col, row):
    # seq numbered west to east, north to south; row 0 is the northern row
    return f"110102001001{row * 4 + col + 1:03d}"


@pytest.fixture
def cells():
    # 4 columns x 3 rows of 100 m cells; row 0 is y in [200, 300] (north)
    recs = []
    for row in range(3):
        for col in range(4):
            y0 = 200 - 100 * row
            recs.append({"code": _code(col, row),
                         "geometry": box(100 * col, y0, 100 * col + 100, y0 + 100)})
    return gpd.GeoDataFrame(recs, crs=CRS).sort_values("code").reset_index(drop=True)


@pytest.fixture
def alleys():
    return gpd.GeoDataFrame({
        "name": ["甲胡同", "乙胡同", "丙胡同"],
        "geometry": [
            LineString([(10, 250), (250, 250)]),  # through row 0, cols 0-2
            LineString([(0, 200), (100, 200)]),  # along the edge of rows 0 and 1, col 0
            LineString([(350, 50), (300, 100)]),  # inside (3, 2), ends on a corner
        ],
    }, crs=CRS)


ASSIGN = pd.DataFrame({
    "chief_id": ["c1", "c2", "c1", "c3"],
    "alley": ["甲胡同", "甲胡同", "乙胡同", "丙胡同"],
    "valid_from": ["2017-06-01", "2024-01-01", "2018-01-01", "2017-06-01"],
})


def test_alleys_to_cells_through_along_and_corner(cells, alleys):
    got = alleys_to_cells(alleys, cells)
    by = got.groupby("alley")["cell_code"].apply(list).to_dict()
    assert by["甲胡同"] == [_code(0, 0), _code(1, 0), _code(2, 0)]
    assert by["乙胡同"] == [_code(0, 0), _code(0, 1)]  # a street between two cells: both
    assert by["丙胡同"] == [_code(3, 2)]  # the corner it ends on does not count
    assert got["cell_pos"].dtype.kind == "i"
    assert (cells["code"].to_numpy()[got["cell_pos"]] == got["cell_code"].to_numpy()).all()


def test_alleys_to_cells_refuses_mixed_crs(cells, alleys):
    with pytest.raises(ValueError, match="convert"):
        alleys_to_cells(alleys.to_crs("EPSG:4326"), cells)


def test_cells_of_chief_follows_valid_from(cells, alleys):
    ac = alleys_to_cells(alleys, cells)
    c1_2020 = cells_of_chief("c1", ASSIGN, alley_cells=ac, on=dt.date(2020, 5, 1))
    assert c1_2020.tolist() == sorted({_code(0, 0), _code(1, 0), _code(2, 0), _code(0, 1)})
    # 2024-01-01: 甲胡同 handed over to c2, c1 keeps 乙胡同
    assert cells_of_chief("c1", ASSIGN, alley_cells=ac, on="2024-01-01").tolist() == [
        _code(0, 0), _code(0, 1)]
    assert cells_of_chief("c2", ASSIGN, alley_cells=ac, on="2024-01-01").tolist() == [
        _code(0, 0), _code(1, 0), _code(2, 0)]
    assert cells_of_chief("c2", ASSIGN, alley_cells=ac, on="2023-12-31").tolist() == []
    # before any assignment: 乙胡同 only from 2018
    assert cells_of_chief("c1", ASSIGN, alley_cells=ac, on="2017-12-31").tolist() == [
        _code(0, 0), _code(1, 0), _code(2, 0)]
    assert cells_of_chief("nobody", ASSIGN, alley_cells=ac, on="2020-01-01").size == 0


def test_today_for_whose_cells_is_the_city_date(cells, alleys):
    ac = alleys_to_cells(alleys, cells)
    # 甲胡同 passes to c2 on 2024-01-01; at 07:00 on that day in Beijing it is still
    # 31 December in UTC (23:00), and the handover has happened
    clock = FixedClock(dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.UTC), tz="Asia/Shanghai")
    assert cells_of_chief("c2", ASSIGN, alley_cells=ac, clock=clock).tolist() == [
        _code(0, 0), _code(1, 0), _code(2, 0)]
    live = assignments_on(ASSIGN, clock=clock).set_index("alley")
    assert live.loc["甲胡同", "chief_id"] == "c2"
    # one minute before the city's midnight: still c1's
    clock.set(dt.datetime(2023, 12, 31, 15, 59, tzinfo=dt.UTC))
    assert cells_of_chief("c2", ASSIGN, alley_cells=ac, clock=clock).tolist() == []
    got = chiefs_of_cells([_code(1, 0)], ASSIGN, alley_cells=ac, clock=clock)
    assert got["chief_id"].tolist() == ["c1"]
    # an aware instant given as `on` counts by its date in the city
    on = dt.datetime(2023, 12, 31, 16, 0, tzinfo=dt.UTC)  # 00:00 on 1 Jan in Beijing
    assert cells_of_chief("c2", ASSIGN, alley_cells=ac, on=on, clock=clock).size == 3


def test_assignments_on_one_row_per_alley():
    live = assignments_on(ASSIGN, on="2025-01-01")
    assert dict(zip(live["alley"], live["chief_id"], strict=True)) == {
        "甲胡同": "c2", "乙胡同": "c1", "丙胡同": "c3"}
    assert len(assignments_on(ASSIGN, on="2017-01-01")) == 0


def test_chiefs_of_cells_positions(cells, alleys):
    ac = alleys_to_cells(alleys, cells)
    asked = [_code(3, 0), _code(0, 0), _code(3, 2)]
    got = chiefs_of_cells(asked, ASSIGN, alley_cells=ac, on="2020-01-01")
    assert got[["pos", "alley", "chief_id"]].values.tolist() == [
        [1, "乙胡同", "c1"], [1, "甲胡同", "c1"], [2, "丙胡同", "c3"]]


def test_validate_assignments_refuses_bad_tables():
    twice = pd.concat([ASSIGN, ASSIGN.iloc[:1].assign(chief_id="c9")])
    with pytest.raises(DataFileError, match="甲胡同"):
        validate_assignments(twice)
    with pytest.raises(DataFileError, match="valid_from"):
        validate_assignments(ASSIGN.drop(columns="valid_from"))
    with pytest.raises(DataFileError, match="date"):
        validate_assignments(ASSIGN.assign(valid_from="soon"))
    chiefs = pd.DataFrame({"id": ["c1", "c2"]})
    with pytest.raises(DataFileError, match="c3"):
        validate_assignments(ASSIGN, chiefs=chiefs)
    with pytest.raises(ValueError, match="date"):
        assignments_on(ASSIGN, on="someday")


def test_sample_roster_is_consistent_and_places_tangzi_hutong():
    roster = load_sample_roster()
    assert roster.alleys.crs == "EPSG:4326"
    assert roster.alleys["synthetic"].all()
    assert set(roster.assignments["chief_id"]) <= set(roster.chiefs["id"])
    tangzi = roster.alleys.set_index("name").geometry["堂子胡同"]
    # the domain brief puts the lane at 39.911 N, 116.3756 E within 100 m
    assert shapely.distance(tangzi, shapely.Point(116.3756, 39.911)) < 0.0009
    live = assignments_on(roster.assignments, on="2018-04-10")
    assert live.set_index("alley").loc["堂子胡同", "chief_id"] == "c001"
    live = assignments_on(roster.assignments, on="2025-04-10")
    assert live.set_index("alley").loc["堂子胡同", "chief_id"] == "c002"
    assert chief_record(roster, "c001")["name"] == "张丽"
    with pytest.raises(NotFoundError, match="c001"):
        chief_record(roster, "c999")
    assert np.all(shapely.is_valid(roster.alleys.geometry.to_numpy()))
