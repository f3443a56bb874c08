"""Schema versions and migrations, the store's clock, spatial questions, the roster bug."""

import datetime as dt
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import shapely

from gridcore import app
from gridcore._time import FixedClock
from gridcore.chiefs import load_sample_roster
from gridcore.grid import GridVersion
from gridcore.store import SCHEMA_VERSION, SQLiteStore, StoreError, open_store

V1_FILE = Path(__file__).resolve().parents[1] / "data" / "store_v1.db"


# ---------------------------------------------------------------- migrations (SQLite file)

@pytest.fixture
def v1_copy(tmp_path):
    """A copy of a store the first release wrote (see tests/data/README.md)."""
    dst = tmp_path / "v1.db"
    shutil.copy(V1_FILE, dst)
    return dst


def test_a_first_release_file_is_upgraded_in_place(v1_copy):
    import sqlite3

    raw = sqlite3.connect(v1_copy)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is None
    old_updated = raw.execute("SELECT updated_at FROM cases").fetchone()[0]
    raw.close()
    assert len(old_updated) == len("2026-12-02T16:51:06+00:00")  # seconds, no fraction

    store = SQLiteStore(v1_copy)
    assert store.schema_version() == SCHEMA_VERSION
    case = store.list_cases()[0]
    assert case.reported_at == dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC)
    assert [e.action.value for e in case.events] == ["report", "file"]
    # every instant now has the one fixed-width form, so text order is time order
    new_updated = store._scalar("SELECT updated_at FROM cases")
    assert len(new_updated) == len("2026-12-02T16:51:06.000000+00:00")
    assert new_updated.startswith(old_updated[:19])
    # a later release's column exists and the first release's token still works
    assert "expires_at" in store.tokens_frame().columns
    assert len(store.tokens_frame()) == 1
    store.close()

    again = SQLiteStore(v1_copy)  # opening an upgraded file changes nothing
    assert again.schema_version() == SCHEMA_VERSION
    assert again.count_cases() == 1
    again.close()


def test_the_upgrade_mends_chiefs_left_without_cells(v1_copy):
    # The first release marked the alley/cell table of version 1 as computed, then a
    # replaced roster emptied its rows: every chief had lost their cells for good.
    store = SQLiteStore(v1_copy)
    assert not store.has_alley_cells(1)
    app.prepare_store(store)
    assert store.has_alley_cells(1)
    store.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    SQLiteStore(path).set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer than this gridcore"):
        SQLiteStore(path)


def test_concurrent_first_opens_migrate_once(new_store):
    first = new_store()
    errors = []

    def open_again():
        try:
            open_store(first.url).close()
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=open_again) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert first.schema_version() == SCHEMA_VERSION


# ---------------------------------------------------------------- the city's clock

def test_the_version_in_force_follows_the_citys_date(new_store, city):
    # 16:30 UTC on 31 March is 00:30 on 1 April in Beijing: April's grid is in force
    clock = FixedClock(dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC))
    store = new_store(clock=clock)
    cells = city.cells.head(20)
    old = store.add_grid_version(GridVersion(dt.date(2020, 1, 1), cells, source="old"))
    new = store.add_grid_version(GridVersion(dt.date(2026, 4, 1), cells, source="new"))
    assert store.current_version() == new
    assert store.load_grid().attrs["version_id"] == new
    clock.set(dt.datetime(2026, 3, 31, 15, 59, tzinfo=dt.UTC))  # 23:59 in Beijing
    assert store.current_version() == old
    assert store.current_version(on=dt.date(2026, 4, 1)) == new


def test_stored_instants_come_back_aware_and_equal(new_store, city):
    from gridcore.cases import report_case

    store = new_store()
    store.add_grid_version(GridVersion(dt.date(2020, 1, 1), city.cells.head(5), source="t"))
    beijing = dt.timezone(dt.timedelta(hours=8))
    at = dt.datetime(2026, 4, 1, 7, 0, 0, 123456, tzinfo=beijing)
    case = report_case(event_class="0506", lon=116.0, lat=39.9, description="x",
                       reporter="r", at=at, cell_code=city.cells.code.iloc[0],
                       street_code=city.cells.street_code.iloc[0])
    cid, _ = store.add_case(case)
    back = store.get_case(cid).reported_at
    assert back == at and back.utcoffset() is not None
    since = store.list_cases(reported_since=at - dt.timedelta(microseconds=1))
    until = store.list_cases(reported_since=at + dt.timedelta(microseconds=1))
    assert [c.id for c in since] == [cid] and until == []


# ---------------------------------------------------------------- spatial questions

def test_cells_in_a_box_are_the_cells_the_box_touches(store_copy, city):
    bbox = (116.385, 39.905, 116.395, 39.912)
    got = store_copy.cells_in_bbox(bbox)
    want = city.cells[city.cells.intersects(shapely.box(*bbox))]
    assert sorted(got["code"]) == sorted(want["code"])
    assert got.crs.to_epsg() == 4326 and len(got) > 10


def test_components_near_a_point_nearest_first(store_copy):
    lon, lat = 116.3756, 39.911
    near = store_copy.components_near(lon, lat, radius_m=80, limit=5)
    assert 0 < len(near) <= 5
    assert np.all(np.diff(near["distance_m"].to_numpy()) >= 0)
    assert near["distance_m"].max() <= 80
    # nothing closer was left out: check against every component of the cells around
    box = (lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    around = store_copy.components_in_cells(store_copy.cells_in_bbox(box)["code"])
    d = 2 * 6_371_008.8 * np.arcsin(np.sqrt(
        np.sin(np.radians(around["lat"] - lat) / 2) ** 2
        + np.cos(np.radians(lat)) * np.cos(np.radians(around["lat"]))
        * np.sin(np.radians(around["lon"] - lon) / 2) ** 2))
    closest = around.assign(d=d).sort_values(["d", "code"]).head(len(near))
    assert list(closest["code"]) == list(near["code"])
    assert np.allclose(closest["d"], near["distance_m"], atol=0.5)


# ---------------------------------------------------------------- the roster bug

def test_replacing_the_roster_keeps_every_chief_in_their_cells(store_copy):
    # First release: save_roster cleared the alley/cell rows but not the "computed"
    # mark, so after a roster was replaced every chief silently lost all their cells.
    app.save_roster(store_copy, load_sample_roster())
    before = app.chief_cells(store_copy, "c001", on=dt.date(2018, 4, 10))
    assert before
    app.save_roster(store_copy, load_sample_roster())
    after = app.chief_cells(store_copy, "c001", on=dt.date(2018, 4, 10))
    assert after == before
    cell = sorted(after)[0]
    assert "c001" in {c["id"] for c in store_copy.chiefs_of_cell(cell, on=dt.date(2018, 4, 10))}
