"""App factory for tests that run the service in a subprocess (uvicorn --factory)."""

from __future__ import annotations


def make_app():
    """Return the service app as ``gridcore serve`` builds it."""
    from api.main import create_app

    return create_app()
