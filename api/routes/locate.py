"""Locate a position or a component code: cell, community, street, district, components."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import LocatorDep, ScopeDep, StoreDep
from api.schemas import LocationPublic
from gridcore.access import Permission, authorize
from gridcore.crs import CRS
from gridcore.errors import CoordinateError, PermissionDeniedError

router = APIRouter(prefix="/v1", tags=["locate"])


def location_public(loc, chiefs: list[dict] | None = None) -> dict:
    """Shape a `gridcore.locate.Location` (and its cell's chiefs) as the locate answer."""
    d = loc.to_dict()
    return {
        "chiefs": chiefs or [],
        "position": {"lon": d["lon"], "lat": d["lat"], "crs": "wgs84"},
        "cell": {"code": d["cell_code"]},
        "community": {"code": d["community_code"], "name": d["community_name"]},
        "street": {"code": d["street_code"], "name": d["street_name"]},
        "district": {"code": d["district_code"], "name": d["district_name"]},
        "nearest_components": list(d["nearby"]),
        "component": d["component"],
    }


@router.get("/locate", response_model=LocationPublic,
            summary="Locate a position (定位): cell, community, street, district, components")
async def locate(
    locator: LocatorDep, store: StoreDep, scope: ScopeDep,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="longitude in `crs`")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="latitude in `crs`")] = None,
    crs: Annotated[CRS | None, Query(
        description="CRS of lon/lat: wgs84, gcj02 (AMap/Gaode, Tencent) or bd09 (Baidu); "
                    "required with lon/lat")] = None,
    code: Annotated[str | None, Query(
        pattern=r"^([0-9]{8}|[0-9]{16,17})$",
        description="a component code (部件编码) instead of a position: 16 or 17 digits, "
                    "or 8 with `district`")] = None,
    district: Annotated[str | None, Query(
        pattern=r"^[0-9]{6}$",
        description="6-digit district code, needed with an 8-digit short code")] = None,
    k: Annotated[int, Query(ge=0, le=50, description="nearest components to list")] = 5,
) -> dict:
    """Locate a position (with its CRS) or a component code.

    A position outside the city is a 404 problem; NaN, out-of-range or swapped
    coordinates are 422 problems. Components, their owners and the chiefs are listed
    only where the caller may see them (`gridcore.access`); a component code outside
    that is a 403.
    """
    authorize(scope.principal, Permission.LOCATE)
    if code is not None:
        if lon is not None or lat is not None:
            raise CoordinateError("give either lon/lat/crs or a component code, not both")
        loc = locator.locate_component(code, district=district, k=k)
        if not scope.sees_detail_at(loc.cell_code):
            raise PermissionDeniedError(
                f"component {code} lies outside what you may see ({scope.describe()})")
        return await _answer(loc, store, scope)
    if lon is None or lat is None or crs is None:
        raise CoordinateError("give lon, lat and crs (wgs84, gcj02 or bd09), "
                              "or a component code")
    return await _answer(locator.locate(lon, lat, crs=crs, k=k), store, scope)


async def _answer(loc, store, scope) -> dict:
    # The locator runs here, on the event loop: its rtree (libspatialindex through ctypes)
    # must not be queried from several threads at once (a pool thread per request
    # crashed the worker under load). The chiefs are a store query (a network round
    # trip on PostgreSQL), so that part goes to the thread pool.
    if not scope.sees_detail_at(loc.cell_code):
        return location_public(dataclasses.replace(loc, nearby=()), [])
    chiefs = await run_in_threadpool(store.chiefs_of_cell, loc.cell_code)
    return location_public(loc, chiefs)
