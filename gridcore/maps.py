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

import numpy as np

from .crs import wgs84_to_gcj02

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
        shifted = transform_geometry(np.asarray(geoms.geometry.values), src="wgs84",
                                     dst="gcj02")
        return geoms.set_geometry(list(shifted), crs=geoms.crs)
    return transform_geometry(geoms, src="wgs84", dst="gcj02")


def new_map(location: tuple[float, float], *, basemap: str | Basemap = Basemap.OSM,
            zoom_start: int = 15, **kwargs):
    """Return a folium Map centred on WGS84 ``location`` (lat, lon) with Chinese-friendly tiles.

    The centre is shifted to GCJ-02 for Gaode, like every overlay must be.
    """
    import folium

    b = Basemap.parse(basemap)
    lon, lat = to_basemap_crs([location[1]], [location[0]], basemap=b)
    m = folium.Map(location=(float(lat[0]), float(lon[0])), zoom_start=zoom_start,
                   tiles=None, control_scale=True, **kwargs)
    folium.TileLayer(tiles=b.tiles, attr=b.attribution, name="底图 " + b.value,
                     subdomains=b.subdomains, max_zoom=19).add_to(m)
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
    ("leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js",
     "leaflet-timedimension/leaflet.timedimension.min.js"),
    ("leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css",
     "leaflet-timedimension/leaflet.timedimension.control.min.css"),
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
