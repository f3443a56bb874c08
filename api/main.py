"""The gridcore service: composes settings, the store, error handlers and routers.

Run with ``gridcore serve`` (uvicorn) or ``uvicorn api.main:app``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gridcore.maps import VENDOR_DIR, asset_path

from . import errors
from .deps import CityHolder
from .routes import alerts, cases, chiefs, disputes, grid, health, locate, pages, tokens
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app on the store named by ``settings.db``."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from gridcore.sample import load_sample_city
        from gridcore.store import SQLiteStore

        store = SQLiteStore(settings.db)
        if settings.build_if_empty and store.is_empty():
            load_sample_city(store, progress=True)
        app.state.store = store
        app.state.city = CityHolder(store)
        app.state.city.get()
        if settings.warm_up:
            app.state.city.warm_up()
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="gridcore", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(errors.BodySizeLimit, max_bytes=settings.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    app.mount("/static/vendor/folium",
              StaticFiles(directory=asset_path("folium:leaflet_heat.min.js").parent),
              name="folium-assets")
    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
    return app


app = create_app()
