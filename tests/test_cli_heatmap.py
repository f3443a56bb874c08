"""`gridcore heatmap scan` and `gridcore heatmap compare`, run as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore.sample_heatmap import realistic_counts
from tests.test_cli import run

DAYS = 63  # eight weeks of history and the week scanned


@pytest.fixture(scope="module")
def events_csv(tmp_path_factory, city):
    """Synthetic events on 100 of the sample city's cells, with a planted 10x surge."""
    sim0 = realistic_counts(10, 10, days=DAYS, seed=3, median_level=0.08)
    busy = int(np.argmax(sim0.level))
    first = (DAYS - 4) * 24 + 11
    sim = realistic_counts(10, 10, days=DAYS, seed=3, median_level=0.08,
                           surges=[(busy, first, 3, 10.0)])
    cells = city.cells.iloc[:100]
    pts = shapely.point_on_surface(cells.geometry.values)
    t, c = np.nonzero(sim.counts)
    reps = sim.counts[t, c]
    t, c = np.repeat(t, reps), np.repeat(c, reps)
    rng = np.random.default_rng(0)
    times = (sim.hours[t] + pd.to_timedelta(rng.integers(0, 3600, len(t)), unit="s"))
    frame = pd.DataFrame({
        "time": times.tz_localize("Asia/Shanghai").map(lambda x: x.isoformat()),
        "lon": shapely.get_x(pts)[c], "lat": shapely.get_y(pts)[c]})
    path = tmp_path_factory.mktemp("events") / "events.csv"
    frame.to_csv(path, index=False)
    return path, str(cells["code"].iloc[busy]), sim.hours[first]


def test_scan_writes_the_alerts_with_their_evidence(env_db, events_csv, tmp_path):
    path, code, when = events_csv
    out_file = tmp_path / "alerts.json"
    start = (when - pd.Timedelta(days=3)).strftime("%Y-%m-%d")
    end = (when + pd.Timedelta(days=3)).strftime("%Y-%m-%d")
    out = run("heatmap", "scan", "--events", str(path), "--crs", "wgs84", "--start", start,
              "--end", end, "--output", str(out_file), db=env_db)
    assert out.returncode == 0, out.stderr
    alerts = json.loads(out_file.read_text(encoding="utf-8"))
    surges = [a for a in alerts if a["kind"] == "surge" and code in a["cell_codes"]]
    assert surges, alerts
    a = surges[0]
    assert {"kind", "cell_codes", "start", "end", "observed", "expected", "recurrence_days",
            "why"} <= set(a)
    assert a["start"].endswith("+08:00") and a["end"].endswith("+08:00")
    assert pd.Timestamp(a["start"]) <= when.tz_localize("Asia/Shanghai") + pd.Timedelta("3h")
    assert a["observed"] > 3 * a["expected"] and a["recurrence_days"] >= 30
    assert "surge" in out.stderr and "Traceback" not in out.stderr
    for x in alerts:  # every alert is for the window asked
        assert pd.Timestamp(x["end"]) > pd.Timestamp(start).tz_localize("Asia/Shanghai")


def test_compare_writes_ratio_interval_and_controls(env_db, events_csv, tmp_path):
    path, code, when = events_csv
    out_file = tmp_path / "result.json"
    change = (when - pd.Timedelta(days=20)).strftime("%Y-%m-%d")  # a placebo date
    out = run("heatmap", "compare", "--events", str(path), "--crs", "wgs84", "--cells", code,
              "--change", change, "--output", str(out_file), db=env_db)
    assert out.returncode == 0, out.stderr
    r = json.loads(out_file.read_text(encoding="utf-8"))
    assert {"ratio", "ci_low", "ci_high", "p_value", "controls", "method"} <= set(r)
    assert r["ci_low"] < r["ratio"] < r["ci_high"]
    assert code not in r["controls"] and len(r["controls"]) == 20


@pytest.mark.parametrize("content,name,message", [
    ("time,lon,lat\n2018-04-01T12:00:00,116.37,39.91\n", "e.csv", "no UTC offset"),
    ("when,lon,lat\n2018-04-01T12:00:00+08:00,116.37,39.91\n", "e.csv", "missing column"),
    ("time,lon,lat\n2018-04-01T12:00:00+08:00,116.37,39.91\n", "e.json", ".csv or .parquet"),
    ("time,lon,lat\n2018-04-01T12:00:00+08:00,116.37,39.91\n", "e.csv", "days of history"),
])
def test_bad_events_are_one_line_errors(env_db, tmp_path, content, name, message):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    out = run("heatmap", "scan", "--events", str(f), "--crs", "wgs84", "--start", "2018-04-01",
              "--end", "2018-04-02", "--output", str(tmp_path / "a.json"), db=env_db)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len([ln for ln in out.stderr.splitlines() if ln.startswith("gridcore: error")]) == 1
