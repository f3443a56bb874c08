"""The bundled sample city: 东城, 西城 and 丰台, built once and kept in the store.

`load_sample_city` returns the city from the store, building it first when the store is
empty: real district polygons, synthetic streets and communities, the 100 m unit grid,
a synthetic component census, the sample street-and-alley chiefs, and the alerts of the
synthetic 堂子胡同 e-bike data set (so a fresh service has alerts to show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import geopandas as gpd

from .divisions import SAMPLE_DISTRICTS, Divisions, synthesise_divisions
from .grid import GridVersion, generate_grid
from .store import Store, open_store

# The sample grid's first version: the day Dongcheng's grid system went live.
SAMPLE_VALID_FROM = date(2004, 10, 22)
# Components in the sample census: the floor; Dongcheng alone held about 168,000.
SAMPLE_COMPONENTS = 300_000


@dataclass
class City:
    """A city as gridcore sees it: divisions and the current unit grid."""

    divisions: Divisions
    cells: gpd.GeoDataFrame
    grid_version: int | None = None


def build_sample_city(store: Store, *, progress: bool = True,
                      components: int = SAMPLE_COMPONENTS) -> City:
    """Build the sample city into ``store`` (replacing its divisions) and return it.

    Parameters
    ----------
    store : Store
        Where the divisions, the first grid version, the components, the chiefs and the
        sample alerts are saved.
    progress : bool
        Show progress bars (on stderr).
    components : int
        Size of the synthetic component census (0 for none).
    """
    from tqdm import tqdm

    from . import app
    from .census import synthesise_components

    with tqdm(total=len(SAMPLE_DISTRICTS), desc="divisions", unit="district",
              disable=not progress) as bar:
        divisions = synthesise_divisions(progress=lambda _msg: bar.update())
    with tqdm(total=len(divisions.communities), desc="unit grid", unit="community",
              disable=not progress) as bar:
        cells = generate_grid(divisions.communities, progress=bar.update)
    store.save_divisions(divisions)
    vid = app.add_grid_version(store, GridVersion(SAMPLE_VALID_FROM, cells, source="sample"))
    steps = ["components", "chiefs", "alerts"]
    with tqdm(total=len(steps), desc="sample data", unit="step", disable=not progress) as bar:
        if components:
            app.add_components(store, synthesise_components(cells, n=components), cells=cells)
        bar.update()
        app.seed_sample_roster(store)
        bar.update()
        app.raise_sample_alerts(store, cells)
        bar.update()
    return City(divisions, cells, vid)


def load_city(store: Store, *, on: date | None = None) -> City:
    """Return the city held by ``store`` (the grid version valid on ``on``, default today)."""
    cells = store.load_grid(on=on)
    return City(store.load_divisions(), cells, cells.attrs.get("version_id"))


def load_sample_city(store: Store | None = None, *, progress: bool = False) -> City:
    """Return the sample city from ``store``, building it first if the store is empty.

    Parameters
    ----------
    store : Store, optional
        Default: the store named by ``$GRIDCORE_DB`` (a file, or a PostgreSQL URL).
    progress : bool
        Show progress bars while building.
    """
    store = open_store() if store is None else store
    if store.is_empty():
        return build_sample_city(store, progress=progress)
    return load_city(store)
