import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from gridcore._time import FixedClock
from gridcore.auth import Role
from gridcore.cases import (
    TRANSITIONS,
    Action,
    Case,
    CaseState,
    DeadlineStatus,
    apply_action,
    case_metrics,
    cases_to_frame,
    deadline_status,
    departments,
    event_class,
    event_classes,
    find_duplicates,
    report_case,
)
from gridcore.errors import InvalidCodeError, PermissionDeniedError, TransitionError

UTC = dt.UTC
T0 = dt.datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)

# Section 5 of the domain brief, typed by hand.
DOMAIN_CLASSES = {
    "0101": "私搭乱建", "0102": "暴露垃圾", "0104": "道路不洁", "0107": "废弃车辆",
    "0201": "非法小广告", "0301": "施工扰民", "0302": "工地扬尘", "0401": "路面塌陷",
    "0404": "下水道堵塞", "0501": "无照经营游商", "0504": "店外经营", "0505": "机动车乱停放",
    "0506": "非机动车乱停放", "0508": "商业噪音",
}


def _report(code="0506", at=T0, **kw):
    return report_case(event_class=code, lon=116.3756, lat=39.911,
                       description="外卖电动车堵塞胡同", reporter="王监督员", at=at, **kw)


def _step(case, action, hours, role=Role.DISPATCHER, **kw):
    return apply_action(case, action, actor="someone", role=role,
                        at=case.events[-1].at + hours * H, **kw)


def _case_in(state: CaseState) -> Case:
    c = _report()
    path = {
        CaseState.REPORTED: [],
        CaseState.FILED: [Action.FILE],
        CaseState.DISPATCHED: [Action.FILE, Action.DISPATCH],
        CaseState.HANDLED: [Action.FILE, Action.DISPATCH, Action.HANDLE],
        CaseState.CLOSED: [Action.FILE, Action.DISPATCH, Action.HANDLE, Action.CLOSE],
        CaseState.REJECTED: [Action.REJECT],
    }[state]
    for a in path:
        c = _step(c, a, 0.5, role=Role.ADMIN)
    assert c.state is state
    return c


# ----------------------------------------------------------------- event classes

def test_event_class_table_has_every_domain_class_with_its_name():
    table = event_classes()
    assert set(DOMAIN_CLASSES) <= set(table.index)
    for code, name in DOMAIN_CLASSES.items():
        assert event_class(code).name == name
        assert event_class(code).major_code == code[:2]


def test_event_class_limits_positive_and_departments_known():
    table = event_classes()
    assert (table["time_limit_hours"] > 0).all()
    assert set(table["default_department"]) <= set(departments().index)
    assert event_class("0506").time_limit_hours == 4.0
    assert event_class("0506").default_department == "JD"


@pytest.mark.parametrize("bad", ["0599", "506", "05060", "abcd", ""])
def test_unknown_or_malformed_event_class_is_refused(bad):
    with pytest.raises(InvalidCodeError, match="0506"):
        event_class(bad)


# ----------------------------------------------------------------- the loop

def test_whole_loop_with_rework_returns_to_same_department():
    c = _report()
    assert c.state is CaseState.REPORTED and c.time_limit_hours == 4.0
    c = _step(c, Action.FILE, 0.25)
    c = _step(c, Action.DISPATCH, 0.25)
    assert c.department == "JD"  # 0506 defaults to the street office
    c = _step(c, Action.HANDLE, 1, role=Role.DEPARTMENT, actor_department="JD", note="已清理")
    c = _step(c, Action.REWORK, 0.5, role=Role.SUPERVISOR, note="仍有车辆")
    assert c.state is CaseState.DISPATCHED and c.department == "JD"
    c = _step(c, Action.HANDLE, 1, role=Role.DEPARTMENT, actor_department="JD")
    c = _step(c, Action.CLOSE, 0.5, role=Role.SUPERVISOR)
    assert c.state is CaseState.CLOSED
    assert c.closed_at == T0 + 3.5 * H  # 0.25 + 0.25 + 1 + 0.5 + 1 + 0.5
    assert [e.action.value for e in c.events] == [
        "report", "file", "dispatch", "handle", "rework", "handle", "close"]
    assert [e.to_state.value for e in c.events] == [
        "reported", "filed", "dispatched", "handled", "dispatched", "handled", "closed"]
    assert c.events[4].note == "仍有车辆" and c.events[4].role is Role.SUPERVISOR
    assert c.events[3].department == "JD"
    assert c.rework_count == 1


def test_apply_action_does_not_change_its_input():
    c = _report()
    d = _step(c, Action.FILE, 1)
    assert c.state is CaseState.REPORTED and len(c.events) == 1
    assert d.state is CaseState.FILED and len(d.events) == 2


def test_dispatch_to_a_chosen_department_and_unknown_department():
    c = _step(_report(), Action.FILE, 1)
    assert _step(c, Action.DISPATCH, 1, department="CGZF").department == "CGZF"
    with pytest.raises(InvalidCodeError, match="CGZF"):
        _step(c, Action.DISPATCH, 1, department="NOPE")


def test_rework_cannot_move_the_case_to_another_department():
    c = _case_in(CaseState.HANDLED)
    with pytest.raises(TransitionError, match="same department"):
        _step(c, Action.REWORK, 1, department="CGZF")


def test_reject_at_filing():
    c = _step(_report(), Action.REJECT, 1, note="不属于城管范围")
    assert c.state is CaseState.REJECTED
    with pytest.raises(TransitionError, match="none"):
        _step(c, Action.FILE, 1)


ILLEGAL = [(s, a) for s in CaseState for a in Action
           if a is not Action.REPORT and (s, a) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
def test_illegal_transition_names_state_and_allowed_actions(state, action):
    c = _case_in(state)
    with pytest.raises(TransitionError) as err:
        _step(c, action, 1, role=Role.ADMIN)
    msg = str(err.value)
    assert repr(state.value) in msg
    allowed = [a.value for (s, a) in TRANSITIONS if s is state]
    for a in allowed:
        assert a in msg
    if not allowed:
        assert "final state" in msg


def test_illegal_count_is_what_the_table_implies():
    # 6 states x 6 non-report actions, minus the 6 legal transitions
    assert len(ILLEGAL) == 36 - 6


def test_roles_are_checked():
    c = _report()
    with pytest.raises(PermissionDeniedError, match="dispatcher"):
        _step(c, Action.FILE, 1, role=Role.DEPARTMENT)
    with pytest.raises(PermissionDeniedError):
        _step(c, Action.FILE, 1, role=Role.CHIEF)
    d = _case_in(CaseState.DISPATCHED)  # with JD
    with pytest.raises(PermissionDeniedError, match="JD"):
        _step(d, Action.HANDLE, 1, role=Role.DEPARTMENT, actor_department="CGZF")
    with pytest.raises(PermissionDeniedError):
        report_case(event_class="0506", lon=116.0, lat=39.9, description="x",
                    reporter="d", role=Role.DEPARTMENT, at=T0)


def test_steps_must_be_in_time_order_and_action_known():
    c = _report()
    with pytest.raises(TransitionError, match="before"):
        apply_action(c, "file", actor="a", role="dispatcher", at=T0 - H)
    with pytest.raises(InvalidCodeError, match="dispatch"):
        apply_action(c, "approve", actor="a", role="dispatcher", at=T0 + H)


def test_empty_description_refused():
    with pytest.raises(ValueError, match="description"):
        report_case(event_class="0506", lon=116.0, lat=39.9, description="  ",
                    reporter="w", at=T0)


def test_naive_time_read_as_city_time(monkeypatch):
    monkeypatch.delenv("GRIDCORE_TZ", raising=False)
    c = report_case(event_class="0506", lon=116.0, lat=39.9, description="x",
                    reporter="w", at=dt.datetime(2026, 1, 1, 8))  # 08:00 in Beijing
    assert c.reported_at == dt.datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert c.reported_at.tzinfo is UTC


# ----------------------------------------------------------------- deadlines

def test_deadline_status_thresholds():
    starts = [T0] * 6
    limits = [10.0] * 6
    nows = [7.9, 8.0, 10.0, 10.01]
    got = [deadline_status([T0], [10.0], T0 + h * H)[0] for h in nows]
    assert got == ["green", "yellow", "yellow", "red"]
    closed = [None, None, None, None, T0 + 5 * H, T0 + 11 * H]
    got = deadline_status(starts, limits, T0 + 20 * H, closed_at=closed)
    assert got.tolist() == ["red", "red", "red", "red", "green", "red"]


def test_deadline_status_vector_mixed_limits_and_case_method():
    now = T0 + 3 * H
    got = deadline_status([T0, T0, T0 - 2 * H], [4, 100, 4], now)
    # 3/4 = 0.75 green, 0.03 green, 5/4 red
    assert got.tolist() == ["green", "green", "red"]
    c = _report()  # 4 h limit
    assert c.deadline == T0 + 4 * H
    assert c.deadline_status(T0 + 3.5 * H) is DeadlineStatus.YELLOW


def test_deadline_status_refuses_bad_limits():
    with pytest.raises(ValueError, match="positive"):
        deadline_status([T0], [0], T0)
    with pytest.raises(ValueError, match="one per case"):
        deadline_status([T0, T0], [1], T0)


# ----------------------------------------------------------------- duplicates

# one degree of latitude on the IUGG mean sphere: 6371008.8 * pi / 180 = 111195.08 m
M_PER_DEG = 6371008.8 * math.pi / 180


def test_find_duplicates_space_time_and_class():
    lat0, lon0 = 39.911, 116.3756
    frame = pd.DataFrame({
        "lon": [lon0, lon0, lon0, lon0, lon0, lon0],
        "lat": [lat0 + 45 / M_PER_DEG,  # 45 m north: in
                lat0 + 55 / M_PER_DEG,  # 55 m: out
                lat0,                   # same spot, other class: out
                lat0 + 10 / M_PER_DEG,  # 10 m, 23 h before: in
                lat0,                   # same spot, 25 h before: out
                lat0 - 30 / M_PER_DEG],  # 30 m south, 1 h after: in
        "event_class": ["0506", "0506", "0505", "0506", "0506", "0506"],
        "reported_at": [T0, T0, T0, T0 - 23 * H, T0 - 25 * H, T0 + H],
    })
    got = find_duplicates(lon0, lat0, "0506", T0, frame, radius_m=50, window_hours=24)
    assert got.dtype.kind == "i"
    assert got.tolist() == [3, 5, 0]  # nearest first
    assert find_duplicates(lon0, lat0, "0506", T0, frame, radius_m=60).tolist() == [3, 5, 0, 1]
    assert find_duplicates(lon0, lat0, "0506", T0, frame.iloc[:0]).tolist() == []


def test_find_duplicates_east_west_distance_shrinks_with_latitude():
    # 40 m east at 39.911 N is 40 / (M_PER_DEG * cos(lat)) degrees of longitude
    lat0 = 39.911
    dlon = 40 / (M_PER_DEG * math.cos(math.radians(lat0)))
    frame = pd.DataFrame({"lon": [116.0 + dlon], "lat": [lat0], "event_class": ["0101"],
                          "reported_at": [T0]})
    assert find_duplicates(116.0, lat0, "0101", T0, frame, radius_m=40.5).tolist() == [0]
    assert find_duplicates(116.0, lat0, "0101", T0, frame, radius_m=39.5).tolist() == []


# ----------------------------------------------------------------- metrics

NOW = dt.datetime(2026, 3, 10, tzinfo=UTC)
A, B = "110102001", "110102020"


def _metric_cases():
    def mk(i, code, street, at, steps):
        c = dataclasses.replace(_report(code, at=at, street_code=street), id=i)
        for action, hours in steps:
            role = Role.ADMIN
            c = apply_action(c, action, actor="x", role=role, at=c.events[-1].at + hours * H)
        return c

    F, D, HA, C, RW, RJ = (Action.FILE, Action.DISPATCH, Action.HANDLE, Action.CLOSE,
                           Action.REWORK, Action.REJECT)
    d = dt.datetime
    return [
        # c1: 0506 (4 h), closed after 2 h: on time, dept JD
        mk(1, "0506", A, d(2026, 3, 1, 8, tzinfo=UTC), [(F, .5), (D, .5), (HA, .5), (C, .5)]),
        # c2: 0506, reworked once, closed after 6 h: late
        mk(2, "0506", A, d(2026, 3, 1, 8, tzinfo=UTC),
           [(F, 1), (D, 1), (HA, 1), (RW, 1), (HA, 1), (C, 1)]),
        # c3: 0101 (168 h), dispatched to CGZF, deadline 3-12: not yet due
        mk(3, "0101", A, d(2026, 3, 5, tzinfo=UTC), [(F, 1), (D, 1)]),
        # c4: 0102 (24 h), handled, deadline 3-02 passed: due, not closed, dept CGW
        mk(4, "0102", A, d(2026, 3, 1, tzinfo=UTC), [(F, 1), (D, 1), (HA, 1)]),
        # c5: rejected
        mk(5, "0506", A, d(2026, 3, 2, tzinfo=UTC), [(RJ, 1)]),
        # c6: street B, 0505 (4 h), closed after 3 h, dept JG, in February
        mk(6, "0505", B, d(2026, 2, 20, tzinfo=UTC), [(F, .5), (D, .5), (HA, 1), (C, 1)]),
        # c7: street B, only reported
        mk(7, "0506", B, d(2026, 3, 9, 23, tzinfo=UTC), []),
    ]


FOLLOWUPS = pd.DataFrame([
    {"case_id": 1, "at": "2026-03-02T00:00Z", "responded": True, "resolved": True,
     "satisfaction": "满意"},
    {"case_id": 2, "at": "2026-03-02T00:00Z", "responded": True, "resolved": False,
     "satisfaction": "不满意"},
    {"case_id": 2, "at": "2026-03-03T00:00Z", "responded": True, "resolved": True,
     "satisfaction": "基本满意"},  # the latest counts
    {"case_id": 4, "at": "2026-03-03T00:00Z", "responded": True, "resolved": False,
     "satisfaction": "不满意"},
    {"case_id": 6, "at": "2026-02-21T00:00Z", "responded": True, "resolved": True,
     "satisfaction": "基本满意"},
])


def test_metrics_by_street_hand_computed():
    frame = cases_to_frame(_metric_cases())
    m = case_metrics(frame, FOLLOWUPS, by="street", now=NOW)
    a, b = m.loc[A], m.loc[B]
    assert (a["reported"], a["filed"], a["closed"], a["due"], a["closed_on_time"]) == (
        5, 4, 2, 3, 1)
    assert a["closure_rate"] == pytest.approx(2 / 4)
    assert a["on_time_rate"] == pytest.approx(1 / 3)
    assert (a["handled"], a["reworked"]) == (3, 1)
    assert a["rework_rate"] == pytest.approx(1 / 3)
    assert a["followed_up"] == 3
    assert a["response_rate"] == pytest.approx(1.0)
    assert a["resolution_rate"] == pytest.approx(2 / 3)
    assert a["satisfaction_rate"] == pytest.approx((1 + 0.9 + 0) / 3)
    assert (b["reported"], b["filed"], b["closed"]) == (2, 1, 1)
    assert b["closure_rate"] == 1.0 and b["on_time_rate"] == 1.0 and b["rework_rate"] == 0.0
    assert b["satisfaction_rate"] == pytest.approx(0.9)


def test_metrics_by_department_and_period():
    frame = cases_to_frame(_metric_cases())
    m = case_metrics(frame, FOLLOWUPS, by="department", now=NOW)
    assert m.loc["JD", "closure_rate"] == 1.0
    assert m.loc["JD", "on_time_rate"] == pytest.approx(0.5)
    assert m.loc["JD", "rework_rate"] == pytest.approx(0.5)
    assert m.loc["CGZF", "closure_rate"] == 0.0
    assert np.isnan(m.loc["CGZF", "on_time_rate"])  # nothing due yet
    assert m.loc["", "reported"] == 2  # c5 and c7 never dispatched
    assert np.isnan(m.loc["", "closure_rate"])
    p = case_metrics(frame, None, by="period", now=NOW, freq="M")
    assert list(p.index) == ["2026-02", "2026-03"]
    assert p.loc["2026-02", "reported"] == 1 and p.loc["2026-03", "reported"] == 6
    assert p.loc["2026-03", "closure_rate"] == pytest.approx(2 / 4)
    assert np.isnan(p.loc["2026-03", "satisfaction_rate"])


BEIJING_0700_1_APRIL = dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC)


def test_metrics_months_start_at_the_city_midnight():
    # 07:00 in Beijing on 1 April is 23:00 UTC on 31 March: an April case
    frame = cases_to_frame([
        dataclasses.replace(_report(at=BEIJING_0700_1_APRIL), id=1),
        dataclasses.replace(_report(at=BEIJING_0700_1_APRIL - 8 * H), id=2),  # 23:00, 31 Mar
    ])
    clock = FixedClock(dt.datetime(2026, 4, 2, tzinfo=UTC), tz="Asia/Shanghai")
    p = case_metrics(frame, by="period", freq="M", clock=clock)
    assert p["reported"].to_dict() == {"2026-03": 1, "2026-04": 1}
    # another city, another calendar: in UTC both are March's
    utc = case_metrics(frame, by="period", freq="M", clock=FixedClock(clock.now_utc(), "UTC"))
    assert utc["reported"].to_dict() == {"2026-03": 2}


def test_metrics_days_start_at_the_city_midnight():
    # 07:59 and 08:00 Beijing time on the 1st are 23:59 UTC on the 31st and 00:00 UTC on
    # the 1st: the same city day
    t = dt.datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    frame = cases_to_frame([dataclasses.replace(_report(at=at), id=i) for i, at in enumerate(
        [t, t + dt.timedelta(minutes=1), dt.datetime(2026, 3, 31, 15, 59, tzinfo=UTC),
         dt.datetime(2026, 3, 31, 16, 0, tzinfo=UTC)])])
    clock = FixedClock(dt.datetime(2026, 4, 5, tzinfo=UTC), tz="Asia/Shanghai")
    d = case_metrics(frame, by="period", freq="D", clock=clock)
    # 15:59 UTC is 23:59 on the 31st in Beijing, 16:00 UTC the city's midnight
    assert d["reported"].to_dict() == {"2026-03-31": 1, "2026-04-01": 3}


def test_metrics_read_naive_frame_times_as_city_time():
    frame = cases_to_frame([dataclasses.replace(_report(at=BEIJING_0700_1_APRIL), id=1)])
    frame["reported_at"] = frame["reported_at"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(
        None)  # 2026-04-01 07:00, as a spreadsheet would hold it
    clock = FixedClock(dt.datetime(2026, 4, 2, 12), tz="Asia/Shanghai")
    p = case_metrics(frame, by="period", freq="M", clock=clock)
    assert list(p.index) == ["2026-04"] and p.loc["2026-04", "reported"] == 1


def test_deadline_status_from_the_clock():
    c = _report()  # T0, 4 h limit
    clock = FixedClock(T0 + 3 * H)
    assert c.deadline_status(clock=clock) is DeadlineStatus.GREEN
    clock.advance(0.5 * H)
    assert c.deadline_status(clock=clock) is DeadlineStatus.YELLOW
    clock.set(T0 + 5 * H)
    assert c.deadline_status(clock=clock) is DeadlineStatus.RED
    assert deadline_status([T0], [4.0], clock=clock).tolist() == ["red"]
    # an explicit now wins over the clock
    assert c.deadline_status(T0, clock=clock) is DeadlineStatus.GREEN


def test_metrics_due_judged_at_the_clocks_now():
    frame = cases_to_frame([dataclasses.replace(
        _step(_report(), Action.FILE, 0.5), id=1)])  # filed, 4 h limit from T0
    before = case_metrics(frame, by="street", clock=FixedClock(T0 + 3 * H))
    after = case_metrics(frame, by="street", clock=FixedClock(T0 + 5 * H))
    assert before["due"].tolist() == [0] and after["due"].tolist() == [1]


def test_metrics_refuses_unknown_grouping_and_answer():
    frame = cases_to_frame(_metric_cases())
    with pytest.raises(ValueError, match="street"):
        case_metrics(frame, by="community", now=NOW)
    bad = FOLLOWUPS.assign(satisfaction=["很好"] * len(FOLLOWUPS))
    with pytest.raises(ValueError, match="基本满意"):
        case_metrics(frame, bad, now=NOW)


def test_duplicate_distance_agrees_with_projected_metres():
    # haversine in find_duplicates against EPSG:4548 distances from gridcore.crs
    from gridcore.crs import wgs84_to_projected

    rng = np.random.default_rng(7)
    lon = 116.3756 + rng.uniform(-0.002, 0.002, 200)
    lat = 39.911 + rng.uniform(-0.002, 0.002, 200)
    x, y = wgs84_to_projected(lon, lat)
    x0, y0 = wgs84_to_projected(np.array([116.3756]), np.array([39.911]))
    metres = np.hypot(x - x0[0], y - y0[0])
    frame = pd.DataFrame({"lon": lon, "lat": lat, "event_class": "0506", "reported_at": T0})
    got = set(find_duplicates(116.3756, 39.911, "0506", T0, frame, radius_m=120).tolist())
    clear_in = set(np.flatnonzero(metres < 119).tolist())
    clear_out = set(np.flatnonzero(metres > 121).tolist())
    assert clear_in <= got and not (got & clear_out)
    assert len(clear_in) > 10


def test_role_is_checked_before_the_state():
    c = _case_in(CaseState.CLOSED)
    with pytest.raises(PermissionDeniedError):
        _step(c, Action.FILE, 1, role=Role.CHIEF)
