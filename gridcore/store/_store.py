"""The SQL store: every aggregate's persistence over one backend-neutral core."""

from __future__ import annotations

from ._alerts import AlertsMixin
from ._base import SQLStoreBase
from ._cases import CasesMixin
from ._components import ComponentsMixin
from ._disputes import DisputesMixin
from ._grid import GridMixin
from ._people import ChiefsMixin, TokensMixin


class SQLStore(GridMixin, ComponentsMixin, CasesMixin, ChiefsMixin, TokensMixin,
               DisputesMixin, AlertsMixin, SQLStoreBase):
    """A `gridcore.store.Store` on a SQL database; backends add connections and a dialect."""
