import numpy as np
import pytest

from gridcore.census import CLASS_MIX, synthesise_components
from gridcore.components import gbt47678_class_table, validate_components
from gridcore.crs import wgs84_to_projected
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
    # denser near the centre (Tian'anmen lies inside this small grid)
    per_cell = census["cell_code"].value_counts().reindex(grid["code"], fill_value=0)
    dens = per_cell.to_numpy() / grid.to_crs(4548).area.to_numpy()
    rp = grid.to_crs(4548).geometry.representative_point()
    cx, cy = wgs84_to_projected([116.3975], [39.9087])
    r = np.hypot(rp.x - cx[0], rp.y - cy[0]).to_numpy()
    assert dens[r < np.quantile(r, 0.2)].mean() > 1.2 * dens[r > np.quantile(r, 0.8)].mean()


def test_census_17_digit_codes(grid):
    c = synthesise_components(grid, n=2000, table=gbt47678_class_table())
    assert c["code"].str.len().eq(17).all()
    validate_components(c, table=gbt47678_class_table())


def test_census_size_knob_bounds(grid):
    with pytest.raises(ValueError, match="5,000,000"):
        synthesise_components(grid, n=0)
    with pytest.raises(ValueError, match="5,000,000"):
        synthesise_components(grid, n=5_000_001)
