"""Liveness and what the service holds."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CityDep

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and the city loaded")
def health(city: CityDep) -> dict:
    """Return ``ok`` and the size of the city the service answers from."""
    return {
        "status": "ok",
        "grid_version": city.grid_version,
        "cells": len(city.cells),
        "districts": len(city.divisions.districts),
    }
