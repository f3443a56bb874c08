"""Spatial indexes: the live component index and the point-to-cell locator.

Both return integer positions, never geometries.

:class:`ComponentIndex`
    An rtree (libspatialindex) R*-tree of component points in EPSG:4548 metres, updated
    in place (insert, move, retire) with k-nearest and radius queries filtered by class
    and status.

:class:`CellLocator`
    Point -> unit grid cell for one point or millions: a lookup raster in lon/lat degrees
    whose pixels either name their cell outright or, where a cell edge touches the pixel,
    list the few candidate cells that get an exact GEOS test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from gridcore.errors import GeometryError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = ["CellLocator", "ComponentIndex"]

# --------------------------------------------------------------------------------------
# ComponentIndex

# Chosen by measurement on 1,000,000 uniform points (bench/bench_components.py prints
# the current figures). libspatialindex defaults (R*, capacity 100, fill factor 0.7) cost
# ~2.8 ms per delete: a node that falls under 70 % full is dissolved and its 70 entries
# re-inserted. A fill factor of 0.3 with capacity 32 keeps delete near 0.1 ms and insert
# near 15 us, and bulk loading (STR via the array stream constructor) packs nodes to the
# same 30 %, which also makes nearest queries a little faster.
_LEAF_CAPACITY = 32
_INDEX_CAPACITY = 32
_FILL_FACTOR = 0.3
_INITIAL_CAPACITY = 1024


def _rtree_properties() -> Any:
    from rtree import index

    p = index.Property()
    p.dimension = 2
    p.variant = index.RT_Star
    p.leaf_capacity = _LEAF_CAPACITY
    p.index_capacity = _INDEX_CAPACITY
    p.fill_factor = _FILL_FACTOR
    return p


def _dist(x0: np.ndarray, y0: np.ndarray, x: float, y: float) -> np.ndarray:
    # the formula libspatialindex uses for point-point MINDIST, so that the candidate
    # set it returns and our ordering agree to the last bit
    dx = x0 - x
    dy = y0 - y
    return np.sqrt(dx * dx + dy * dy)


class ComponentIndex:
    """Live R-tree of component points (EPSG:4548 metres) with class/status filters.

    Ids are non-negative integers chosen by the caller, normally positions in the
    components GeoDataFrame. Class and status are opaque labels (strings), e.g. ``"0101"``
    and ``"完好"``. Retired ids leave the tree but stay reserved.

    Besides the tree of all points, each class has its own tree, so the nearest points
    of a rare class (a 工地 among a million manhole covers) cost one small tree search
    instead of a scan; every update touches both trees.

    Parameters
    ----------
    x, y : array-like of float
        Coordinates in metres (EPSG:4548) of ids ``0..n-1``.
    classes, statuses : array-like of str
        Class code and status of each point.
    live : array-like of bool, optional
        False for entries to keep out of the tree (e.g. components already removed).

    Examples
    --------
    >>> idx = ComponentIndex([0.0, 10.0], [0.0, 0.0], classes=["0101", "0305"],
    ...                      statuses=["完好", "完好"])
    >>> idx.nearest(9.0, 0.0, k=1)
    (array([1]), array([1.]))
    """

    def __init__(
        self,
        x: Any = (),
        y: Any = (),
        *,
        classes: Any = (),
        statuses: Any = (),
        live: Any = None,
    ) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        classes = np.asarray(classes, dtype=object)
        statuses = np.asarray(statuses, dtype=object)
        n = len(x)
        if not (len(y) == len(classes) == len(statuses) == n):
            raise ValueError("x, y, classes and statuses must have the same length")
        live_mask = np.ones(n, dtype=bool) if live is None else np.asarray(live, dtype=bool)
        if not np.isfinite(x[live_mask]).all() or not np.isfinite(y[live_mask]).all():
            raise GeometryError("component coordinates must be finite (no NaN or inf)")
        self._labels: dict[str, dict[Any, int]] = {"class": {}, "status": {}}
        cap = max(_INITIAL_CAPACITY, n)
        self._x = np.full(cap, np.nan)
        self._y = np.full(cap, np.nan)
        self._cls = np.full(cap, -1, dtype=np.int32)
        self._status = np.full(cap, -1, dtype=np.int32)
        self._live = np.zeros(cap, dtype=bool)
        self._used = np.zeros(cap, dtype=bool)
        self._x[:n], self._y[:n] = x, y
        self._cls[:n] = self._encode_many("class", classes)
        self._status[:n] = self._encode_many("status", statuses)
        self._live[:n] = live_mask
        self._used[:n] = True
        ids = np.flatnonzero(live_mask).astype(np.int64)
        self._n_live = len(ids)
        self._tree = self._bulk(ids)
        self._class_trees: dict[int, Any] = {}
        self._class_count: dict[int, int] = {}
        cls_of = self._cls[ids]
        order = np.argsort(cls_of, kind="stable")
        bounds = np.flatnonzero(np.diff(cls_of[order])) + 1
        for group in np.split(ids[order], bounds) if len(ids) else []:
            c = int(self._cls[group[0]])
            self._class_trees[c] = self._bulk(group)
            self._class_count[c] = len(group)

    def _bulk(self, ids: np.ndarray) -> Any:
        from rtree import index

        props = _rtree_properties()
        if len(ids) == 0:
            return index.Index(properties=props)
        pts = np.column_stack([self._x[ids], self._y[ids]])
        return index.Index((ids, pts, pts), properties=props)

    # -- bookkeeping ------------------------------------------------------------------

    def _encode_many(self, kind: str, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)
        table = self._labels[kind]
        for label in uniques:
            table.setdefault(label, len(table))
        lookup = np.array([table[label] for label in uniques], dtype=np.int32)
        return lookup[codes] if len(codes) else np.empty(0, dtype=np.int32)

    def _encode(self, kind: str, label: Any) -> int:
        return self._labels[kind].setdefault(label, len(self._labels[kind]))

    def _grow(self, needed: int) -> None:
        cap = len(self._x)
        if needed < cap:
            return
        new = max(needed + 1, 2 * cap)
        for name, fill in (("_x", np.nan), ("_y", np.nan), ("_cls", -1), ("_status", -1),
                           ("_live", False), ("_used", False)):
            old = getattr(self, name)
            arr = np.full(new, fill, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def _check_live(self, id: int) -> int:
        id = int(id)
        if id < 0 or id >= len(self._live) or not self._live[id]:
            raise NotFoundError(f"id {id} is not a live entry of the component index")
        return id

    def __len__(self) -> int:
        return self._n_live

    def __contains__(self, id: object) -> bool:
        return isinstance(id, (int, np.integer)) and 0 <= id < len(self._live) and bool(
            self._live[id]
        )

    def _class_tree(self, c: int) -> Any:
        tree = self._class_trees.get(c)
        if tree is None:
            tree = self._class_trees[c] = self._bulk(np.empty(0, dtype=np.int64))
            self._class_count[c] = 0
        return tree

    # -- updates ----------------------------------------------------------------------

    def insert(self, id: int, x: float, y: float, *, class_code: str, status: str) -> None:
        """Add a point under a new id (ids are never reused, retired ones included)."""
        id = int(id)
        if id < 0:
            raise ValueError(f"ids must be non-negative integers, got {id}")
        if not (np.isfinite(x) and np.isfinite(y)):
            raise GeometryError(f"component {id}: coordinates must be finite, got ({x}, {y})")
        self._grow(id)
        if self._used[id]:
            raise ValueError(f"id {id} is already used in the component index")
        c = self._encode("class", class_code)
        self._x[id], self._y[id] = x, y
        self._cls[id] = c
        self._status[id] = self._encode("status", status)
        self._live[id] = self._used[id] = True
        self._n_live += 1
        box = (x, y, x, y)
        self._tree.insert(id, box)
        self._class_tree(c).insert(id, box)
        self._class_count[c] += 1

    def move(self, id: int, x: float, y: float) -> None:
        """Move a live point to (x, y)."""
        id = self._check_live(id)
        if not (np.isfinite(x) and np.isfinite(y)):
            raise GeometryError(f"component {id}: coordinates must be finite, got ({x}, {y})")
        old = (self._x[id], self._y[id], self._x[id], self._y[id])
        new = (x, y, x, y)
        ctree = self._class_trees[int(self._cls[id])]
        for tree in (self._tree, ctree):
            tree.delete(id, old)
            tree.insert(id, new)
        self._x[id], self._y[id] = x, y

    def retire(self, id: int) -> None:
        """Take a point out of the index; its id stays reserved."""
        id = self._check_live(id)
        box = (self._x[id], self._y[id], self._x[id], self._y[id])
        c = int(self._cls[id])
        self._tree.delete(id, box)
        self._class_trees[c].delete(id, box)
        self._class_count[c] -= 1
        self._live[id] = False
        self._n_live -= 1

    def set_status(self, id: int, status: str) -> None:
        """Change the status label of a live point (no tree update needed)."""
        id = self._check_live(id)
        self._status[id] = self._encode("status", status)

    # -- queries ----------------------------------------------------------------------

    def _allowed(self, kind: str, labels: Any) -> np.ndarray | None:
        if labels is None:
            return None
        if isinstance(labels, str):
            labels = [labels]
        table = self._labels[kind]
        return np.array(sorted({table[lab] for lab in labels if lab in table}), dtype=np.int32)

    def _finish(
        self, ids: np.ndarray, x: float, y: float, k: int | None, max_distance: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        d = _dist(self._x[ids], self._y[ids], x, y)
        if max_distance is not None:
            keep = d <= max_distance
            ids, d = ids[keep], d[keep]
        order = np.lexsort((ids, d))
        if k is not None:
            order = order[:k]
        return ids[order], d[order]

    def nearest(
        self,
        x: float,
        y: float,
        k: int = 1,
        *,
        classes: Any = None,
        statuses: Any = None,
        max_distance: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Find the k live points nearest to (x, y), optionally filtered.

        Parameters
        ----------
        x, y : float
            Query point, EPSG:4548 metres.
        k : int
            Number of points wanted.
        classes, statuses : str or list of str, optional
            Keep only points with one of these classes / statuses.
        max_distance : float, optional
            Keep only points within this many metres.

        Returns
        -------
        ids : numpy.ndarray of int64
            Up to ``k`` ids ordered by distance, ties by id.
        distances : numpy.ndarray of float64
            Their distances in metres.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        cls = self._allowed("class", classes)
        st = self._allowed("status", statuses)
        trees = [self._tree] if cls is None else [self._class_trees[c] for c in cls
                                                  if self._class_count.get(c, 0) > 0]
        population = self._n_live if cls is None else sum(
            self._class_count.get(int(c), 0) for c in cls)
        if population == 0 or (st is not None and len(st) == 0):
            return np.empty(0, dtype=np.int64), np.empty(0)
        want = k if st is None else 2 * k
        box = (x, y, x, y)
        while True:
            if want * 4 >= population:  # most of the population: scan it
                ids = np.flatnonzero(self._live)
                if cls is not None:
                    ids = ids[np.isin(self._cls[ids], cls)]
                break
            # each tree returns its `want` nearest, ties at the last distance included,
            # so the union holds the `want` nearest of the selected classes
            ids = np.concatenate([np.fromiter(t.nearest(box, want), dtype=np.int64)
                                  for t in trees])
            if st is None:
                break
            ok = np.isin(self._status[ids], st)
            if ok.sum() >= k:
                break
            if max_distance is not None and _dist(
                self._x[ids], self._y[ids], x, y
            ).min(initial=np.inf) > max_distance:
                break
            want *= 8
        if st is not None:
            ids = ids[np.isin(self._status[ids], st)]
        return self._finish(ids, x, y, k, max_distance)

    def within(
        self,
        x: float,
        y: float,
        radius: float,
        *,
        classes: Any = None,
        statuses: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """All live points within ``radius`` metres of (x, y), ordered by distance then id."""
        if not radius >= 0:
            raise ValueError(f"radius must be a non-negative number of metres, got {radius}")
        cls = self._allowed("class", classes)
        st = self._allowed("status", statuses)
        box = (x - radius, y - radius, x + radius, y + radius)
        trees = [self._tree] if cls is None else [self._class_trees[c] for c in cls
                                                  if c in self._class_trees]
        ids = np.concatenate([np.fromiter(t.intersection(box), dtype=np.int64)
                              for t in trees] or [np.empty(0, dtype=np.int64)])
        if st is not None:
            ids = ids[np.isin(self._status[ids], st)]
        return self._finish(ids, x, y, None, radius)


# --------------------------------------------------------------------------------------
# CellLocator

_METRES_PER_DEGREE_LAT = 111_320.0
_EPS = 1e-6  # slack in pixel units when deciding which pixels a segment touches


class CellLocator:
    """Point -> unit grid cell, one point or millions at once.

    Built once from the cells: a lookup raster in lon/lat degrees (``pixel_m`` metres
    square at the grid's mid latitude). A pixel touched by any cell edge (its closed
    box, computed from each edge segment in numpy, conservative by 1e-6 pixel) stores
    the list of cells whose edges touch it; points there get an exact
    ``shapely.intersects_xy`` test against those few cells. Every other pixel lies
    wholly inside one cell or outside all: the untouched pixels form connected regions
    (``scipy.ndimage.label``), one pixel centre per region is tested exactly, and the
    region's pixels store that cell's position. (GDAL's ``rasterize`` would do the
    labelling too, but it makes no promise about pixels a line only grazes, and it spent
    6 s of an 8 s build converting polygons through ``__geo_interface__``.)

    **Points on a shared edge or vertex** belong to the cell with the smallest code
    among the cells whose closed polygon covers the point: the same answer as
    ``geopandas.sjoin(points, cells, predicate="intersects")`` followed by the smallest
    code per point. Use :meth:`cells_within` to get every cell near a point instead.

    Cells must not overlap (a validated grid never does); holes and multi-part cells
    are fine.

    Parameters
    ----------
    cells : geopandas.GeoDataFrame
        Polygons in EPSG:4326 with a ``code`` column (str).
    pixel_m : float
        Pixel size in metres (default 5). Finer pixels send fewer points to the exact
        test and cost memory: 4 bytes per pixel of the grid's bounding box.

    Examples
    --------
    ::

        loc = CellLocator(city.cells)
        loc.locate([116.3975], [39.9087])
        # array([1234])
    """

    def __init__(self, cells: gpd.GeoDataFrame, *, pixel_m: float = 5.0) -> None:
        self._check_cells(cells)
        if not pixel_m > 0:
            raise ValueError(f"pixel_m must be a positive number of metres, got {pixel_m}")
        self.codes = cells["code"].astype(str).to_numpy(dtype=object)
        geoms = np.asarray(cells.geometry.values, dtype=object)
        self._geoms = geoms.copy()
        shapely.prepare(self._geoms)
        order = np.argsort(self.codes, kind="stable")
        self._rank = np.empty(len(order), dtype=np.int64)
        self._rank[order] = np.arange(len(order))
        self._by_rank = order.astype(np.int64)
        self.pixel_m = float(pixel_m)
        self._build_raster(geoms)
        self._tree_m: shapely.STRtree | None = None

    @staticmethod
    def _check_cells(cells: gpd.GeoDataFrame) -> None:
        if "code" not in cells.columns:
            raise ValueError("cells need a 'code' column")
        if cells.crs is None or cells.crs.to_epsg() != 4326:
            raise ValueError(f"cells must be in EPSG:4326, got {cells.crs}")
        if len(cells) == 0:
            raise ValueError("cells are empty")
        if cells.geometry.is_empty.any() or cells.geometry.isna().any():
            raise GeometryError("cells contain empty or missing geometries")

    # -- build --------------------------------------------------------------------------

    def _build_raster(self, geoms: np.ndarray) -> None:
        from scipy import ndimage

        xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
        mid = np.radians((ymin + ymax) / 2)
        dy = self.pixel_m / _METRES_PER_DEGREE_LAT
        dx = self.pixel_m / (_METRES_PER_DEGREE_LAT * np.cos(mid))
        x0, y1 = xmin - 2 * dx, ymax + 2 * dy
        width = int(np.ceil((xmax - x0) / dx)) + 3
        height = int(np.ceil((y1 - ymin) / dy)) + 3
        self._x0, self._y1, self._dx, self._dy = x0, y1, dx, dy
        self.shape = (height, width)
        flat, cand = self._edge_pixels(geoms)
        first = np.ones(len(flat), dtype=bool)
        first[1:] = flat[1:] != flat[:-1]
        start = np.flatnonzero(first)
        edge_flat = flat[start]
        self._indptr = np.append(start, len(flat)).astype(np.int64)
        self._cand = cand  # cell positions, sorted by code rank within each pixel
        # Pixels no edge touches form regions that each lie inside one cell or outside
        # all: label the regions, then test one pixel centre per region exactly.
        raster = np.ones(height * width, dtype=np.int32)
        raster[edge_flat] = 0
        n_regions = ndimage.label(raster.reshape(self.shape), output=raster.reshape(self.shape))
        seed = np.zeros(n_regions + 1, dtype=np.int64)
        seed[raster[::-1]] = np.arange(len(raster) - 1, -1, -1)  # one pixel per region
        seed = seed[1:]
        row, col = np.divmod(seed, width)
        lon = x0 + (col + 0.5) * dx
        lat = y1 - (row + 0.5) * dy
        hits = shapely.STRtree(geoms).query(shapely.points(lon, lat), predicate="intersects")
        region_cell = np.full(n_regions + 1, -1, dtype=np.int32)
        region_cell[hits[0] + 1] = hits[1]
        raster = region_cell[raster]
        raster[edge_flat] = -2 - np.arange(len(edge_flat), dtype=np.int32)
        self._raster = raster.reshape(self.shape)
        self.n_edge_pixels = len(edge_flat)

    def _to_pixel(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (lon - self._x0) / self._dx, (self._y1 - lat) / self._dy

    def _edge_pixels(self, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat pixel, cell position) for every closed pixel box a cell edge touches."""
        parts, part_idx = shapely.get_parts(geoms, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, ring_of = shapely.get_coordinates(rings, return_index=True)
        cell_of = part_idx[ring_part][ring_of]
        same = ring_of[1:] == ring_of[:-1]
        u, v = self._to_pixel(coords[:, 0], coords[:, 1])
        u0, v0, u1, v1 = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
        seg_cell = cell_of[:-1][same]
        # columns i whose closed box [i, i+1] meets [umin, umax]
        umin, umax = np.minimum(u0, u1), np.maximum(u0, u1)
        c_lo = np.ceil(umin - _EPS).astype(np.int64) - 1
        c_hi = np.floor(umax + _EPS).astype(np.int64)
        ncol = c_hi - c_lo + 1
        s = np.repeat(np.arange(len(u0)), ncol)
        col = np.arange(len(s)) - np.repeat(np.cumsum(ncol) - ncol, ncol) + c_lo[s]
        # v-extent of the segment inside the column strip
        ua = np.maximum(umin[s], col)
        ub = np.minimum(umax[s], col + 1)
        du = u1[s] - u0[s]
        vertical = du == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(vertical, 0.0, (v1[s] - v0[s]) / np.where(vertical, 1.0, du))
        va = np.where(vertical, np.minimum(v0[s], v1[s]), v0[s] + (ua - u0[s]) * slope)
        vb = np.where(vertical, np.maximum(v0[s], v1[s]), v0[s] + (ub - u0[s]) * slope)
        vlo, vhi = np.minimum(va, vb), np.maximum(va, vb)
        r_lo = np.ceil(vlo - _EPS).astype(np.int64) - 1
        r_hi = np.floor(vhi + _EPS).astype(np.int64)
        nrow = np.maximum(r_hi - r_lo + 1, 0)
        t = np.repeat(np.arange(len(s)), nrow)
        row = np.arange(len(t)) - np.repeat(np.cumsum(nrow) - nrow, nrow) + r_lo[t]
        col = col[t]
        cell = seg_cell[s[t]]
        h, w = self.shape
        ok = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        flat = row[ok] * w + col[ok]
        key = np.sort(flat * len(self._rank) + self._rank[cell[ok]])
        keep = np.ones(len(key), dtype=bool)
        keep[1:] = key[1:] != key[:-1]
        flat, rank = np.divmod(key[keep], len(self._rank))
        return flat, self._by_rank[rank]

    # -- queries ------------------------------------------------------------------------

    def locate(self, lon: Any, lat: Any) -> np.ndarray:
        """Cell position of each point (WGS84 degrees), -1 outside every cell.

        Parameters
        ----------
        lon, lat : array-like of float
            WGS84 longitude and latitude. NaN gives -1.

        Returns
        -------
        numpy.ndarray of int64
            Positions into the cells frame the locator was built from.
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        scalar = lon.ndim == 0
        lon, lat = np.atleast_1d(lon), np.atleast_1d(lat)
        u, v = self._to_pixel(lon, lat)
        h, w = self.shape
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)  # NaN compares False
        out = np.full(len(lon), -1, dtype=np.int64)
        iu = u[inside].astype(np.int64)
        iv = v[inside].astype(np.int64)
        val = self._raster[iv, iu].astype(np.int64)
        out[inside] = val
        edge = np.flatnonzero(inside)[val <= -2]
        if len(edge):
            out[edge] = self._exact(-2 - val[val <= -2], lon[edge], lat[edge])
        return out[0] if scalar else out

    def _exact(self, e: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # Candidates are stored in code order, so the first one covering a point is the
        # smallest code: test round by round, each point only until its first hit.
        start = self._indptr[e]
        count = self._indptr[e + 1] - start
        out = np.full(len(e), -1, dtype=np.int64)
        active = np.arange(len(e))
        r = 0
        while len(active):
            active = active[count[active] > r]
            cand = self._cand[start[active] + r]
            # grouping the calls by cell keeps each prepared polygon in cache: 3x faster
            order = np.argsort(cand, kind="stable")
            active, cand = active[order], cand[order]
            hit = shapely.intersects_xy(self._geoms[cand], lon[active], lat[active])
            out[active[hit]] = cand[hit]
            active = active[~hit]
            r += 1
        return out

    def locate_codes(self, lon: Any, lat: Any) -> np.ndarray:
        """Cell code of each point, ``""`` outside every cell."""
        pos = np.atleast_1d(self.locate(lon, lat))
        return np.where(pos >= 0, self.codes[np.maximum(pos, 0)], "").astype(object)

    def locate_one(self, lon: float, lat: float) -> int:
        """Cell position of one point, -1 outside: the scalar fast path of :meth:`locate`."""
        u = (lon - self._x0) / self._dx
        v = (self._y1 - lat) / self._dy
        h, w = self.shape
        if not (0 <= u < w and 0 <= v < h):  # NaN fails too
            return -1
        val = int(self._raster[int(v), int(u)])
        if val >= -1:
            return val
        e = -2 - val
        for cand in self._cand[self._indptr[e]:self._indptr[e + 1]]:  # in code order
            if shapely.intersects_xy(self._geoms[cand], lon, lat):
                return int(cand)
        return -1

    def _projected_tree(self) -> shapely.STRtree:
        if self._tree_m is None:
            from gridcore.crs import project_geometry

            self._tree_m = shapely.STRtree(project_geometry(self._geoms))
        return self._tree_m

    def nearest_cell(self, lon: float, lat: float) -> tuple[int, float]:
        """Position of the cell nearest to a point and its distance in metres (EPSG:4548)."""
        from gridcore.crs import wgs84_to_projected

        x, y = wgs84_to_projected([lon], [lat])
        tree = self._projected_tree()
        pos, dist = tree.query_nearest(shapely.points(x[0], y[0]), return_distance=True)
        best = int(np.argmin(self._rank[pos]))  # equidistant cells: smallest code
        return int(pos[best]), float(dist[best])

    def cells_within(self, lon: Any, lat: Any, tolerance_m: float) -> np.ndarray:
        """Every cell within ``tolerance_m`` metres of each point.

        Distances are measured in EPSG:4548. For one point returns the cell positions
        ordered by code; for arrays returns a ``(2, m)`` array of (point index, cell
        position) pairs ordered by point then code.

        Raises
        ------
        ValueError
            A negative tolerance.
        CoordinateError
            NaN, out-of-range or swapped positions.
        """
        if not tolerance_m >= 0:
            raise ValueError(f"tolerance_m must be >= 0 metres, got {tolerance_m}")
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        scalar = lon.ndim == 0
        from gridcore.crs import wgs84_to_projected

        x, y = wgs84_to_projected(np.atleast_1d(lon), np.atleast_1d(lat))
        pairs = self._projected_tree().query(
            shapely.points(x, y), predicate="dwithin", distance=float(tolerance_m)
        )
        order = np.lexsort((self._rank[pairs[1]], pairs[0]))
        pairs = pairs[:, order]
        return pairs[1] if scalar else pairs

    @property
    def nbytes(self) -> int:
        """Memory held by the lookup arrays, in bytes."""
        return int(self._raster.nbytes + self._indptr.nbytes + self._cand.nbytes
                   + self._rank.nbytes + self._by_rank.nbytes)

