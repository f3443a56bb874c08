"""Tests of gridcore.heatmap: binning, Gi*, FDR, alerts, before/after."""

from __future__ import annotations

import esda
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from libpysal.weights import lat2W
from scipy import stats

from gridcore.errors import CellNotFoundError, CoordinateError, DataFileError
from gridcore.heatmap import (
    Alert,
    aggregate_events,
    aggregate_events_h3,
    alert_to_case,
    benjamini_hochberg,
    cell_weights,
    compare_before_after,
    counts_to_matrix,
    events_to_cell_positions,
    events_to_h3,
    gi_star,
    h3_weights,
    hotspot_alerts,
    recurring_hotspots,
    scan_hotspots,
    times_to_bins,
)
from gridcore.sample_heatmap import (
    _LANE,
    TANGZI_MEASURE,
    synthetic_box_grid,
    synthetic_ebike_positions,
    synthetic_noise_events,
)


def _gi_star_by_formula(x: np.ndarray, nrows: int, ncols: int) -> np.ndarray:
    """Getis & Ord (1995) Gi*, written out cell by cell over a queen lattice."""
    n = x.size
    grid = x.reshape(nrows, ncols)
    xbar = x.mean()
    s = np.sqrt((x**2).mean() - xbar**2)
    out = np.empty(n)
    for r in range(nrows):
        for c in range(ncols):
            block = grid[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            wi = block.size  # neighbours plus the cell itself, binary weights
            num = block.sum() - xbar * wi
            den = s * np.sqrt((n * wi - wi**2) / (n - 1))
            out[r * ncols + c] = num / den
    return out


@pytest.fixture(scope="module")
def lattice():
    rng = np.random.default_rng(5)
    y = rng.poisson(2.0, 25).astype(float)
    y[[6, 7, 12]] += [6, 9, 14]
    return y, lat2W(5, 5, rook=False)


def test_gi_star_matches_formula_and_esda(lattice):
    y, w = lattice
    ours = gi_star(y, w)
    np.testing.assert_allclose(ours.z, _gi_star_by_formula(y, 5, 5), rtol=1e-12)
    lib = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(ours.z, lib.Zs, rtol=1e-12)
    # normal p is one-sided: esda's p_norm is the tail of |z|, equal where z > 0
    pn = gi_star(y, w, pvalue="normal").p
    pos = lib.Zs > 0
    np.testing.assert_allclose(pn[pos], lib.p_norm[pos], rtol=1e-10)


def test_gi_star_poisson_p_is_the_exact_tail(lattice):
    y, w = lattice
    g = gi_star(y, w)
    i = int(np.argmax(g.z))
    nsum = y[[j for j in range(25) if abs(j // 5 - i // 5) <= 1 and abs(j % 5 - i % 5) <= 1]].sum()
    assert g.neighbourhood_sum[i] == nsum
    wi = len([j for j in range(25) if abs(j // 5 - i // 5) <= 1 and abs(j % 5 - i % 5) <= 1])
    assert g.p[i] == pytest.approx(stats.poisson.sf(nsum - 1, y.mean() * wi), rel=1e-9)


def test_gi_star_vectorised_over_bins_equals_one_by_one(lattice):
    y, w = lattice
    rng = np.random.default_rng(1)
    ys = np.vstack([y, rng.poisson(1.0, 25), np.zeros(25)])
    both = gi_star(ys, w)
    for k in range(2):
        np.testing.assert_allclose(both.z[k], gi_star(ys[k], w).z)
    assert (both.z[2] == 0).all() and (both.p[2] == 1).all()  # an empty hour: no hotspot


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.array([]), "empty"),
        (np.ones(24), "24 cells"),
        (np.r_[np.ones(24), np.nan], "NaN"),
        (np.r_[np.ones(24), 0.5], "integer"),
        (np.ones((2, 2, 25)), "1-D"),
    ],
)
def test_gi_star_rejects_bad_values(lattice, values, match):
    with pytest.raises(ValueError, match=match):
        gi_star(values, lattice[1])


def test_enum_option_error_lists_valid_values(lattice):
    with pytest.raises(ValueError, match="'poisson', 'normal'"):
        gi_star(lattice[0], lattice[1], pvalue="permutation")
    with pytest.raises(ValueError, match="'hour', 'hour_of_week', 'day'"):
        times_to_bins(pd.to_datetime(["2018-04-01"]), "week")


def test_benjamini_hochberg_against_definition_and_esda():
    rng = np.random.default_rng(3)
    p = np.r_[rng.uniform(0, 1e-3, 30), rng.uniform(size=970)]
    q = benjamini_hochberg(p)
    srt = np.sort(p)
    k = np.nonzero(srt <= 0.05 * np.arange(1, p.size + 1) / p.size)[0].max() + 1
    assert (q <= 0.05).sum() == k
    assert ((p < esda.fdr(p, 0.05)) == (q <= 0.05)).all()
    # a partial family: the untested rest count as p = 1
    np.testing.assert_allclose(
        benjamini_hochberg(p[:30], m=1000), benjamini_hochberg(np.r_[p[:30], np.ones(970)])[:30]
    )
    with pytest.raises(ValueError):
        benjamini_hochberg([0.2, 1.5])


@pytest.fixture(scope="module")
def cells():
    return synthetic_box_grid(nx=60, ny=60)


def _events(lon, lat, times):
    return pd.DataFrame({"lon": lon, "lat": lat, "time": times})


def test_aggregate_counts_by_cell_and_bin(cells):
    rng = np.random.default_rng(2)
    b = cells.total_bounds
    lon = rng.uniform(b[0], b[2], 2000)
    lat = rng.uniform(b[1], b[3], 2000)
    t = pd.Timestamp("2018-04-02") + pd.to_timedelta(rng.integers(0, 48 * 3600, 2000), unit="s")
    ev = _events(lon, lat, t)
    agg = aggregate_events(ev, cells, time_bin="hour")
    # independent check: shapely containment cell by cell for a few cells
    geoms = cells.geometry.values
    for pos in agg["cell"].unique()[:5]:
        inside = shapely.contains_xy(geoms[pos], lon, lat)
        got = agg.loc[agg["cell"] == pos].set_index("bin")["count"]
        want = pd.Series(1.0, index=pd.DatetimeIndex(t[inside]).floor("h")).groupby(level=0).sum()
        pd.testing.assert_series_equal(
            got, want, check_names=False, check_index_type=False, check_freq=False
        )
    assert agg["count"].sum() == 2000
    how = aggregate_events(ev, cells, time_bin="hour_of_week")
    assert set(how["bin"]) <= set(range(0, 48))  # Monday 2 April and Tuesday
    day = aggregate_events(ev, cells, time_bin="day")
    assert sorted(day["bin"].unique()) == list(pd.to_datetime(["2018-04-02", "2018-04-03"]))


def test_aware_times_are_binned_by_the_citys_hours_and_days(cells, monkeypatch):
    monkeypatch.delenv("GRIDCORE_TZ", raising=False)
    c = cells.geometry.values[0].centroid
    # 23:30 UTC on 1 April is 07:30 on 2 April in Beijing; 15:59 UTC is 23:59 on 1 April
    t = pd.to_datetime(["2018-04-01 23:30", "2018-04-01 15:59"]).tz_localize("UTC")
    ev = _events([c.x, c.x], [c.y, c.y], t)
    day = aggregate_events(ev, cells, time_bin="day")
    assert list(day["bin"]) == list(pd.to_datetime(["2018-04-01", "2018-04-02"]))
    hour = aggregate_events(ev, cells, time_bin="hour")
    assert list(hour["bin"]) == list(pd.to_datetime(["2018-04-01 23:00", "2018-04-02 07:00"]))
    # the city's zone is an argument: in UTC both are 1 April's
    utc = aggregate_events(ev, cells, time_bin="day", tz="UTC")
    assert list(utc["bin"]) == list(pd.to_datetime(["2018-04-01"]))
    assert aggregate_events_h3(ev, time_bin="day")["bin"].nunique() == 2


def test_gcj02_events_are_shifted_to_their_wgs84_cells(cells):
    from gridcore.crs import wgs84_to_gcj02

    rng = np.random.default_rng(4)
    lon = rng.uniform(116.372, 116.379, 300)
    lat = rng.uniform(39.908, 39.914, 300)
    glon, glat = wgs84_to_gcj02(lon, lat)
    t = ["2018-04-01 12:00"] * 300
    wgs = aggregate_events(_events(lon, lat, t), cells)
    gcj = aggregate_events(_events(glon, glat, t), cells, crs="gcj02")
    pd.testing.assert_frame_equal(wgs, gcj)
    # read as WGS84 by mistake, the same points land ~500 m away
    right = events_to_cell_positions(lon, lat, cells)
    wrong = events_to_cell_positions(glon, glat, cells)
    assert (right != wrong).all()


def test_strtree_seam_agrees_with_the_cell_locator(cells):
    from gridcore.heatmap import _strtree_locator
    from gridcore.sindex import CellLocator

    rng = np.random.default_rng(8)
    b = cells.total_bounds
    lon = rng.uniform(b[0] - 0.001, b[2] + 0.001, 5000)
    lat = rng.uniform(b[1] - 0.001, b[3] + 0.001, 5000)
    want = CellLocator(cells).locate(lon, lat)
    assert (want == -1).any() and (want >= 0).any()
    np.testing.assert_array_equal(_strtree_locator(cells)(lon, lat), want)
    np.testing.assert_array_equal(events_to_cell_positions(lon, lat, cells), want)


def test_points_outside_the_grid_are_counted_apart(cells):
    ev = _events([116.3756, 116.50], [39.911, 39.95], ["2018-04-01 12:00"] * 2)
    agg = aggregate_events(ev, cells)
    assert agg["count"].sum() == 1 and agg.attrs["n_outside"] == 1
    assert events_to_cell_positions([116.50], [39.95], cells)[0] == -1


@pytest.mark.parametrize(
    ("events", "error", "match"),
    [
        (pd.DataFrame({"lon": [], "lat": [], "time": []}), DataFileError, "empty"),
        (pd.DataFrame({"lon": [116.37], "lat": [39.91]}), DataFileError, "time"),
        (_events([np.nan], [39.91], ["2018-04-01"]), CoordinateError, "NaN"),
        (_events([39.91], [116.37], ["2018-04-01"]), CoordinateError, "swapped"),
        (_events([116.37], [39.91], ["not a time"]), DataFileError, "timestamps"),
        ("lon,lat,time", DataFileError, "DataFrame"),
    ],
)
def test_malformed_events_give_clear_errors(cells, events, error, match):
    with pytest.raises(error, match=match):
        aggregate_events(events, cells)


def test_h3_layer_matches_h3(cells):
    lon = np.array([116.3756, 116.3757, 116.3700])
    lat = np.array([39.911, 39.911, 39.905])
    got = events_to_h3(lon, lat, resolution=11)
    want = [h3.str_to_int(h3.latlng_to_cell(a, o, 11)) for o, a in zip(lon, lat, strict=True)]
    assert got.tolist() == want
    agg = aggregate_events_h3(_events(lon, lat, ["2018-04-01 12:10"] * 3), resolution=11)
    assert agg["count"].sum() == 3 and h3.get_resolution(agg["h3"].iloc[0]) == 11
    with pytest.raises(ValueError, match="0..15"):
        events_to_h3(lon, lat, resolution=16)


def test_queen_weights_on_boxes_are_the_3x3_block(cells):
    w = cell_weights(cells)
    card = np.array([w.cardinalities[i] for i in range(len(cells))])
    assert card.max() == 8 and card.min() == 3  # interior and corner cells


@pytest.fixture(scope="module")
def ebikes(cells):
    return synthetic_ebike_positions(cells)


@pytest.fixture(scope="module")
def lane_codes(cells):
    return set(cells.loc[cells.intersects(shapely.LineString(_LANE)), "code"])


@pytest.fixture(scope="module")
def scan(ebikes, cells):
    return scan_hotspots(ebikes, cells, start="2018-03-15", end="2018-06-01", fdr=0.05)


def test_first_alert_is_the_lane_at_a_meal_peak_in_early_april(scan, lane_codes):
    alerts = hotspot_alerts(scan)
    assert alerts, "the jam must raise an alert"
    first = alerts[0]
    assert first.cell_code in lane_codes
    assert pd.Timestamp("2018-04-01") <= first.start < pd.Timestamp("2018-04-10")
    assert first.peak.hour in (11, 12, 17, 18)
    assert first.count >= 100 and first.count >= 3 * first.baseline
    assert first.q <= 0.05 and first.z > 10
    # every alert is about the lane, during the jam
    assert all(a.cell_code in lane_codes for a in alerts)
    assert all(a.start < TANGZI_MEASURE.date for a in alerts)
    assert "堂子胡同" not in first.reason_zh  # reasons cite codes, not names we cannot know
    assert first.cell_code in first.reason_zh and "FDR" in first.reason_en


def test_chronic_hotspots_recur_but_do_not_alert(scan, lane_codes):
    rec = recurring_hotspots(scan, min_weeks=4)
    assert len(rec) > 0
    assert set(rec["hour_of_week"] % 24) & {11, 12, 17, 18}
    # streets near 西单 are hot every week at meal peaks: known, not new, no alert
    street_cells = set(rec["code"]) - lane_codes
    assert street_cells
    assert not street_cells & {a.cell_code for a in hotspot_alerts(scan)}


def test_pure_noise_raises_no_alert(cells):
    noise = synthetic_noise_events(cells, start="2018-03-01", end="2018-04-15")
    scan = scan_hotspots(noise, cells, start="2018-03-15", fdr=0.05)
    assert scan.m == len(scan.hours) * len(cells)
    assert not scan.table["hot"].any()
    assert hotspot_alerts(scan) == []
    # the normal approximation would have called hot spots in pure noise
    naive = scan_hotspots(noise, cells, start="2018-03-15", fdr=0.05, pvalue="normal")
    assert naive.table["hot"].sum() > 100


def test_before_after_finds_the_drop(ebikes, cells, scan):
    first = hotspot_alerts(scan)[0]
    r = compare_before_after(
        ebikes, cells, cell_codes=first.cell_codes, measure_date=TANGZI_MEASURE.date
    )
    assert r.significant and r.p < 1e-6
    assert r.rate_ratio < 0.3 and r.rate_ratio_ci[1] < 0.5
    assert r.rank_biserial < -0.8
    assert set(r.hours_of_week) and all(h % 24 in (11, 12, 17, 18) for h in r.hours_of_week)
    assert "显著" in r.summary_zh


def test_before_after_placebo_finds_nothing(ebikes, cells, lane_codes):
    r = compare_before_after(
        ebikes,
        cells,
        cell_codes=sorted(lane_codes),
        measure_date="2018-03-19",
        before="14D",
        after="14D",
    )
    assert not r.significant
    assert 0.5 < r.rate_ratio < 2


def test_before_after_errors(ebikes, cells):
    with pytest.raises(CellNotFoundError, match="999"):
        compare_before_after(
            ebikes, cells, cell_codes=["110102001999999"], measure_date="2018-04-10"
        )
    with pytest.raises(ValueError, match="hours"):
        compare_before_after(
            ebikes, cells, cell_codes=[cells["code"][0]], measure_date="2018-04-10", hours=[25]
        )


# ----------------------------------------------------------------- on the sample city


@pytest.fixture(scope="module")
def city_weights(city):
    return cell_weights(city.cells)


@pytest.fixture(scope="module")
def city_ebikes(city):
    return synthetic_ebike_positions(city.cells)


@pytest.fixture(scope="module")
def city_alerts(city, city_ebikes, city_weights):
    scan = scan_hotspots(city_ebikes, city.cells, start="2018-03-15", weights=city_weights)
    return hotspot_alerts(scan)


def test_city_first_alert_is_tangzi_hutong_at_a_meal_peak_in_early_april(city, city_alerts):
    cells = city.cells
    lane = set(cells.loc[cells.intersects(shapely.LineString(_LANE)), "code"])
    at_point = cells.loc[cells.contains(shapely.Point(116.3756, 39.911)), "code"].iloc[0]
    assert at_point.startswith("110102001")  # 西长安街街道
    first = city_alerts[0]
    assert first.cell_code in lane and at_point in first.cell_codes
    assert pd.Timestamp("2018-04-01") <= first.start < pd.Timestamp("2018-04-10")
    assert first.peak.hour in (11, 12, 17, 18)
    assert all(set(a.cell_codes) & lane for a in city_alerts)  # nothing else in the city
    assert all(a.start < TANGZI_MEASURE.date for a in city_alerts)


def test_city_pure_noise_raises_no_alert(city, city_weights):
    noise = synthetic_noise_events(city.cells, start="2018-03-15", end="2018-03-29", rate=0.02)
    scan = scan_hotspots(noise, city.cells, start="2018-03-22", weights=city_weights)
    assert scan.m == 168 * len(city.cells)
    assert not scan.table["hot"].any()
    assert hotspot_alerts(scan) == []


def test_city_before_after_finds_the_drop(city, city_ebikes, city_alerts):
    r = compare_before_after(
        city_ebikes,
        city.cells,
        cell_codes=city_alerts[0].cell_codes,
        measure_date=TANGZI_MEASURE.date,
    )
    assert r.significant and r.change_pct < -50 and r.rate_ratio_ci[1] < 0.5


def test_alert_opens_a_case_for_its_street(city, city_alerts):
    from gridcore.cases import CaseState, apply_action

    a = city_alerts[0]
    case = alert_to_case(a, city.cells)
    assert case.state is CaseState.REPORTED
    assert case.cell_code == a.cell_code and case.street_code == "110102001"
    assert case.event_class == "0506" and a.reason_zh == case.description
    filed = apply_action(case, "file", actor="指挥中心", role="dispatcher", at=case.reported_at)
    sent = apply_action(filed, "dispatch", actor="指挥中心", role="dispatcher", at=case.reported_at)
    assert sent.state is CaseState.DISPATCHED and sent.department


def test_alert_case_time_is_the_window_end_in_city_time(city, city_alerts):
    import datetime as dt

    a = city_alerts[0]
    case = alert_to_case(a, city.cells)  # the window is written in Beijing time
    want = pd.Timestamp(a.end).tz_localize("Asia/Shanghai").to_pydatetime()
    assert case.reported_at == want and case.reported_at.tzinfo is dt.UTC
    in_utc = alert_to_case(a, city.cells, tz="UTC")
    assert in_utc.reported_at - case.reported_at == dt.timedelta(hours=8)


def test_alert_round_trips_through_a_dict(scan):
    a = hotspot_alerts(scan)[0]
    assert Alert.from_dict(a.to_dict()) == a


def test_counts_to_matrix_places_counts_by_bin_and_cell(cells):
    ev = _events(
        [116.3756, 116.3756, 116.3700],
        [39.911, 39.911, 39.905],
        ["2018-04-01 11:10", "2018-04-01 11:50", "2018-04-01 13:00"],
    )
    agg = aggregate_events(ev, cells)
    bins = pd.date_range("2018-04-01 10:00", periods=4, freq="h")
    mat = counts_to_matrix(agg, len(cells), bins).toarray()
    p = events_to_cell_positions([116.3756, 116.3700], [39.911, 39.905], cells)
    assert mat[1, p[0]] == 2 and mat[3, p[1]] == 1 and mat.sum() == 3


def test_gi_star_on_the_h3_layer():
    lat0, lon0 = 39.911, 116.3756
    centre = h3.latlng_to_cell(lat0, lon0, 10)
    disk = sorted(h3.grid_disk(centre, 4))
    w = h3_weights(disk)
    inner = [i for i, c in enumerate(disk) if h3.grid_distance(centre, c) <= 3]
    assert all(w.cardinalities[i] == 6 for i in inner)  # hexagons: six neighbours
    y = np.zeros(len(disk))
    y[disk.index(centre)] = 30
    for nb in h3.grid_ring(centre, 1):
        y[disk.index(nb)] = 10
    g = gi_star(y, w)
    assert int(np.argmax(g.z)) == disk.index(centre)
    np.testing.assert_allclose(
        g.z, esda.G_Local(y, w, transform="B", star=True, permutations=0).Zs, rtol=1e-10
    )


def test_scan_on_the_h3_layer_finds_the_lane(ebikes):
    from gridcore.heatmap import h3_cells_frame

    ev = ebikes[(ebikes["time"] >= "2018-03-15") & (ebikes["time"] < "2018-04-05")]
    ev = ev[ev["lon"].between(116.370, 116.381) & ev["lat"].between(39.907, 39.915)]
    fine = h3_cells_frame(ev, resolution=11)
    assert fine["code"].is_monotonic_increasing and len(fine) > 50
    w = h3_weights(fine["code"])
    alerts = hotspot_alerts(scan_hotspots(ev, fine, start="2018-03-29", weights=w))
    assert alerts
    lane_line = shapely.LineString(_LANE)
    first = fine.set_index("code").loc[alerts[0].cell_code, "geometry"]
    assert first.distance(lane_line) < 1e-4  # within ~10 m of the lane
    assert pd.Timestamp("2018-04-01") <= alerts[0].start


def test_intersecting_contiguity_adds_the_cells_vertex_matching_misses(city, city_weights):
    sub = city.cells
    a = city_weights.sparse.copy()
    b = cell_weights(sub, contiguity="vertex").sparse
    a.data[:] = 1
    b.data[:] = 1
    assert (b - a).nnz == 0 or (b - a).max() <= 0  # every vertex pair is found
    extra = (a - b).tocoo()
    extra_pairs = [(i, j) for i, j, v in zip(extra.row, extra.col, extra.data, strict=True) if v]
    geoms = sub.geometry.values
    assert extra_pairs  # cells meeting across a community line without a shared vertex
    assert all(geoms[i].intersects(geoms[j]) for i, j in extra_pairs)


def test_sample_alerts_are_memoised_per_grid(cells):
    import time

    from gridcore.sample_heatmap import sample_alerts

    first = sample_alerts(cells)
    t = time.perf_counter()
    again = sample_alerts(cells.copy())  # same grid, another frame
    assert time.perf_counter() - t < 0.5
    assert again == first and again is not first
    from gridcore.sample_heatmap import _ALERTS_CACHE, _grid_key

    sample_alerts(cells.iloc[:-1])  # another grid: computed anew
    assert list(_ALERTS_CACHE)[0][:3] == _grid_key(cells.iloc[:-1]) != _grid_key(cells)
