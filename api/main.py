"""The gridcore service: composes settings, the store, error handlers and routers.

Run with ``gridcore serve`` (uvicorn, ``--workers N`` processes) or
``uvicorn --factory api.main:create_app``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gridcore._time import Clock, SystemClock
from gridcore.maps import VENDOR_DIR, asset_path

from . import errors
from .deps import CityHolder
from .routes import (
    alerts,
    cases,
    chiefs,
    disputes,
    grid,
    health,
    locate,
    open311,
    pages,
    tokens,
)
from .schemas import PROBLEM_RESPONSES
from .settings import Settings

DESCRIPTION = """
gridcore serves a city cut into unit grid cells (万米单元网格): locate a position or a
component code, look up cells, components and divisions, report incidents and run the
closed case loop (立案 → 派遣 → 处置 → 核查 → 结案).

Every `/v1/...` call needs `Authorization: Bearer TOKEN` (create one with
`gridcore token create --role ROLE --name NAME`). `/health`, `/docs`, the map page `/`
and its public grid layer (`/grid/...`) need none. Errors are
`application/problem+json` (RFC 9457). Positions always name their CRS: `wgs84`,
`gcj02` (AMap/Gaode, Tencent) or `bd09` (Baidu).
"""

ROUTERS = [
    health.router, pages.router, grid.public, grid.router, locate.router, cases.router,
    chiefs.router, tokens.router, disputes.router, alerts.router,
]


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the FastAPI app on the store named by ``settings.db``.

    ``clock`` is where every "now" comes from (default the system clock in the city's
    time zone, ``settings.tz``); tests pass a `gridcore._time.FixedClock`.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from gridcore import app as usecases
        from gridcore.sample import load_sample_city
        from gridcore.store import open_store

        # a SQLite file path or a postgresql:// URL; the store reads the app's clock
        store = open_store(settings.db, clock=app.state.clock)
        try:
            if settings.build_if_empty and store.is_empty():
                load_sample_city(store, progress=True)
            usecases.prepare_store(store)  # what the store derives (alley/cell table)
            app.state.store = store
            holder = app.state.city = CityHolder(
                store, clock=lambda: app.state.clock,  # asked each time: tests may swap it
                recheck_seconds=settings.grid_recheck_seconds)
            holder.get()
            if settings.warm_up:
                holder.warm_up()
            try:
                yield
            finally:
                holder.close()  # before the store: the warm-up must not read a closed one
        finally:
            store.close()

    app = FastAPI(title="gridcore", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock or SystemClock(tz=settings.tz)
    errors.install(app)
    app.add_middleware(errors.BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(errors.InternalErrors)  # outermost: answers what all else raised
    for router in ROUTERS:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    app.include_router(open311.router)  # errors in GeoReport v2's shape, not problem+json
    app.mount("/static/vendor/folium",
              StaticFiles(directory=asset_path("folium:leaflet_heat.min.js").parent),
              name="folium-assets")
    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
    return app


app = create_app()
