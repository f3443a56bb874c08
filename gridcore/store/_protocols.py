"""What gridcore needs from a store: one protocol per aggregate, and `Store` of them all.

A backend implements every method; the contract suite (``tests/store/``) runs on each.
Arguments and answers are domain objects (`gridcore.cases.Case`,
`gridcore.disputes.JointTask`...), frames and plain values: no driver object crosses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import geopandas as gpd
import pandas as pd

from .._time import Clock
from ..auth import Principal, TokenRecord
from ..cases import Case, CaseFilter, CaseState, FollowUp
from ..chiefs import ChiefRoster
from ..disputes import JointTask, Override
from ..divisions import Divisions
from ..grid import GridVersion


@runtime_checkable
class GridStore(Protocol):
    """Divisions and versioned unit grids."""

    def is_empty(self) -> bool:
        """Return True when no grid version is stored."""

    def save_divisions(self, divisions: Divisions) -> None:
        """Replace the stored divisions."""

    def load_divisions(self) -> Divisions:
        """Return the stored divisions (NotFoundError when none)."""

    def add_grid_version(self, version: GridVersion) -> int:
        """Store a grid version and return its id."""

    def grid_versions(self) -> pd.DataFrame:
        """List grid versions (id, valid_from, source, n_cells, created_at)."""

    def current_version(self, *, on: dt.date | None = None) -> int:
        """Return the id of the version in force on a day (default: the city's today)."""

    def load_grid(self, version: int | None = None, *, on: dt.date | None = None
                  ) -> gpd.GeoDataFrame:
        """Return the cells of a version (default: the one in force today)."""

    def get_cell(self, code: str, version: int | None = None) -> pd.Series:
        """Return one cell by code."""

    def cells_in_bbox(self, bbox: tuple[float, float, float, float], *,
                      version: int | None = None, limit: int | None = None
                      ) -> gpd.GeoDataFrame:
        """Return the cells that intersect a lon/lat box."""


@runtime_checkable
class ComponentStore(Protocol):
    """Component records (部件), one per code ever issued."""

    def add_components(self, components: gpd.GeoDataFrame) -> int:
        """Store new records (ConflictError on a stored code; all or none)."""

    def update_components(self, components: gpd.GeoDataFrame) -> int:
        """Replace stored records by code (NotFoundError on an unknown code)."""

    def component_codes(self) -> list[str]:
        """Return every code ever issued."""

    def count_components(self) -> int:
        """Return how many records are stored."""

    def components_version(self) -> int:
        """Return a counter that changes with every write."""

    def components_in_cells(self, cell_codes: Sequence[str]) -> pd.DataFrame:
        """Return a light view of the components in some cells."""

    def components_near(self, lon: float, lat: float, *, radius_m: float,
                        limit: int = 10) -> pd.DataFrame:
        """Return components within a radius of a point, nearest first."""

    def load_components(self, *, district: str | None = None,
                        cell_code: str | None = None) -> gpd.GeoDataFrame:
        """Return stored records."""

    def get_component(self, code: str):
        """Return one component (NotFoundError when not stored)."""


@runtime_checkable
class CaseStore(Protocol):
    """Cases (案卷), their audit trail, follow-ups and idempotency keys."""

    def add_case(self, case: Case, *, idempotency_key: str | None = None,
                 request_hash: str | None = None, principal: str = "") -> tuple[int, bool]:
        """Store a new case once per idempotency key; return (id, newly stored)."""

    def case_for_idempotency_key(self, key: str, *, principal: str) -> int | None:
        """Return the id of the case ``principal`` reported with this key, or None."""

    def get_case(self, case_id: int) -> Case:
        """Return one case (NotFoundError when none)."""

    def update_case(self, case_id: int, change: Callable[[Case], Case]) -> Case:
        """Apply a transition to a locked case and store it; nothing on error."""

    def list_cases(self, *, states: Sequence[CaseState | str] | None = None,
                   cell_codes: Sequence[str] | None = None, street_code: str | None = None,
                   department: str | None = None,
                   event_class: str | Sequence[str] | None = None,
                   reported_since: dt.datetime | None = None,
                   reported_before: dt.datetime | None = None,
                   updated_since: dt.datetime | None = None,
                   ids: Sequence[int] | None = None, limit: int | None = None,
                   offset: int = 0, visible: CaseFilter | None = None) -> list[Case]:
        """Return cases matching all filters, newest first (``visible``: who may see them)."""

    def count_cases(self, *, states: Sequence[CaseState | str] | None = None) -> int:
        """Return how many cases are stored."""

    def cases_frame(self, *, reported_since: dt.datetime | None = None,
                    reported_before: dt.datetime | None = None,
                    visible: CaseFilter | None = None) -> pd.DataFrame:
        """Return cases flat, for metrics (``visible``: only those someone may see)."""

    def open_cases_frame(self, *, event_class: str | None = None,
                         reported_since: dt.datetime | None = None) -> pd.DataFrame:
        """Return the open cases' positions and times, for duplicate hints."""

    def add_followup(self, followup: FollowUp) -> int:
        """Store a follow-up call and return its id."""

    def followups_frame(self) -> pd.DataFrame:
        """Return every follow-up."""


@runtime_checkable
class ChiefStore(Protocol):
    """Street-and-alley chiefs (街巷长), their alleys, dated assignments, alley/cell table."""

    def save_roster(self, roster: ChiefRoster) -> None:
        """Replace chiefs, alleys and assignments (and empty the alley/cell table)."""

    def has_chiefs(self) -> bool:
        """Return True when any chief is stored."""

    def load_roster(self) -> ChiefRoster:
        """Return chiefs, alleys and assignments."""

    def get_chief(self, chief_id: str) -> dict:
        """Return a chief's id, name and title."""

    def chief_ids(self) -> list[str]:
        """Return every chief id."""

    def add_assignment(self, chief_id: str, alley: str, valid_from: dt.date) -> None:
        """Record a dated assignment (ConflictError on a second one the same day)."""

    def chiefs_of_cell(self, cell_code: str, *, on: dt.date | None = None) -> list[dict]:
        """Return the chiefs of a cell on a day."""

    def has_alley_cells(self, version: int) -> bool:
        """Return True when a version's alley/cell table is stored."""

    def save_alley_cells(self, version: int, pairs: pd.DataFrame) -> None:
        """Store a version's alley/cell pairs."""

    def alley_cells(self, version: int | None = None) -> pd.DataFrame:
        """Return a version's alley/cell pairs."""


@runtime_checkable
class TokenStore(Protocol):
    """Bearer tokens: hashes and holders, never tokens."""

    def add_token(self, record: TokenRecord, *, expires_at: dt.datetime | None = None
                  ) -> None:
        """Store a token record."""

    def principal_for_token(self, token: str) -> Principal:
        """Return who a token belongs to (AuthenticationError when not live)."""

    def revoke_token(self, token: str) -> None:
        """Revoke a token."""

    def revoke_token_hash(self, token_hash: str) -> bool:
        """Revoke a token by its hash; return whether a live one was revoked."""

    def revoke_token_id(self, id: str) -> bool:
        """Revoke a token by its public id; return whether an unrevoked one had it."""

    def tokens_frame(self) -> pd.DataFrame:
        """Return every token record (id, role, holder, times), never a token."""


@runtime_checkable
class DisputeStore(Protocol):
    """Joint tasks of cross-boundary cases, and responsibility overrides."""

    def add_or_join_dispute(self, *, event_class: str, level: str, since: dt.datetime,
                            decide: Callable[[list[JointTask]], tuple[JointTask, bool]]
                            ) -> tuple[JointTask, bool]:
        """Store what ``decide(open tasks)`` returns, atomically with reading them."""

    def get_dispute(self, task_id: str) -> JointTask:
        """Return a joint task (NotFoundError when none)."""

    def update_dispute(self, task_id: str, change: Callable[[JointTask], object]
                       ) -> JointTask:
        """Apply a change to a locked task and store it; nothing on error."""

    def list_disputes(self, *, party_codes=None, status=None, level=None,
                      department: str | None = None, opened_by: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[JointTask]:
        """List joint tasks, newest first."""

    def save_dispute_override(self, override: Override) -> None:
        """Store or replace an override."""

    def dispute_overrides(self) -> list[Override]:
        """Return every override."""


@runtime_checkable
class AlertStore(Protocol):
    """Hotspot alerts."""

    def replace_heat_alerts(self, dataset: str, alerts: Sequence) -> int:
        """Replace a data set's alerts; return how many."""

    def heat_alerts(self, *, start=None, end=None, cell_code: str | None = None,
                    dataset: str | None = None, limit: int = 100, offset: int = 0
                    ) -> list[dict]:
        """Return alerts overlapping a window."""

    def count_heat_alerts(self, dataset: str | None = None) -> int:
        """Return how many alerts are stored."""


@runtime_checkable
class Store(GridStore, ComponentStore, CaseStore, ChiefStore, TokenStore, DisputeStore,
            AlertStore, Protocol):
    """Everything gridcore persists, on one backend, with the clock it reads."""

    clock: Clock
    url: str

    def schema_version(self) -> int:
        """Return the schema's version."""

    def close(self) -> None:
        """Release every connection."""
