"""Heat-map alerts: ``GET /v1/alerts`` lists the hotspot alerts held in the store.

The alerts are computed by `gridcore.heatmap` (Gi* with FDR control, against each
cell's own baseline) and stored by data set. On a fresh start the sample's alerts are
computed when the sample city is built (`gridcore.sample`), so the list is never empty
on a fresh sample city.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import CityDep, ScopeDep, SettingsDep, StoreDep
from api.schemas import AlertPublic
from gridcore.access import Permission, Scope, authorize
from gridcore.codes import validate_cell_code
from gridcore.errors import InvalidValueError
from gridcore.maps import Basemap

router = APIRouter(prefix="/v1", tags=["alerts"])

# A day or a day and time, ISO 8601 (pydantic alone would read "0.5" as a Unix time).
_ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"


def _parse_when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValueError(
            f"{name}={text!r} is not an ISO 8601 date or date-time") from None


def _visible_alerts(store, scope: Scope, *, limit: int, offset: int = 0, **filters) -> list:
    """Return the stored alerts the caller may see (`gridcore.access`: in their territory)."""
    authorize(scope.principal, Permission.READ_ALERTS)
    if scope.everywhere:
        return store.heat_alerts(limit=limit, offset=offset, **filters)
    rows = scope.alerts(store.heat_alerts(limit=10**9, **filters))
    return rows[offset:offset + limit]


@router.get(
    "/alerts",
    response_model=list[AlertPublic],
    summary="Heat-map hotspot alerts (热力图报警), oldest first",
)
def list_alerts(
    store: StoreDep,
    scope: ScopeDep,
    start: Annotated[
        str | None,
        Query(
            description="keep alerts whose window ends after this (ISO 8601, Beijing time)",
            pattern=_ISO_DATETIME,
            examples=["2018-04-01T00:00:00"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            description="keep alerts whose window starts before this (ISO 8601)",
            pattern=_ISO_DATETIME,
            examples=["2018-04-10T00:00:00"],
        ),
    ] = None,
    cell_code: Annotated[
        str | None,
        Query(description="only alerts covering this 15-digit cell", examples=["110102001019032"]),
    ] = None,
    dataset: Annotated[str | None, Query(description="only this data set")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,  # beyond SQLite's int: a 500
) -> list[dict]:
    """Return the stored alerts the caller may see: cells, window, count, z, p, q, why."""
    start, end = _parse_when(start, "start"), _parse_when(end, "end")
    if cell_code is not None:
        cell_code = validate_cell_code(cell_code)
    return _visible_alerts(
        store, scope,
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        cell_code=cell_code,
        dataset=dataset,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/alerts/map",
    response_class=HTMLResponse,
    summary="The stored alerts on a map (Chinese popups with the evidence)",
)
def alerts_map_page(
    store: StoreDep,
    city: CityDep,
    settings: SettingsDep,
    scope: ScopeDep,
    basemap: Annotated[Basemap | None, Query(description="osm or gaode")] = None,
    dataset: Annotated[str | None, Query(description="only this data set")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> str:
    """Return an HTML map of the alerts (markers on their peak cells, cells outlined)."""
    from gridcore.heatmap import Alert
    from gridcore.maps import alerts_map, localise_html

    rows = _visible_alerts(store, scope, dataset=dataset, limit=limit)
    alerts = [Alert.from_dict(r) for r in rows]
    b = basemap or Basemap.parse(settings.basemap)
    m = alerts_map(alerts, city.cells, basemap=b, title=f"热力图报警（{len(alerts)} 条）")
    return localise_html(m.get_root().render(), base_url="/static/vendor")
