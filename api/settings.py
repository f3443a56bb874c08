"""Service settings, read from ``GRIDCORE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the gridcore service (each one an env var ``GRIDCORE_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", extra="ignore")

    db: Path = Field(Path("gridcore.db"), description="SQLite store file (GRIDCORE_DB)")
    max_body_bytes: int = Field(
        1_000_000, ge=1_000, description="largest request body accepted, in bytes")
    basemap: str = Field("osm", description="map pages' default basemap: osm or gaode")
    build_if_empty: bool = Field(
        True, description="build the sample city when the store is empty")
    warm_up: bool = Field(
        True, description="build the locator (lookup raster, component index) at start-up "
                          "in the background, so the first locate is fast")
    max_features: int = Field(
        5_000, ge=1, description="most features one GeoJSON answer may hold")
