"""Tests of gridcore.complaints: the Daxing-style search over past hotline cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridcore.complaints import cluster_cases, places_at_risk, search_cases
from gridcore.crs import wgs84_to_projected
from gridcore.errors import DataFileError, InvalidCodeError
from gridcore.sample_heatmap import synthetic_box_grid, synthetic_hotline_cases


@pytest.fixture(scope="module")
def cells():
    return synthetic_box_grid(nx=60, ny=60)


@pytest.fixture(scope="module")
def cases(cells):
    return synthetic_hotline_cases(cells, n_cases=8000)


def test_cases_are_labelled_synthetic_and_use_legacy_classes(cases):
    assert cases["synthetic"].all() and cases["case_id"].str.startswith("SYN-").all()
    assert cases["event_class"].str.fullmatch(r"\d{4}").all()
    assert (cases["event_class"] == "0506").any()
    assert cases["reported_at"].min() >= pd.Timestamp("2017-05-01")
    assert cases["reported_at"].max() < pd.Timestamp("2018-05-01")


def test_keyword_and_class_search(cases):
    leaks = search_cases(cases, keywords=["漏雨", "漏水"])
    assert len(leaks) > 0
    assert leaks["description"].str.contains("漏雨|漏水").all()
    # the bathroom leak (渗水 only) is not a roof complaint and is left out
    assert not cases.loc[~cases.index.isin(leaks.index), "description"].str.contains("漏雨").any()
    bikes = search_cases(cases, classes=["0506"])
    assert (bikes["event_class"] == "0506").all() and len(bikes) > 0
    order = search_cases(cases, classes=["05"])
    assert order["event_class"].str.startswith("05").all()
    assert len(order) > len(bikes)
    unres = search_cases(cases, keywords=["漏雨"], status="unresolved", end="2018-01-01")
    assert (unres["status"] == "unresolved").all()
    assert (unres["reported_at"] < pd.Timestamp("2018-01-01")).all()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"classes": ["506"]}, InvalidCodeError),
        ({"classes": ["05a6"]}, InvalidCodeError),
        ({"keywords": []}, ValueError),
    ],
)
def test_search_rejects_bad_options(cases, kwargs, error):
    with pytest.raises(error):
        search_cases(cases, **kwargs)


def test_search_needs_the_columns():
    with pytest.raises(DataFileError, match="description"):
        search_cases(pd.DataFrame({"lon": [116.3], "lat": [39.9]}), keywords=["漏雨"])


def test_places_at_risk_are_the_old_compounds(cases, cells):
    places = places_at_risk(
        cases, cells, keywords=["漏雨", "漏水"], status="unresolved", eps_m=100, min_samples=8
    )
    compounds = cases.dropna(subset=["place"]).groupby("place")[["lon", "lat"]].mean()
    assert len(places) == len(compounds)
    # each place found is within 30 m of one compound's centre, one place per compound
    px, py = wgs84_to_projected(places["lon"].to_numpy(), places["lat"].to_numpy())
    cx, cy = wgs84_to_projected(compounds["lon"].to_numpy(), compounds["lat"].to_numpy())
    d = np.hypot(px[:, None] - cx[None, :], py[:, None] - cy[None, :])
    assert (d.min(axis=1) < 30).all()
    assert len(set(d.argmin(axis=1))) == len(compounds)
    assert (places["n_households"] <= places["n_cases"]).all()
    assert (places["n_households"] < places["n_cases"]).any()  # repeat complaints
    assert places["n_households"].is_monotonic_decreasing
    assert all(len(c) >= 1 and all(len(x) == 15 for x in c) for c in places["cell_codes"])


def test_cluster_labels_isolated_cases_as_noise():
    lon = np.r_[np.full(12, 116.3756), 116.40]
    lat = np.r_[39.911 + np.arange(12) * 1e-5, 39.93]
    df = pd.DataFrame({"lon": lon, "lat": lat})
    labels = cluster_cases(df, eps_m=50, min_samples=5)
    assert (labels[:12] == 0).all() and labels[12] == -1
