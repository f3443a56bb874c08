"""Maps for people: basemaps, the GCJ-02 shift for Gaode, and pages that work offline.

Gaode tiles are drawn in GCJ-02: every WGS84 overlay drawn on them must be shifted to
GCJ-02 first or it lands about 540 m off. OSM tiles need no shift. `to_basemap_crs`
and `geometry_to_basemap` do that shift in one place.

folium pages load Leaflet and plugins from CDNs; a command centre's intranet (and CI)
has none. `localise_html` rewrites those references to the copies gridcore ships
(``gridcore/static/vendor``, folium's own templates), either as URLs under a base path
(served by the API at ``/static/vendor``) or inlined, for a self-contained HTML file.
folium is imported inside the functions that draw, so ``import gridcore`` stays light.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .crs import wgs84_to_gcj02

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import geopandas as gpd

    from .heatmap import Alert, HotspotScan

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
GAODE_ATTRIBUTION = "© 高德地图 AutoNavi"
GAODE_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


class Basemap(StrEnum):
    """Basemaps a page can use. Gaode is GCJ-02: overlays are shifted for it."""

    OSM = "osm"
    GAODE = "gaode"

    @classmethod
    def parse(cls, value: str | Basemap) -> Basemap:
        """Return the basemap named ``value`` or raise ValueError listing valid names."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown basemap {value!r}: expected one of " + ", ".join(b.value for b in cls)
            ) from None

    @property
    def tiles(self) -> str:
        """Tile URL template."""
        return GAODE_TILES if self is Basemap.GAODE else OSM_TILES

    @property
    def attribution(self) -> str:
        """Attribution text shown on the map."""
        return GAODE_ATTRIBUTION if self is Basemap.GAODE else OSM_ATTRIBUTION

    @property
    def subdomains(self) -> str:
        """Tile server subdomains for ``{s}``."""
        return "1234" if self is Basemap.GAODE else "abc"


def to_basemap_crs(lon, lat, *, basemap: str | Basemap):
    """Return WGS84 positions as drawn on ``basemap`` (GCJ-02 for Gaode, unchanged for OSM)."""
    b = Basemap.parse(basemap)
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if b is Basemap.GAODE:
        return wgs84_to_gcj02(lon_a, lat_a)
    return lon_a, lat_a


def geometry_to_basemap(geoms, *, basemap: str | Basemap):
    """Shift WGS84 shapely geometries (or a GeoSeries/array) for drawing on ``basemap``."""
    from .crs import transform_geometry

    b = Basemap.parse(basemap)
    if b is Basemap.OSM:
        return geoms
    if hasattr(geoms, "geometry") and hasattr(geoms, "set_geometry"):  # GeoDataFrame
        shifted = transform_geometry(np.asarray(geoms.geometry.values), src="wgs84", dst="gcj02")
        return geoms.set_geometry(list(shifted), crs=geoms.crs)
    return transform_geometry(geoms, src="wgs84", dst="gcj02")


def new_map(
    location: tuple[float, float],
    *,
    basemap: str | Basemap = Basemap.OSM,
    zoom_start: int = 15,
    **kwargs,
):
    """Return a folium Map centred on WGS84 ``location`` (lat, lon) with Chinese-friendly tiles.

    The centre is shifted to GCJ-02 for Gaode, like every overlay must be.
    """
    import folium

    b = Basemap.parse(basemap)
    lon, lat = to_basemap_crs([location[1]], [location[0]], basemap=b)
    m = folium.Map(
        location=(float(lat[0]), float(lon[0])),
        zoom_start=zoom_start,
        tiles=None,
        control_scale=True,
        **kwargs,
    )
    folium.TileLayer(
        tiles=b.tiles,
        attr=b.attribution,
        name="底图 " + b.value,
        subdomains=b.subdomains,
        max_zoom=19,
    ).add_to(m)
    return m


# --------------------------------------------------------------------------- offline assets


def _folium_template(name: str) -> Path:
    import folium

    return Path(folium.__file__).parent / "templates" / name


# CDN reference (a substring of the URL) -> local file; None = not needed, dropped.
_ASSETS: list[tuple[str, str | None]] = [
    ("leaflet@1.9.3/dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet@1.9.3/dist/leaflet.css", "leaflet/leaflet.css"),
    ("code.jquery.com/jquery-", "jquery/jquery.min.js"),
    (
        "leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js",
        "leaflet-timedimension/leaflet.timedimension.min.js",
    ),
    (
        "leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css",
        "leaflet-timedimension/leaflet.timedimension.control.min.css",
    ),
    ("iso8601-js-period@0.2.1/iso8601.min.js", "iso8601-js-period/iso8601.js"),
    ("/leaflet_heat.min.js", "folium:leaflet_heat.min.js"),
    ("/pa7_hm.min.js", "folium:pa7_hm.min.js"),
    ("/pa7_leaflet_hm.min.js", "folium:pa7_leaflet_hm.min.js"),
    # Styling/icon libraries folium adds by default; gridcore pages do not use them.
    ("bootstrap", None),
    ("fontawesome", None),
    ("awesome-markers", None),
    ("leaflet.awesome.rotate", None),
]

_TAG = re.compile(
    r"""<script[^>]*\bsrc=["'](?P<js>https?://[^"']+)["'][^>]*>\s*</script>"""
    r"""|<link[^>]*\bhref=["'](?P<css>https?://[^"']+)["'][^>]*/?>""",
    re.IGNORECASE,
)


def _local_asset(url: str) -> str | None | bool:
    """Return the local name for a CDN url, None to drop it, False when unknown."""
    for needle, local in _ASSETS:
        if needle in url:
            return local
    return False


def asset_path(local: str) -> Path:
    """Return the file behind a local asset name (vendored or folium's own)."""
    if local.startswith("folium:"):
        return _folium_template(local.removeprefix("folium:"))
    return VENDOR_DIR / local


@lru_cache(maxsize=32)
def _read_asset(local: str) -> str:
    return asset_path(local).read_text(encoding="utf-8")


def localise_html(html: str, *, base_url: str | None = "/static/vendor") -> str:
    """Point a folium page's CDN scripts and styles at gridcore's local copies.

    Parameters
    ----------
    html : str
        A rendered page (``folium.Map.get_root().render()``).
    base_url : str or None
        URL prefix under which the API serves ``gridcore/static/vendor`` and folium's
        templates (``/static/vendor/folium/...``); None inlines every asset instead, for
        a self-contained file.

    Returns
    -------
    str
        The page with no reference to a CDN for the assets gridcore knows; unknown
        CDN references are left as they are.
    """

    def swap(m: re.Match) -> str:
        url = m.group("js") or m.group("css")
        local = _local_asset(url)
        if local is False:
            return m.group(0)
        if local is None:
            return ""
        if base_url is None:
            body = _read_asset(local)
            if m.group("js"):
                return f"<script>{body}</script>"
            if local.startswith("leaflet/"):  # marker images as data-less relative refs
                body = body.replace("url(images/", "url(data:,")
            return f"<style>{body}</style>"
        href = f"{base_url.rstrip('/')}/{local.replace('folium:', 'folium/')}"
        if m.group("js"):
            return f'<script src="{href}"></script>'
        return f'<link rel="stylesheet" href="{href}"/>'

    return _TAG.sub(swap, html)


def save_html(m, path: str | Path, *, base_url: str | None = None) -> Path:
    """Write a folium map as HTML that needs no CDN (assets inlined by default)."""
    p = Path(path)
    p.write_text(localise_html(m.get_root().render(), base_url=base_url), encoding="utf-8")
    return p


# --------------------------------------------------------------------------- heat maps
# Heat layer, the day's rhythm and the Gi* hotspot choropleth with alert markers
# (gridcore.heatmap). Legends, popups and tooltips in Chinese; every overlay goes
# through `_display` / `_geoms_display`, i.e. the GCJ-02 shift on Gaode.


def _display(lon, lat, basemap: Basemap):
    return to_basemap_crs(lon, lat, basemap=basemap)


def _geoms_display(geoms, basemap: Basemap):
    return np.asarray(geometry_to_basemap(np.asarray(geoms), basemap=basemap))


def _heat_map(center: tuple[float, float], zoom: int, basemap: Basemap, title: str | None):
    """Return a new map centred on WGS84 (lon, lat), with an optional title box."""
    import folium

    m = new_map((center[1], center[0]), basemap=basemap, zoom_start=zoom)
    if title:
        from html import escape

        m.get_root().html.add_child(
            folium.Element(
                '<div class="gridcore-title" style="position:fixed;top:10px;left:60px;'
                "z-index:1000;background:white;padding:4px 8px;border-radius:4px;"
                f'font:14px sans-serif;box-shadow:0 0 4px #888">{escape(title)}</div>'
            )
        )
    return m


_RAMP = ((255, 255, 178), (253, 141, 60), (189, 0, 38))


def _ramp(value: float, vmin: float, vmax: float) -> str:
    """Yellow -> orange -> red, as a hex colour."""
    t = 0.0 if vmax <= vmin else min(max((value - vmin) / (vmax - vmin), 0.0), 1.0)
    k = 0 if t <= 0.5 else 1
    f = t * 2 - k
    a, b = _RAMP[k], _RAMP[k + 1]
    return "#{:02x}{:02x}{:02x}".format(
        *(round(x + (y - x) * f) for x, y in zip(a, b, strict=True))
    )


def _legend(m, caption: str, vmin: float, vmax: float) -> None:
    """Add a static HTML legend (no d3 needed, so it works offline)."""
    from html import escape

    import folium

    stops = ", ".join(_ramp(vmin + (vmax - vmin) * t, vmin, vmax) for t in (0, 0.5, 1))
    m.get_root().html.add_child(
        folium.Element(
            '<div class="gridcore-legend" style="position:fixed;bottom:30px;right:10px;'
            "z-index:1000;background:white;padding:6px 8px;border-radius:4px;"
            'font:12px sans-serif;box-shadow:0 0 4px #888">'
            f"<div>{escape(caption)}</div>"
            f'<div style="width:180px;height:10px;background:linear-gradient(to right, {stops})">'
            "</div>"
            f'<div style="display:flex;justify-content:space-between"><span>{vmin:.1f}</span>'
            f"<span>{vmax:.1f}</span></div></div>"
        )
    )


def _center(lon: np.ndarray, lat: np.ndarray, center: tuple[float, float] | None):
    if center is not None:
        return center
    return float(np.median(lon)), float(np.median(lat))


def _weighted_points(events: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """Sum counts at positions rounded to ~10 m: same picture, far smaller HTML."""
    from gridcore.heatmap import _check_events

    ev = _check_events(events)
    return (
        ev.assign(lon=ev["lon"].round(decimals), lat=ev["lat"].round(decimals))
        .groupby(["lat", "lon"], sort=False)["count"]
        .sum()
        .reset_index()
    )


def heatmap_map(
    events: pd.DataFrame,
    *,
    basemap: Basemap | str = Basemap.OSM,
    center: tuple[float, float] | None = None,
    zoom: int = 15,
    radius: int = 14,
    title: str | None = None,
) -> folium.Map:
    """Draw events as a heat layer (folium ``HeatMap``), counts as weights.

    Parameters
    ----------
    events : DataFrame
        ``lon``, ``lat`` (WGS84), ``time``, optional ``count``.
    basemap : {"osm", "gaode"}
        On Gaode the points are shifted to GCJ-02.
    center : (lon, lat), optional
        WGS84; default the median position.
    zoom, radius : int
    title : str, optional
        Shown at the top of the map (say "合成数据" for synthetic data).

    Returns
    -------
    folium.Map

    Examples
    --------
    ::

        save_html(heatmap_map(ev, basemap="gaode"), "heat.html")
    """
    from folium.plugins import HeatMap

    bm = Basemap.parse(basemap)
    pts = _weighted_points(events)
    lon, lat = _display(pts["lon"], pts["lat"], bm)
    m = _heat_map(_center(pts["lon"].to_numpy(), pts["lat"].to_numpy(), center), zoom, bm, title)
    w = pts["count"].to_numpy(float)
    data = np.column_stack([lat, lon, w / w.max()]).tolist()
    HeatMap(data, name="热力图（事件密度）", radius=radius, blur=radius, min_opacity=0.3).add_to(m)
    import folium

    folium.LayerControl().add_to(m)
    return m


def heatmap_with_time_map(
    events: pd.DataFrame,
    *,
    basemap: Basemap | str = Basemap.OSM,
    center: tuple[float, float] | None = None,
    zoom: int = 15,
    radius: int = 14,
    title: str | None = None,
) -> folium.Map:
    """Draw the day's rhythm: one heat frame per hour of day (``HeatMapWithTime``).

    Each frame sums all days of ``events`` at that hour; weights are scaled to the
    busiest position over all frames, so frames compare.

    Examples
    --------
    ::

        save_html(heatmap_with_time_map(ev), "rhythm.html")
    """
    from folium.plugins import HeatMapWithTime

    from gridcore.heatmap import _check_events

    bm = Basemap.parse(basemap)
    ev = _check_events(events)
    ev = ev.assign(
        hour=pd.DatetimeIndex(ev["time"]).hour, lon=ev["lon"].round(4), lat=ev["lat"].round(4)
    )
    g = ev.groupby(["hour", "lat", "lon"], sort=True)["count"].sum().reset_index()
    top = float(g["count"].max())
    frames, labels = [], []
    for h in range(24):
        f = g[g["hour"] == h]
        lon, lat = _display(f["lon"], f["lat"], bm)
        frames.append(np.column_stack([lat, lon, f["count"] / top]).tolist())
        labels.append(f"{h:02d}:00")
    m = _heat_map(_center(ev["lon"].to_numpy(), ev["lat"].to_numpy(), center), zoom, bm, title)
    HeatMapWithTime(
        frames,
        index=labels,
        name="一天的节律（按小时）",
        radius=radius * 2,
        auto_play=False,
        max_opacity=0.8,
        use_local_extrema=False,
    ).add_to(m)
    return m


def _cells_layer_frame(
    table: pd.DataFrame, cells: gpd.GeoDataFrame, bm: Basemap, min_z: float, only_hot: bool
) -> gpd.GeoDataFrame:
    import geopandas as gpd

    keep = table[table["z"] >= min_z]
    if only_hot:
        keep = keep[keep["cell"].isin(keep.loc[keep["hot"], "cell"])]
    agg = keep.sort_values("z").groupby("cell").tail(1)  # each cell at its highest z
    sub = cells.iloc[agg["cell"].to_numpy()]
    return gpd.GeoDataFrame(
        {
            "code": sub["code"].to_numpy(),
            "z": agg["z"].round(2).to_numpy(),
            "p": agg["p"].map(lambda v: f"{v:.1e}").to_numpy(),
            "q": agg["q"].map(lambda v: f"{v:.1e}").to_numpy(),
            "nsum": agg["nsum"].to_numpy(),
            "time": agg["time"].dt.strftime("%Y-%m-%d %H:00").to_numpy(),
            "hot": np.where(agg["hot"].to_numpy(), "是", "否"),
        },
        geometry=_geoms_display(sub.geometry.values, bm),
        crs="EPSG:4326",
    )


def hotspot_map(
    scan: HotspotScan,
    cells: gpd.GeoDataFrame,
    *,
    alerts: list[Alert] | None = None,
    time: Any = None,
    min_z: float = 1.96,
    only_hot: bool = True,
    basemap: Basemap | str = Basemap.OSM,
    center: tuple[float, float] | None = None,
    zoom: int = 15,
    title: str | None = None,
) -> folium.Map:
    """Cell choropleth of Gi* z with alert markers.

    Parameters
    ----------
    scan : HotspotScan
        From :func:`gridcore.heatmap.scan_hotspots`.
    cells : GeoDataFrame
        The grid the scan ran on.
    alerts : list of Alert, optional
        Drawn as red markers with the reason (Chinese and English) in the popup.
    time : timestamp-like, optional
        One hour to draw; default each cell at its highest z over the scan.
    min_z : float
        Cells below this z are not drawn.
    only_hot : bool
        Draw only cells that were FDR-significant at least once (keeps the page small
        on 40,000 cells).
    basemap : {"osm", "gaode"}
    center : (lon, lat), optional
    zoom : int
    title : str, optional

    Returns
    -------
    folium.Map

    Examples
    --------
    ::

        save_html(hotspot_map(scan, cells, alerts=alerts), "hotspots.html")
    """
    import folium

    bm = Basemap.parse(basemap)
    table = scan.table
    if time is not None:
        table = table[table["time"] == pd.Timestamp(time).floor("h")]
    frame = _cells_layer_frame(table, cells, bm, min_z, only_hot)
    if center is None:
        if alerts:
            c = cells.loc[cells["code"] == alerts[0].cell_code].geometry.union_all().centroid
            center = (c.x, c.y)
        elif len(frame):
            c = cells.loc[cells["code"].isin(frame["code"])].geometry.union_all().centroid
            center = (c.x, c.y)
        else:
            b = cells.total_bounds
            center = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    m = _heat_map(center, zoom, bm, title)
    zmax = float(max(frame["z"].max(), min_z + 1)) if len(frame) else min_z + 1
    if len(frame):
        folium.GeoJson(
            frame.__geo_interface__,
            name="Gi* 热点网格",
            style_function=lambda f: {
                "fillColor": _ramp(f["properties"]["z"], min_z, zmax),
                "color": "#555",
                "weight": 0.5,
                "fillOpacity": 0.65,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["code", "z", "hot"], aliases=["网格编码", "Gi* z", "FDR 显著"]
            ),
            popup=folium.GeoJsonPopup(
                fields=["code", "time", "nsum", "z", "p", "q", "hot"],
                aliases=[
                    "网格编码",
                    "时段",
                    "本格及相邻计数",
                    "Gi* z",
                    "p 值",
                    "q 值 (FDR)",
                    "FDR 显著",
                ],
            ),
        ).add_to(m)
    _legend(m, "Gi* z 值（热点强度，越红越显著）", min_z, zmax)
    if alerts:
        _add_alert_markers(m, alerts, cells, bm)
    folium.LayerControl().add_to(m)
    return m


def _add_alert_markers(m: Any, alerts: list[Alert], cells: gpd.GeoDataFrame, bm: Basemap) -> None:
    from html import escape

    import folium
    import shapely

    layer = folium.FeatureGroup(name=f"报警（{len(alerts)} 条）")
    pos = pd.Index(cells["code"]).get_indexer([a.cell_code for a in alerts])
    cent = shapely.centroid(np.asarray(cells.geometry.values)[np.maximum(pos, 0)])
    lon, lat = _display(shapely.get_x(cent), shapely.get_y(cent), bm)
    for a, x, y, p in zip(alerts, lon, lat, pos, strict=True):
        if p < 0:
            continue
        html = (
            f"<b>热点报警 {a.start:%Y-%m-%d %H:%M}–{a.end:%H:%M}</b><br>"
            f"{escape(a.reason_zh)}<hr><small>{escape(a.reason_en)}</small>"
        )
        folium.CircleMarker(
            location=[float(y), float(x)],
            radius=9,
            color="#b10026",
            weight=3,
            fill=True,
            fill_color="#ff0000",
            fill_opacity=0.9,
            tooltip=f"报警：{a.cell_code} {a.start:%m-%d %H:%M}",
            popup=folium.Popup(html, max_width=420),
        ).add_to(layer)
    layer.add_to(m)


def alerts_map(
    alerts: list[Alert],
    cells: gpd.GeoDataFrame,
    *,
    basemap: Basemap | str = Basemap.OSM,
    zoom: int = 15,
    title: str | None = None,
) -> folium.Map:
    """Only the alert markers (and their cells outlined), for a quick look or the API."""
    import folium

    bm = Basemap.parse(basemap)
    if alerts:
        sub = cells[cells["code"].isin({c for a in alerts for c in a.cell_codes})]
        c = sub.geometry.union_all().centroid
        center = (c.x, c.y)
    else:
        b = cells.total_bounds
        center = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        sub = cells.iloc[:0]
    m = _heat_map(center, zoom, bm, title)
    if len(sub):
        import geopandas as gpd

        outl = gpd.GeoDataFrame(
            {"code": sub["code"].to_numpy()},
            geometry=_geoms_display(sub.geometry.values, bm),
            crs="EPSG:4326",
        )
        folium.GeoJson(
            outl.__geo_interface__,
            name="报警网格",
            style_function=lambda f: {"color": "#b10026", "weight": 2, "fillOpacity": 0.1},
            tooltip=folium.GeoJsonTooltip(fields=["code"], aliases=["网格编码"]),
        ).add_to(m)
    _add_alert_markers(m, alerts, cells, bm)
    folium.LayerControl().add_to(m)
    return m


def write_heatmap_pages(
    cells: gpd.GeoDataFrame,
    events: pd.DataFrame,
    out_dir: str | Path,
    *,
    basemap: Basemap | str = Basemap.OSM,
    day: Any = None,
    start: Any = None,
    weights: Any = None,
    center: tuple[float, float] | None = None,
    title: str | None = None,
) -> dict[str, Path]:
    """Write the heat-map pages (self-contained HTML, no CDN) for the CLI.

    ``heat.html`` (heat layer of ``day``, default the busiest day), ``rhythm.html`` (the
    day's rhythm over all events) and ``hotspots.html`` (Gi* cells and every alert of a
    scan from ``start``).

    Parameters
    ----------
    cells : GeoDataFrame
        The unit grid.
    events : DataFrame
        ``lon``, ``lat`` (WGS84), ``time``, optional ``count``.
    out_dir : path
    basemap : {"osm", "gaode"}
    day : date-like, optional
    start : timestamp-like, optional
        First hour tested by the scan (earlier events are baseline only).
    weights : libpysal W, optional
    center : (lon, lat), optional
    title : str, optional

    Returns
    -------
    dict
        Page name -> path written.

    Examples
    --------
    ::

        write_heatmap_pages(city.cells, events, "out/", basemap="gaode")
    """
    from .heatmap import _check_events, hotspot_alerts, scan_hotspots

    bm = Basemap.parse(basemap)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev = _check_events(events)
    days = pd.DatetimeIndex(ev["time"]).floor("D")
    d = pd.Timestamp(day).floor("D") if day is not None else days.value_counts().idxmax()
    one_day = ev[days == d]
    if one_day.empty:
        raise ValueError(f"no events on {d:%Y-%m-%d}")
    scan = scan_hotspots(ev, cells, start=start, weights=weights)
    alerts = hotspot_alerts(scan)
    label = title or "gridcore 热力图"
    pages = {
        "heat": heatmap_map(one_day, basemap=bm, center=center,
                            title=f"{label} · {d:%Y-%m-%d}"),
        "rhythm": heatmap_with_time_map(ev, basemap=bm, center=center),
        "hotspots": hotspot_map(scan, cells, alerts=alerts, basemap=bm, center=center,
                                title=f"{label} · Gi* 热点与 {len(alerts)} 条报警"),
    }
    return {name: save_html(m, out / f"{name}.html") for name, m in pages.items()}
