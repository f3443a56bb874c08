"""Heat-map alerts: ``GET /v1/alerts`` lists the hotspot alerts held in the store.

The alerts are computed by `gridcore.heatmap` (Gi* with FDR control, against each
cell's own baseline) and stored by data set. On a fresh start the sample's alerts are
computed once (`startup_hook`) so the list is never empty on the sample city.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, StoreDep
from api.schemas import AlertPublic
from gridcore.codes import validate_cell_code

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get(
    "/alerts",
    response_model=list[AlertPublic],
    summary="Heat-map hotspot alerts (热力图报警), oldest first",
)
def list_alerts(
    store: StoreDep,
    _: PrincipalDep,
    start: Annotated[
        datetime | None,
        Query(
            description="keep alerts whose window ends after this (ISO 8601, Beijing time)",
            examples=["2018-04-01T00:00:00"],
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(
            description="keep alerts whose window starts before this",
            examples=["2018-04-10T00:00:00"],
        ),
    ] = None,
    cell_code: Annotated[
        str | None,
        Query(description="only alerts covering this 15-digit cell", examples=["110102001019032"]),
    ] = None,
    dataset: Annotated[str | None, Query(description="only this data set")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict]:
    """Return the stored alerts: cell(s), window, count against baseline, z, p, q, why."""
    if cell_code is not None:
        cell_code = validate_cell_code(cell_code)
    return store.heat_alerts(
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        cell_code=cell_code,
        dataset=dataset,
        limit=limit,
        offset=offset,
    )


def startup_hook(app) -> None:
    """Compute and store the sample's alerts when the store holds none (first start)."""
    from gridcore.sample_heatmap import seed_sample_alerts

    store = app.state.store
    if store.count_heat_alerts() == 0:
        seed_sample_alerts(store, app.state.city.get().cells)
