"""Injected dependencies: settings, the store, the city, the calling principal.

They are ``async``: each takes microseconds (the city and its locator are built at
start-up), so running them on the event loop beats a hop through the thread pool.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from gridcore.auth import Principal
from gridcore.locate import Locator
from gridcore.sample import City
from gridcore.store import SQLiteStore

from .settings import Settings


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


async def get_store(request: Request) -> SQLiteStore:
    """Return the app's store."""
    return request.app.state.store


class CityHolder:
    """The city the service answers from, loaded once per app.

    The locator (cell lookup raster + component index) is built on first use, or ahead
    of it by `warm_up`; it is shared by every app in the process that serves the same
    grid and components (a restart, tests on copies of one store).
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._city: City | None = None
        self._locator = None

    def get(self) -> City:
        """Return the current city (loading it on first use)."""
        with self._lock:
            if self._city is None:
                from gridcore.sample import load_city

                self._city = load_city(self._store)
            return self._city

    def locator(self):
        """Return the `gridcore.locate.Locator` of the current city (built on first use)."""
        city = self.get()
        with self._lock:
            if self._locator is None:
                self._locator = _shared_locator(city, self._store)
            return self._locator

    def warm_up(self) -> threading.Thread:
        """Build the locator in a background thread; requests that need it wait for it."""
        t = threading.Thread(target=self.locator, name="gridcore-warm-up", daemon=True)
        t.start()
        return t



_SHARED: dict[tuple, object] = {}
_SHARED_LOCK = threading.Lock()


def _grid_digest(cells) -> str:
    import hashlib

    import shapely

    h = hashlib.sha1()
    h.update("\n".join(cells["code"]).encode())
    h.update(b"".join(shapely.to_wkb(cells.geometry.values)))
    return h.hexdigest()


def _shared_locator(city: City, store: SQLiteStore):
    """Return a Locator for the city, reusing the last one built for the same content.

    The lookup raster takes seconds and ~180 MB, the component index seconds more; one
    entry is kept per process.
    """
    from gridcore.locate import Locator

    with _SHARED_LOCK:
        key = (_grid_digest(city.cells), store.components_version(),
               store.query("SELECT COUNT(*) FROM components")[0][0])
        if key not in _SHARED:
            _SHARED.clear()
            components = store.load_components() if key[2] else None
            _SHARED[key] = Locator.from_city(city, components=components)
        return _SHARED[key]


async def get_city(request: Request) -> City:
    """Return the city (divisions and current grid)."""
    return request.app.state.city.get()


async def get_principal(request: Request):
    """Return the caller identified by the bearer token.

    Raises
    ------
    AuthenticationError
        No token, or an unknown or revoked one (answered 401).
    """
    from gridcore.auth import bearer_to_token

    token = bearer_to_token(request.headers.get("authorization"))
    return request.app.state.store.principal_for_token(token)


async def get_locator(request: Request):
    """Return the city's locator (cells, divisions, components)."""
    return request.app.state.city.locator()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[SQLiteStore, Depends(get_store)]
CityDep = Annotated[City, Depends(get_city)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
LocatorDep = Annotated[Locator, Depends(get_locator)]
