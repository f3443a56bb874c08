"""Service settings, read from ``GRIDCORE_*`` environment variables."""

from __future__ import annotations

import os

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the gridcore service (each one an env var ``GRIDCORE_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", extra="ignore")

    # text, not a Path: a Path would fold "postgresql://h/db" into "postgresql:/h/db"
    db: str = Field("gridcore.db", description="the store (GRIDCORE_DB): a SQLite file "
                                               "path or a postgresql:// URL")
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
    tz: str = Field("Asia/Shanghai", description="the city's time zone (IANA name): what "
                                                 "today, a day and a month are")
    grid_recheck_seconds: float = Field(
        5.0, ge=0, description="how often the service asks the store which grid version is "
                               "in force (it also asks whenever the city's day changes)")

    @field_validator("db", mode="before")
    @classmethod
    def _path_to_text(cls, value):
        return os.fspath(value) if isinstance(value, os.PathLike) else value
