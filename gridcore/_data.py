"""Reading the data files shipped in ``gridcore/data`` (one place for all modules)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .errors import DataFileError


def read_data_csv(name: str) -> pd.DataFrame:
    """Read ``gridcore/data/<name>`` as text columns, ``#`` lines being comments.

    Raises
    ------
    DataFileError
        The file is missing or unreadable.
    """
    path = resources.files("gridcore").joinpath("data", name)
    try:
        with path.open("rb") as f:
            return pd.read_csv(f, comment="#", dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"cannot read gridcore/data/{name}: {exc}") from exc
