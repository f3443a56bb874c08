"""Tests of gridcore._time: one clock, the city's time zone, days, months, the codec."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
from shapely.geometry import Point

from gridcore._time import (
    FixedClock,
    SystemClock,
    TimeZoneError,
    city_date,
    city_day_bounds,
    city_month_bounds,
    city_tz,
    decode_instant,
    default_clock,
    encode_instant,
    to_city,
    to_utc,
)

UTC = dt.UTC
BJ = ZoneInfo("Asia/Shanghai")
# 07:00 on 1 April in Beijing is 23:00 on 31 March in UTC
APRIL_1_0700_BJ = dt.datetime(2026, 3, 31, 23, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_tz_env(monkeypatch):
    monkeypatch.delenv("GRIDCORE_TZ", raising=False)


def test_city_tz_default_env_name_and_zone(monkeypatch):
    assert city_tz().key == "Asia/Shanghai"
    assert city_tz("Asia/Urumqi").key == "Asia/Urumqi"
    assert city_tz(BJ) is BJ
    monkeypatch.setenv("GRIDCORE_TZ", "Europe/Paris")
    assert city_tz().key == "Europe/Paris" and default_clock().tz.key == "Europe/Paris"
    with pytest.raises(TimeZoneError, match="IANA"):
        city_tz("Mars/Olympus")
    with pytest.raises(ValueError):
        FixedClock(APRIL_1_0700_BJ, tz="Beijing")


def test_fixed_clock_today_is_the_citys_date():
    clock = FixedClock(APRIL_1_0700_BJ)
    assert clock.now_utc() == APRIL_1_0700_BJ and clock.now_utc().tzinfo is UTC
    assert clock.now() == dt.datetime(2026, 4, 1, 7, 0, tzinfo=BJ)
    assert clock.now().utcoffset() == dt.timedelta(hours=8)
    assert clock.today() == dt.date(2026, 4, 1)  # the server (UTC) would say 31 March
    assert FixedClock(APRIL_1_0700_BJ, tz="UTC").today() == dt.date(2026, 3, 31)


def test_fixed_clock_set_and_advance():
    clock = FixedClock(dt.datetime(2026, 3, 31, 23, 59), tz="Asia/Shanghai")  # naive: city
    assert clock.now_utc() == dt.datetime(2026, 3, 31, 15, 59, tzinfo=UTC)
    assert clock.today() == dt.date(2026, 3, 31)
    clock.advance(dt.timedelta(minutes=1))
    assert clock.today() == dt.date(2026, 4, 1)
    clock.set(APRIL_1_0700_BJ)
    assert clock.now() == dt.datetime(2026, 4, 1, 7, tzinfo=BJ)
    assert "FixedClock" in repr(clock) and "Asia/Shanghai" in repr(clock)


def test_system_clock_is_aware_and_near_the_machine_clock():
    clock = SystemClock(tz="Asia/Shanghai")
    now = clock.now_utc()
    assert now.tzinfo is UTC
    assert abs(now - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)
    assert clock.now().utcoffset() == dt.timedelta(hours=8)
    assert repr(clock) == "SystemClock(tz='Asia/Shanghai')"


def test_to_utc_to_city_and_city_date():
    naive = dt.datetime(2026, 4, 1, 7, 0)
    assert to_utc(naive) == APRIL_1_0700_BJ  # naive is city time
    assert to_utc(naive, ZoneInfo("UTC")) == naive.replace(tzinfo=UTC)
    assert to_city(APRIL_1_0700_BJ) == dt.datetime(2026, 4, 1, 7, tzinfo=BJ)
    assert to_city(naive).tzinfo is BJ
    assert city_date(APRIL_1_0700_BJ) == dt.date(2026, 4, 1)
    assert city_date(APRIL_1_0700_BJ, ZoneInfo("UTC")) == dt.date(2026, 3, 31)
    assert city_date(dt.date(2026, 4, 1)) == dt.date(2026, 4, 1)
    assert FixedClock(APRIL_1_0700_BJ).local(naive) == dt.datetime(2026, 4, 1, 7, tzinfo=BJ)


def test_day_and_month_bounds_are_the_citys_midnights():
    start, end = city_day_bounds(dt.date(2026, 4, 1))
    assert start.isoformat() == "2026-04-01T00:00:00+08:00"
    assert to_utc(start) == dt.datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert end - start == dt.timedelta(days=1)
    assert start <= APRIL_1_0700_BJ < end
    m0, m1 = city_month_bounds(2026, 4)
    assert m0.isoformat() == "2026-04-01T00:00:00+08:00"
    assert m1.isoformat() == "2026-05-01T00:00:00+08:00"
    assert m0 <= APRIL_1_0700_BJ < m1
    d0, d1 = city_month_bounds(2026, 12)
    assert (d0.month, d1.year, d1.month) == (12, 2027, 1)


def test_instant_codec_fixed_width_one_offset_text_order_is_time_order():
    a = dt.datetime(2026, 4, 1, 7, 0, tzinfo=BJ)  # 23:00 UTC the day before
    b = dt.datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    ta, tb = encode_instant(a), encode_instant(b)
    assert ta == "2026-03-31T23:00:00.000000+00:00"
    assert len(ta) == len(tb) and ta < tb  # as text and as time
    assert decode_instant(ta) == a and decode_instant(ta).tzinfo is UTC
    assert encode_instant(dt.datetime(2026, 4, 1, 7)) == ta  # naive: city time
    assert encode_instant(None) is None and decode_instant(None) is None
    assert decode_instant("") is None
    assert decode_instant(a) == a and decode_instant(a).tzinfo is UTC


# ----------------------------------------------------------------- the seam elsewhere


def test_components_default_dates_are_the_citys_today():
    from gridcore.components import new_components

    records = gpd.GeoDataFrame({"class_code": ["0101"]}, geometry=[Point(116.3756, 39.911)],
                               crs="EPSG:4326")
    clock = FixedClock(APRIL_1_0700_BJ)
    got = new_components(records, cell_codes=["110102001001001"], clock=clock)
    assert str(got["change_date"].iloc[0])[:10] == "2026-04-01"


def test_tokens_are_stamped_by_the_clock():
    from gridcore.auth import issue_token

    _, record = issue_token(role="supervisor", name="王", clock=FixedClock(APRIL_1_0700_BJ))
    assert record.created_at == APRIL_1_0700_BJ and record.created_at.tzinfo is UTC
    _, naive = issue_token(role="supervisor", name="王", now=dt.datetime(2026, 4, 1, 7))
    assert naive.created_at == APRIL_1_0700_BJ
