"""Street-and-alley chiefs (街巷长): who they are, and their own grids.

Who reads which chief is `gridcore.access`'s: a chief and their volunteers (小巷管家)
their own, a street office the chiefs of its street, the command centre and admins
any; only chiefs, dispatchers and admins read past days.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import numpy as np
import shapely.geometry
from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse

from api.deps import CityDep, PrincipalDep, ScopeDep, StoreDep
from api.routes.cases import NowDep, TodayDep
from api.schemas import (
    AssignmentCreate,
    CaseSummary,
    ChiefPublic,
    ChiefView,
    ComponentSummary,
    IsoDate,
)
from gridcore import app
from gridcore.access import Permission, authorize
from gridcore.auth import Principal, Role
from gridcore.cases import event_class
from gridcore.chiefs import assignments_on
from gridcore.errors import PermissionDeniedError
from gridcore.maps import Basemap, geometry_to_basemap

router = APIRouter(prefix="/v1", tags=["chiefs 街巷长"])

ChiefId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                              description="Chief id.")]


def _scope_for_view(store, principal: Principal, chief_id: str, on: dt.date | None,
                    today: dt.date):
    """Check the caller may read ``chief_id``'s view on ``on``; return that day's scope."""
    scope = app.scope_of(store, principal, on=on, today=today)
    scope.check_chief(store, chief_id, on=scope.on)
    return scope


def chief_view(store, chief_id: str, *, on: dt.date, now: dt.datetime) -> ChiefView:
    """Assemble a chief's view: alleys, cells and open cases on a day."""
    chief = store.get_chief(chief_id)
    roster = store.load_roster()
    live = assignments_on(roster.assignments, on=on)
    alleys = sorted(live.loc[live["chief_id"] == chief_id, "alley"])
    # the cells of that day's grid and assignments, with the cases open on that day
    cells = sorted(app.chief_cells(store, chief_id, on=on))
    cases = app.open_cases_on(store, cells, on)
    summaries = [
        CaseSummary(
            id=c.id, state=c.state, event_class=c.event_class,
            event_class_name=event_class(c.event_class).name, cell_code=c.cell_code,
            lon=c.lon, lat=c.lat, reported_at=c.reported_at, deadline=c.deadline,
            deadline_status=c.deadline_status(now),
        )
        for c in cases
    ]
    comps = store.components_in_cells(cells)
    comps = comps[comps["status"] != "移除"]
    components = [ComponentSummary(**r) for r in
                  comps.drop(columns=["dept_code"]).to_dict(orient="records")]
    return ChiefView(chief=ChiefPublic(**chief), on=on, alleys=alleys, cells=cells,
                     components=components, open_cases=summaries)


@router.get("/chiefs", response_model=list[ChiefPublic], summary="List chiefs (街巷长)")
def list_chiefs(store: StoreDep, scope: ScopeDep) -> list[ChiefPublic]:
    """List the chiefs the caller may see: a chief (or volunteer) their own."""
    authorize(scope.principal, Permission.READ_CHIEFS)
    chiefs = store.load_roster().chiefs
    mine = scope.chief_ids(store)
    if mine is not None:
        chiefs = chiefs[chiefs["id"].isin(sorted(mine))]
    return [ChiefPublic(**r) for r in chiefs.to_dict(orient="records")]


@router.get("/chiefs/me/view", response_model=ChiefView,
            summary="My grids (我的网格), for a chief's token")
def my_view(
    store: StoreDep,
    principal: PrincipalDep,
    now: NowDep,
    today: TodayDep,
    on: Annotated[IsoDate | None, Query(description="Day to read assignments for "
                                                    "(YYYY-MM-DD); default the city's "
                                                    "today.")] = None,
) -> ChiefView:
    """Show the calling chief's (a volunteer: their chief's) alleys, cells and open cases."""
    if principal.role not in (Role.CHIEF, Role.VOLUNTEER):
        raise PermissionDeniedError(
            f"'me' is a chief's (or a volunteer's) view; role {principal.role.value!r} "
            "asks for /v1/chiefs/{chief_id}/view")
    scope = _scope_for_view(store, principal, principal.subject, on, today)
    return chief_view(store, principal.subject, on=scope.on, now=now)


@router.get("/chiefs/{chief_id}/view", response_model=ChiefView,
            summary="A chief's grids (街巷长的网格)",
            responses={403: {"description": "A chief asking for another chief's grids"}})
def view(
    chief_id: ChiefId,
    store: StoreDep,
    principal: PrincipalDep,
    now: NowDep,
    today: TodayDep,
    on: Annotated[IsoDate | None, Query(description="Day to read assignments for "
                                                    "(YYYY-MM-DD); default the city's "
                                                    "today.")] = None,
) -> ChiefView:
    """Show a chief's streets and alleys, the cells they cross, and the open cases there."""
    scope = _scope_for_view(store, principal, chief_id, on, today)
    return chief_view(store, chief_id, on=scope.on, now=now)


@router.get("/chiefs/{chief_id}/view.geojson",
            summary="A chief's grids as GeoJSON (for the chief's map 街巷长地图)",
            responses={200: {"content": {"application/geo+json": {}}}})
def view_geojson(
    chief_id: ChiefId,
    store: StoreDep,
    city: CityDep,
    principal: PrincipalDep,
    now: NowDep,
    today: TodayDep,
    on: Annotated[IsoDate | None, Query(description="Day to read assignments for "
                                                    "(YYYY-MM-DD); default the city's "
                                                    "today.")] = None,
    basemap: Annotated[Basemap, Query(
        description="osm: WGS84; gaode: every geometry shifted to GCJ-02")] = Basemap.OSM,
) -> JSONResponse:
    """Return a chief's grids as a GeoJSON FeatureCollection (WGS84, or GCJ-02 for Gaode).

    Features are the chief's cells (``kind`` = ``cell``), the components in them
    (``kind`` = ``component``) and the open cases in them (``kind`` = ``case``, with
    ``deadline_status`` green/yellow/red).
    """
    scope = _scope_for_view(store, principal, chief_id, on, today)
    v = chief_view(store, chief_id, on=scope.on, now=now)
    cells = city.cells[city.cells["code"].isin(v.cells)]
    features = [
        {"type": "Feature", "geometry": shapely.geometry.mapping(geom),
         "properties": {"kind": "cell", "code": code}}
        for code, geom in zip(cells["code"], cells.geometry, strict=True)
    ]
    features += [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
         "properties": {"kind": "component", **c.model_dump(exclude={"lon", "lat"})}}
        for c in v.components
    ]
    features += [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
         "properties": {"kind": "case", "id": c.id, "state": c.state.value,
                        "event_class": c.event_class, "event_class_name": c.event_class_name,
                        "cell_code": c.cell_code, "deadline": c.deadline.isoformat(),
                        "deadline_status": c.deadline_status.value}}
        for c in v.open_cases
    ]
    if basemap is Basemap.GAODE:
        geoms = geometry_to_basemap(
            np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object),
            basemap=basemap)
        for f, g in zip(features, geoms, strict=True):
            f["geometry"] = shapely.geometry.mapping(g)
    return JSONResponse({"type": "FeatureCollection", "features": features,
                         "chief": v.chief.model_dump(), "on": v.on.isoformat()},
                        media_type="application/geo+json")


@router.post("/chiefs/{chief_id}/assignments", status_code=status.HTTP_201_CREATED,
             response_model=AssignmentCreate, summary="Assign a street or alley (分配街巷)")
def add_assignment(
    chief_id: ChiefId,
    body: AssignmentCreate,
    store: StoreDep,
    principal: PrincipalDep,
) -> AssignmentCreate:
    """From ``valid_from`` on, the alley is this chief's (a handover is a new row)."""
    authorize(principal, Permission.ASSIGN_CHIEF)
    app.assign_chief(store, chief_id, body.alley, body.valid_from)
    return body
