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
    """The city the service answers from, loaded once and reloaded when the grid changes."""

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
                from gridcore.locate import Locator

                self._locator = Locator.from_city(city, components=self._components(),
                                                  cell_locator=_cell_locator_for(city.cells))
            return self._locator

    def _components(self):
        return None

    def reload(self) -> None:
        """Forget the cached city and locator (after a new grid version or components)."""
        with self._lock:
            self._city = None
            self._locator = None


_CELL_LOCATORS: dict[str, object] = {}


def _cell_locator_for(cells):
    """Return a `CellLocator` for ``cells``, reusing the last one built for the same grid.

    The lookup raster takes seconds and ~180 MB to build; apps in one process that serve
    the same grid (a restart, tests on copies of one store) share it. One entry is kept.
    """
    import hashlib

    import shapely

    from gridcore.sindex import CellLocator

    h = hashlib.sha1()
    h.update("\n".join(cells["code"]).encode())
    h.update(b"".join(shapely.to_wkb(cells.geometry.values)))
    key = h.hexdigest()
    if key not in _CELL_LOCATORS:
        _CELL_LOCATORS.clear()
        _CELL_LOCATORS[key] = CellLocator(cells)
    return _CELL_LOCATORS[key]


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
