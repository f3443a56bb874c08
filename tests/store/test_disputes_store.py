"""Persistence of joint tasks: whole or nothing, idempotent opening, listing by party."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import shapely
from shapely.geometry import Polygon

from gridcore import app
from gridcore import disputes as D
from gridcore.crs import project_geometry
from gridcore.errors import NotFoundError, PermissionDeniedError, TransitionError

XC, FT, DC = "110102", "110106", "110101"
T0 = datetime(2018, 1, 8, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def screener(city):
    return D.DisputeScreener(city.divisions, level="district")


@pytest.fixture(scope="module")
def straddling(screener):
    """A 20 m x 16 m building across the 西城/丰台 line (9 m in 西城)."""
    line = project_geometry(screener.shared_border([XC, FT]))
    seg = max(
        (
            shapely.LineString(c[i : i + 2])
            for g in shapely.get_parts(line)
            for c in [shapely.get_coordinates(g)]
            for i in range(len(c) - 1)
        ),
        key=lambda s: s.length,
    )
    (x0, y0), (x1, y1) = seg.coords
    ux, uy = (x1 - x0) / seg.length, (y1 - y0) / seg.length
    nx, ny = -uy, ux
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    xc = project_geometry(screener.geoms_wgs84[list(screener.codes).index(XC)])
    if not xc.contains(shapely.Point(mx + 3 * nx, my + 3 * ny)):
        nx, ny = -nx, -ny
    ring = [
        (mx + a * ux + b * nx, my + a * uy + b * ny)
        for a, b in ((-10, 9), (10, 9), (10, -7), (-10, -7))
    ]
    return screener.screen_one(project_geometry(Polygon(ring), inverse=True), crs="wgs84")


@pytest.fixture
def db(new_store):
    return new_store()


def _count(db, table):
    return db._scalar(f"SELECT COUNT(*) FROM {table}")


def test_a_task_round_trips_whole(db, straddling):
    task, opened = app.open_joint_task(db, straddling,
        event_class="0101",
        description="违建",
        opened_by="广外",
        at=T0,
        receiving_code=XC,
    )
    assert opened and task.id.startswith("jt-")
    h = timedelta(hours=1)
    db.update_dispute(task.id, lambda t: t.check_in(XC, actor="广外", at=T0 + h))
    db.update_dispute(task.id, lambda t: t.check_in(FT, actor="太平桥", at=T0 + 2 * h))
    db.update_dispute(
        task.id, lambda t: t.call_department(FT, "FT-ZF", "丰台城管", actor="太平桥", at=T0 + 3 * h)
    )
    db.update_dispute(
        task.id,
        lambda t: t.hold_meeting(
            XC,
            meeting_at=T0 + 24 * h,
            place="广外",
            attendees=[XC, FT],
            actor="广外",
            at=T0 + 4 * h,
        ),
    )
    db.update_dispute(
        task.id,
        lambda t: t.agree(
            XC,
            division_of_labour={XC: "西侧", FT: "东侧"},
            deadline=T0 + 99 * h,
            actor="广外",
            at=T0 + 5 * h,
        ),
    )
    back = db.get_dispute(task.id)
    assert back.status is D.TaskStatus.IN_PROGRESS
    assert back.lead_code == XC and back.lead_rule is D.LeadRule.RECEIVING
    assert [p.code for p in back.parties] == list(straddling.codes)
    assert [p.share for p in back.parties] == pytest.approx([p.share for p in straddling.parties])
    assert back.party(FT).part == "东侧" and back.deadline == T0 + 99 * h
    assert back.departments[0].code == "FT-ZF" and back.meetings[0].place == "广外"
    assert [s.action.value for s in back.history] == [
        "open",
        "check_in",
        "check_in",
        "call_department",
        "meeting",
        "agree",
    ]
    assert back.history[-1].detail["division_of_labour"] == {XC: "西侧", FT: "东侧"}
    assert shapely.equals_exact(back.geometry, straddling.geometry, 1e-12)
    assert back.footprint_key == straddling.key


def test_a_refused_step_leaves_the_stored_task_unchanged(db, straddling):
    task, _ = app.open_joint_task(
        db, straddling, event_class="0101", description="x", opened_by="a", at=T0)
    before = db.count_dispute_steps()
    with pytest.raises(PermissionDeniedError):
        db.update_dispute(task.id, lambda t: t.check_in(DC, actor="东城", at=T0))
    with pytest.raises(TransitionError):
        # the first check-in succeeds in memory, the second fails: neither is stored
        def twice(t):
            t.check_in(XC, actor="广外", at=T0)
            t.check_in(XC, actor="广外", at=T0)

        db.update_dispute(task.id, twice)
    assert _count(db, "dispute_steps") == before
    assert db.get_dispute(task.id).party(XC).checked_in_at is None


def test_a_failed_open_leaves_nothing(db, screener, straddling):
    inside = screener.screen_one(shapely.box(116.30, 39.85, 116.301, 39.851), crs="wgs84")
    assert not inside.joint
    with pytest.raises(TransitionError):
        app.open_joint_task(
        db, inside, event_class="0101", description="x", opened_by="a", at=T0)
    with pytest.raises(Exception, match="not a party"):
        app.open_joint_task(
        db, straddling, event_class="0101", description="x", opened_by="a", at=T0, receiving_code=DC
        )
    for table in ("dispute_tasks", "dispute_parties", "dispute_steps"):
        assert _count(db, table) == 0


def test_opening_again_joins_the_open_task(db, straddling):
    first, opened = app.open_joint_task(
        db, straddling, event_class="0101", description="a", opened_by="12345", at=T0
    )
    again, opened2 = app.open_joint_task(db, straddling,
        event_class="0101",
        description="b",
        opened_by="巡查",
        at=T0 + timedelta(hours=2),
    )
    assert opened and not opened2 and again.id == first.id
    assert _count(db, "dispute_tasks") == 1
    assert db.get_dispute(first.id).history[-1].action is D.StepAction.JOIN
    other, opened3 = app.open_joint_task(
        db, straddling, event_class="0504", description="c", opened_by="x",
        at=T0 + timedelta(hours=3)
    )
    late, opened4 = app.open_joint_task(
        db, straddling, event_class="0101", description="d", opened_by="x",
        at=T0 + timedelta(days=5)
    )
    assert opened3 and opened4 and len({first.id, other.id, late.id}) == 3


def test_listing_by_party_status_and_department(db, straddling):
    a, _ = app.open_joint_task(
        db, straddling, event_class="0101", description="a", opened_by="x", at=T0)
    b, _ = app.open_joint_task(
        db, straddling, event_class="0504", description="b", opened_by="y",
        at=T0 + timedelta(hours=1)
    )
    db.update_dispute(
        b.id,
        lambda t: t.call_department(FT, "FT-ZF", "丰台城管", actor="y", at=T0 + timedelta(hours=2)),
    )
    ids = lambda ts: [t.id for t in ts]  # noqa: E731
    assert ids(db.list_disputes()) == [b.id, a.id]
    assert ids(db.list_disputes(party_codes=[XC])) == [b.id, a.id]
    assert ids(db.list_disputes(party_codes=["110102020"])) == [b.id, a.id]  # a street of 西城
    assert db.list_disputes(party_codes=[DC]) == []
    assert db.list_disputes(party_codes=["110101001"]) == []
    assert db.list_disputes(party_codes=[]) == []
    assert ids(db.list_disputes(department="FT-ZF")) == [b.id]
    assert ids(db.list_disputes(opened_by="x")) == [a.id]
    assert ids(db.list_disputes(status=["open"], level="district")) == [b.id, a.id]
    assert db.list_disputes(status=["closed"]) == []
    assert ids(db.list_disputes(limit=1, offset=1)) == [a.id]


def test_unknown_task(db):
    with pytest.raises(NotFoundError, match="jt-nope"):
        db.get_dispute("jt-nope")
    with pytest.raises(NotFoundError):
        db.update_dispute("jt-nope", lambda t: None)


def test_overrides_round_trip(db):
    o = D.Override(
        id="market",
        geometry=shapely.box(116.31, 39.88, 116.311, 39.881),
        level="district",
        assigned_code=XC,
        valid_from=date(2018, 6, 1),
        valid_to=None,
        agreed_by=("广安门外街道", "太平桥街道"),
        name="农贸市场",
    )
    db.save_dispute_override(o)
    (back,) = db.dispute_overrides()
    assert back.id == "market" and back.assigned_code == XC and back.valid_to is None
    assert back.agreed_by == o.agreed_by and back.geometry.equals(o.geometry)
    assert back.is_valid_on(date(2018, 6, 1)) and not back.is_valid_on(date(2018, 5, 31))
