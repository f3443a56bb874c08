from datetime import date

import pytest

from gridcore.errors import CellNotFoundError, InvalidCodeError, NotFoundError
from gridcore.grid import GridVersion
from gridcore.store import SQLiteStore, Store


def test_the_store_implements_the_interface(new_store):
    s = new_store()
    assert isinstance(s, Store)
    if isinstance(s, SQLiteStore):
        assert s.journal_mode() == "wal"


def test_round_trip_of_divisions_and_grid(city, store_copy):
    store = store_copy
    again = store.load_divisions()
    assert list(again.communities.code) == list(city.divisions.communities.code)
    cell = store.get_cell(city.cells.code.iloc[7])
    assert cell.geometry.equals_exact(city.cells.geometry.iloc[7], 0)
    with pytest.raises(CellNotFoundError, match="no unit grid cell"):
        store.get_cell("110102001999999")
    with pytest.raises(InvalidCodeError):
        store.get_cell("abc")


def test_failed_write_leaves_nothing(store_copy, city):
    before = store_copy.grid_versions()
    bad = city.cells.head(10).copy()
    bad.loc[bad.index[5], "code"] = bad.code.iloc[4]  # duplicate primary key
    with pytest.raises(Exception, match="(?i)unique|duplicate key"):
        store_copy.add_grid_version(GridVersion(date(2030, 1, 1), bad, "test"))
    assert store_copy.grid_versions().equals(before)


def test_empty_store(new_store):
    s = new_store()
    assert s.is_empty()
    with pytest.raises(NotFoundError, match="gridcore build"):
        s.load_grid()
    with pytest.raises(NotFoundError, match="gridcore build"):
        s.load_divisions()
