"""False alerts and power of the surge detector on realistic simulated counts.

Regenerates the README's table:

    python bench/power_heatmap.py              # 10 simulations per noise shape (~5 min)
    python bench/power_heatmap.py --sims 3     # a quick look
    python bench/power_heatmap.py --as-cells 43000   # the per-test threshold of a 43,000-cell city

Each simulation is a 50 x 50 lattice (`gridcore.sample_heatmap.realistic_counts`): eight
weeks of history and one week scanned, negative binomial noise of shape 10 or 2 per
cell-hour. Into the scanned week it plants one surge for every (factor, hours, baseline)
of the table, in cells at least four apart and at meal-peak hours of different days, so
one simulation gives one trial of each. A surge is found when an alert covers its cell
and overlaps its hours. Alerts touching no planted surge are false; the null rows count
them in simulations with nothing planted.

``--as-cells N`` scans with the per-test threshold a city of N cells would use (the
recurrence threshold scaled by N / 2500: same tests per cell, N / 2500 times as many
cells), which is how the figures extrapolate to the 43,000-cell sample city.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd

from gridcore.heatmap import scan_surges
from gridcore.sample_heatmap import realistic_counts

SIZE = 50
HISTORY_DAYS = 56
FACTORS = (2.0, 3.0, 4.0)
HOURS = (1, 2, 3)
BASELINES = ((2, 5), (5, 10), (10, 20))  # events per hour in the cell before the surge


def _plan(ref, rng):
    """Pick a cell and a start for every (factor, hours, baseline), spread in space/time."""
    n_hours = len(ref.hours)
    taken = np.zeros((SIZE, SIZE), dtype=bool)
    plan = []
    combos = list(itertools.product(FACTORS, HOURS, BASELINES))
    starts = [d * 24 + h for d in range(HISTORY_DAYS, HISTORY_DAYS + 7) for h in (11, 17)]
    for k, (factor, hours, (lo, hi)) in enumerate(combos):
        first = starts[k % len(starts)]
        if first + hours > n_hours:
            continue
        base = ref.mean[first:first + hours].min(0)
        cand = np.flatnonzero((base >= lo) & (base < hi))
        rng.shuffle(cand)
        for c in cand:
            r, q = divmod(int(c), SIZE)
            if not taken[max(r - 4, 0):r + 5, max(q - 4, 0):q + 5].any():
                taken[r, q] = True
                plan.append((int(c), first, hours, factor, (lo, hi)))
                break
    return plan


def _run(shape: float, sims: int, seed0: int, rec: float) -> tuple[pd.DataFrame, int, float]:
    rows, false, weeks = [], 0, 0.0
    for i in range(sims):
        seed = seed0 + i
        days = HISTORY_DAYS + 7
        ref = realistic_counts(SIZE, SIZE, days=days, shape=shape, seed=seed)
        plan = _plan(ref, np.random.default_rng(seed))
        sim = realistic_counts(SIZE, SIZE, days=days, shape=shape, seed=seed,
                               surges=[p[:4] for p in plan])
        alerts = scan_surges(sim.counts, sim.hours, sim.adjacency, sim.codes,
                             start=sim.hours[HISTORY_DAYS * 24], min_recurrence_days=rec)
        used = np.zeros(len(alerts), dtype=bool)
        for cell, first, hours, factor, band in plan:
            t0, t1 = sim.hours[first], sim.hours[first] + pd.Timedelta(hours=hours)
            hit = np.array([sim.codes[cell] in a.cell_codes and a.start.tz_localize(None) < t1
                            and a.end.tz_localize(None) > t0 for a in alerts], dtype=bool)
            near = np.array([bool(set(a.cell_codes) & set(sim.codes[_ring(cell)]))
                             and a.start.tz_localize(None) < t1 + pd.Timedelta(hours=3)
                             and a.end.tz_localize(None) > t0 - pd.Timedelta(hours=3)
                             for a in alerts], dtype=bool)
            used |= near
            rows.append({"shape": shape, "factor": factor, "hours": hours,
                         "baseline": f"{band[0]:>2}-{band[1]}", "found": bool(hit.any())})
        false += int((~used).sum())
        # the null: the same simulation without the surges
        null = scan_surges(ref.counts, ref.hours, ref.adjacency, ref.codes,
                           start=ref.hours[HISTORY_DAYS * 24], min_recurrence_days=rec)
        false += len(null)
        weeks += 2.0
    return pd.DataFrame(rows), false, weeks


def _ring(cell: int) -> np.ndarray:
    r, q = divmod(cell, SIZE)
    rr, qq = np.meshgrid(np.arange(max(r - 2, 0), min(r + 3, SIZE)),
                         np.arange(max(q - 2, 0), min(q + 3, SIZE)))
    return (rr * SIZE + qq).ravel()


def main() -> None:
    """Print the false-alert rate and the power table as Markdown."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=10, help="simulations per noise shape")
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--as-cells", type=int, default=SIZE * SIZE,
                    help="scan with the threshold of a city of this many cells")
    args = ap.parse_args()
    rec = 30.0 * args.as_cells / (SIZE * SIZE)
    t = time.perf_counter()
    tables, null = [], []
    for shape in (10.0, 2.0):
        df, false, weeks = _run(shape, args.sims, args.seed, rec)
        tables.append(df)
        null.append((shape, false, weeks))
    df = pd.concat(tables)
    print(f"{SIZE * SIZE} cells, {HISTORY_DAYS // 7} weeks of history, one week scanned per "
          f"simulation, {args.sims} simulations per shape, min_recurrence_days={rec:g} "
          f"(the per-test threshold of {args.as_cells} cells at 30 days)\n")
    print("| noise shape | false surge alerts | weeks scanned | per week |")
    print("|---|---|---|---|")
    for shape, false, weeks in null:
        print(f"| {shape:g} | {false} | {weeks:g} | {false / weeks:.2f} |")
    print()
    pt = (df.groupby(["shape", "baseline", "factor", "hours"])["found"].mean()
          .unstack(["factor", "hours"]))
    cols = [f"{f:g}x {h}h" for f, h in pt.columns]
    print("| shape | baseline /h | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for (shape, base), row in pt.sort_index(ascending=[False, True]).iterrows():
        print(f"| {shape:g} | {base} | " + " | ".join(f"{v:.0%}" for v in row) + " |")
    print(f"\n({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
