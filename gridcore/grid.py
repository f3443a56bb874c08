"""The unit grid (万米单元网格): generation, codes, versions, validation and files.

Cells are cut in EPSG:4548 from one global lattice of ``cell_size`` squares (anchored at
multiples of the cell size, so a cell's shape does not depend on its neighbours), clipped
to each community. Parts smaller than ``min_area_ratio`` of a full cell are merged into
the neighbour in the same community that shares the longest edge with them. So no cell
crosses a community (hence street or district) line, and the cells tile each community.

Codes are the community's 12 digits plus a 3-digit sequence numbered west->east,
north->south. Regenerating against a previous version keeps the code of every cell whose
geometry is unchanged; new cells get fresh sequences after the highest one the community
ever used, so a retired code is never handed to a different place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .codes import MAX_CELL_SEQUENCE, format_cell_code, parse_cell_code
from .crs import GEOGRAPHIC_EPSG, project_geometry
from .errors import CRSError, DataFileError, InvalidCodeError

CELL_COLUMNS = ["code", "community_code", "street_code", "district_code", "area_m2", "geometry"]

DEFAULT_CELL_SIZE = 100.0
DEFAULT_MIN_AREA_RATIO = 0.3
_KEY_DECIMALS = 7  # ~1 cm in degrees: geometry identity across versions


@dataclass(frozen=True)
class GridVersion:
    """A set of cells valid from a date (the store assigns each version an id)."""

    valid_from: date
    cells: gpd.GeoDataFrame
    source: str = "generated"


def _cut_community(poly: shapely.Geometry, cell_size: float, min_area: float):
    """Cut one projected community polygon into lattice pieces and plan the merges.

    Returns ``(parts, target, north, east)``: the pieces, the index of the piece each
    merges into, and each piece's lattice row (counted from the north, so smaller is
    further north) and column, used to number cells west->east, north->south.
    """
    x0, y0, x1, y1 = poly.bounds
    c0, c1 = int(np.floor(x0 / cell_size)), int(np.ceil(x1 / cell_size))
    r0, r1 = int(np.floor(y0 / cell_size)), int(np.ceil(y1 / cell_size))
    cols, rows = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1))
    cols, rows = cols.ravel(), rows.ravel()
    boxes = shapely.box(cols * cell_size, rows * cell_size,
                        (cols + 1) * cell_size, (rows + 1) * cell_size)
    shapely.prepare(poly)
    hit = shapely.intersects(poly, boxes)
    boxes, cols, rows = boxes[hit], cols[hit], rows[hit]
    inside = shapely.contains_properly(poly, boxes)
    pieces = boxes.copy()
    pieces[~inside] = shapely.intersection(boxes[~inside], poly)
    parts, idx = shapely.get_parts(pieces, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, idx = parts[keep], idx[keep]
    target = _merge_slivers(parts, shapely.area(parts), min_area)
    return parts, target, -rows[idx], cols[idx]


def _merge_slivers(parts: np.ndarray, areas: np.ndarray, min_area: float) -> np.ndarray:
    """Return, for each part, the index of the part it merges into (itself if none).

    A sliver merges into the neighbour with the longest shared edge, preferring a
    neighbour that is not itself a sliver; isolated slivers stay cells of their own.
    """
    target = np.arange(len(parts))
    slivers = np.flatnonzero(areas < min_area)
    if len(slivers) == 0 or len(parts) == 1:
        return target
    tree = shapely.STRtree(parts)
    src, dst = tree.query(parts[slivers], predicate="intersects")
    src = slivers[src]
    other = src != dst
    src, dst = src[other], dst[other]
    shared = shapely.length(shapely.intersection(parts[src], parts[dst]))
    ok = shared > 1e-6
    src, dst, shared = src[ok], dst[ok], shared[ok]
    big = areas[dst] >= min_area
    # Per sliver: a non-sliver neighbour first, then the longest shared edge, then area.
    order = np.lexsort((-areas[dst], -shared, ~big, src))
    src, dst = src[order], dst[order]
    first = np.unique(src, return_index=True)[1]
    target[src[first]] = dst[first]
    for _ in range(len(parts)):  # follow chains (sliver -> sliver -> cell) to the root
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    # Slivers that only touch each other point at each other: the smaller index is root.
    loop = target[target] != target
    if loop.any():
        idx = np.arange(len(parts))
        target[loop] = np.minimum(idx[loop], target[loop])
        target = target[target]
    return target


def _dissolve(parts: np.ndarray, target: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """Union each root's members; roots without merged members are kept as they are."""
    out = parts[roots].copy()
    merged = np.flatnonzero(target != np.arange(len(parts)))
    if len(merged):
        pos = {r: i for i, r in enumerate(roots)}
        for r in np.unique(target[merged]):
            members = parts[target == r]
            out[pos[r]] = shapely.union_all(members, grid_size=None)
    return out


def _geometry_key(geoms: np.ndarray) -> np.ndarray:
    """Identity of a cell's shape across versions: normalised WKB at ~1 cm precision."""
    rounded = shapely.set_precision(geoms, 10.0**-_KEY_DECIMALS, mode="pointwise")
    return shapely.to_wkb(shapely.normalize(rounded), hex=True)


def _previous_index(previous: gpd.GeoDataFrame | None):
    """Map (community, geometry key) -> code, and community -> highest sequence used."""
    if previous is None or len(previous) == 0:
        return {}, {}
    keys = _geometry_key(np.asarray(previous.geometry.values))
    comm = previous["code"].str[:12].to_numpy()
    old = dict(zip(zip(comm, keys, strict=True), previous["code"], strict=True))
    seq = previous["code"].str[12:].astype(int).groupby(comm).max()
    return old, seq.to_dict()


def _assign_codes(comm_code: str, geoms: np.ndarray, north: np.ndarray, east: np.ndarray,
                  old: dict, used: dict) -> list[str]:
    """Codes for one community's cells: kept where unchanged, else next free sequence."""
    order = np.lexsort((east, north))  # north first, then west to east
    keys = _geometry_key(geoms) if old else None
    codes: list[str | None] = [None] * len(geoms)
    next_seq = used.get(comm_code, 0) + 1
    for i in order:
        kept = old.get((comm_code, keys[i])) if keys is not None else None
        if kept is not None:
            codes[i] = kept
    for i in order:
        if codes[i] is None:
            codes[i] = format_cell_code(comm_code, next_seq)
            next_seq += 1
    return codes  # type: ignore[return-value]


def _cell_frame(codes: list[str], geoms) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"code": codes}, geometry=list(geoms), crs=GEOGRAPHIC_EPSG)
    frame["community_code"] = frame["code"].str[:12]
    frame["street_code"] = frame["code"].str[:9]
    frame["district_code"] = frame["code"].str[:6]
    frame["area_m2"] = shapely.area(project_geometry(np.asarray(frame.geometry.values)))
    return frame[CELL_COLUMNS].sort_values("code", ignore_index=True)


def _require_wgs84(frame: gpd.GeoDataFrame, what: str) -> None:
    if frame.crs is None:
        raise CRSError(f"{what} has no CRS: expected EPSG:4326 (WGS84 lon/lat)")
    if frame.crs.to_epsg() != GEOGRAPHIC_EPSG:
        raise CRSError(
            f"{what} is in {frame.crs.to_string()}: expected EPSG:4326 (WGS84 lon/lat); "
            "reproject it first"
        )


def generate_grid(
    communities: gpd.GeoDataFrame,
    *,
    cell_size: float = DEFAULT_CELL_SIZE,
    min_area_ratio: float = DEFAULT_MIN_AREA_RATIO,
    previous: gpd.GeoDataFrame | None = None,
    progress=None,
) -> gpd.GeoDataFrame:
    """Cut communities into unit grid cells and give each its 15-digit code.

    Parameters
    ----------
    communities : GeoDataFrame
        EPSG:4326 polygons with a 12-digit ``code`` column (`Divisions.communities`).
    cell_size : float
        Lattice step in metres (EPSG:4548); 100 m gives cells of about 10,000 m².
    min_area_ratio : float
        Parts smaller than this share of a full cell merge into a neighbour.
    previous : GeoDataFrame, optional
        The grid this one replaces: cells whose geometry is unchanged keep their codes,
        new cells get sequences after the highest their community used.
    progress : callable, optional
        Called once per community (e.g. ``tqdm.update``).

    Returns
    -------
    GeoDataFrame
        Columns ``code, community_code, street_code, district_code, area_m2, geometry``
        (EPSG:4326), sorted by code.

    Raises
    ------
    CRSError
        ``communities`` is not in EPSG:4326.
    InvalidCodeError
        A community would need more than 999 cells even with coarser cells.
    """
    _require_wgs84(communities, "communities")
    old, used = _previous_index(previous)
    all_codes: list[str] = []
    all_geoms: list = []
    for comm_code, poly_wgs in zip(communities["code"], communities.geometry, strict=True):
        poly = project_geometry(poly_wgs)
        size = cell_size
        for _ in range(8):
            parts, target, north, east = _cut_community(poly, size, min_area_ratio * size**2)
            roots = np.unique(target)
            if len(roots) + used.get(comm_code, 0) <= MAX_CELL_SEQUENCE:
                break
            size *= np.sqrt(2)  # more than 999 cells: coarser cells, as the rules allow
        else:
            raise InvalidCodeError(f"community {comm_code} cannot be numbered in 3 digits")
        merged = project_geometry(_dissolve(parts, target, roots), inverse=True)
        all_codes += _assign_codes(comm_code, merged, north[roots], east[roots], old, used)
        all_geoms += list(merged)
        if progress:
            progress()
    return _cell_frame(all_codes, all_geoms)


# --------------------------------------------------------------------------- validation

@dataclass(frozen=True)
class Problem:
    """One problem found in a grid, named by the cell it concerns."""

    kind: str  # crs, geometry, code, duplicate, overlap, gap, crossing, unknown-division
    cell_code: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.cell_code or '-'}: {self.kind}: {self.message}"


@dataclass
class ValidationReport:
    """Problems found in a grid and the distribution of its cell areas (m²)."""

    n_cells: int
    problems: list[Problem] = field(default_factory=list)
    area_stats: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)  # district -> covered share

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def summary(self) -> str:
        """Return a short human-readable summary (counts per problem kind, areas)."""
        kinds = pd.Series([p.kind for p in self.problems], dtype=object).value_counts()
        lines = [f"{self.n_cells} cells, {len(self.problems)} problem(s)"]
        lines += [f"  {k}: {n}" for k, n in kinds.items()]
        if self.area_stats:
            a = self.area_stats
            lines.append(
                "  area m²: min {min:.0f}  p5 {p5:.0f}  median {median:.0f}  "
                "p95 {p95:.0f}  max {max:.0f}".format(**a)
            )
        for d, share in self.coverage.items():
            lines.append(f"  district {d}: {share:.6%} covered")
        return "\n".join(lines)


def _code_problems(codes: pd.Series) -> tuple[list[Problem], np.ndarray]:
    problems: list[Problem] = []
    ok = np.ones(len(codes), dtype=bool)
    for i, code in enumerate(codes):
        try:
            parse_cell_code(code)
        except (InvalidCodeError, TypeError) as exc:
            problems.append(Problem("code", str(code), str(exc)))
            ok[i] = False
    dup = codes[codes.duplicated(keep=False) & ok]
    for code, n in dup.value_counts().items():
        problems.append(Problem("duplicate", str(code), f"code used by {n} cells"))
    return problems, ok


def _overlap_problems(codes: np.ndarray, geoms: np.ndarray, tol_m2: float) -> list[Problem]:
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    inner = shapely.relate_pattern(geoms[a], geoms[b], "2********")
    a, b = a[inner], b[inner]
    area = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    return [
        Problem("overlap", codes[i], f"overlaps cell {codes[j]} by {ar:.1f} m²")
        for i, j, ar in zip(a, b, area, strict=True)
        if ar > tol_m2
    ]


def validate_grid(
    cells: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
    tolerance_m2: float = 1.0,
) -> ValidationReport:
    """Check a grid: CRS, geometries, codes, overlaps, community lines and gaps.

    Parameters
    ----------
    cells : GeoDataFrame
        A ``code`` column and polygon geometries in EPSG:4326.
    communities : GeoDataFrame, optional
        EPSG:4326 community polygons (``code``): cells must lie in the community their
        code names, and must not cross its line.
    districts : GeoDataFrame, optional
        EPSG:4326 district polygons (``code``): the cells must cover each of them.
    tolerance_m2 : float
        Overlaps, crossings and gaps smaller than this are ignored (floating point).

    Returns
    -------
    ValidationReport
        ``ok`` is True when there is no problem; each problem names its cell.
    """
    report = ValidationReport(n_cells=len(cells))
    if "code" not in cells.columns:
        report.problems.append(Problem("schema", None, "the grid has no 'code' column"))
        return report
    if len(cells) == 0:
        report.problems.append(Problem("schema", None, "the grid has no cells"))
        return report
    try:
        _require_wgs84(cells, "the grid")
    except CRSError as exc:
        report.problems.append(Problem("crs", None, str(exc)))
        return report
    codes = cells["code"].astype(str).reset_index(drop=True)
    geoms = np.asarray(cells.geometry.values)
    code_arr = codes.to_numpy()

    # Geometry: present, polygonal, valid, plausible lon/lat.
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), [3, 6]) & ~missing
    x0, y0, x1, y1 = np.where(missing[:, None], 0, shapely.bounds(geoms)).T
    in_range = (x0 >= 73) & (x1 <= 136) & (y0 >= 3) & (y1 <= 54)
    valid = np.zeros(len(geoms), dtype=bool)
    valid[polygonal] = shapely.is_valid(geoms[polygonal])
    for i in np.flatnonzero(~polygonal):
        kind = "empty" if missing[i] else geoms[i].geom_type
        report.problems.append(Problem("geometry", code_arr[i], f"not a polygon ({kind})"))
    for i in np.flatnonzero(polygonal & ~in_range):
        report.problems.append(Problem(
            "crs", code_arr[i],
            f"coordinates {geoms[i].bounds} are not WGS84 lon/lat in China: wrong CRS?"))
    for i in np.flatnonzero(polygonal & in_range & ~valid):
        reason = shapely.is_valid_reason(geoms[i])
        report.problems.append(Problem("geometry", code_arr[i], f"invalid polygon: {reason}"))
    code_problems, code_ok = _code_problems(codes)
    report.problems += code_problems

    good = polygonal & in_range & valid
    if not good.any():
        return report
    proj = np.empty(len(geoms), dtype=object)
    proj[good] = project_geometry(geoms[good])
    areas = shapely.area(proj[good])
    report.area_stats = {
        "min": float(areas.min()), "p5": float(np.percentile(areas, 5)),
        "median": float(np.median(areas)), "p95": float(np.percentile(areas, 95)),
        "max": float(areas.max()), "total": float(areas.sum()),
    }
    gi = np.flatnonzero(good)
    report.problems += _overlap_problems(code_arr[gi], proj[gi], tolerance_m2)

    if communities is not None:
        report.problems += _crossing_problems(code_arr, proj, good & code_ok, communities,
                                              tolerance_m2)
    if districts is not None:
        report.problems += _gap_problems(code_arr[gi], proj[gi], districts, report,
                                         tolerance_m2)
    return report


def _crossing_problems(codes, proj, usable, communities, tol_m2) -> list[Problem]:
    _require_wgs84(communities, "communities")
    comm = dict(zip(communities["code"],
                    project_geometry(np.asarray(communities.geometry.values)), strict=True))
    problems = []
    idx = np.flatnonzero(usable)
    cc = np.array([c[:12] for c in codes[idx]])
    known = np.isin(cc, list(comm))
    for i in idx[~known]:
        problems.append(Problem("unknown-division", codes[i],
                                f"community {codes[i][:12]} does not exist in this city"))
    idx, cc = idx[known], cc[known]
    if len(idx):
        home = np.array([comm[c] for c in cc], dtype=object)
        outside = shapely.area(shapely.difference(proj[idx], home))
        for i, out in zip(idx, outside, strict=True):
            if out > tol_m2:
                problems.append(Problem(
                    "crossing", codes[i],
                    f"{out:.1f} m² lie outside its community {codes[i][:12]} "
                    "(a cell must not cross a community, street or district line)"))
    return problems


def _gap_problems(codes, proj, districts, report, tol_m2) -> list[Problem]:
    _require_wgs84(districts, "districts")
    problems = []
    tree = shapely.STRtree(proj)
    for d_code, d_wgs in zip(districts["code"], districts.geometry, strict=True):
        d_poly = project_geometry(d_wgs)
        own = tree.query(d_poly, predicate="intersects")
        covered = shapely.union_all(proj[own]) if len(own) else shapely.Polygon()
        gap = shapely.difference(d_poly, covered)
        report.coverage[d_code] = 1.0 - gap.area / d_poly.area
        for piece in shapely.get_parts(gap):
            if piece.area <= tol_m2:
                continue
            near = tree.nearest(piece)
            c = piece.centroid
            lon, lat = project_geometry(c, inverse=True).coords[0]
            problems.append(Problem(
                "gap", codes[near],
                f"gap of {piece.area:.1f} m² in district {d_code} beside this cell "
                f"(around lon {lon:.6f}, lat {lat:.6f})"))
    return problems


# --------------------------------------------------------------------------- files

_GEO_FORMATS = "a GeoPackage (.gpkg), GeoJSON (.geojson) or Shapefile (.shp)"


def read_features(path: str | Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a GeoPackage, GeoJSON or Shapefile without changing its CRS.

    Raises
    ------
    DataFileError
        Missing, empty or unreadable file, or a table without geometry (e.g. a CSV).
    """
    import pyogrio.errors

    p = Path(path)
    if not p.exists():
        raise DataFileError(f"file {p} does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise DataFileError(f"{p} is empty (0 bytes); expected {_GEO_FORMATS}")
    try:
        frame = gpd.read_file(p, layer=layer)
    except pyogrio.errors.DataSourceError:  # GDAL's words name drivers, not the fix
        raise DataFileError(f"cannot read {p}: not {_GEO_FORMATS}") from None
    except pyogrio.errors.DataLayerError as exc:  # a layer, field, feature or CRS
        raise DataFileError(f"cannot read {p}: {_gdal_words(exc)}") from None
    except (OSError, UnicodeError) as exc:
        raise DataFileError(f"cannot read {p}: {exc}") from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise DataFileError(
            f"{p} has no geometry (columns: {', '.join(map(str, frame.columns))}); "
            f"expected {_GEO_FORMATS} with one polygon per feature")
    if len(frame) == 0:
        raise DataFileError(f"{p} has no features")
    return frame


def _gdal_words(exc: Exception) -> str:
    """GDAL's message without its advice on driver prefixes."""
    return str(exc).split("; It might help", 1)[0].rstrip(". ")


def read_grid_file(path: str | Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a user's grid (GeoPackage, GeoJSON, Shapefile) without changing its CRS.

    Codes are read as strings (leading zeros kept). Validate with `validate_grid`.

    Raises
    ------
    DataFileError
        Missing, empty or unreadable file, or no ``code`` column.
    """
    p = Path(path)
    frame = read_features(p, layer=layer)
    if "code" not in frame.columns:
        raise DataFileError(
            f"grid file {p} has no 'code' column (columns: {', '.join(map(str, frame.columns))})")
    frame["code"] = frame["code"].map(_code_text)
    return frame


def _code_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def cells_from_file(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Normalise a validated user grid to the gridcore cell schema (derived columns)."""
    return _cell_frame(list(frame["code"]), list(frame.geometry.values))


def write_features(frame: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write a GeoDataFrame as GeoPackage (.gpkg) or GeoJSON (.geojson/.json), EPSG:4326.

    Raises
    ------
    DataFileError
        Unsupported extension.
    """
    p = Path(path)
    drivers = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
    driver = drivers.get(p.suffix.lower())
    if driver is None:
        raise DataFileError(
            f"cannot tell the format of {p.name}: use .gpkg (GeoPackage) or .geojson")
    if not p.parent.is_dir():
        raise DataFileError(f"cannot write {p}: directory {p.parent} does not exist")
    import pyogrio.errors

    try:
        if p.exists():
            p.unlink()
        frame.to_crs(GEOGRAPHIC_EPSG).to_file(p, driver=driver)
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise DataFileError(f"cannot write {p}: {_gdal_words(exc)}") from None
    return p


def point_to_cell(cells: gpd.GeoDataFrame, lon, lat) -> np.ndarray:
    """Return the position of the cell covering each WGS84 point, or -1 outside.

    The reference implementation (an STRtree query): a point on a shared edge or vertex
    is covered by several cells and gets the one with the smallest code, a documented,
    deterministic rule. `gridcore.sindex` has the fast path for millions of points.

    Parameters
    ----------
    cells : GeoDataFrame
        EPSG:4326 cells sorted by code (as `generate_grid` and the store return them).
    lon, lat : array_like
        WGS84 degrees.

    Returns
    -------
    ndarray of int
        Row positions into ``cells``; -1 where no cell covers the point.
    """
    lon_a, lat_a = np.atleast_1d(np.asarray(lon, float)), np.atleast_1d(np.asarray(lat, float))
    pts = shapely.points(lon_a, lat_a)
    tree = cells.sindex  # cached by geopandas
    p_idx, c_idx = tree.query(pts, predicate="intersects")
    out = np.full(len(pts), -1, dtype=np.int64)
    # cells are sorted by code, so the smallest position is the smallest code
    order = np.lexsort((c_idx, p_idx))
    p_idx, c_idx = p_idx[order], c_idx[order]
    first = np.unique(p_idx, return_index=True)[1]
    out[p_idx[first]] = c_idx[first]
    return out
