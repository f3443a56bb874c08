"""Locate: from a position or a component code to cell, community, street, district.

A supervisor's handheld reports a position (WGS84, GCJ-02 or BD-09, always named); a
resident quotes the code on a component. Both answers name the unit grid cell and its
community, street and district (codes and names) and the nearest components with their
class and department in charge.

:class:`Locator` holds what a query needs: the cells, the divisions' names, a
:class:`~gridcore.sindex.CellLocator` and, when components are given, a
:class:`~gridcore.sindex.ComponentIndex`. :func:`locate_csv` runs the same point-to-cell
assignment over a CSV file of any size.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridcore.components import (
    ClassTable,
    ComponentStatus,
    legacy_class_table,
    parse_component_code,
)
from gridcore.crs import (
    CHINA_BOUNDS,
    CRS,
    GEOGRAPHIC_EPSG,
    PROJECTED_EPSG,
    describe_lonlat,
    to_wgs84,
    validate_lonlat,
    wgs84_to_projected,
)
from gridcore.errors import CoordinateError, DataFileError, NotFoundError, OutsideCityError
from gridcore.sindex import CellLocator, ComponentIndex

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

    from gridcore.divisions import Divisions

__all__ = [
    "CsvLocateResult",
    "InvalidRows",
    "Location",
    "Locator",
    "NearbyComponent",
    "locate_csv",
]


@dataclass(frozen=True)
class NearbyComponent:
    """A component near the located position."""

    code: str
    class_code: str
    class_name: str
    dept_code: str
    dept_name: str
    owner: str
    status: str
    distance_m: float


@dataclass(frozen=True)
class Location:
    """Where a position lies: its cell and the divisions above it.

    ``lon``/``lat`` are WGS84 degrees (converted from the input CRS). ``component`` is
    set when the query was a component code.
    """

    lon: float
    lat: float
    cell_code: str
    community_code: str
    community_name: str
    street_code: str
    street_name: str
    district_code: str
    district_name: str
    nearby: tuple[NearbyComponent, ...] = field(default_factory=tuple)
    component: NearbyComponent | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (nested dicts for components), ready for JSON."""
        return asdict(self)


_CELL_COLUMNS = ("code", "community_code", "street_code", "district_code")
_OUT_COLUMNS = ("cell_code", "community_code", "street_code", "district_code")


class Locator:
    """Locate positions and component codes in one city.

    Parameters
    ----------
    cells : geopandas.GeoDataFrame
        Unit grid cells (EPSG:4326) with ``code``, ``community_code``, ``street_code``,
        ``district_code``.
    divisions : Divisions
        Names of districts, streets and communities.
    components : geopandas.GeoDataFrame, optional
        Components (schema :data:`gridcore.components.COMPONENT_COLUMNS`); those with
        status 移除 stay out of the nearest-component answers.
    table : ClassTable, optional
        Class table for class names (default: the legacy table).
    pixel_m : float
        Pixel size of the cell lookup raster.
    cell_locator : CellLocator, optional
        A locator already built for ``cells`` (saves the build).

    Examples
    --------
    ::

        loc = Locator.from_city(city, components=census)
        loc.locate(116.3975, 39.9087, crs="wgs84").district_name
        # '东城区'
    """

    def __init__(
        self,
        cells: gpd.GeoDataFrame,
        divisions: Divisions,
        *,
        components: gpd.GeoDataFrame | None = None,
        table: ClassTable | None = None,
        pixel_m: float = 5.0,
        cell_locator: CellLocator | None = None,
    ) -> None:
        missing = [c for c in _CELL_COLUMNS if c not in cells.columns]
        if missing:
            raise ValueError(f"cells lack columns {missing}; expected {list(_CELL_COLUMNS)}")
        self.cells = cells
        self.divisions = divisions
        self.table = table or legacy_class_table()
        self.cell_locator = cell_locator or CellLocator(cells, pixel_m=pixel_m)
        # one row per cell: codes of the cell and its divisions, as object arrays
        self._cell_cols = {c: cells[c].astype(str).to_numpy(dtype=object) for c in _CELL_COLUMNS}
        from pyproj import Transformer

        # a scalar pyproj call costs ~2 us, the array path through crs ~20 us
        self._to_metres = Transformer.from_crs(
            GEOGRAPHIC_EPSG, PROJECTED_EPSG, always_xy=True
        ).transform
        self.components = components
        self.component_index: ComponentIndex | None = None
        self._row_of_code: dict[str, int] = {}
        if components is not None:
            self._index_components(components)

    @classmethod
    def from_city(cls, city: Any, **kwargs: Any) -> Locator:
        """Build from a sample ``City`` (``.cells`` and ``.divisions``)."""
        return cls(city.cells, city.divisions, **kwargs)

    _COMP_FIELDS = ("code", "class_code", "dept_code", "dept_name", "owner", "status")

    def _index_components(self, components: gpd.GeoDataFrame) -> None:
        lon = components.geometry.x.to_numpy()
        lat = components.geometry.y.to_numpy()
        live = components["status"].to_numpy() != ComponentStatus.REMOVED.value
        x = np.full(len(lon), np.nan)
        y = np.full(len(lon), np.nan)
        if live.any():
            x[live], y[live] = wgs84_to_projected(lon[live], lat[live])
        self.component_index = ComponentIndex(
            x, y, classes=components["class_code"].to_numpy(dtype=object),
            statuses=components["status"].to_numpy(dtype=object), live=live,
        )
        self._row_of_code = dict(zip(components["code"], range(len(components)), strict=True))
        # Python lists: indexing one is ~20x cheaper than indexing a numpy object array
        self._comp = {c: components[c].astype(str).tolist() for c in self._COMP_FIELDS}
        names = self.table.classes["name"]
        self._comp["class_name"] = names.reindex(self._comp["class_code"]).fillna("").tolist()
        self._lon, self._lat = lon.tolist(), lat.tolist()

    def apply_changes(self, changed: gpd.GeoDataFrame) -> None:
        """Bring the component index up to date with new or edited components.

        Call it with the rows just stored (registered, edited, moved or retired): known
        codes are updated in place (moved, retired when their status is 移除, their
        status and department refreshed), unknown codes are inserted. No rebuild.
        ``self.components`` keeps the frame given at construction.

        Raises
        ------
        CoordinateError
            A position that is not a valid lon/lat in China.
        """
        if self.component_index is None:
            from gridcore.components import empty_components

            self.components = empty_components()
            self._index_components(self.components)
        idx = self.component_index
        assert idx is not None
        removed = ComponentStatus.REMOVED.value
        names = self.table.classes["name"]
        lon = changed.geometry.x.tolist()
        lat = changed.geometry.y.tolist()
        validate_lonlat(lon, lat)
        fields = {c: changed[c].astype(str).tolist() for c in self._COMP_FIELDS}
        for i, code in enumerate(fields["code"]):
            x, y = self._to_metres(lon[i], lat[i])
            status = fields["status"][i]
            row = self._row_of_code.get(code)
            if row is None:
                row = len(self._comp["code"])
                self._row_of_code[code] = row
                for c in self._COMP_FIELDS:
                    self._comp[c].append(fields[c][i])
                self._comp["class_name"].append(str(names.get(fields["class_code"][i], "")))
                self._lon.append(lon[i])
                self._lat.append(lat[i])
                idx.insert(row, x, y, class_code=fields["class_code"][i], status=status)
                if status == removed:
                    idx.retire(row)
                continue
            if row in idx:
                if status == removed:
                    idx.retire(row)
                else:
                    if (lon[i], lat[i]) != (self._lon[row], self._lat[row]):
                        idx.move(row, x, y)
                    idx.set_status(row, status)
            for c in ("dept_code", "dept_name", "status"):
                self._comp[c][row] = fields[c][i]
            self._lon[row], self._lat[row] = lon[i], lat[i]

    # -- positions ------------------------------------------------------------------------

    def _to_wgs84_one(self, lon: float, lat: float, crs: CRS | str) -> tuple[float, float]:
        c = CRS.parse(crs)
        lon, lat = float(lon), float(lat)
        x0, y0, x1, y1 = CHINA_BOUNDS
        if c is CRS.WGS84 and x0 <= lon <= x1 and y0 <= lat <= y1:
            return lon, lat  # already valid; NaN fails the comparisons above
        a, b = to_wgs84([lon], [lat], crs=c)  # validates, raising CoordinateError
        return float(a[0]), float(b[0])

    def cell_position(self, lon: float, lat: float, *, crs: CRS | str) -> int:
        """Position of the cell at one position, -1 outside (no names, no components)."""
        lon, lat = self._to_wgs84_one(lon, lat, crs)
        return self.cell_locator.locate_one(lon, lat)

    def locate(
        self,
        lon: float,
        lat: float,
        *,
        crs: CRS | str,
        k: int = 5,
        classes: Any = None,
        statuses: Any = None,
    ) -> Location:
        """Locate one position.

        Parameters
        ----------
        lon, lat : float
            Position in ``crs``.
        crs : {"wgs84", "gcj02", "bd09"}
            Required; a wrong guess moves a point ~550 m in Beijing.
        k : int
            Number of nearest components to list (0 for none).
        classes, statuses : str or list of str, optional
            Only list components of these classes / statuses.

        Returns
        -------
        Location

        Raises
        ------
        CRSError
            Unknown CRS.
        CoordinateError
            NaN, out of range, outside China, or lat/lon likely swapped.
        OutsideCityError
            The position lies outside every cell of the city.
        """
        lon, lat = self._to_wgs84_one(lon, lat, crs)
        pos = self.cell_locator.locate_one(lon, lat)
        if pos < 0:
            raise self._outside(lon, lat, crs)
        nearby = self._nearby(lon, lat, k, classes=classes, statuses=statuses)
        return self._location(lon, lat, pos, nearby)

    def _outside(self, lon: float, lat: float, crs: Any) -> OutsideCityError:
        near, dist = self.cell_locator.nearest_cell(lon, lat)
        return OutsideCityError(
            f"position lon={lon:.6f}, lat={lat:.6f} (WGS84, given as {CRS.parse(crs).value}) "
            f"lies outside every unit grid cell of the city; the nearest cell "
            f"{self._cell_cols['code'][near]} is {dist:.0f} m away. Check the CRS and the "
            f"lon/lat order"
        )

    def _nearby(
        self, lon: float, lat: float, k: int, *, classes: Any = None, statuses: Any = None,
        exclude: int | None = None,
    ) -> tuple[NearbyComponent, ...]:
        if k <= 0 or self.component_index is None or len(self.component_index) == 0:
            return ()
        x, y = self._to_metres(lon, lat)  # lon/lat already validated
        want = k + (exclude is not None)
        ids, dist = self.component_index.nearest(
            x, y, want, classes=classes, statuses=statuses
        )
        keep = ids != exclude
        return tuple(self._nearby_component(i, d)
                     for i, d in zip(ids[keep][:k].tolist(), dist[keep][:k].tolist(),
                                     strict=True))

    def _nearby_component(self, row: int, distance: float) -> NearbyComponent:
        c = self._comp
        return NearbyComponent(
            code=c["code"][row], class_code=c["class_code"][row], class_name=c["class_name"][row],
            dept_code=c["dept_code"][row], dept_name=c["dept_name"][row],
            owner=c["owner"][row], status=c["status"][row], distance_m=distance,
        )

    def _location(
        self, lon: float, lat: float, pos: int, nearby: tuple[NearbyComponent, ...],
        component: NearbyComponent | None = None,
    ) -> Location:
        cc = self._cell_cols
        name = self.divisions.name_of
        return Location(
            lon=lon, lat=lat, cell_code=cc["code"][pos],
            community_code=cc["community_code"][pos],
            community_name=name(cc["community_code"][pos]),
            street_code=cc["street_code"][pos], street_name=name(cc["street_code"][pos]),
            district_code=cc["district_code"][pos], district_name=name(cc["district_code"][pos]),
            nearby=nearby, component=component,
        )

    # -- component codes --------------------------------------------------------------------

    def locate_component(self, code: str, *, district: str | None = None, k: int = 5) -> Location:
        """Locate a component by its 16-, 17- or 8-digit code.

        Parameters
        ----------
        code : str
            Full ID, or the 8-digit short code together with ``district``.
        district : str, optional
            6-digit district code; required for 8-digit codes.
        k : int
            Number of other components to list nearby.

        Raises
        ------
        InvalidCodeError
            Malformed code, unknown class, or an 8-digit code without a district.
        NotFoundError
            No component has this code (or no components were loaded).
        """
        parsed = parse_component_code(code, district=district, table=self.table)
        if self.component_index is None:
            raise NotFoundError("no components are loaded in this locator")
        row = self._row_of_code.get(parsed.code)
        if row is None:
            raise NotFoundError(
                f"no component has code {parsed.code}"
                + (f" (short code {code} in district {district})" if len(code) == 8 else "")
            )
        lon, lat = self._lon[row], self._lat[row]
        pos = self.cell_locator.locate_one(lon, lat)
        if pos < 0:
            raise OutsideCityError(f"component {parsed.code} lies outside every cell")
        nearby = self._nearby(lon, lat, k, exclude=row)
        return self._location(lon, lat, pos, nearby, component=self._nearby_component(row, 0.0))

    # -- many points ------------------------------------------------------------------------

    def locate_many(self, lon: Any, lat: Any, *, crs: CRS | str) -> pd.DataFrame:
        """Cell, community, street and district codes of many positions.

        Returns a DataFrame with columns ``cell_code, community_code, street_code,
        district_code``, ``""`` where a position lies outside the city.

        Raises
        ------
        CoordinateError
            Any NaN, out-of-range, outside-China or swapped position (the first is named).
        """
        lon, lat = to_wgs84(lon, lat, crs=crs)
        return self._codes_frame(self.cell_locator.locate(lon, lat))

    def _codes_frame(self, pos: np.ndarray) -> pd.DataFrame:
        inside = pos >= 0
        safe = np.where(inside, pos, 0)
        out = {}
        for src, dst in zip(_CELL_COLUMNS, _OUT_COLUMNS, strict=True):
            out[dst] = np.where(inside, self._cell_cols[src][safe], "")
        return pd.DataFrame(out)


# --------------------------------------------------------------------------------------
# Bulk locate over CSV files


class InvalidRows(enum.StrEnum):
    """What :func:`locate_csv` does with rows whose lon/lat are unusable."""

    ERROR = "error"  # stop at the first bad row; no output file is written
    EMPTY = "empty"  # write the row with empty codes and go on


def _parse_invalid(value: Any) -> InvalidRows:
    try:
        return InvalidRows(value)
    except ValueError:
        valid = ", ".join(v.value for v in InvalidRows)
        raise ValueError(f"unknown invalid_rows {value!r}; valid values: {valid}") from None


@dataclass(frozen=True)
class CsvLocateResult:
    """Counts from :func:`locate_csv`."""

    rows: int  # data rows written
    located: int  # rows given a cell
    outside: int  # usable rows outside every cell
    invalid: int  # unusable rows written with empty codes (invalid_rows="empty")
    wrong_fields: int = 0  # of the invalid: rows with more or fewer fields than the header
    encoding: str = "utf-8"  # the encoding the input was read in (the output is UTF-8)


def locate_csv(
    input_path: str | Path,
    output_path: str | Path,
    *,
    crs: CRS | str,
    locator: Locator,
    invalid_rows: InvalidRows | str = InvalidRows.ERROR,
    encoding: str | None = None,
    chunksize: int = 500_000,
    progress: bool = True,
) -> CsvLocateResult:
    """Add cell and division codes to every row of a CSV with ``lon``,``lat`` columns.

    The output is the input with four columns appended: ``cell_code``,
    ``community_code``, ``street_code``, ``district_code``, empty where a point lies
    outside the city. Every other column passes through as text, unchanged. The file
    is processed in chunks behind a tqdm progress bar, written to a temporary file
    beside the output and renamed at the end, so a failed run leaves no partial output.

    A file with one record per line (no quotes, no CR, no blank lines: what exports
    usually are) is passed through byte for byte with the codes appended, reading only
    ``lon``/``lat``; every line must have as many fields as the header. Any other CSV goes
    through the pandas parser. Both write what ``pandas.read_csv(dtype=str)`` followed by
    ``to_csv(index=False)`` would.

    **Unusable rows** (lon or lat empty, not a number, NaN, out of range, outside
    China, or lat/lon apparently swapped): with ``invalid_rows="error"`` (default) the
    run stops at the first such row with a CoordinateError naming its line number;
    with ``invalid_rows="empty"`` the row is written with empty codes, like a point
    outside the city, and counted in the result's ``invalid``.

    **Rows with more or fewer fields than the header** (often an unquoted comma in a
    name): with ``invalid_rows="error"`` the run stops with a DataFileError naming the
    line; with ``invalid_rows="empty"`` the row is cut or padded to the header's width
    and written with empty codes (its lon/lat cannot be trusted), counted in ``invalid``
    and ``wrong_fields``. The output columns always line up with its header.

    **Encoding**: without ``encoding``, a UTF-8 byte order mark means UTF-8, a file that
    is valid UTF-8 is read as UTF-8, and any other file as GB18030 (a superset of GBK and
    GB2312, what Chinese Excel and many exports write). The output is always UTF-8
    without a BOM.

    Parameters
    ----------
    input_path, output_path : str or Path
        CSV files (UTF-8, header row). They must differ.
    crs : {"wgs84", "gcj02", "bd09"}
        CRS of the ``lon``/``lat`` columns; required.
    locator : Locator
        The city to locate in.
    invalid_rows : {"error", "empty"}
        Policy for unusable rows, see above.
    encoding : str, optional
        Encoding of the input (e.g. ``"utf-8"``, ``"gb18030"``); detected when omitted.
    chunksize : int
        Rows per chunk (plain files are read in blocks of ``chunksize`` x 64 bytes).
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    CsvLocateResult
        Rows written, located, outside the city, and unusable.

    Raises
    ------
    DataFileError
        Missing, empty or unreadable input file, no header, missing ``lon``/``lat``
        columns, a row with the wrong number of fields under ``invalid_rows="error"``, text
        not in the encoding, output path equal to the input, or output columns already
        present in the input.
    CoordinateError
        An unusable row under ``invalid_rows="error"``.
    CRSError
        Unknown CRS.
    """
    policy = _parse_invalid(invalid_rows)
    crs = CRS.parse(crs)
    src, dst = Path(input_path), Path(output_path)
    _check_csv_paths(src, dst)
    try:
        return _run_csv(src, dst, crs, locator, policy, encoding, chunksize, progress)
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{src} is not {exc.encoding} text ({exc.reason}); pass the file's encoding "
            "(--encoding gb18030, utf-8, ...)") from None
    except csv.Error as exc:
        raise DataFileError(f"{src} is not a readable CSV file: {exc}") from None
    except OSError as exc:  # the disk, not the data: unreadable input, unwritable output
        where = exc.filename or src
        raise DataFileError(f"cannot read or write {where}: {exc.strerror or exc}") from None


def _run_csv(src: Path, dst: Path, crs: CRS, locator: Locator, policy: InvalidRows,
             encoding: str | None, chunksize: int, progress: bool) -> CsvLocateResult:
    plain, utf8, bom = _scan_csv(src)
    enc = _input_encoding(src, encoding, utf8=utf8, bom=bom)
    job = _CsvJob(locator, crs, policy, src, enc)
    tmp = tempfile.NamedTemporaryFile(
        "wb", dir=dst.parent, prefix=f".{dst.name}.", suffix=".part", delete=False
    )
    try:
        with tmp, _progress(src.stat().st_size, progress, src.name) as bar:
            if plain and enc == "utf-8":
                job.run_plain(tmp, bar, chunk_bytes=max(1, chunksize) * 64)
            else:
                try:
                    job.run_pandas(tmp, bar, chunksize=chunksize)
                except _WrongFieldCount:  # read it again, record by record, line by line
                    tmp.seek(0)
                    tmp.truncate()
                    job.reset()
                    job.run_records(tmp, bar, chunksize=chunksize)
        os.replace(tmp.name, dst)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return CsvLocateResult(job.rows, job.located, job.rows - job.located - job.invalid,
                           job.invalid, job.wrong_fields, enc)


_NEW_HEADER = "," + ",".join(_OUT_COLUMNS)


def _scan_csv(src: Path) -> tuple[bool, bool, bool]:
    """Return (plain, valid UTF-8, UTF-8 BOM) in one pass over the file.

    Plain: no quotes, carriage returns or blank lines, so every line is one record. Such
    a file can be passed through byte for byte with the codes appended, which is what
    pandas would write back too; anything else goes through the pandas parser.
    """
    tail = b""
    plain = utf8 = True
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(src, "rb") as fh:
        first = True
        while block := fh.read(1 << 24):
            if first:
                bom = block.startswith(codecs.BOM_UTF8)
            probe = tail + block
            if plain and (b'"' in probe or b"\r" in probe or b"\n\n" in probe
                          or (first and probe[:1] == b"\n")):
                plain = False
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
            tail, first = block[-1:], False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return plain, utf8, bom


def _input_encoding(src: Path, encoding: str | None, *, utf8: bool, bom: bool) -> str:
    """Return the codec to read ``src`` with: the caller's, else detected (see locate_csv)."""
    if encoding is None:
        return "utf-8-sig" if bom else "utf-8" if utf8 else "gb18030"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataFileError(
            f"unknown encoding {encoding!r}; use e.g. utf-8, gb18030, gbk") from None
    if name == "utf-8" and bom:
        return "utf-8-sig"
    if name in ("utf-8", "utf-8-sig") and not utf8:
        raise DataFileError(
            f"{src} is not utf-8 text; pass the file's encoding (--encoding gb18030, ...) "
            "or leave --encoding out to detect it")
    return name


class _WrongFieldCount(Exception):
    """The pandas parser met a record with the wrong number of fields (private)."""


class _CsvJob:
    """State of one locate_csv run: counts, and the bytes each cell appends to a line."""

    def __init__(self, locator: Locator, crs: CRS, policy: InvalidRows, src: Path,
                 encoding: str = "utf-8") -> None:
        self.locator, self.crs, self.policy, self.src = locator, crs, policy, src
        self.encoding = encoding
        self.reset()

    def reset(self) -> None:
        self.rows = self.located = self.invalid = self.wrong_fields = 0

    # -- shared: text -> cell positions -------------------------------------------------

    def positions(self, lon_text: pd.Series, lat_text: pd.Series) -> np.ndarray:
        """Cell position per row (-1 outside or unusable); raises under policy ERROR."""
        lon = pd.to_numeric(lon_text.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        lat = pd.to_numeric(lat_text.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        ok = _usable(lon, lat)
        if not ok.all() and self.policy is InvalidRows.ERROR:
            i = int(np.flatnonzero(~ok)[0])
            line = self.rows + i + 2  # 1-based, after the header
            why = describe_lonlat(lon[i], lat[i]) or "is unusable"
            raise CoordinateError(
                f"line {line}: lon={lon_text.iloc[i]!r}, lat={lat_text.iloc[i]!r}: {why}; "
                f"fix the row or pass invalid_rows='empty' to leave its codes empty"
            )
        pos = np.full(len(lon), -1, dtype=np.int64)
        if ok.any():
            wlon, wlat = to_wgs84(lon[ok], lat[ok], crs=self.crs)
            pos[ok] = self.locator.cell_locator.locate(wlon, wlat)
        self.invalid += int(len(ok) - ok.sum())
        self.located += int((pos >= 0).sum())
        return pos

    # -- the pandas path: any CSV -------------------------------------------------------

    def run_pandas(self, out: Any, bar: Any, *, chunksize: int) -> None:
        """Parse with pandas; raise _WrongFieldCount at a record pandas cannot align."""
        with open(self.src, "rb") as fh, warnings.catch_warnings():
            # index_col=False: a first row one field longer must not become the index;
            # pandas then warns it drops data, which here is a row to refuse or repair
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                reader = pd.read_csv(
                    fh, dtype=str, keep_default_na=False, na_filter=False, index_col=False,
                    chunksize=chunksize, encoding=self.encoding,
                )
            except pd.errors.EmptyDataError:
                raise DataFileError(
                    f"{self.src} has no header row; expected a CSV with lon and lat columns"
                ) from None
            first = True
            for chunk in _chunks(reader):
                if first:
                    _check_columns(chunk.columns, self.src)
                pos = self.positions(chunk["lon"], chunk["lat"])
                codes = self.locator._codes_frame(pos)
                codes.index = chunk.index
                pd.concat([chunk, codes], axis=1).to_csv(
                    out, index=False, header=first, lineterminator="\n", encoding="utf-8")
                self.rows += len(chunk)
                first = False
                bar.update(fh.tell() - bar.n)
        if first:  # a header but no rows: write the header alone
            header = pd.read_csv(self.src, nrows=0, encoding=self.encoding)
            _check_columns(header.columns, self.src)
            pd.DataFrame(columns=[*header.columns, *_OUT_COLUMNS]).to_csv(
                out, index=False, lineterminator="\n")

    # -- the plain path: one record per line, passed through byte for byte --------------

    def run_plain(self, out: Any, bar: Any, *, chunk_bytes: int) -> None:
        codes = self.locator._cell_cols
        tails = [b",,,,"] + [
            ("," + ",".join(row)).encode()
            for row in zip(codes["code"], codes["community_code"], codes["street_code"],
                           codes["district_code"], strict=True)
        ]
        tails_arr = np.array(tails, dtype=object)
        with open(self.src, "rb") as fh:
            header = fh.readline()
            names = header.rstrip(b"\n").decode("utf-8").split(",")
            _check_columns(pd.Index(names), self.src)
            if len(set(names)) != len(names):
                raise DataFileError(f"{self.src} repeats a column name in its header")
            i_lon, i_lat = names.index("lon"), names.index("lat")
            seps = len(names) - 1
            out.write(header.rstrip(b"\n") + _NEW_HEADER.encode() + b"\n")
            bar.update(len(header))
            while data := fh.read(chunk_bytes):
                if not data.endswith(b"\n"):
                    data += fh.readline()
                    if not data.endswith(b"\n"):  # last line without a newline
                        data += b"\n"
                lines = data[:-1].split(b"\n")
                bad = _field_counts(data) != seps + 1
                if bad.any():
                    data = self._repair(lines, bad, seps + 1)
                cols = pd.read_csv(
                    io.BytesIO(data), header=None, usecols=[i_lon, i_lat], dtype=str,
                    keep_default_na=False, na_filter=False, encoding="utf-8",
                )
                if bad.any():  # a repaired row's lon/lat cannot be trusted
                    cols.loc[bad, [i_lon, i_lat]] = ""
                pos = self.positions(cols[i_lon], cols[i_lat])
                out.write(b"\n".join(map(bytes.__add__, lines, tails_arr[pos + 1])) + b"\n")
                self.rows += len(lines)
                bar.update(len(data))

    def _repair(self, lines: list[bytes], bad: np.ndarray, width: int) -> bytes:
        """Refuse (policy ERROR) or cut/pad the ``bad`` lines to ``width`` fields."""
        i = int(np.flatnonzero(bad)[0])
        if self.policy is InvalidRows.ERROR:
            raise self._wrong_fields_error(self.rows + i + 2, lines[i].count(b",") + 1, width)
        for i in np.flatnonzero(bad):
            lines[i] = b",".join((lines[i].split(b",") + [b""] * width)[:width])
        self.wrong_fields += int(bad.sum())
        return b"\n".join(lines) + b"\n"

    def _wrong_fields_error(self, line: int, got: int, width: int) -> DataFileError:
        return DataFileError(
            f"{self.src} line {line} has {got} fields but the header has {width}; quote "
            "fields that contain commas, or pass --invalid-rows empty (invalid_rows="
            "'empty') to write such rows with empty codes"
        )

    # -- the record path: a CSV pandas cannot align, read with the csv module ----------

    def run_records(self, out: Any, bar: Any, *, chunksize: int) -> None:
        """Read record by record; refuse or repair rows with the wrong field count."""
        with open(self.src, encoding=self.encoding, newline="") as fh:
            reader = csv.reader(fh)
            names = next((r for r in reader if r), None)
            if names is None:
                raise DataFileError(
                    f"{self.src} has no header row; expected a CSV with lon and lat columns")
            _check_columns(pd.Index(names), self.src)
            if len(set(names)) != len(names):
                raise DataFileError(f"{self.src} repeats a column name in its header")
            width, first = len(names), True
            while True:
                batch, bad = [], []
                for rec in reader:
                    if not rec:  # a blank line, which pandas skips too
                        continue
                    if len(rec) != width:
                        if self.policy is InvalidRows.ERROR:
                            raise self._wrong_fields_error(reader.line_num, len(rec), width)
                        rec = (rec + [""] * width)[:width]
                        bad.append(len(batch))
                    batch.append(rec)
                    if len(batch) >= chunksize:
                        break
                if not batch and not first:
                    break
                chunk = pd.DataFrame(batch, columns=names, dtype=object)
                lon, lat = chunk["lon"].copy(), chunk["lat"].copy()
                lon.iloc[bad] = lat.iloc[bad] = ""  # a repaired row's lon/lat: not trusted
                pos = self.positions(lon.astype(str), lat.astype(str))
                codes = self.locator._codes_frame(pos)
                codes.index = chunk.index
                pd.concat([chunk, codes], axis=1).to_csv(
                    out, index=False, header=first, lineterminator="\n", encoding="utf-8")
                self.rows += len(chunk)
                self.wrong_fields += len(bad)
                first = False
                if not batch:
                    break
        bar.update(self.src.stat().st_size - bar.n)


def _chunks(reader: Any) -> Any:
    """Iterate a pandas chunk reader, turning field-count trouble into _WrongFieldCount."""
    it = iter(reader)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except (pd.errors.ParserError, pd.errors.ParserWarning):
            raise _WrongFieldCount from None
        yield chunk


def _field_counts(data: bytes) -> np.ndarray:
    """Fields per line of ``data`` (complete lines, each ending in a newline), vectorised."""
    b = np.frombuffer(data, dtype=np.uint8)
    commas = np.concatenate([[0], np.cumsum(b == ord(","))])
    ends = np.flatnonzero(b == ord("\n"))
    at_end = commas[ends]
    return np.diff(np.concatenate([[0], at_end])) + 1


def _check_csv_paths(src: Path, dst: Path) -> None:
    if not src.exists():
        raise DataFileError(f"input file {src} does not exist")
    if not src.is_file():
        raise DataFileError(f"input {src} is not a file; expected a CSV with lon and lat columns")
    if src.stat().st_size == 0:
        raise DataFileError(f"input file {src} is empty; expected a CSV with lon and lat columns")
    if src.resolve() == dst.resolve():
        raise DataFileError(f"output {dst} must differ from the input file")
    if not dst.parent.exists():
        raise DataFileError(f"output directory {dst.parent} does not exist")


def _check_columns(columns: pd.Index, src: Path) -> None:
    missing = [c for c in ("lon", "lat") if c not in columns]
    if missing:
        raise DataFileError(
            f"{src} lacks column(s) {missing}; expected lon and lat columns (found "
            f"{list(columns)[:10]})"
        )
    clash = [c for c in _OUT_COLUMNS if c in columns]
    if clash:
        raise DataFileError(
            f"{src} already has column(s) {clash}; remove them or locate the original file"
        )


def _usable(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Rows that pass :func:`gridcore.crs.validate_lonlat` (finite, in China, not swapped)."""
    x0, y0, x1, y1 = CHINA_BOUNDS
    return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


class _NoBar:
    n = 0

    def update(self, k: int) -> None:
        self.n += k

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(total: int, enabled: bool, name: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"locate {name}", leave=False)


