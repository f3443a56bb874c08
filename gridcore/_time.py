"""One clock and one time zone for the whole city.

Every "now" in gridcore comes from a `Clock`; the city's time zone (default
``Asia/Shanghai``, a setting of the service) decides what *today*, a *day*, a *month*
and a *period* are, for deadlines, metrics, assignments and alerts. Stored times carry
their offset; instants are compared as instants, never as text.

Tests set the time with `FixedClock`, the service and the CLI use
`SystemClock`. The library takes a clock as an argument where it needs one; the
default, `default_clock()`, is the system clock in ``$GRIDCORE_TZ`` (or Asia/Shanghai).

Examples
--------
>>> import datetime as dt
>>> clock = FixedClock(dt.datetime(2026, 3, 31, 23, 0, tzinfo=dt.UTC))
>>> clock.today()            # 07:00 on 1 April in Beijing
datetime.date(2026, 4, 1)
>>> city_day_bounds(clock.today(), clock.tz)[0].isoformat()
'2026-04-01T00:00:00+08:00'
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import GridcoreError

DEFAULT_TZ = "Asia/Shanghai"


class TimeZoneError(GridcoreError, ValueError):
    """An unknown time zone name."""


def city_tz(name: str | ZoneInfo | None = None) -> ZoneInfo:
    """Return the city's time zone: ``name``, else ``$GRIDCORE_TZ``, else Asia/Shanghai.

    A `ZoneInfo` is returned as it is, so every ``tz`` argument may be a name or a zone.

    Raises
    ------
    TimeZoneError
        ``name`` is not an IANA time zone.
    """
    if isinstance(name, ZoneInfo):
        return name
    name = name or os.environ.get("GRIDCORE_TZ") or DEFAULT_TZ
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(
            f"{name!r} is not a time zone name; use an IANA name such as Asia/Shanghai"
        ) from None


class Clock:
    """What time it is, and in which time zone the city lives.

    Subclasses implement `now_utc`; everything else derives from it.

    Parameters
    ----------
    tz : str or ZoneInfo, optional
        The city's time zone (default `city_tz`).
    """

    def __init__(self, tz: str | ZoneInfo | None = None) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else city_tz(tz)

    def now_utc(self) -> dt.datetime:
        """Return the current instant, timezone-aware, in UTC."""
        raise NotImplementedError

    def now(self) -> dt.datetime:
        """Return the current instant in the city's time zone."""
        return self.now_utc().astimezone(self.tz)

    def today(self) -> dt.date:
        """Return the city's date now (Beijing's date, not the server's)."""
        return self.now().date()

    def local(self, t: dt.datetime) -> dt.datetime:
        """Return ``t`` in the city's time zone (a naive ``t`` is read as city time)."""
        return to_city(t, self.tz)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tz={self.tz.key!r})"


class SystemClock(Clock):
    """The machine's clock."""

    def now_utc(self) -> dt.datetime:  # noqa: D102
        return dt.datetime.now(dt.UTC)


class FixedClock(Clock):
    """A clock stopped at one instant (tests, replays) that a test may `set` or `advance`.

    Parameters
    ----------
    instant : datetime
        The time it shows; a naive one is read as city time.
    tz : str or ZoneInfo, optional
        The city's time zone.
    """

    def __init__(self, instant: dt.datetime, tz: str | ZoneInfo | None = None) -> None:
        super().__init__(tz)
        self._instant = to_utc(instant, self.tz)

    def now_utc(self) -> dt.datetime:  # noqa: D102
        return self._instant

    def set(self, instant: dt.datetime) -> None:
        """Stop the clock at ``instant`` (naive: city time)."""
        self._instant = to_utc(instant, self.tz)

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock on by ``delta``."""
        self._instant = self._instant + delta

    def __repr__(self) -> str:
        return f"FixedClock({self._instant.isoformat()!r}, tz={self.tz.key!r})"


def default_clock() -> Clock:
    """Return the system clock in the city's time zone (``$GRIDCORE_TZ``)."""
    return SystemClock()


def to_utc(t: dt.datetime, tz: ZoneInfo | None = None) -> dt.datetime:
    """Return ``t`` as an aware UTC datetime; a naive ``t`` is read in ``tz`` (the city's)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz or city_tz())
    return t.astimezone(dt.UTC)


def to_city(t: dt.datetime, tz: ZoneInfo | None = None) -> dt.datetime:
    """Return ``t`` in the city's time zone; a naive ``t`` is read as city time."""
    zone = tz or city_tz()
    if t.tzinfo is None:
        return t.replace(tzinfo=zone)
    return t.astimezone(zone)


def city_date(t: dt.datetime | dt.date, tz: ZoneInfo | None = None) -> dt.date:
    """Return the city's calendar date of ``t`` (07:00 in Beijing on 1 April is 1 April).

    A plain date is returned as it is; a naive datetime is read as city time.
    """
    if isinstance(t, dt.datetime):
        return to_city(t, tz).date()
    return t


def city_day_bounds(day: dt.date, tz: ZoneInfo | None = None
                    ) -> tuple[dt.datetime, dt.datetime]:
    """Return ``[start, end)`` of the city's calendar day ``day`` as aware datetimes."""
    zone = tz or city_tz()
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def city_month_bounds(year: int, month: int, tz: ZoneInfo | None = None
                      ) -> tuple[dt.datetime, dt.datetime]:
    """Return ``[start, end)`` of a calendar month in the city's time zone."""
    zone = tz or city_tz()
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, end


def encode_instant(t: dt.datetime | None) -> str | None:
    """Return ``t`` as fixed-width ISO 8601 UTC text (``...+00:00``, microseconds).

    The one text form of an instant in a store that keeps times as text: fixed width and
    one offset, so text order is time order. A naive ``t`` is read as city time.
    """
    if t is None:
        return None
    return to_utc(t).isoformat(timespec="microseconds")


def decode_instant(text: str | dt.datetime | None) -> dt.datetime | None:
    """Return the aware datetime of stored text (or pass an aware datetime through)."""
    if text is None or text == "":
        return None
    if isinstance(text, dt.datetime):
        return to_utc(text)
    return to_utc(dt.datetime.fromisoformat(text))
