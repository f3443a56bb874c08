"""Injected dependencies: settings, the store, the city, the calling principal.

They are ``async``: each takes microseconds (the city and its locator are built at
start-up), so running them on the event loop beats a hop through the thread pool; the
rare call that must read the store (the city's periodic check, a build) goes to the pool.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from gridcore._time import Clock, default_clock
from gridcore.access import Scope
from gridcore.auth import Principal
from gridcore.locate import Locator
from gridcore.sample import City
from gridcore.store import Store

from .settings import Settings

log = logging.getLogger("gridcore.api")


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


async def get_store(request: Request) -> Store:
    """Return the app's store."""
    return request.app.state.store


class CityHolder:
    """The city the service answers from: the grid version in force, followed as it changes.

    The version in force is asked of the store (`current_version` on the city's today)
    at most every ``recheck_seconds``, and at once when the city's day changes, so a
    version imported while the service runs, or whose valid-from day arrives, is served
    without a restart: the new city and its locator replace the old ones, requests in
    flight finish on the old.

    The locator (cell lookup raster + component index) is built on first use, or ahead
    of it by `warm_up`; it is shared by every app in the process that serves the same
    grid and components (a restart, tests on copies of one store).

    Parameters
    ----------
    store : Store
        Where the city is held.
    clock : callable, optional
        Returns the `gridcore._time.Clock` whose ``today()`` decides the version in
        force (asked on every check, so a test may swap the app's clock); default
        `gridcore._time.default_clock`.
    recheck_seconds : float
        Longest time a newly valid version waits before it is served.
    """

    def __init__(self, store: Store, *, clock: Callable[[], Clock] | None = None,
                 recheck_seconds: float = 5.0) -> None:
        self._store = store
        self._clock = clock or default_clock
        self._recheck = recheck_seconds
        self._lock = threading.Lock()  # guards the fields below, held for microseconds
        self._refresh_lock = threading.Lock()  # one thread loads a new city at a time
        self._locator_lock = threading.Lock()  # one thread builds the locator at a time
        self._store_lock = threading.RLock()  # held while reading the store; close waits
        self._closed = threading.Event()
        self._city: City | None = None
        self._checked_day: date | None = None
        self._checked_at = -math.inf
        self._located: tuple[City, Locator] | None = None
        self._warm_up: threading.Thread | None = None
        self._extent: tuple[City, tuple[float, float, float, float]] | None = None

    def get(self) -> City:
        """Return the city in force today (loading it on first use or when it changed)."""
        today = self._clock().today()
        with self._lock:
            if not self._due(today):
                return self._city
        return self._refresh(today)

    def extent(self) -> tuple[float, float, float, float] | None:
        """Return the WGS84 extent of the city loaded last (None before); never read the store.

        For error messages ("would be in the city"), which must not wait on the store.
        """
        city = self._city
        if city is None:
            return None
        cached = self._extent
        if cached is None or cached[0] is not city:
            cached = self._extent = (city, tuple(float(v) for v in city.cells.total_bounds))
        return cached[1]

    def needs_store(self) -> bool:
        """Whether `get` or `locator` would read the store now (else they take microseconds)."""
        today = self._clock().today()
        with self._lock:
            due = self._due(today)
        located = self._located
        return due or located is None or located[0] is not self._city

    def _due(self, today: date) -> bool:
        return (self._city is None or today != self._checked_day
                or time.monotonic() - self._checked_at >= self._recheck)

    def _refresh(self, today: date) -> City:
        with self._refresh_lock:
            with self._lock:
                if not self._due(today):  # another thread checked while this one waited
                    return self._city
                current = self._city
            try:
                with self._using_store():
                    city = current
                    vid = self._store.current_version(on=today)
                    if current is None or vid != current.grid_version:
                        from gridcore.sample import load_city

                        city = load_city(self._store, on=today)
            except Exception:
                if current is None or self._closed.is_set():
                    raise
                # keep answering from the version in force; ask again at the next check
                log.exception("could not check the grid version in force; keeping "
                              "version %s", current.grid_version)
                city = current
            if current is not None and city is not current:
                log.info("grid version %s is in force on %s (was %s)", city.grid_version,
                         today, current.grid_version)
            with self._lock:
                self._city = city
                self._checked_day, self._checked_at = today, time.monotonic()
                return city

    def locator(self) -> Locator:
        """Return the `gridcore.locate.Locator` of the current city (built on first use)."""
        city = self.get()
        with self._locator_lock:
            if self._located is None or self._located[0] is not city:
                self._located = (city, _shared_locator(city, self._store,
                                                       guard=self._using_store))
            return self._located[1]

    def warm_up(self) -> threading.Thread:
        """Build the locator in a background thread; requests that need it wait for it."""
        t = threading.Thread(target=self._build_quietly, name="gridcore-warm-up", daemon=True)
        self._warm_up = t
        t.start()
        return t

    def _build_quietly(self) -> None:
        try:
            self.locator()
        except _HolderClosed:
            pass  # the app shut down before the warm-up finished: nothing to warm
        except Exception:
            if not self._closed.is_set():  # a request will build it again, and say why
                log.exception("the locator's warm-up failed")

    def close(self, timeout: float = 30.0) -> None:
        """Stop using the store: wait for reads in flight; the warm-up then stops quietly.

        Call before closing the store. A warm-up past its reads may still be computing
        the locator (seconds, no store involved); it is joined for up to ``timeout``.
        """
        self._closed.set()
        with self._store_lock:  # no read of this holder is in flight once this returns
            pass
        if self._warm_up is not None:
            self._warm_up.join(timeout)

    @contextmanager
    def _using_store(self) -> Iterator[None]:
        with self._store_lock:
            if self._closed.is_set():
                raise _HolderClosed("the service is shutting down")
            yield


class _HolderClosed(RuntimeError):
    """The holder was closed (its store is about to be, or is, closed)."""


_SHARED: dict[tuple, object] = {}
_SHARED_LOCK = threading.Lock()


def _grid_digest(cells) -> str:
    import hashlib

    import shapely

    h = hashlib.sha1()
    h.update("\n".join(cells["code"]).encode())
    h.update(b"".join(shapely.to_wkb(cells.geometry.values)))
    return h.hexdigest()


def _shared_locator(city: City, store: Store, *, guard=nullcontext):
    """Return a Locator for the city, reusing the last one built for the same content.

    The lookup raster takes seconds and ~180 MB, the component index seconds more; one
    entry is kept per process. The store is read inside ``guard()``; the build after it
    needs no store.
    """
    from gridcore.locate import Locator

    with _SHARED_LOCK:
        with guard():
            key = (_grid_digest(city.cells), store.components_version(),
                   store.count_components())
            hit = _SHARED.get(key)
            components = store.load_components() if hit is None and key[2] else None
        if hit is None:
            _SHARED.clear()
            hit = _SHARED[key] = Locator.from_city(city, components=components)
        return hit


async def get_city(request: Request) -> City:
    """Return the city (divisions and the grid in force)."""
    holder: CityHolder = request.app.state.city
    if holder.needs_store():  # a check or a load: not on the event loop
        return await run_in_threadpool(holder.get)
    return holder.get()


async def get_principal(request: Request):
    """Return the caller identified by the bearer token.

    Raises
    ------
    AuthenticationError
        No token, or an unknown or revoked one (answered 401).
    """
    from gridcore.auth import bearer_to_token

    token = bearer_to_token(request.headers.get("authorization"))
    # a store query (a network round trip on PostgreSQL): not on the event loop
    return await run_in_threadpool(request.app.state.store.principal_for_token, token)


async def get_scope(request: Request, principal: Annotated[Principal, Depends(get_principal)]):
    """Return what the caller may see today (`gridcore.access.Scope`).

    A chief's cells are a store query, so the scope is computed in the thread pool.
    """
    from gridcore import app

    today = request.app.state.clock.today()
    return await run_in_threadpool(lambda: app.scope_of(request.app.state.store, principal,
                                                        today=today))


async def get_locator(request: Request):
    """Return the city's locator (cells, divisions, components)."""
    holder: CityHolder = request.app.state.city
    if holder.needs_store():  # a check, or a build that takes seconds
        return await run_in_threadpool(holder.locator)
    return holder.locator()


async def get_clock(request: Request) -> Clock:
    """Return the app's clock: every "now" and the city's "today" (tests set a FixedClock)."""
    return request.app.state.clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
CityDep = Annotated[City, Depends(get_city)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
LocatorDep = Annotated[Locator, Depends(get_locator)]
ClockDep = Annotated[Clock, Depends(get_clock)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
