"""Working time (工作时) and calendar time (自然时): deadlines that roll over nights and holidays.

A command centre counts most time limits in working time: the working hours of working
days (default 08:00–12:00 and 14:00–18:00, 480 minutes a day), where a working day is a
weekday that is not a public holiday, or a weekend day named a make-up working day
(调休上班). Other limits run on calendar time. `WorkCalendar` holds both rules for one city
(its time zone is the city's) and adds a limit to many start instants at once.

Examples
--------
>>> import datetime as dt
>>> cal = WorkCalendar.china()
>>> friday = dt.datetime(2026, 3, 6, 17, 30, tzinfo=cal.tz)     # a Friday, 17:30
>>> cal.add(friday, hours=2).isoformat()                          # due Monday 09:30
'2026-03-09T09:30:00+08:00'
>>> cal.add(friday, hours=2, clock="natural").isoformat()
'2026-03-06T19:30:00+08:00'
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from ._time import city_tz
from .errors import InvalidValueError

__all__ = ["LimitClock", "WorkCalendar", "load_holidays"]

DEFAULT_HOURS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(8), dt.time(12)), (dt.time(14), dt.time(18)))


class LimitClock(StrEnum):
    """Which clock a time limit runs on."""

    WORKING = "working"  # 工作时: working hours of working days
    NATURAL = "natural"  # 自然时: calendar time

    @classmethod
    def parse(cls, value: str | LimitClock) -> LimitClock:
        """Return the clock named ``value`` (also 工作时/自然时), or say which exist."""
        names = {"工作时": cls.WORKING, "自然时": cls.NATURAL}
        text = str(value).strip()
        if text in names:
            return names[text]
        try:
            return cls(text.lower())
        except ValueError:
            raise InvalidValueError(
                f"unknown clock {value!r}: expected working (工作时) or natural (自然时)"
            ) from None


@lru_cache(maxsize=1)
def load_holidays() -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """Return China's shipped public holidays and make-up working days (gridcore/data)."""
    from ._data import read_data_csv

    table = read_data_csv("holidays_cn.csv")
    days = {kind: frozenset(dt.date.fromisoformat(d) for d in table.loc[table["kind"] == kind,
                                                                          "date"])
            for kind in ("holiday", "workday")}
    return days["holiday"], days["workday"]


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and hours of a city.

    Parameters
    ----------
    hours : sequence of (time, time)
        Working periods of a working day, in order, not overlapping.
    holidays : set of date
        Days off although they are weekdays (and weekend days that are holidays).
    workdays : set of date
        Weekend days worked (调休上班).
    tz : str or ZoneInfo, optional
        The city's time zone (default `gridcore._time.city_tz`).
    """

    hours: tuple[tuple[dt.time, dt.time], ...] = DEFAULT_HOURS
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    tz: ZoneInfo = field(default_factory=city_tz)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", city_tz(self.tz))
        object.__setattr__(self, "hours", tuple((a, b) for a, b in self.hours))
        last = dt.time(0)
        for a, b in self.hours:
            if not (last <= a < b):
                raise InvalidValueError(
                    f"working periods must be in order and not overlap; got {self.hours}")
            last = b
        if not self.hours:
            raise InvalidValueError("a working calendar needs at least one working period")
        both = self.holidays & self.workdays
        if both:
            raise InvalidValueError(
                f"a day cannot be a holiday and a make-up working day: {sorted(both)}")

    @classmethod
    def china(cls, *, tz: str | ZoneInfo | None = None,
              hours: Sequence[tuple[dt.time, dt.time]] = DEFAULT_HOURS) -> WorkCalendar:
        """Return the calendar with China's shipped holidays and make-up working days."""
        holidays, workdays = load_holidays()
        return cls(hours=tuple(hours), holidays=holidays, workdays=workdays, tz=city_tz(tz))

    @property
    def seconds_per_day(self) -> int:
        """Working seconds of one working day (480 minutes by default)."""
        return sum(_seconds(b) - _seconds(a) for a, b in self.hours)

    def is_working_day(self, day: dt.date) -> bool:
        """Tell whether ``day`` is a working day."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    # ------------------------------------------------------------------ vectorised core

    def add_many(self, starts: Iterable[dt.datetime], seconds: Iterable[float], *,
                 clock: LimitClock | str = LimitClock.WORKING) -> list[dt.datetime]:
        """Return each start plus its limit in seconds on ``clock``, in the city's time.

        Aware starts are instants; naive ones are read as the city's wall-clock time. A
        start outside working hours counts from the next working moment; a limit that
        ends exactly at the end of a period is due then (12:00, not 14:00).
        """
        clock = LimitClock.parse(clock)
        t = _epoch([self._aware(s) for s in starts])
        secs = np.asarray(list(seconds), dtype=float)
        if t.shape != secs.shape:
            raise InvalidValueError(f"{t.size} starts but {secs.size} limits")
        if np.any(~np.isfinite(secs)) or np.any(secs < 0):
            raise InvalidValueError("time limits must be finite and not negative")
        if t.size == 0:
            return []
        if clock is LimitClock.NATURAL:
            due = t + secs
        else:
            due = self._add_working(t, secs)
        return [dt.datetime.fromtimestamp(float(x), self.tz) for x in due]

    def between_many(self, starts: Iterable[dt.datetime], ends: Iterable[dt.datetime], *,
                     clock: LimitClock | str = LimitClock.WORKING) -> np.ndarray:
        """Return the seconds on ``clock`` from each start to its end (negative if before)."""
        clock = LimitClock.parse(clock)
        a = _epoch([self._aware(s) for s in starts])
        b = _epoch([self._aware(e) for e in ends])
        if clock is LimitClock.NATURAL or a.size == 0:
            return b - a
        lo = min(a.min(), b.min())
        hi = max(a.max(), b.max())
        s, e, cum = self._intervals(lo, hi)
        return _worked(b, s, e, cum) - _worked(a, s, e, cum)

    def _add_working(self, t: np.ndarray, secs: np.ndarray) -> np.ndarray:
        per_day = self.seconds_per_day
        # enough days to hold the longest limit, with room for the longest run of days off
        span_days = int(math.ceil(float(secs.max()) / per_day)) * 2 + 40
        while True:
            s, e, cum = self._intervals(float(t.min()), float(t.max()) + span_days * 86400)
            target = _worked(t, s, e, cum) + secs
            total = cum[-1] + (e[-1] - s[-1])
            if np.all(target <= total):
                break
            span_days *= 2  # a calendar with very few working days: look further
        ends_cum = cum + (e - s)
        j = np.searchsorted(ends_cum, target, side="left")
        return np.where(secs > 0, s[j] + (target - cum[j]), t)  # no limit: due at once

    def _intervals(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the working periods (epoch seconds) from ``lo`` to ``hi`` and cumulations.

        The third array holds the working seconds before each period.
        """
        first = dt.datetime.fromtimestamp(lo, self.tz).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(hi, self.tz).date() + dt.timedelta(days=1)
        starts, ends = [], []
        day = first
        while day <= last:
            if self.is_working_day(day):
                for a, b in self.hours:
                    starts.append(dt.datetime.combine(day, a, self.tz).timestamp())
                    ends.append(dt.datetime.combine(day, b, self.tz).timestamp())
            day += dt.timedelta(days=1)
        if not starts:
            raise InvalidValueError(f"no working day between {first} and {last}")
        s, e = np.asarray(starts), np.asarray(ends)
        cum = np.concatenate([[0.0], np.cumsum(e - s)[:-1]])
        return s, e, cum

    # ------------------------------------------------------------------ scalar wrappers

    def add(self, start: dt.datetime, *, hours: float,
            clock: LimitClock | str = LimitClock.WORKING) -> dt.datetime:
        """Return ``start`` plus ``hours`` on ``clock`` (see `add_many`)."""
        return self.add_many([start], [hours * 3600.0], clock=clock)[0]

    def between(self, start: dt.datetime, end: dt.datetime, *,
                clock: LimitClock | str = LimitClock.WORKING) -> float:
        """Return the hours on ``clock`` from ``start`` to ``end``."""
        return float(self.between_many([start], [end], clock=clock)[0]) / 3600.0

    def _aware(self, t: dt.datetime) -> dt.datetime:
        if not isinstance(t, dt.datetime):
            raise InvalidValueError(f"expected a datetime, got {type(t).__name__}")
        return t if t.tzinfo is not None else t.replace(tzinfo=self.tz)


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _epoch(times: list[dt.datetime]) -> np.ndarray:
    return np.asarray([t.timestamp() for t in times], dtype=float)


def _worked(t: np.ndarray, s: np.ndarray, e: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Return the working seconds from the first period's start to each instant ``t``."""
    i = np.searchsorted(e, t, side="right")  # the first period that ends after t
    i = np.minimum(i, len(s) - 1)
    inside = np.clip(t - s[i], 0.0, e[i] - s[i])
    after_all = t >= e[-1]
    return np.where(after_all, cum[-1] + (e[-1] - s[-1]), cum[i] + inside)
