"""Map pages for people (Chinese labels): the supervisor's map ``/``, the chief's ``/chief``.

The pages and the grid layer they draw are public; anything about cases, people or
components is fetched with the token the user types in (kept in the browser only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import SettingsDep
from gridcore.divisions import TANGZI_HUTONG
from gridcore.maps import Basemap, to_basemap_crs

router = APIRouter(tags=["pages"])
STATIC = Path(__file__).resolve().parents[1] / "static"

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">
<style>{css}</style>
<script src="/static/vendor/leaflet/leaflet.js"></script>
<script id="gc-config" type="application/json">{config}</script>
</head><body>
<div id="map"></div>
<div id="side">{side}</div>
<script>{common}</script>
<script>{script}</script>
</body></html>"""



def _config(basemap: str, zoom: int) -> str:
    centers = {}
    for b in Basemap:
        lon, lat = to_basemap_crs([TANGZI_HUTONG[0]], [TANGZI_HUTONG[1]], basemap=b)
        centers[b.value] = [float(lon[0]), float(lat[0])]
    return json.dumps({"basemap": basemap, "centers": centers, "zoom": zoom})


def render_page(title: str, side: str, script: str, *, basemap: str, zoom: int = 16) -> str:
    """Assemble a map page from the shared shell, its side panel file and its script."""
    return _PAGE.format(
        title=title, css=(STATIC / "page.css").read_text(encoding="utf-8"),
        config=_config(basemap, zoom), side=(STATIC / side).read_text(encoding="utf-8"),
        common=(STATIC / "common.js").read_text(encoding="utf-8"),
        script=(STATIC / script).read_text(encoding="utf-8"),
    )


@router.get("/", response_class=HTMLResponse, summary="The supervisor's map page (public)")
def supervisor_page(
    settings: SettingsDep,
    basemap: Annotated[Basemap | None, Query(description="osm or gaode")] = None,
) -> str:
    """Return the supervisor's map: the grid, click to see a cell, report with a token."""
    b = (basemap or Basemap.parse(settings.basemap)).value
    return render_page("gridcore 监督员地图", "supervisor_side.html", "supervisor.js", basemap=b)


@router.get("/chief", response_class=HTMLResponse,
            summary="The street-and-alley chief's map page (data need a chief's token)")
def chief_page(
    settings: SettingsDep,
    basemap: Annotated[Basemap | None, Query(description="osm or gaode")] = None,
) -> str:
    """Return the chief's map: their cells, components and open cases by deadline colour."""
    b = (basemap or Basemap.parse(settings.basemap)).value
    return render_page("gridcore 街巷长地图", "chief_side.html", "chief.js", basemap=b)
