"""Calibration of the surge detector, chronic hotspots and before/after, on realistic counts.

The counts come from `gridcore.sample_heatmap.realistic_counts`, which is *not* the
detector's model: mixed cell rhythms, city-wide and regional day shocks, weekly drift,
a shared factor per cell-day and negative binomial noise per cell-hour (shape 10, and
the heavy shape 2). Scale: 40 x 40 and 50 x 50 lattices; the bound on false alerts is
per day of scanning whatever the number of cells (the threshold is Bonferroni over all
cells, hours and windows of a day), so these rates are the ones the 43,000-cell city
should see, if the tails hold at its ~27x smaller per-test threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridcore.errors import CellNotFoundError
from gridcore.heatmap import (
    chronic_hotspots,
    compare_counts,
    expected_counts,
    scan_surges,
)
from gridcore.sample_heatmap import lattice_adjacency, realistic_counts

HISTORY_DAYS = 56  # eight weeks: the scan's default history (see the README on four)


def _scan(sim, **kw):
    return scan_surges(sim.counts, sim.hours, sim.adjacency, sim.codes,
                       start=sim.hours[HISTORY_DAYS * 24], **kw)


# --------------------------------------------------------------------------- the simulator


def test_simulator_has_heavy_tailed_busy_cells_and_rhythm():
    sim = realistic_counts(50, 50, days=14, seed=3)
    peak = sim.mean[sim.hours.hour.isin([12, 18])].mean(0)
    share = (peak >= 10).mean()
    assert 0.01 <= share <= 0.08  # "a few percent of cells reach 10+ an hour at meal peaks"
    assert np.median(peak) < 2  # most cells are quiet
    by_hour = sim.counts.sum(1).reshape(-1, 24).mean(0)
    assert by_hour[12] > 5 * by_hour[3]  # a daily rhythm
    day_totals = sim.counts.sum(1).reshape(-1, 24).sum(1)
    assert day_totals.std() / day_totals.mean() > 0.08  # day shocks move the whole city


def test_simulator_noise_is_negative_binomial_of_the_given_shape():
    sim = realistic_counts(30, 30, days=7, seed=4, shape=2.0, day_shock_sd=0,
                           region_shock_sd=0, drift_sd=0, cell_day_shape=1e9)
    mu, y = sim.mean.ravel(), sim.counts.ravel().astype(float)
    busy = mu > 5
    # var = mu + mu^2 / shape  =>  shape = sum(mu^2) / sum((y-mu)^2 - mu)
    shape = (mu[busy] ** 2).sum() / (((y - mu) ** 2 - mu)[busy]).sum()
    assert 1.6 < shape < 2.5


def test_planted_surges_and_chronic_cells_are_where_asked():
    ref = realistic_counts(20, 20, days=7, seed=5)
    sim = realistic_counts(20, 20, days=7, seed=5, surges=[(33, 40, 3, 4.0)], chronic=[210])
    np.testing.assert_allclose(sim.mean[40:43, 33], 4 * ref.mean[40:43, 33])
    nb = lattice_adjacency(20, 20)[210].indices
    assert sim.level[210] == pytest.approx(6 * sim.level[nb].mean())


# --------------------------------------------------------------------------- false alerts


def _false_alerts(shape, seeds, size, days):
    total, weeks = 0, 0
    for seed in seeds:
        sim = realistic_counts(size, size, days=HISTORY_DAYS + days, shape=shape, seed=seed)
        alerts = _scan(sim)
        assert all(a.kind == "surge" and a.recurrence_days >= 30 for a in alerts)
        total += len(alerts)
        weeks += days / 7
    return total, weeks


@pytest.mark.parametrize("shape", [10.0, 2.0])
def test_realistic_null_raises_at_most_one_false_alert_a_week(shape):
    total, weeks = _false_alerts(shape, seeds=(11, 12, 13), size=40, days=7)
    assert total <= weeks, f"{total} false surge alerts in {weeks:.0f} weeks at shape {shape}"


@pytest.mark.slow
@pytest.mark.parametrize("shape", [10.0, 2.0])
def test_realistic_null_over_more_weeks_and_seeds(shape):
    total, weeks = _false_alerts(shape, seeds=range(21, 27), size=50, days=14)
    assert total <= weeks, f"{total} false surge alerts in {weeks:.0f} weeks at shape {shape}"


def test_the_old_gi_star_rule_would_fail_this_null():
    """The reason for the new detector: Gi* against the city mean flags busy cells."""
    from gridcore.heatmap import gi_star

    sim = realistic_counts(30, 30, days=1, seed=14, shape=2.0)
    hour = sim.counts[12]  # a meal peak, nothing planted
    g = gi_star(hour, lattice_adjacency(30, 30))
    assert (g.p < 1e-6).sum() >= 5


# --------------------------------------------------------------------------- power


def _plant(seed, *, shape, factor, hours, lo, hi, size=40):
    ref = realistic_counts(size, size, days=HISTORY_DAYS + 7, shape=shape, seed=seed)
    rng = np.random.default_rng(seed)
    first = int(rng.integers(HISTORY_DAYS, HISTORY_DAYS + 7)) * 24 + int(rng.choice([11, 17]))
    base = ref.mean[first:first + hours].min(0)
    cell = int(rng.choice(np.flatnonzero((base >= lo) & (base < hi))))
    sim = realistic_counts(size, size, days=HISTORY_DAYS + 7, shape=shape, seed=seed,
                           surges=[(cell, first, hours, factor)])
    return sim, cell, first


def _found(sim, cell, first, hours, alerts):
    t0, t1 = sim.hours[first], sim.hours[first] + pd.Timedelta(hours=hours)
    code = sim.codes[cell]
    return any(code in a.cell_codes and a.start.tz_localize(None) < t1
               and a.end.tz_localize(None) > t0 for a in alerts)


def test_a_4x_surge_of_3_hours_at_10_to_20_an_hour_is_found_8_times_in_10():
    # The issue asks for 9 in 10. With eight weeks of history on this simulator (NB shape
    # 10 per cell-hour plus cell-day, regional and drift variation the detector has to
    # measure) the detector finds 8 of these 10 at one false alert in ~3 weeks; the
    # misses are surges whose drawn counts came out under 3x. See the README's table.
    found = []
    for seed in range(200, 210):
        sim, cell, first = _plant(seed, shape=10.0, factor=4.0, hours=3, lo=10, hi=20)
        alerts = _scan(sim)
        found.append(_found(sim, cell, first, 3, alerts))
        hit = [a for a in alerts if sim.codes[cell] in a.cell_codes]
        for a in hit:  # the alert says what it found, in the city's time
            assert a.observed > 2 * a.expected
            assert a.start.utcoffset() == pd.Timedelta(hours=8)
            assert "倍" in a.why and "天" in a.why
    assert sum(found) >= 8, found


def test_a_surge_at_shape_2_is_often_missed_but_the_scan_stays_calibrated():
    # The honest loss: at shape 2 per cell-hour a 4x, 3-hour surge is hard to tell from
    # noise at one false alert a week (the README's power table shows how hard).
    found, false = 0, 0
    for seed in range(300, 306):
        sim, cell, first = _plant(seed, shape=2.0, factor=4.0, hours=3, lo=10, hi=20)
        alerts = _scan(sim)
        found += _found(sim, cell, first, 3, alerts)
        false += sum(sim.codes[cell] not in a.cell_codes for a in alerts)
    assert found < 6
    assert false <= 6  # six simulated weeks


# --------------------------------------------------------------------------- chronic


def test_a_cell_at_6x_its_neighbours_all_month_is_chronic_not_daily_surges():
    sim = realistic_counts(40, 40, days=HISTORY_DAYS + 7, shape=10.0, seed=7, chronic=[820])
    start = sim.hours[HISTORY_DAYS * 24]
    code = sim.codes[820]
    chronic = chronic_hotspots(sim.counts, sim.hours, sim.adjacency, sim.codes, start=start)
    mine = [a for a in chronic if a.cell_codes == (code,)]
    assert len(mine) == 1  # once per window
    assert mine[0].kind == "chronic"
    assert mine[0].trend in {"persistent", "intensifying", "diminishing"}
    assert mine[0].observed > 4 * mine[0].expected / 2  # ~6x the neighbours (expected is 2x)
    assert "常发热点" in mine[0].why
    surges = _scan(sim)
    assert not [a for a in surges if code in a.cell_codes]


def test_chronic_categories_follow_the_daily_series():
    # a cell that becomes hot on the last 3 days only: consecutive; one hot the last day: new
    ref = realistic_counts(30, 30, days=10, seed=8, shape=10.0)
    n = len(ref.hours)
    ordinary = np.flatnonzero((ref.level > 0.5) & (ref.level < 1.0))  # enough events to tell
    three, one = int(ordinary[0]), int(ordinary[-1])
    sim = realistic_counts(30, 30, days=10, seed=8, shape=10.0,
                           surges=[(three, n - 72, 72, 12.0), (one, n - 24, 24, 12.0)])
    by_cell = {a.cell_codes[0]: a.trend
               for a in chronic_hotspots(sim.counts, sim.hours, sim.adjacency, sim.codes)}
    assert by_cell.get(sim.codes[three]) == "consecutive"
    assert by_cell.get(sim.codes[one]) == "new"
    assert sim.codes[int(np.argsort(ref.level)[len(ref.level) // 2])] not in by_cell


# --------------------------------------------------------------------------- before/after


def _placebo(r):
    sim = realistic_counts(20, 20, days=30, shape=10.0 if r % 2 else 2.0, seed=1000 + r,
                           day_shock_sd=0.25, region_shock_sd=0.15)
    rng = np.random.default_rng(r)
    cell = int(rng.choice(np.flatnonzero(sim.level > np.median(sim.level))))
    change = sim.hours[24 * int(rng.integers(9, 22))]
    return compare_counts(sim.counts, sim.hours, sim.adjacency, sim.codes,
                          cells=[sim.codes[cell]], change=change)


@pytest.mark.slow
def test_before_after_placebos_are_significant_about_5_percent_of_the_time():
    # 400 placebos with strong day-level shocks: 5 % gives 20 +- 4.4, the old rule's 17.5 %
    # would give 70; accept up to 8 %.
    p = np.array([_placebo(r).p_value for r in range(400)])
    assert (p < 0.05).mean() <= 0.08
    assert (p < 0.05).mean() >= 0.01  # not so conservative it could never find anything


def test_before_after_placebos_quick():
    p = np.array([_placebo(r).p_value for r in range(120)])
    assert (p < 0.05).sum() <= 12  # 10 %: at 17.5 % the expected count is 21


def test_before_after_finds_a_true_50_percent_drop():
    found, ratios = 0, []
    for r in range(20):
        ref = realistic_counts(20, 20, days=30, seed=2000 + r)
        rng = np.random.default_rng(r)
        cell = int(rng.choice(np.flatnonzero(ref.level > np.percentile(ref.level, 75))))
        k = int(rng.integers(9, 22))
        sim = realistic_counts(20, 20, days=30, seed=2000 + r,
                               surges=[(cell, 24 * k, 24 * (30 - k), 0.5)])
        res = compare_counts(sim.counts, sim.hours, sim.adjacency, sim.codes,
                             cells=[sim.codes[cell]], change=sim.hours[24 * k])
        found += res.p_value < 0.05 and res.ci_high < 1
        ratios.append(res.ratio)
        assert sim.codes[cell] not in res.controls
    assert found >= 18
    assert 0.4 < np.median(ratios) < 0.6


def test_controls_avoid_the_treated_cells_spill_over_rings():
    sim = realistic_counts(20, 20, days=20, seed=9)
    res = compare_counts(sim.counts, sim.hours, sim.adjacency, sim.codes,
                         cells=[sim.codes[210]], change=sim.hours[240], exclude_rings=2)
    r0, c0 = divmod(210, 20)
    for code in res.controls:
        r, c = divmod(list(sim.codes).index(code), 20)
        assert max(abs(r - r0), abs(c - c0)) > 2
    assert len(res.controls) == 20 and "difference in differences" in res.method


def test_only_hours_in_the_data_count():
    # data stop 3 days after the change: the after period is 3 days, not zeros to a window
    sim = realistic_counts(20, 20, days=20, seed=10)
    keep = 24 * 17
    busy = int(np.argmax(sim.level))
    res = compare_counts(sim.counts[:keep], sim.hours[:keep], sim.adjacency, sim.codes,
                         cells=[sim.codes[busy]], change=sim.hours[24 * 14])
    assert res.days_after == 3
    assert res.p_value > 0.01 and 0.5 < res.ratio < 2


def test_compare_errors():
    sim = realistic_counts(10, 10, days=10, seed=1)
    args = (sim.counts, sim.hours, sim.adjacency, sim.codes)
    with pytest.raises(CellNotFoundError):
        compare_counts(*args, cells=["110102001999999"], change=sim.hours[120])
    with pytest.raises(ValueError, match="both sides"):
        compare_counts(*args, cells=[sim.codes[5]],
                       change=sim.hours[-1].normalize() + pd.Timedelta("2D"))
    with pytest.raises(ValueError, match="candidate control"):
        compare_counts(*args, cells=[sim.codes[5]], change=sim.hours[120], n_controls=500)


def test_scan_errors():
    sim = realistic_counts(10, 10, days=10, seed=1)
    with pytest.raises(ValueError, match="days of history"):
        expected_counts(sim.counts, sim.hours, sim.adjacency, start=sim.hours[24 * 5])
    with pytest.raises(ValueError, match="consecutive"):
        scan_surges(sim.counts[::2], sim.hours[::2], sim.adjacency, sim.codes,
                    start=sim.hours[24 * 8])
    with pytest.raises(ValueError, match="codes"):
        scan_surges(sim.counts, sim.hours, sim.adjacency, sim.codes[:5],
                    start=sim.hours[24 * 8])
