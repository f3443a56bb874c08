"""Working time on China's 2026 calendar: deadlines across nights, weekends, holidays, 调休."""

import datetime as dt

import numpy as np
import pytest

from gridcore.errors import InvalidValueError
from gridcore.worktime import LimitClock, WorkCalendar

CAL = WorkCalendar.china(tz="Asia/Shanghai")
TZ = CAL.tz


def at(*args):
    return dt.datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize(("start", "hours", "due", "why"), [
    (at(2026, 3, 6, 17, 30), 2, at(2026, 3, 9, 9, 30), "Friday 17:30 + 2 h: Monday 09:30"),
    (at(2026, 3, 9, 11, 0), 2, at(2026, 3, 9, 15, 0), "over the lunch break"),
    (at(2026, 3, 9, 11, 0), 1, at(2026, 3, 9, 12, 0), "due at the end of a period"),
    (at(2026, 3, 9, 12, 30), 0.5, at(2026, 3, 9, 14, 30), "reported in the break"),
    (at(2026, 3, 9, 20, 0), 0.5, at(2026, 3, 10, 8, 30), "reported at night"),
    (at(2026, 3, 7, 10, 0), 1, at(2026, 3, 9, 9, 0), "reported on a Saturday"),
    (at(2026, 3, 9, 8, 0), 16, at(2026, 3, 10, 18, 0), "two whole working days"),
    # 劳动节: 1-5 May off; Thursday 30 April 17:00 + 2 h runs into Wednesday 6 May
    (at(2026, 4, 30, 17, 0), 2, at(2026, 5, 6, 9, 0), "across the May holiday"),
    # Saturday 9 May is a make-up working day (调休上班)
    (at(2026, 5, 8, 17, 0), 2, at(2026, 5, 9, 9, 0), "into a make-up Saturday"),
    # 春节: 15-23 Feb off, Saturday 14 Feb worked; Friday 13 Feb 17:00 + 2 h
    (at(2026, 2, 13, 17, 0), 2, at(2026, 2, 14, 9, 0), "Spring Festival's make-up Saturday"),
    (at(2026, 2, 14, 17, 0), 2, at(2026, 2, 24, 9, 0), "then nine days off"),
    (at(2026, 10, 1, 9, 0), 1, at(2026, 10, 8, 9, 0), "reported on National Day"),
])
def test_working_deadlines(start, hours, due, why):
    assert CAL.add(start, hours=hours) == due, why
    # and back: the working time between start and due is the limit
    assert CAL.between(start, due) == pytest.approx(hours), why


def test_natural_clock_is_calendar_time():
    start = at(2026, 4, 30, 17, 0)
    assert CAL.add(start, hours=48, clock="natural") == at(2026, 5, 2, 17, 0)
    assert CAL.add(start, hours=48, clock="自然时") == at(2026, 5, 2, 17, 0)
    assert CAL.between(start, at(2026, 5, 2, 17, 0), clock=LimitClock.NATURAL) == 48


def test_vectorised_equals_one_by_one():
    rng = np.random.default_rng(7)
    base = at(2026, 1, 1).timestamp()
    starts = [dt.datetime.fromtimestamp(base + s, TZ)
              for s in rng.uniform(0, 360 * 86400, 300)]
    secs = rng.uniform(0, 80 * 3600, 300)
    many = CAL.add_many(starts, secs)
    one = [CAL.add_many([s], [x])[0] for s, x in zip(starts, secs, strict=True)]
    assert many == one
    back = CAL.between_many(starts, many)
    assert np.allclose(back[secs > 0], secs[secs > 0])
    # a deadline always falls in working hours of a working day
    for d in many[:100]:
        assert CAL.is_working_day(d.date()) and (
            dt.time(8) <= d.time() <= dt.time(12) or dt.time(14) <= d.time() <= dt.time(18))


def test_naive_times_are_the_citys_and_aware_ones_instants():
    utc = dt.datetime(2026, 3, 6, 9, 30, tzinfo=dt.UTC)  # 17:30 in Beijing
    assert CAL.add(utc, hours=2) == at(2026, 3, 9, 9, 30)
    assert CAL.add(dt.datetime(2026, 3, 6, 17, 30), hours=2) == at(2026, 3, 9, 9, 30)


def test_the_shipped_calendar_knows_2026():
    assert not CAL.is_working_day(dt.date(2026, 10, 7))
    assert CAL.is_working_day(dt.date(2026, 10, 10))  # a Saturday, worked
    assert CAL.is_working_day(dt.date(2026, 1, 4))  # a Sunday, worked
    assert not CAL.is_working_day(dt.date(2026, 6, 19))  # 端午, a Friday
    assert CAL.seconds_per_day == 8 * 3600


@pytest.mark.parametrize(("kw", "match"), [
    ({"hours": ((dt.time(14), dt.time(18)), (dt.time(8), dt.time(12)))}, "in order"),
    ({"hours": ()}, "at least one"),
    ({"holidays": frozenset({dt.date(2026, 1, 1)}), "workdays": frozenset({dt.date(2026, 1, 1)})},
     "holiday and a make-up"),
])
def test_bad_calendars_are_refused(kw, match):
    with pytest.raises(InvalidValueError, match=match):
        WorkCalendar(**kw)


def test_bad_limits_are_refused():
    with pytest.raises(InvalidValueError, match="finite"):
        CAL.add(at(2026, 3, 9, 9), hours=float("nan"))
    with pytest.raises(InvalidValueError, match="working .* or natural"):
        CAL.add(at(2026, 3, 9, 9), hours=1, clock="lunar")
