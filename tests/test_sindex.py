import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridcore.errors import GeometryError, NotFoundError
from gridcore.sindex import CellLocator, ComponentIndex
from tests.synthetic_grid import voronoi_cells

CLASSES = np.array(["0101", "0102", "0305", "0401", "0602"])  # 0602 kept rare below
STATUSES = np.array(["完好", "破损", "丢失", "废弃"])


def _brute(x, y, cls, st, live, qx, qy, *, k=None, radius=None, classes=None, statuses=None):
    ok = live.copy()
    if classes is not None:
        ok &= np.isin(cls, classes)
    if statuses is not None:
        ok &= np.isin(st, statuses)
    ids = np.flatnonzero(ok)
    d = np.sqrt((x[ids] - qx) ** 2 + (y[ids] - qy) ** 2)
    if radius is not None:
        ids, d = ids[d <= radius], d[d <= radius]
    order = np.lexsort((ids, d))[: k if k is not None else None]
    return ids[order], d[order]


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    n = 20_000
    x = rng.uniform(440_000, 450_000, n)
    y = rng.uniform(4_410_000, 4_420_000, n)
    # integer-rounded points on a coarse lattice for a share of entries: exact ties
    x[:2000] = np.round(x[:2000], -2)
    y[:2000] = np.round(y[:2000], -2)
    cls = rng.choice(CLASSES, n, p=[0.4, 0.3, 0.2, 0.098, 0.002])
    st = rng.choice(STATUSES, n, p=[0.9, 0.05, 0.03, 0.02])
    live = rng.uniform(size=n) > 0.05
    idx = ComponentIndex(x, y, classes=cls, statuses=st, live=live)
    # updates after bulk load: inserts, moves, retirements, status changes
    extra = 3000
    x = np.concatenate([x, rng.uniform(440_000, 450_000, extra)])
    y = np.concatenate([y, rng.uniform(4_410_000, 4_420_000, extra)])
    cls = np.concatenate([cls, rng.choice(CLASSES, extra)])
    st = np.concatenate([st, rng.choice(STATUSES, extra)])
    live = np.concatenate([live, np.ones(extra, dtype=bool)])
    for i in range(n, n + extra):
        idx.insert(i, x[i], y[i], class_code=cls[i], status=st[i])
    for i in rng.choice(np.flatnonzero(live), 3000, replace=False):
        x[i], y[i] = rng.uniform(440_000, 450_000), rng.uniform(4_410_000, 4_420_000)
        idx.move(i, x[i], y[i])
    for i in rng.choice(np.flatnonzero(live), 2000, replace=False):
        idx.retire(i)
        live[i] = False
    for i in rng.choice(np.flatnonzero(live), 500, replace=False):
        st[i] = "破损"
        idx.set_status(i, "破损")
    return idx, x, y, cls, st, live, rng


def test_len_and_contains(world):
    idx, x, y, cls, st, live, rng = world
    assert len(idx) == live.sum()
    dead = int(np.flatnonzero(~live)[0])
    assert dead not in idx and int(np.flatnonzero(live)[0]) in idx


@pytest.mark.parametrize(
    "k, classes, statuses",
    [(1, None, None), (7, None, None), (5, "0101", None), (3, ["0602"], None),
     (4, None, ["丢失", "废弃"]), (6, ["0305", "0401"], "破损"), (2, "9999", None)],
)
def test_nearest_equals_brute_force(world, k, classes, statuses):
    idx, x, y, cls, st, live, rng = world
    for qx, qy in zip(rng.uniform(439_000, 451_000, 60), rng.uniform(4_409_000, 4_421_000, 60),
                      strict=True):
        got = idx.nearest(qx, qy, k, classes=classes, statuses=statuses)
        exp = _brute(x, y, cls, st, live, qx, qy, k=k,
                     classes=None if classes is None else np.atleast_1d(classes),
                     statuses=None if statuses is None else np.atleast_1d(statuses))
        np.testing.assert_array_equal(got[0], exp[0])
        np.testing.assert_array_equal(got[1], exp[1])


def test_nearest_ties_broken_by_id(world):
    idx, x, y, cls, st, live, rng = world
    # a lattice point shared by several entries: equal distances, ordered by id
    lattice = np.flatnonzero(live[:2000])
    qx, qy = x[lattice[0]], y[lattice[0]]
    got, d = idx.nearest(qx, qy, 10)
    exp, ed = _brute(x, y, cls, st, live, qx, qy, k=10)
    np.testing.assert_array_equal(got, exp)
    assert d[0] == 0.0


@pytest.mark.parametrize("radius, classes, statuses",
                         [(50.0, None, None), (300.0, "0102", None), (0.0, None, None),
                          (800.0, ["0602"], ["完好", "破损"])])
def test_within_equals_brute_force(world, radius, classes, statuses):
    idx, x, y, cls, st, live, rng = world
    qs = list(zip(rng.uniform(440_000, 450_000, 40), rng.uniform(4_410_000, 4_420_000, 40),
                  strict=True))
    qs.append((x[np.flatnonzero(live)[0]], y[np.flatnonzero(live)[0]]))  # on a point
    for qx, qy in qs:
        got = idx.within(qx, qy, radius, classes=classes, statuses=statuses)
        exp = _brute(x, y, cls, st, live, qx, qy, radius=radius,
                     classes=None if classes is None else np.atleast_1d(classes),
                     statuses=None if statuses is None else np.atleast_1d(statuses))
        np.testing.assert_array_equal(got[0], exp[0])


def test_nearest_with_max_distance(world):
    idx, x, y, cls, st, live, rng = world
    got, d = idx.nearest(445_000, 4_415_000, 50, max_distance=60.0)
    exp, _ = _brute(x, y, cls, st, live, 445_000, 4_415_000, k=50, radius=60.0)
    np.testing.assert_array_equal(got, exp)
    assert (d <= 60.0).all()


def test_index_errors():
    idx = ComponentIndex([0.0], [0.0], classes=["0101"], statuses=["完好"])
    with pytest.raises(NotFoundError):
        idx.move(5, 1.0, 1.0)
    idx.retire(0)
    with pytest.raises(NotFoundError):
        idx.retire(0)
    with pytest.raises(ValueError, match="already used"):
        idx.insert(0, 1.0, 1.0, class_code="0101", status="完好")
    with pytest.raises(GeometryError):
        idx.insert(1, np.nan, 1.0, class_code="0101", status="完好")
    with pytest.raises(GeometryError):
        ComponentIndex([np.nan], [0.0], classes=["0101"], statuses=["完好"])
    assert len(idx) == 0
    assert idx.nearest(0.0, 0.0, 3)[0].size == 0
    idx.insert(2000, 3.0, 4.0, class_code="0101", status="完好")  # grows past capacity
    assert list(idx.nearest(0.0, 0.0, 3)[0]) == [2000]
    assert idx.nearest(0.0, 0.0, 3)[1][0] == 5.0


def test_empty_index():
    idx = ComponentIndex()
    assert len(idx) == 0
    idx.insert(0, 1.0, 1.0, class_code="0101", status="完好")
    assert list(idx.within(0.0, 0.0, 2.0)[0]) == [0]


# ---- CellLocator ---------------------------------------------------------------------


def _sjoin_positions(cells, lon, lat):
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    j = gpd.sjoin(pts, cells, predicate="intersects", how="inner")
    best = j.groupby(level=0)["code"].min()
    pos = pd.Series(np.arange(len(cells)), index=cells["code"].to_numpy())
    out = np.full(len(lon), -1, dtype=np.int64)
    out[best.index.to_numpy()] = pos[best.to_numpy()].to_numpy()
    return out


def _test_points(cells, rng, n):
    xmin, ymin, xmax, ymax = cells.total_bounds
    pad = 0.002
    lon = rng.uniform(xmin - pad, xmax + pad, n)
    lat = rng.uniform(ymin - pad, ymax + pad, n)
    co = shapely.get_coordinates(shapely.boundary(cells.geometry.values))
    m = n // 5
    vi = rng.integers(0, len(co) - 1, 2 * m)
    lon[:m], lat[:m] = co[vi[:m], 0], co[vi[:m], 1]  # exactly on vertices
    f = rng.uniform(0, 1, m)
    a, b = co[vi[m:]], co[vi[m:] + 1]
    lon[m:2 * m] = a[:, 0] * (1 - f) + b[:, 0] * f  # on (or within an ulp of) edges
    lat[m:2 * m] = a[:, 1] * (1 - f) + b[:, 1] * f
    mid = (a + b) / 2  # segment midpoints: exact on axis-aligned edges
    lon[2 * m:2 * m + 1000], lat[2 * m:2 * m + 1000] = mid[:1000, 0], mid[:1000, 1]
    return lon, lat


@pytest.fixture(scope="module")
def voronoi():
    return voronoi_cells(3)


@pytest.mark.parametrize("pixel_m", [5.0, 2.5, 40.0])
def test_locator_equals_sjoin(voronoi, pixel_m):
    rng = np.random.default_rng(int(pixel_m * 10))
    loc = CellLocator(voronoi, pixel_m=pixel_m)
    lon, lat = _test_points(voronoi, rng, 100_000)
    got = loc.locate(lon, lat)
    exp = _sjoin_positions(voronoi, lon, lat)
    np.testing.assert_array_equal(got, exp)
    assert (got == -1).sum() > 1000 and (got >= 0).sum() > 50_000  # both kinds present
    assert loc.n_edge_pixels > 0


def test_locator_shared_vertex_goes_to_smallest_code(voronoi):
    loc = CellLocator(voronoi)
    geoms = voronoi.geometry.values
    # a vertex shared by three or more cells
    co = shapely.get_coordinates(geoms[10].exterior)
    for x, y in co:
        covering = np.flatnonzero(shapely.intersects_xy(geoms, x, y))
        if len(covering) >= 3:
            break
    assert len(covering) >= 3
    want = covering[np.argmin(voronoi["code"].to_numpy()[covering])]
    assert loc.locate(x, y) == want
    assert loc.locate_codes([x], [y])[0] == voronoi["code"].iloc[want]


def test_locator_scalar_nan_and_outside(voronoi):
    loc = CellLocator(voronoi)
    assert loc.locate(np.nan, 39.86) == -1
    assert loc.locate(0.0, 0.0) == -1
    assert list(loc.locate_codes([0.0], [0.0])) == [""]
    assert loc.locate([], []).shape == (0,)


def test_cells_within(voronoi):
    loc = CellLocator(voronoi)
    cells_m = voronoi.to_crs(4548)
    rng = np.random.default_rng(11)
    xmin, ymin, xmax, ymax = voronoi.total_bounds
    lon, lat = rng.uniform(xmin, xmax, 200), rng.uniform(ymin, ymax, 200)
    pts_m = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(4548)
    pairs = loc.cells_within(lon, lat, 30.0)
    for i in range(len(lon)):
        exp = np.flatnonzero(cells_m.distance(pts_m.iloc[i]).to_numpy() <= 30.0)
        exp = exp[np.argsort(voronoi["code"].to_numpy()[exp])]
        np.testing.assert_array_equal(pairs[1][pairs[0] == i], exp)
    one = loc.cells_within(lon[0], lat[0], 30.0)
    np.testing.assert_array_equal(one, pairs[1][pairs[0] == 0])
    assert loc.locate(lon[0], lat[0]) in one
    with pytest.raises(ValueError, match=">= 0"):
        loc.cells_within(lon[0], lat[0], -1.0)


def test_locator_rejects_bad_cells(voronoi):
    with pytest.raises(ValueError, match="EPSG:4326"):
        CellLocator(voronoi.to_crs(4548))
    with pytest.raises(ValueError, match="code"):
        CellLocator(voronoi.drop(columns="code"))
    with pytest.raises(ValueError, match="pixel_m"):
        CellLocator(voronoi, pixel_m=0)


def test_locate_one_equals_locate(voronoi):
    loc = CellLocator(voronoi)
    lon, lat = _test_points(voronoi, np.random.default_rng(5), 5000)
    lon[0] = np.nan
    got = np.array([loc.locate_one(a, b) for a, b in zip(lon, lat, strict=True)])
    np.testing.assert_array_equal(got, loc.locate(lon, lat))


def test_nearest_cell(voronoi):
    loc = CellLocator(voronoi)
    xmin, ymin, xmax, ymax = voronoi.total_bounds
    lon, lat = xmin - 0.001, (ymin + ymax) / 2  # ~85 m west of the grid
    pos, dist = loc.nearest_cell(lon, lat)
    cells_m = voronoi.to_crs(4548)
    pt = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=4326).to_crs(4548).iloc[0]
    d = cells_m.distance(pt).to_numpy()
    assert dist == pytest.approx(d.min())
    assert d[pos] == pytest.approx(d.min())
    assert 50 < dist < 120


# ---- on the sample city ---------------------------------------------------------------


def test_locator_equals_sjoin_on_sample_grid(city):
    cells = city.cells
    loc = CellLocator(cells)
    rng = np.random.default_rng(2026)
    lon, lat = _test_points(cells, rng, 120_000)
    got = loc.locate(lon, lat)
    np.testing.assert_array_equal(got, _sjoin_positions(cells, lon, lat))
    on_edges = got[: 2 * len(lon) // 5]
    assert (on_edges >= 0).mean() > 0.99  # vertices and edge points do land in cells
    assert (got == -1).sum() > 1000  # and the bounding box around the city is outside
    one = np.array([loc.locate_one(a, b) for a, b in zip(lon[:3000], lat[:3000], strict=True)])
    np.testing.assert_array_equal(one, got[:3000])
