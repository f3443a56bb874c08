"""A small irregular synthetic city for tests that do not need the sample city."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridcore.divisions import Divisions


def voronoi_cells(seed, nx=40, ny=30, lon0=116.30, lat0=39.85):
    """An irregular grid of ~100 m cells near Beijing, with a holed and a two-part cell."""
    rng = np.random.default_rng(seed)
    dx, dy = 100 / 85_000, 100 / 111_320
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    px = lon0 + (gx.ravel() + rng.uniform(-0.4, 0.4, gx.size)) * dx
    py = lat0 + (gy.ravel() + rng.uniform(-0.4, 0.4, gx.size)) * dy
    frame = shapely.box(lon0, lat0, lon0 + (nx - 1) * dx, lat0 + (ny - 1) * dy)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(np.c_[px, py]),
                                                       extend_to=frame))
    cells = shapely.intersection(cells, frame)
    cells = list(cells[~shapely.is_empty(cells)])
    # punch a hole into cell 0 and make the hole its own cell
    c = shapely.centroid(cells[0])
    hole = shapely.intersection(shapely.buffer(c, 20 / 111_320, quad_segs=4), cells[0])
    cells[0] = shapely.difference(cells[0], hole)
    cells.append(hole)
    # merge two non-touching cells into one multi-part cell
    cells[5] = shapely.union(cells[5], cells.pop(200))
    # a small axis-aligned cell whose edges lie on round coordinates, cut from cell 9
    sq = shapely.box(*np.round(shapely.bounds(shapely.centroid(cells[9]))[:2], 4),
                     *(np.round(shapely.bounds(shapely.centroid(cells[9]))[:2], 4) + 1e-4))
    sq = shapely.intersection(sq, cells[9])
    cells[9] = shapely.difference(cells[9], sq)
    cells.append(sq)
    cells = np.array(cells, dtype=object)
    cells = cells[~shapely.is_empty(cells)]
    # the zoo is a valid tiling: no two cells overlap
    assert shapely.area(shapely.union_all(cells)) == pytest.approx(shapely.area(cells).sum())
    assert shapely.get_num_interior_rings(cells).max() == 1
    codes = rng.permutation(len(cells)) + 110101001001001  # codes unrelated to position
    return gpd.GeoDataFrame({"code": codes.astype(str)}, geometry=cells, crs="EPSG:4326")


def synthetic_city(seed=5, nx=30, ny=24, lon0=116.39, lat0=39.90):
    """Cells with division codes: 2 districts x 2 streets x 2 communities, and Divisions.

    Cells are numbered west->east, north->south inside their community like real ones;
    community membership is decided by the cell's representative point.
    """
    cells = voronoi_cells(seed, nx=nx, ny=ny, lon0=lon0, lat0=lat0)
    xmin, ymin, xmax, ymax = cells.total_bounds
    rp = shapely.point_on_surface(cells.geometry.values)
    fx = (shapely.get_x(rp) - xmin) / (xmax - xmin)
    fy = (shapely.get_y(rp) - ymin) / (ymax - ymin)
    district = np.where(fx < 0.5, "110102", "110101")
    street = district + np.where(fy < 0.5, "001", "002")
    half = np.where(fx < 0.5, fx < 0.25, fx < 0.75)
    community = street + np.where(half, "001", "002")
    order = np.lexsort((shapely.get_x(rp), -shapely.get_y(rp), community))
    seq = np.empty(len(cells), dtype=np.int64)
    for comm in np.unique(community):
        members = order[community[order] == comm]
        seq[members] = np.arange(1, len(members) + 1)
    codes = np.array([f"{c}{s:03d}" for c, s in zip(community, seq, strict=True)])
    cells = gpd.GeoDataFrame(
        {"code": codes, "community_code": community, "street_code": street,
         "district_code": district},
        geometry=cells.geometry.values, crs="EPSG:4326",
    ).sort_values("code", ignore_index=True)
    names = {"110101": "东城区", "110102": "西城区"}

    def level(codes, name_of, parent):
        codes = sorted(set(codes))
        geoms = [shapely.union_all(cells.geometry.values[cells[parent].to_numpy() == c])
                 for c in codes]
        return gpd.GeoDataFrame(
            {"code": codes, "name": [name_of(c) for c in codes],
             "parent_code": [None if len(c) == 6 else c[:-3] for c in codes],
             "synthetic": True},
            geometry=geoms, crs="EPSG:4326",
        )

    divisions = Divisions(
        districts=level(district, names.get, "district_code"),
        streets=level(street, lambda c: f"{names[c[:6]]}第{int(c[-3:])}街道", "street_code"),
        communities=level(community, lambda c: f"测试{c[-6:]}社区", "community_code"),
    )
    return cells, divisions
