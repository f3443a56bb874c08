import numpy as np
import pytest

from gridcore.census import CLASS_MIX, synthesise_components
from gridcore.components import gbt47678_class_table, validate_components
from gridcore.sindex import CellLocator
from tests.synthetic_grid import synthetic_city


@pytest.fixture(scope="module")
def grid():
    cells, _ = synthetic_city(nx=60, ny=50)
    return cells


@pytest.fixture(scope="module")
def census(grid):
    return synthesise_components(grid, n=50_000, seed=7)


def test_census_is_valid_and_labelled(grid, census):
    assert len(census) == 50_000
    checked = validate_components(census)  # codes, classes, prefix = cell's district
    assert checked["code"].is_unique and census["synthetic"].all()
    assert census["code"].is_monotonic_increasing
    assert census["code"].str.len().eq(16).all()
    # every point lies in the cell it is filed under
    loc = CellLocator(grid)
    np.testing.assert_array_equal(
        loc.locate_codes(census.geometry.x, census.geometry.y), census["cell_code"])
    assert (census["change_date"] >= census["first_survey_date"]).all()
    assert set(census["status"]) == {"完好", "破损", "丢失", "废弃", "移除"}


def test_census_is_deterministic(grid, census):
    again = synthesise_components(grid, n=50_000, seed=7)
    assert again.equals(census)
    other = synthesise_components(grid, n=50_000, seed=8)
    assert not other["code"].equals(census["code"]) or not other.geometry.equals(census.geometry)


def test_census_mix_and_density(grid, census):
    share = census["class_code"].value_counts(normalize=True)
    mix = {c: v / sum(CLASS_MIX.values()) for c, v in CLASS_MIX.items()}
    for c in ("0101", "0402", "0305"):
        assert share[c] == pytest.approx(mix[c], rel=0.15)


def test_census_on_sample_city(city):
    census = synthesise_components(city.cells)  # the default size
    assert len(census) >= 300_000
    validate_components(census)
    area_km2 = city.divisions.districts.set_index("code").to_crs(4548).area / 1e6
    per_km2 = census["code"].str.slice(0, 6).value_counts() / area_km2
    # Dongcheng held ~168,000 components in 42 km2 in 2004 (4,000 per km2)
    assert 3000 < per_km2["110101"] < 5000
    assert per_km2["110102"] > 3 * per_km2["110106"]  # old city dense, Fengtai sparse
    assert set(census["cell_code"].str.slice(0, 6)) == {"110101", "110102", "110106"}


def test_census_17_digit_codes(grid):
    c = synthesise_components(grid, n=2000, table=gbt47678_class_table())
    assert c["code"].str.len().eq(17).all()
    validate_components(c, table=gbt47678_class_table())


def test_census_size_knob_bounds(grid):
    with pytest.raises(ValueError, match="5,000,000"):
        synthesise_components(grid, n=0)
    with pytest.raises(ValueError, match="5,000,000"):
        synthesise_components(grid, n=5_000_001)
