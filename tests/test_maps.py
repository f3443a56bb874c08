"""Tests of gridcore.maps: the pages open in headless Chromium, layers drawn, no JS error."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from gridcore.crs import wgs84_to_gcj02
from gridcore.heatmap import hotspot_alerts, scan_hotspots
from gridcore.maps import (
    alerts_map,
    heatmap_map,
    heatmap_with_time_map,
    hotspot_map,
    save_html,
)
from gridcore.sample_heatmap import synthetic_box_grid, synthetic_ebike_positions
from tests._browser import render


@pytest.fixture(scope="module")
def cells():
    return synthetic_box_grid(nx=40, ny=40)


@pytest.fixture(scope="module")
def ebikes(cells):
    return synthetic_ebike_positions(cells, start="2018-03-01", end="2018-04-12")


@pytest.fixture(scope="module")
def scan_alerts(ebikes, cells):
    scan = scan_hotspots(ebikes, cells, start="2018-03-15")
    return scan, hotspot_alerts(scan)


@pytest.fixture(scope="module")
def day(ebikes):
    return ebikes[(ebikes["time"] >= "2018-04-07") & (ebikes["time"] < "2018-04-08")]


def _assert_clean(page, errors):
    assert errors == [], errors
    assert "cdn.jsdelivr" not in page.read_text(encoding="utf-8")  # works offline


def test_heatmap_page_draws_the_heat_canvas(day, tmp_path):
    page = save_html(heatmap_map(day, title="合成数据 synthetic"), tmp_path / "heat.html")
    dom, errors = render(page)
    _assert_clean(page, errors)
    assert re.search(r"<canvas[^>]*leaflet-heatmap-layer", dom)
    assert "合成数据" in dom


def test_rhythm_page_draws_frames_and_the_time_control(day, tmp_path):
    page = save_html(heatmap_with_time_map(day), tmp_path / "rhythm.html")
    dom, errors = render(page)
    _assert_clean(page, errors)
    assert "leaflet-control-timecontrol" in dom
    assert re.search(r"<canvas[^>]*heatmap-canvas", dom)


def test_hotspot_page_draws_cells_and_alert_markers(scan_alerts, cells, tmp_path):
    scan, alerts = scan_alerts
    assert alerts
    page = save_html(hotspot_map(scan, cells, alerts=alerts), tmp_path / "hot.html")
    html = page.read_text(encoding="utf-8")
    assert "热点报警" in html and "\\u7f51\\u683c\\u7f16\\u7801" in html  # popup; 网格编码
    dom, errors = render(page)
    _assert_clean(page, errors)
    assert "Gi* z 值" in dom  # the legend
    n_paths = len(re.findall(r"<path[^>]*leaflet-interactive", dom))
    n_hot = scan.table.loc[scan.table["hot"], "cell"].nunique()
    assert n_paths >= n_hot + len(alerts)  # one polygon per hot cell, one circle per alert


def test_gaode_overlays_are_shifted_to_gcj02(scan_alerts, cells):
    scan, alerts = scan_alerts
    osm = alerts_map(alerts[:1], cells, basemap="osm")
    gd = alerts_map(alerts[:1], cells, basemap="gaode")
    html_osm, html_gd = osm.get_root().render(), gd.get_root().render()
    assert "autonavi" in html_gd and "autonavi" not in html_osm  # Gaode tiles
    c = cells.loc[cells["code"] == alerts[0].cell_code].geometry.iloc[0].centroid
    glon, glat = wgs84_to_gcj02(np.array([c.x]), np.array([c.y]))
    # the marker sits on the WGS84 centroid on OSM and on its GCJ-02 image on Gaode
    assert f"[{c.y}, {c.x}]" in html_osm
    assert f"[{glat[0]}, {glon[0]}]" in html_gd


def test_bad_basemap_lists_valid_values(day):
    with pytest.raises(ValueError, match="osm, gaode"):
        heatmap_map(day, basemap="baidu")


def test_folium_is_not_imported_by_gridcore():
    import subprocess

    code = "import gridcore.heatmap, gridcore.maps, sys; print('folium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_pages_are_written_self_contained(ebikes, cells, tmp_path):
    from gridcore.maps import write_heatmap_pages

    pages = write_heatmap_pages(cells, ebikes, tmp_path, basemap="gaode", start="2018-03-15")
    assert sorted(pages) == ["heat", "hotspots", "rhythm"]
    for path in pages.values():
        html = path.read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in html and "autonavi" in html
    assert "2018-04-0" in pages["heat"].read_text(encoding="utf-8")  # the busiest day: the jam
    dom, errors = render(pages["hotspots"])
    assert errors == []
