"""Hotspot alerts (`gridcore.heatmap.Alert`), kept per data set."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from .._time import to_utc

_FIELDS = ("cell_code", "cell_codes", "start", "end", "peak", "hour_of_week", "cell_count",
           "count", "baseline", "expected", "z", "p", "q", "fdr", "recurrence", "reason_zh",
           "reason_en")


def _window_text(value: str | dt.datetime) -> str:
    """Return an alert window bound as the text the alerts table keeps (city wall time, ISO).

    Alert windows are hours of the city's clock (``2018-04-05T20:00:00``); an aware
    bound is turned into that wall time so comparisons stay in one form.
    """
    if isinstance(value, dt.datetime):
        t = value
    else:
        t = dt.datetime.fromisoformat(str(value))
    if t.tzinfo is not None:
        from .._time import city_tz

        t = to_utc(t).astimezone(city_tz()).replace(tzinfo=None)
    return t.isoformat(timespec="seconds")


class AlertsMixin:
    """`gridcore.store.AlertStore` over SQL."""

    def replace_heat_alerts(self, dataset: str, alerts: Sequence) -> int:
        """Replace the stored alerts of ``dataset`` (one transaction); return how many.

        ``alerts`` are `gridcore.heatmap.Alert` objects (or their ``to_dict()``).
        """
        now = self.dialect.instant(self._now())
        rows = []
        for a in alerts:
            d = a.to_dict() if hasattr(a, "to_dict") else dict(a)
            d["cell_codes"] = json.dumps(list(d["cell_codes"]))
            for k in ("start", "end", "peak"):
                d[k] = _window_text(d[k])
            rows.append((dataset, *(d[k] for k in _FIELDS), now))
        cols = ", ".join(("dataset", *(f'"{k}"' for k in _FIELDS), "created_at"))
        marks = ", ".join("?" * (len(_FIELDS) + 2))
        with self._begin() as tx:
            tx.execute("DELETE FROM heat_alerts WHERE dataset = ?", (dataset,))
            tx.executemany(f"INSERT INTO heat_alerts ({cols}) VALUES ({marks})", rows)
        return len(rows)

    def heat_alerts(self, *, start: str | dt.datetime | None = None,
                    end: str | dt.datetime | None = None, cell_code: str | None = None,
                    dataset: str | None = None, limit: int = 100, offset: int = 0
                    ) -> list[dict]:
        """Return stored alerts, oldest first, filtered by window overlap, cell, dataset.

        ``start``/``end`` (ISO text or datetimes; aware ones are read in the city's
        time): an alert is kept when its window ``[start, end)`` overlaps them.
        ``cell_code`` matches any cell of it.
        """
        where, params = [], []
        if start is not None:
            where.append('"end" > ?')
            params.append(_window_text(start))
        if end is not None:
            where.append('"start" < ?')
            params.append(_window_text(end))
        if cell_code is not None:
            where.append("(cell_code = ? OR cell_codes LIKE ?)")
            params += [cell_code, f'%"{cell_code}"%']
        if dataset is not None:
            where.append("dataset = ?")
            params.append(dataset)
        sql = (f"SELECT id, dataset, {', '.join(chr(34) + k + chr(34) for k in _FIELDS)}, "
               "created_at FROM heat_alerts")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY "start", z DESC, id LIMIT ? OFFSET ?'
        out = []
        for d in self._rows(sql, (*params, int(limit), int(offset))):
            d["cell_codes"] = json.loads(d["cell_codes"])
            d["created_at"] = to_utc(d["created_at"]).isoformat() if isinstance(
                d["created_at"], dt.datetime) else d["created_at"]
            out.append(d)
        return out

    def count_heat_alerts(self, dataset: str | None = None) -> int:
        """Return how many alerts are stored (of ``dataset`` if given)."""
        if dataset is None:
            return int(self._scalar("SELECT COUNT(*) FROM heat_alerts"))
        return int(self._scalar("SELECT COUNT(*) FROM heat_alerts WHERE dataset = ?",
                                (dataset,)))
