"""Liveness and what the service holds."""

from __future__ import annotations

import os

from fastapi import APIRouter

from api.deps import CityDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and the city loaded")
def health(city: CityDep) -> dict:
    """Return ``ok``, the size of the city the service answers from, and who answered.

    ``pid`` is the worker process that answered (``gridcore serve --workers N``).
    """
    return {
        "status": "ok",
        "pid": os.getpid(),
        "grid_version": city.grid_version,
        "cells": len(city.cells),
        "districts": len(city.divisions.districts),
    }
