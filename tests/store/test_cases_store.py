"""The cases section of the store: cases, audit trail, follow-ups, chiefs, tokens, keys."""

import dataclasses
import datetime as dt
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from gridcore import app
from gridcore.auth import Role
from gridcore.cases import (
    Action,
    CaseFilter,
    CaseState,
    FollowUp,
    Satisfaction,
    case_metrics,
    cases_to_frame,
    report_case,
)
from gridcore.chiefs import ChiefRoster, cells_of_chief, load_sample_roster
from gridcore.errors import (
    AuthenticationError,
    ConflictError,
    InvalidCodeError,
    NotFoundError,
    TransitionError,
)
from gridcore.grid import CELL_COLUMNS, GridVersion
from gridcore.store import SQLiteStore, open_store

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 8, tzinfo=UTC)
H = dt.timedelta(hours=1)
STREET = "110102001"


def _cells():
    # 3 x 2 cells of 0.001 degrees near 堂子胡同; seq west to east, north to south
    recs = []
    for row in range(2):
        for col in range(3):
            lat0 = 39.912 - 0.001 * (row + 1)
            lon0 = 116.374 + 0.001 * col
            recs.append({"code": f"110102001001{row * 3 + col + 1:03d}",
                         "community_code": "110102001001", "street_code": STREET,
                         "district_code": "110102", "area_m2": 9000.0,
                         "geometry": box(lon0, lat0, lon0 + 0.001, lat0 + 0.001)})
    return gpd.GeoDataFrame(recs, crs="EPSG:4326")[CELL_COLUMNS]


@pytest.fixture
def db(new_store):
    s = new_store()
    s.add_grid_version(GridVersion(dt.date(2020, 1, 1), _cells(), source="test"))
    return s


def _report(at=T0, code="0506", cell="110102001001001", **kw):
    return report_case(event_class=code, lon=116.3745, lat=39.9115, description="乱停放",
                       reporter="王", at=at, cell_code=cell, street_code=STREET, **kw)


def test_case_round_trip_with_trail(db):
    case = _report(photo_ref="p1.jpg", component_code="0212000001")
    cid, created = db.add_case(case)
    assert created and cid >= 1
    got = db.get_case(cid)
    assert got == dataclasses.replace(case, id=cid)
    for action, role, kw in [(Action.FILE, "dispatcher", {}),
                             (Action.DISPATCH, "dispatcher", {"department": "CGZF"}),
                             (Action.HANDLE, "department", {"actor_department": "CGZF"}),
                             (Action.REWORK, "supervisor", {}),
                             (Action.HANDLE, "department", {"actor_department": "CGZF"}),
                             (Action.CLOSE, "supervisor", {})]:
        got = app.step_case(db, cid, action, actor="x", role=role,
                                 at=got.events[-1].at + H, **kw)
    again = db.get_case(cid)
    assert again == got
    assert again.state is CaseState.CLOSED and again.department == "CGZF"
    assert again.closed_at == T0 + 6 * H
    assert [e.action.value for e in again.events] == [
        "report", "file", "dispatch", "handle", "rework", "handle", "close"]


def test_illegal_step_writes_nothing(db):
    cid, _ = db.add_case(_report())
    with pytest.raises(TransitionError, match="file, reject"):
        app.step_case(db, cid, "close", actor="x", role="admin", at=T0 + H)
    assert len(db.get_case(cid).events) == 1
    assert db._scalar("SELECT COUNT(*) FROM case_events") == 1
    with pytest.raises(NotFoundError, match="999"):
        app.step_case(db, 999, "file", actor="x", role="admin", at=T0 + H)


def test_case_survives_reopening_the_store(db):
    cid, _ = db.add_case(_report())
    app.step_case(db, cid, "file", actor="x", role="dispatcher", at=T0 + H)
    db.close()
    reopened = open_store(db.url)
    assert reopened.get_case(cid).state is CaseState.FILED
    if isinstance(reopened, SQLiteStore):
        assert reopened.journal_mode() == "wal"
    reopened.close()


def test_idempotency_key(db):
    c = _report()
    a, created_a = db.add_case(c, idempotency_key="k1", request_hash="h1", principal="p")
    b, created_b = db.add_case(c, idempotency_key="k1", request_hash="h1", principal="p")
    assert (a, created_a, created_b) == (b, True, False)
    assert db.count_cases() == 1
    with pytest.raises(ConflictError, match="k1"):
        db.add_case(c, idempotency_key="k1", request_hash="h2", principal="p")
    other, created = db.add_case(c, idempotency_key="k1", request_hash="h1", principal="q")
    assert created and other != a  # keys are scoped to who sends them
    assert db.count_cases() == 2
    # a key finds its case again (Open311's tokens), only for whoever sent it
    assert db.case_for_idempotency_key("k1", principal="p") == a
    assert db.case_for_idempotency_key("k1", principal="q") == other
    assert db.case_for_idempotency_key("k1", principal="r") is None
    assert db.case_for_idempotency_key("k2", principal="p") is None


def test_two_stores_racing_on_one_step(db):
    # two stores on one database (as two server processes) file one case at once: one wins
    first = db
    cid, _ = first.add_case(_report())
    second = open_store(db.url)
    results = []

    def go(store):
        try:
            app.step_case(store, cid, "file", actor="x", role="dispatcher", at=T0 + H)
            results.append("ok")
        except TransitionError:
            results.append("refused")

    threads = [threading.Thread(target=go, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "refused"]
    assert [e.action.value for e in first.get_case(cid).events] == ["report", "file"]
    second.close()


def test_list_cases_filters(db):
    ids = [db.add_case(_report(at=T0 + i * H, cell=f"110102001001{i + 1:03d}"))[0]
           for i in range(3)]
    app.step_case(db, ids[0], "reject", actor="x", role="dispatcher", at=T0 + 5 * H)
    assert [c.id for c in db.list_cases()] == ids[::-1]  # newest first
    assert [c.id for c in db.list_cases(states=["reported"])] == ids[:0:-1]
    assert [c.id for c in db.list_cases(cell_codes=["110102001001002"])] == [ids[1]]
    assert db.list_cases(cell_codes=[]) == []
    assert [c.id for c in db.list_cases(limit=1, offset=1)] == [ids[1]]
    frame = db.open_cases_frame(event_class="0506")
    assert frame["id"].tolist() == ids[1:]


def test_list_cases_by_ids_window_classes_and_last_step(db):
    ids = [db.add_case(_report(at=T0 + i * H, cell=f"110102001001{i + 1:03d}"))[0]
           for i in range(3)]
    # only the first case takes a step, long after all three were reported
    app.step_case(db, ids[0], "reject", actor="x", role="dispatcher", at=T0 + 10 * H)
    assert [c.id for c in db.list_cases(ids=[ids[2], ids[0]])] == [ids[2], ids[0]]
    assert db.list_cases(ids=[]) == []
    assert [c.id for c in db.list_cases(reported_before=T0 + H)] == [ids[0]]  # exclusive
    assert [c.id for c in db.list_cases(reported_since=T0 + H, reported_before=T0 + 2 * H)
            ] == [ids[1]]
    assert [c.id for c in db.list_cases(updated_since=T0 + 5 * H)] == [ids[0]]
    assert db.list_cases(updated_since=T0 + 10 * H) == []  # strictly after
    assert [c.id for c in db.list_cases(event_class=["0506", "0101"])] == ids[::-1]
    assert db.list_cases(event_class=["0101"]) == []
    assert db.list_cases(event_class=[]) == []


def test_store_metrics_equal_domain_metrics(db):
    cases = []
    plans = [
        [("file", 1), ("dispatch", 1), ("handle", 1), ("close", 1)],
        [("file", 1), ("dispatch", 1), ("handle", 1), ("rework", 1), ("handle", 1),
         ("close", 1)],
        [("file", 1), ("dispatch", 1)],
        [("reject", 1)],
        [],
    ]
    for i, plan in enumerate(plans):
        c = _report(at=T0 + i * H)
        cid, _ = db.add_case(c)
        c = db.get_case(cid)
        for action, hours in plan:
            c = app.step_case(db, cid, action, actor="x", role="admin",
                                   at=c.events[-1].at + hours * H)
        cases.append(c)
    db.add_followup(FollowUp(cases[0].id, T0 + 10 * H, True, True, Satisfaction.SATISFIED))
    db.add_followup(FollowUp(cases[1].id, T0 + 10 * H, True, False, "基本满意"))
    with pytest.raises(NotFoundError):
        db.add_followup(FollowUp(999, T0, True, True, "满意"))
    now = T0 + 48 * H
    from_store = case_metrics(db.cases_frame(), db.followups_frame(), by="street", now=now)
    from_domain = case_metrics(cases_to_frame(cases), db.followups_frame(), by="street",
                               now=now)
    pd.testing.assert_frame_equal(from_store, from_domain)
    row = from_store.loc[STREET]
    # filed 3 (reject and the bare report are not), closed 2; handled 2, reworked 1
    assert (row["filed"], row["closed"], row["handled"], row["reworked"]) == (3, 2, 2, 1)
    assert row["satisfaction_rate"] == pytest.approx((1 + 0.9) / 2)
    assert row["resolution_rate"] == pytest.approx(0.5)


def test_roster_round_trip_assignments_and_alley_cells(db):
    roster = ChiefRoster(
        chiefs=pd.DataFrame({"id": ["c1", "c2"], "name": ["甲", "乙"], "title": ["", ""]}),
        alleys=gpd.GeoDataFrame(
            {"name": ["堂子胡同"], "synthetic": [True], "note": [""]},
            geometry=[shapely.from_wkt("LINESTRING (116.3742 39.9115, 116.3765 39.9115)")],
            crs="EPSG:4326"),
        assignments=pd.DataFrame({"chief_id": ["c1"], "alley": ["堂子胡同"],
                                  "valid_from": ["2017-06-01"]}),
    )
    db.save_roster(roster)
    back = db.load_roster()
    assert back.chiefs["id"].tolist() == ["c1", "c2"]
    assert back.alleys.geometry.iloc[0].equals(roster.alleys.geometry.iloc[0])
    ac = app.alley_cells(db)
    # the line at 39.9115 runs through the northern row, columns 1-3 (lon 116.374-116.377)
    assert ac["cell_code"].tolist() == ["110102001001001", "110102001001002", "110102001001003"]
    assert app.alley_cells(db)["cell_code"].tolist() == ac["cell_code"].tolist()  # cached
    db.add_assignment("c2", "堂子胡同", dt.date(2024, 1, 1))
    with pytest.raises(ConflictError, match="2024-01-01"):
        db.add_assignment("c1", "堂子胡同", dt.date(2024, 1, 1))
    with pytest.raises(NotFoundError, match="c9"):
        db.add_assignment("c9", "堂子胡同", dt.date(2025, 1, 1))
    with pytest.raises(NotFoundError, match="无名胡同"):
        db.add_assignment("c1", "无名胡同", dt.date(2025, 1, 1))
    a = db.load_roster().assignments
    assert cells_of_chief("c2", a, alley_cells=ac, on="2024-06-01").size == 3
    assert cells_of_chief("c1", a, alley_cells=ac, on="2024-06-01").size == 0
    assert db.get_chief("c1")["name"] == "甲"
    with pytest.raises(NotFoundError):
        db.get_chief("zz")


def test_tokens_hashed_and_checked(db):
    app.seed_sample_roster(db)
    assert not app.seed_sample_roster(db)  # only once
    token = app.issue_token(db, role="chief", name="张丽", subject="c001")
    p = db.principal_for_token(token)
    assert (p.role, p.name, p.subject) == (Role.CHIEF, "张丽", "c001")
    stored = [str(v) for v in db.tokens_frame().to_numpy().ravel()]
    assert not any(token in value for value in stored)
    with pytest.raises(AuthenticationError):
        db.principal_for_token(token + "x")
    with pytest.raises(InvalidCodeError, match="c001"):
        app.issue_token(db, role="chief", name="nobody")
    with pytest.raises(InvalidCodeError, match="CGZF"):
        app.issue_token(db, role="department", name="城管", subject="城管")
    assert db.principal_for_token(app.issue_token(db, role="department", name="CGZF")).subject \
        == "CGZF"
    db.revoke_token(token)
    with pytest.raises(AuthenticationError, match="revoked"):
        db.principal_for_token(token)


def test_sample_roster_on_the_sample_city(store_copy):
    app.seed_sample_roster(store_copy)
    ac = app.alley_cells(store_copy)
    roster = load_sample_roster()
    assert set(ac["alley"]) == set(roster.alleys["name"])  # every sample alley is in the city
    cells = store_copy.load_grid().set_index("code")
    tangzi = ac.loc[ac["alley"] == "堂子胡同", "cell_code"]
    assert len(tangzi) >= 3  # a 290 m lane crosses at least three 100 m cells
    assert set(cells.loc[tangzi, "district_code"]) == {"110102"}  # 西城
    a = store_copy.load_roster().assignments
    mine = cells_of_chief("c001", a, alley_cells=ac, on="2018-04-10")
    assert sorted(mine) == sorted(tangzi)
    assert np.all(cells.loc[mine, "area_m2"] > 0)


def test_one_store_shared_by_many_threads(db):
    # the service shares one store across its thread pool: writes must not interleave
    from concurrent.futures import ThreadPoolExecutor

    def report_and_file(i):
        cid, _ = db.add_case(_report(at=T0 + i * H), idempotency_key=f"k{i % 20}",
                             request_hash="same", principal="p")
        try:
            app.step_case(db, cid, "file", actor="x", role="dispatcher", at=T0 + 100 * H)
        except TransitionError:
            pass  # a retried key returns a case another thread already filed
        return cid

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(report_and_file, range(80)))
    assert len(set(ids)) == 20  # 20 distinct keys: 20 cases, retries found theirs
    assert db.count_cases() == 20
    assert {c.state for c in db.list_cases()} == {CaseState.FILED}
    assert db._scalar("SELECT COUNT(*) FROM case_events") == 40


def test_text_with_a_nul_character_is_refused_alike_on_every_backend(db):
    # PostgreSQL cannot keep a NUL in text (the fuzzer's token name); SQLite could, so
    # both refuse it as input and store nothing
    from gridcore.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="NUL"):
        db.add_case(dataclasses.replace(_report(), description="乱停放\x00"))
    with pytest.raises(InvalidValueError, match="NUL"):
        app.issue_token(db, role="admin", name="a\x00b")
    assert db.count_cases() == 0 and db.tokens_frame().empty


FILTERS = [
    CaseFilter(),
    CaseFilter(cells=frozenset()),
    CaseFilter(cells=frozenset({"110102001001001", "110102001001005"})),
    CaseFilter(divisions=()),
    CaseFilter(divisions=("110102001001",)),
    CaseFilter(divisions=("110101",)),
    CaseFilter(divisions=("110102",), department="JD"),
    CaseFilter(department="CGZF"),
    CaseFilter(divisions=(), reporter="李"),
    CaseFilter(divisions=("110101",), reporter="王"),
    CaseFilter(cells=frozenset({"110102001001002"}), divisions=("110102001001",),
               department="JD", reporter="李"),
]


@pytest.mark.parametrize("visible", FILTERS, ids=[f"filter{i}" for i in range(len(FILTERS))])
def test_the_store_filters_cases_as_case_filter_matches(db, visible):
    """The SQL of ``visible`` and `CaseFilter.matches` are one rule: held to each other."""
    made = []
    for i in range(12):
        cell = f"110102001001{i % 6 + 1:03d}"
        case = dataclasses.replace(_report(at=T0 + i * H, cell=cell),
                                   reporter="王" if i % 3 else "李")
        cid, _ = db.add_case(case)
        if i % 4 == 1:
            app.step_case(db, cid, Action.FILE, actor="d", role=Role.DISPATCHER, at=T0 + 20 * H)
            app.step_case(db, cid, Action.DISPATCH, actor="d", role=Role.DISPATCHER,
                          at=T0 + 21 * H, department="JD" if i % 8 == 1 else "CGZF")
        made.append(cid)
    every = db.list_cases()
    expected = {c.id for c in every if visible.matches(c)}
    assert {c.id for c in db.list_cases(visible=visible)} == expected
    assert set(db.cases_frame(visible=visible)["id"]) == expected
    some = made[::2]
    assert {c.id for c in db.list_cases(ids=some, visible=visible)} == expected & set(some)
    assert 0 < len(every) == 12
