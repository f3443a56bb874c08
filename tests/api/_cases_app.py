"""App factory for tests that run the service in a subprocess (uvicorn --factory)."""

from __future__ import annotations


def make_app():
    """Return the service app, with the case routers even before api/main.py lists them."""
    from api.main import create_app
    from api.routes import cases, chiefs, tokens

    app = create_app()
    if not any(getattr(r, "path", None) == "/v1/cases" for r in app.routes):
        for module in (cases, chiefs, tokens):
            app.include_router(module.router)
    return app
