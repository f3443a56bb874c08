"""City components (城市部件): class tables, component codes and the component records.

Codes are parsed and formatted here and nowhere else. Three layouts exist:

======  ==========================  ==========================================
digits  layout                      standard
======  ==========================  ==========================================
16      district 6 + major 2 +      CJ/T 214-2007, GB/T 30428.2-2013 (legacy)
        minor 2 + serial 6
17      district 6 + major 2 +      GB/T 47678.5-2026 (in force 2026-07-01)
        minor 3 + serial 6
8       major 2 + minor 2 +         the Dongcheng 2004 short code; no source explains
        serial 4                    its digits, this layout is *our reading*: the 16-digit
                                    ID without its district and two leading serial zeros
======  ==========================  ==========================================

Class tables are data (``gridcore/data/*.csv``), one per standard, and a city can load its
own with :func:`load_class_table`. Component records live in a GeoDataFrame whose columns
are :data:`COMPONENT_COLUMNS`; the engine assigns codes (:func:`assign_component_codes`)
and keeps them stable through edits and moves (:func:`edit_component`,
:func:`move_component`, :func:`retire_component`).
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridcore._time import Clock, default_clock
from gridcore.errors import ConflictError, DataFileError, InvalidCodeError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

__all__ = [
    "COMPONENT_COLUMNS",
    "ClassTable",
    "CodeLayout",
    "Component",
    "ComponentCode",
    "ComponentSource",
    "ComponentStatus",
    "assign_component_codes",
    "check_components_in_cells",
    "component_code_to_short",
    "edit_component",
    "empty_components",
    "format_component_code",
    "gbt47678_class_table",
    "is_valid_component_code",
    "legacy_class_table",
    "load_class_table",
    "load_departments",
    "move_component",
    "new_components",
    "parse_component_code",
    "read_components_file",
    "retire_component",
    "short_code_to_component_code",
    "validate_component_code",
    "validate_components",
    "write_components_file",
]

# --------------------------------------------------------------------------------------
# Enums


class CodeLayout(enum.StrEnum):
    """The two national component-ID layouts, named by their length."""

    LEGACY16 = "16"  # CJ/T 214-2007, GB/T 30428.2-2013: 6 + 2 + 2 + 6
    GBT17 = "17"  # GB/T 47678.5-2026: 6 + 2 + 3 + 6

    @property
    def minor_digits(self) -> int:
        """Digits of the minor class in this layout."""
        return 2 if self is CodeLayout.LEGACY16 else 3

    @property
    def length(self) -> int:
        """Total digits of an ID in this layout."""
        return int(self.value)


class ComponentStatus(enum.StrEnum):
    """Status of a component; REMOVED components keep their code, never reused."""

    INTACT = "完好"
    DAMAGED = "破损"
    LOST = "丢失"
    ABANDONED = "废弃"
    REMOVED = "移除"


class ComponentSource(enum.StrEnum):
    """Where a component's position came from."""

    SURVEYED = "实测"
    TOPOGRAPHIC_MAP = "地形图"
    OTHER = "其他"


def _enum_value(enum_cls: type[enum.StrEnum], value: Any, what: str) -> str:
    try:
        return enum_cls(value).value
    except ValueError:
        valid = ", ".join(m.value for m in enum_cls)
        raise InvalidCodeError(f"unknown {what} {value!r}; valid values: {valid}") from None


# --------------------------------------------------------------------------------------
# Class tables

_CLASS_COLUMNS = ("class_code", "major", "minor", "major_name", "name", "dept_code")


@dataclass(frozen=True, eq=False)
class ClassTable:
    """A component class table of one standard (or one city).

    Attributes
    ----------
    name : str
        Human name of the table, e.g. ``"CJ/T 214-2007"``.
    layout : CodeLayout
        The ID layout whose class part this table fills (2- or 3-digit minors).
    classes : pandas.DataFrame
        Indexed by ``class_code`` (4 or 5 digits), columns ``major``, ``minor``,
        ``major_name``, ``name``, ``dept_code`` and any extra columns of the file.
    """

    name: str
    layout: CodeLayout
    classes: pd.DataFrame

    def __contains__(self, class_code: object) -> bool:
        return isinstance(class_code, str) and class_code in self.classes.index

    def __len__(self) -> int:
        return len(self.classes)

    def check_class(self, class_code: str) -> str:
        """Return ``class_code`` if the table has it, else raise InvalidCodeError.

        Raises
        ------
        InvalidCodeError
            The class is not in this table; the message lists the valid majors.
        """
        if class_code not in self:
            majors = ", ".join(sorted(self.classes["major"].unique()))
            raise InvalidCodeError(
                f"component class {class_code!r} is not in the {self.name} table "
                f"({self.layout.minor_digits}-digit minors; majors {majors}); "
                f"expected one of its {len(self)} class codes such as "
                f"{self.classes.index[0]!r}"
            )
        return class_code

    def class_name(self, class_code: str) -> str:
        """Chinese name of a class, e.g. ``"上水井盖"`` for ``"0101"``."""
        return str(self.classes.at[self.check_class(class_code), "name"])

    def dept_code(self, class_code: str) -> str:
        """Default department in charge of a class."""
        return str(self.classes.at[self.check_class(class_code), "dept_code"])


def load_class_table(
    path: str | Path, *, name: str | None = None, layout: CodeLayout | str | None = None
) -> ClassTable:
    """Load a component class table from a CSV file.

    Parameters
    ----------
    path : str or Path
        CSV with columns ``class_code, major, minor, major_name, name, dept_code``
        (UTF-8); codes are read as text so leading zeros survive.
    name : str, optional
        Name of the table; defaults to the file stem.
    layout : CodeLayout or {"16", "17"}, optional
        Layout the table serves; inferred from the minor width when omitted.

    Returns
    -------
    ClassTable

    Raises
    ------
    DataFileError
        Missing file or columns, empty table, duplicate or inconsistent class codes.

    Examples
    --------
    ::

        table = load_class_table("my_city_classes.csv")
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(f"class table {path} does not exist") from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"class table {path} is empty; expected a CSV header") from None
    return _class_table_from_frame(df, name=name or path.stem, layout=layout, source=str(path))


def _class_table_from_frame(
    df: pd.DataFrame, *, name: str, layout: CodeLayout | str | None, source: str
) -> ClassTable:
    missing = [c for c in _CLASS_COLUMNS if c not in df.columns]
    if missing:
        raise DataFileError(
            f"class table {source} lacks columns {missing}; expected {list(_CLASS_COLUMNS)}"
        )
    if df.empty:
        raise DataFileError(f"class table {source} has no rows")
    minor_widths = set(df["minor"].str.len())
    if len(minor_widths) != 1 or minor_widths - {2, 3}:
        raise DataFileError(
            f"class table {source}: minor classes must all have 2 or all 3 digits, "
            f"found widths {sorted(minor_widths)}"
        )
    width = minor_widths.pop()
    if layout is None:
        layout = CodeLayout.LEGACY16 if width == 2 else CodeLayout.GBT17
    layout = CodeLayout(layout)
    if layout.minor_digits != width:
        raise DataFileError(
            f"class table {source} has {width}-digit minors but layout {layout.value} "
            f"needs {layout.minor_digits}"
        )
    bad = ~(df["major"].str.fullmatch(r"\d{2}") & df["minor"].str.fullmatch(r"\d+"))
    bad |= df["class_code"] != df["major"] + df["minor"]
    if bad.any():
        row = df[bad].iloc[0]
        raise DataFileError(
            f"class table {source}: class_code {row['class_code']!r} must be the digits "
            f"major {row['major']!r} + minor {row['minor']!r}"
        )
    if df["class_code"].duplicated().any():
        dup = df.loc[df["class_code"].duplicated(), "class_code"].iloc[0]
        raise DataFileError(f"class table {source}: class_code {dup!r} appears twice")
    return ClassTable(name=name, layout=layout, classes=df.set_index("class_code"))


def _data_path(filename: str) -> Any:
    return resources.files("gridcore").joinpath("data", filename)


@functools.cache
def legacy_class_table() -> ClassTable:
    """Return the legacy CJ/T 214-2007 / GB/T 30428.2-2013 table (2-digit minors, 16 digits)."""
    with resources.as_file(_data_path("component_classes_cjt214.csv")) as p:
        return load_class_table(p, name="CJ/T 214-2007", layout=CodeLayout.LEGACY16)


@functools.cache
def gbt47678_class_table() -> ClassTable:
    """Return the GB/T 47678.5-2026 table (3-digit minors, 17-digit IDs).

    The mapping from legacy minors is our reading (``01``+``01`` -> ``01``+``001``), kept
    in the ``legacy_class_code`` column.
    """
    with resources.as_file(_data_path("component_classes_gbt47678.csv")) as p:
        return load_class_table(p, name="GB/T 47678.5-2026", layout=CodeLayout.GBT17)


@functools.cache
def load_departments() -> pd.DataFrame:
    """Departments in charge (主管部门), indexed by ``dept_code`` (synthetic sample data)."""
    with resources.as_file(_data_path("departments.csv")) as p:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
    df["synthetic"] = df["synthetic"] == "true"
    return df.set_index("dept_code")


# --------------------------------------------------------------------------------------
# Codes: the one seam

_DISTRICT_DIGITS = 6
_SERIAL_DIGITS = 6
_SHORT_SERIAL_DIGITS = 4
_MAX_SERIAL = 10**_SERIAL_DIGITS - 1
_MAX_SHORT_SERIAL = 10**_SHORT_SERIAL_DIGITS - 1


@dataclass(frozen=True, order=True)
class ComponentCode:
    """A parsed component ID.

    Attributes
    ----------
    district : str
        6-digit GB/T 2260 district code.
    major : str
        2-digit major class.
    minor : str
        2-digit (16-digit layout) or 3-digit (17-digit layout) minor class.
    serial : int
        Serial number, 1..999999, unique within district and class.
    """

    district: str
    major: str
    minor: str
    serial: int

    @property
    def layout(self) -> CodeLayout:
        """The layout implied by the minor's width."""
        return CodeLayout.LEGACY16 if len(self.minor) == 2 else CodeLayout.GBT17

    @property
    def class_code(self) -> str:
        """Major + minor, e.g. ``"0101"`` or ``"01001"``."""
        return self.major + self.minor

    @property
    def code(self) -> str:
        """The full 16- or 17-digit ID."""
        return f"{self.district}{self.major}{self.minor}{self.serial:0{_SERIAL_DIGITS}d}"

    def __str__(self) -> str:
        return self.code


def _check_digits(code: Any, what: str) -> str:
    if not isinstance(code, str):
        raise InvalidCodeError(f"{what} must be a string of digits, got {type(code).__name__}")
    if not (code.isascii() and code.isdigit()):
        raise InvalidCodeError(f"{what} {code!r} must contain only the digits 0-9")
    return code


def _check_district(district: Any) -> str:
    _check_digits(district, "district code")
    if len(district) != _DISTRICT_DIGITS or district.endswith("00") or district < "110000":
        raise InvalidCodeError(
            f"district code {district!r} must be a 6-digit GB/T 2260 county-level code "
            f"such as '110101' (not a province or city code ending in 00)"
        )
    return district


def _check_serial(serial: int, *, maximum: int = _MAX_SERIAL, what: str = "serial") -> int:
    if not 1 <= serial <= maximum:
        raise InvalidCodeError(f"component {what} {serial} is out of range; expected 1..{maximum}")
    return serial


def parse_component_code(
    code: str, *, table: ClassTable | None = None, district: str | None = None
) -> ComponentCode:
    """Parse a 16-, 17- or 8-digit component code.

    Parameters
    ----------
    code : str
        16 digits (6+2+2+6), 17 digits (6+2+3+6), or the 8-digit short code (2+2+4).
    table : ClassTable, optional
        When given, the class must be in it and its layout must match the code's.
    district : str, optional
        The 6-digit district an 8-digit short code belongs to (required for those).

    Returns
    -------
    ComponentCode

    Raises
    ------
    InvalidCodeError
        Wrong length, non-digits, bad district, unknown class, serial 0, or an 8-digit
        code without a district.

    Examples
    --------
    >>> parse_component_code("3205080101000001")
    ComponentCode(district='320508', major='01', minor='01', serial=1)
    """
    _check_digits(code, "component code")
    n = len(code)
    if n == 8:
        if district is None:
            raise InvalidCodeError(
                f"8-digit short code {code!r} is unique only within a district; "
                f"pass district= (6 digits, e.g. '110101')"
            )
        return short_code_to_component_code(code, district=district, table=table)
    if n not in (16, 17):
        raise InvalidCodeError(
            f"component code {code!r} has {n} digits; expected 16 (6+2+2+6, CJ/T 214), "
            f"17 (6+2+3+6, GB/T 47678.5) or an 8-digit short code with a district"
        )
    layout = CodeLayout(str(n))
    d, m = _DISTRICT_DIGITS, _DISTRICT_DIGITS + 2
    mi = m + layout.minor_digits
    parsed = ComponentCode(_check_district(code[:d]), code[d:m], code[m:mi], int(code[mi:]))
    _check_serial(parsed.serial)
    if district is not None and district != parsed.district:
        raise InvalidCodeError(
            f"component code {code!r} belongs to district {parsed.district}, "
            f"not the requested district {district}"
        )
    if table is not None:
        _check_against_table(parsed, table)
    return parsed


def _check_against_table(parsed: ComponentCode, table: ClassTable) -> None:
    if parsed.layout is not table.layout:
        raise InvalidCodeError(
            f"component code {parsed.code!r} uses the {parsed.layout.value}-digit layout "
            f"but the {table.name} table serves {table.layout.value}-digit codes"
        )
    table.check_class(parsed.class_code)


def format_component_code(
    district: str, class_code: str, serial: int, *, table: ClassTable | None = None
) -> str:
    """Format a component ID; a 4-digit class gives 16 digits, a 5-digit class 17.

    Raises
    ------
    InvalidCodeError
        Bad district, class code of the wrong width or not in ``table``, serial outside
        1..999999.

    Examples
    --------
    >>> format_component_code("320508", "0101", 1)
    '3205080101000001'
    """
    _check_district(district)
    _check_digits(class_code, "class code")
    if len(class_code) not in (4, 5):
        raise InvalidCodeError(
            f"class code {class_code!r} must have 4 digits (major 2 + minor 2) or 5 "
            f"(major 2 + minor 3)"
        )
    parsed = ComponentCode(district, class_code[:2], class_code[2:], int(serial))
    _check_serial(parsed.serial)
    if table is not None:
        _check_against_table(parsed, table)
    return parsed.code


def component_code_to_short(code: str | ComponentCode) -> str:
    """Return the 8-digit short code (major 2 + minor 2 + serial 4) of a component ID.

    A 17-digit ID qualifies only when its 3-digit minor starts with 0 (our reading of the
    mapping, see ``gridcore/data/README.md``).

    Raises
    ------
    InvalidCodeError
        The serial exceeds 9999 (it no longer fits 8 digits), or the minor exceeds 99.

    Examples
    --------
    >>> component_code_to_short("1101010101000042")
    '01010042'
    """
    parsed = code if isinstance(code, ComponentCode) else parse_component_code(code)
    minor = parsed.minor
    if len(minor) == 3:
        if minor[0] != "0":
            raise InvalidCodeError(
                f"component {parsed.code}: minor class {minor} has no 2-digit form, so it "
                f"has no 8-digit short code"
            )
        minor = minor[1:]
    if parsed.serial > _MAX_SHORT_SERIAL:
        raise InvalidCodeError(
            f"component {parsed.code}: serial {parsed.serial} no longer fits the 4-digit "
            f"serial of the 8-digit short code (1..{_MAX_SHORT_SERIAL}); use the full "
            f"{len(parsed.code)}-digit ID"
        )
    return f"{parsed.major}{minor}{parsed.serial:0{_SHORT_SERIAL_DIGITS}d}"


def short_code_to_component_code(
    short: str, *, district: str, table: ClassTable | None = None
) -> ComponentCode:
    """Expand an 8-digit short code within a district to the full component ID.

    With a 17-digit ``table`` the 2-digit minor is widened to 3 (our reading), otherwise
    the 16-digit layout is used.

    Raises
    ------
    InvalidCodeError
        Not 8 digits, bad district, serial 0000, or class not in ``table``.

    Examples
    --------
    >>> short_code_to_component_code("01010042", district="110101").code
    '1101010101000042'
    """
    _check_digits(short, "short code")
    if len(short) != 8:
        raise InvalidCodeError(
            f"short code {short!r} has {len(short)} digits; expected 8 "
            f"(major 2 + minor 2 + serial 4)"
        )
    minor = short[2:4]
    if table is not None and table.layout is CodeLayout.GBT17:
        minor = "0" + minor
    parsed = ComponentCode(_check_district(district), short[:2], minor, int(short[4:]))
    _check_serial(parsed.serial, maximum=_MAX_SHORT_SERIAL, what="short-code serial")
    if table is not None:
        _check_against_table(parsed, table)
    return parsed


def validate_component_code(
    code: str, *, table: ClassTable | None = None, cell_code: str | None = None
) -> ComponentCode:
    """Parse ``code`` and check it against its class table and its cell.

    Parameters
    ----------
    code : str
        16- or 17-digit component ID.
    table : ClassTable, optional
        Class table the class must belong to.
    cell_code : str, optional
        The 15-digit unit grid cell the component lies in; the ID's district prefix must
        equal the cell's district (its first 6 digits).

    Raises
    ------
    InvalidCodeError
        Any defect of the code, or a district prefix that disagrees with the cell.
    """
    parsed = parse_component_code(code, table=table)
    if cell_code is not None and parsed.district != str(cell_code)[:_DISTRICT_DIGITS]:
        raise InvalidCodeError(
            f"component code {code!r} has district prefix {parsed.district} but its cell "
            f"{cell_code} lies in district {str(cell_code)[:_DISTRICT_DIGITS]}; the prefix "
            f"must be the cell's district"
        )
    return parsed


def is_valid_component_code(code: Any, *, table: ClassTable | None = None) -> bool:
    """Tell whether ``code`` is a well-formed 16- or 17-digit ID (class in ``table``)."""
    try:
        parse_component_code(code, table=table)
    except InvalidCodeError:
        return False
    return isinstance(code, str) and len(code) in (16, 17)


def _split_codes(codes: np.ndarray, layout: CodeLayout) -> tuple[np.ndarray, ...]:
    """Vectorised split of same-layout ID strings into (district, class, serial)."""
    s = pd.Series(codes, dtype=str)
    c_end = _DISTRICT_DIGITS + 2 + layout.minor_digits
    return (
        s.str.slice(0, _DISTRICT_DIGITS).to_numpy(dtype=object),
        s.str.slice(_DISTRICT_DIGITS, c_end).to_numpy(dtype=object),
        s.str.slice(c_end).astype(np.int64).to_numpy(),
    )


# --------------------------------------------------------------------------------------
# Component records

COMPONENT_COLUMNS: dict[str, str] = {
    "code": "str",  # 16 or 17 digits, assigned by the engine
    "name": "str",
    "class_code": "str",  # 4 or 5 digits, in the table of the code's layout
    "dept_code": "str",  # 主管部门 code
    "dept_name": "str",  # 主管部门 name
    "owner": "str",  # 权属单位
    "maintainer": "str",  # 养护单位
    "cell_code": "str",  # 15-digit unit grid cell
    "status": "str",  # ComponentStatus value
    "first_survey_date": "datetime64[s]",
    "change_date": "datetime64[s]",
    "source": "str",  # ComponentSource value
    "accuracy_m": "float64",  # positional accuracy, metres
    "synthetic": "bool",
}
"""Columns of a components GeoDataFrame (plus ``geometry``: Points in EPSG:4326)."""


@dataclass(frozen=True)
class Component:
    """One city component (部件), as a record.

    Attributes mirror :data:`COMPONENT_COLUMNS`; ``lon``/``lat`` are WGS84 degrees.
    """

    code: str
    name: str
    class_code: str
    dept_code: str
    dept_name: str
    owner: str
    maintainer: str
    cell_code: str
    status: ComponentStatus
    first_survey_date: _dt.date
    change_date: _dt.date
    source: ComponentSource
    accuracy_m: float
    lon: float
    lat: float
    synthetic: bool = False

    @classmethod
    def from_row(cls, row: Any) -> Component:
        """Build from one row (a Series with the schema's columns and a Point geometry)."""
        return cls(
            code=row["code"],
            name=row["name"],
            class_code=row["class_code"],
            dept_code=row["dept_code"],
            dept_name=row["dept_name"],
            owner=row["owner"],
            maintainer=row["maintainer"],
            cell_code=row["cell_code"],
            status=ComponentStatus(row["status"]),
            first_survey_date=pd.Timestamp(row["first_survey_date"]).date(),
            change_date=pd.Timestamp(row["change_date"]).date(),
            source=ComponentSource(row["source"]),
            accuracy_m=float(row["accuracy_m"]),
            lon=float(row.geometry.x),
            lat=float(row.geometry.y),
            synthetic=bool(row["synthetic"]),
        )


def empty_components() -> gpd.GeoDataFrame:
    """Return an empty components GeoDataFrame with the schema's columns and dtypes."""
    import geopandas as gpd

    data = {
        c: pd.Series([], dtype=t if t != "str" else object)
        for c, t in COMPONENT_COLUMNS.items()
    }
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def _conform(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Order columns and set dtypes of a components frame."""
    import geopandas as gpd

    out = {}
    for col, dtype in COMPONENT_COLUMNS.items():
        s = frame[col]
        if dtype == "str":
            out[col] = s.astype(object).where(s.notna(), "").astype(str).to_numpy(dtype=object)
        elif dtype.startswith("datetime"):
            out[col] = pd.to_datetime(s).astype(dtype).to_numpy()
        else:
            out[col] = s.astype(dtype).to_numpy()
    return gpd.GeoDataFrame(
        out, geometry=gpd.GeoSeries(frame.geometry.values, crs="EPSG:4326"), crs="EPSG:4326"
    ).set_index(pd.RangeIndex(len(frame)))


def validate_components(
    components: gpd.GeoDataFrame, *, table: ClassTable | None = None
) -> gpd.GeoDataFrame:
    """Check a components frame against the schema and the code rules.

    Checks: every column of :data:`COMPONENT_COLUMNS` present; codes unique and of one
    layout matching ``table``; classes in the table and equal to the code's class;
    district prefix equal to the cell's district; status and source valid values;
    Point geometries in EPSG:4326.

    Returns
    -------
    geopandas.GeoDataFrame
        The frame conformed to the schema (column order, dtypes, RangeIndex).

    Raises
    ------
    DataFileError
        Missing columns, wrong CRS or geometry type.
    InvalidCodeError
        The first offending row's defect, naming its row number and code.
    """
    table = table or legacy_class_table()
    missing = [c for c in COMPONENT_COLUMNS if c not in components.columns]
    if missing:
        raise DataFileError(
            f"components lack columns {missing}; expected {list(COMPONENT_COLUMNS)}"
        )
    if components.crs is None or components.crs.to_epsg() != 4326:
        raise DataFileError(
            f"components must be in EPSG:4326 (WGS84 lon/lat), got {components.crs}"
        )
    n = len(components)
    if n == 0:
        return _conform(components)
    gtypes = components.geometry.geom_type.to_numpy()
    if (gtypes != "Point").any():
        i = int(np.flatnonzero(gtypes != "Point")[0])
        raise DataFileError(f"component row {i}: geometry must be a Point, got {gtypes[i]}")
    codes = components["code"].astype(str).to_numpy(dtype=object)
    lengths = np.fromiter((len(c) for c in codes), dtype=np.int64, count=n)
    digits = pd.Series(codes).str.fullmatch(r"\d+").to_numpy()
    bad = (lengths != table.layout.length) | ~digits
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidCodeError(
            f"component row {i}: code {codes[i]!r} must be {table.layout.length} digits "
            f"for the {table.name} table"
        )
    dup = pd.Series(codes).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InvalidCodeError(f"component row {i}: code {codes[i]!r} appears more than once")
    district, cls, serial = _split_codes(codes, table.layout)
    checks: list[tuple[np.ndarray, str]] = [
        (~np.isin(cls, table.classes.index.to_numpy()), "class {cls} of code {code} is not in "
         f"the {table.name} table"),
        (cls != components["class_code"].astype(str).to_numpy(dtype=object),
         "class_code {class_code} disagrees with the class {cls} in code {code}"),
        (district != components["cell_code"].astype(str).str.slice(0, 6).to_numpy(dtype=object),
         "code {code} has district prefix {district} but its cell {cell_code} lies in "
         "another district; the prefix must be the cell's district"),
        ((serial < 1) | (serial > _MAX_SERIAL), "serial of code {code} must be 1..999999"),
        (~components["status"].isin([s.value for s in ComponentStatus]).to_numpy(),
         "status {status!r} is not one of " + "/".join(s.value for s in ComponentStatus)),
        (~components["source"].isin([s.value for s in ComponentSource]).to_numpy(),
         "source {source!r} is not one of " + "/".join(s.value for s in ComponentSource)),
    ]
    for mask, template in checks:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            row = components.iloc[i]
            raise InvalidCodeError(
                f"component row {i}: "
                + template.format(
                    code=codes[i], cls=cls[i], district=district[i], class_code=row["class_code"],
                    cell_code=row["cell_code"], status=row["status"], source=row["source"],
                )
            )
    return _conform(components)


def assign_component_codes(
    district_codes: Any,
    class_codes: Any,
    *,
    existing_codes: Any = (),
    table: ClassTable | None = None,
) -> np.ndarray:
    """Issue new component IDs, vectorised.

    Serials continue after the highest serial ever issued in each (district, class),
    retired components included, so a code is never reused. New components are numbered
    in input order.

    Parameters
    ----------
    district_codes, class_codes : array-like of str
        District (6 digits) and class (4 or 5 digits) of each new component.
    existing_codes : array-like of str
        Every code already issued (of the same layout).
    table : ClassTable, optional
        Class table (default: the legacy table); every class must be in it.

    Returns
    -------
    numpy.ndarray of str (object)

    Raises
    ------
    InvalidCodeError
        Unknown class, bad district, or a (district, class) whose serials would pass
        999999.
    """
    table = table or legacy_class_table()
    districts = np.asarray(district_codes, dtype=object)
    classes = np.asarray(class_codes, dtype=object)
    if districts.shape != classes.shape:
        raise ValueError("district_codes and class_codes must have the same length")
    if len(districts) == 0:
        return np.array([], dtype=object)
    d_idx, d_uniq = pd.factorize(districts)
    c_idx, c_uniq = pd.factorize(classes)
    for d in d_uniq:
        _check_district(d)
    for c in c_uniq:
        table.check_class(str(c))
    # rank within (district, class), in input order
    key = d_idx.astype(np.int64) * len(c_uniq) + c_idx
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    start = np.ones(len(key), dtype=bool)
    start[1:] = sorted_key[1:] != sorted_key[:-1]
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - group_start + 1
    existing = np.asarray(existing_codes, dtype=object)
    if len(existing):
        d, c, s = _split_codes(existing, table.layout)
        top = pd.DataFrame({"district": d, "cls": c, "serial": s}).groupby(
            ["district", "cls"]
        )["serial"].max()
        base = _lookup_base(pd.DataFrame({"district": districts, "cls": classes}), top)
    else:
        base = np.zeros(len(districts), dtype=np.int64)
    serial = base + rank
    if (serial > _MAX_SERIAL).any():
        i = int(np.flatnonzero(serial > _MAX_SERIAL)[0])
        raise InvalidCodeError(
            f"district {districts[i]} class {classes[i]} has run out of 6-digit serials "
            f"(would need {serial[i]} > {_MAX_SERIAL})"
        )
    # the digits as one integer: districts never start with 0, so no digit is lost
    c_len = len(c_uniq[0])
    d_num = np.array([int(d) for d in d_uniq], dtype=np.int64)[d_idx]
    c_num = np.array([int(c) for c in c_uniq], dtype=np.int64)[c_idx]
    num = (d_num * 10**c_len + c_num) * 10**_SERIAL_DIGITS + serial
    return num.astype(str).astype(object)


def _lookup_base(new: pd.DataFrame, top: pd.Series) -> np.ndarray:
    merged = new.merge(
        top.rename("serial").reset_index(), on=["district", "cls"], how="left", sort=False
    )
    return merged["serial"].fillna(0).to_numpy(dtype=np.int64)


def _day(date: _dt.date | None, clock: Clock | None) -> np.datetime64:
    """Return ``date``, else the city's today (not the server's) from the clock."""
    if date is None:
        date = (clock or default_clock()).today()
    return np.datetime64(date, "s")


def new_components(
    records: pd.DataFrame | gpd.GeoDataFrame,
    *,
    cell_codes: Any,
    existing_codes: Any = (),
    table: ClassTable | None = None,
    date: _dt.date | None = None,
    clock: Clock | None = None,
) -> gpd.GeoDataFrame:
    """Register new components: set their cells, issue codes, fill defaults.

    Parameters
    ----------
    records : GeoDataFrame
        New components with Point geometry (EPSG:4326) and at least ``class_code``;
        missing optional columns get defaults (department from the class table, status
        完好, source 实测, dates today, accuracy NaN, name = class name).
    cell_codes : array-like of str
        The 15-digit cell of each record (e.g. from :class:`gridcore.sindex.CellLocator`);
        an empty string means outside the city, which is refused.
    existing_codes : array-like of str
        Every code already issued, retired ones included (never reused).
    table : ClassTable, optional
        Class table (default legacy).
    date : datetime.date, optional
        Survey/change date for defaults (default the city's today, from ``clock``).
    clock : Clock, optional
        The city's clock (default `gridcore._time.default_clock`).

    Returns
    -------
    GeoDataFrame
        The new components, conformed to the schema.

    Raises
    ------
    InvalidCodeError
        Unknown class; a record outside every cell.
    """
    table = table or legacy_class_table()
    n = len(records)
    cells = np.asarray(cell_codes, dtype=object)
    if cells.shape != (n,):
        raise ValueError(f"cell_codes must have one entry per record ({n}), got {cells.shape}")
    if "class_code" not in records.columns:
        raise DataFileError("new components need a class_code column")
    outside = (cells == "") | pd.isna(cells)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InvalidCodeError(
            f"new component {i} lies outside every unit grid cell; components must be "
            f"inside the city"
        )
    classes = records["class_code"].astype(str).to_numpy(dtype=object)
    districts = np.array([c[:6] for c in cells], dtype=object)
    codes = assign_component_codes(
        districts, classes, existing_codes=existing_codes, table=table
    )
    day = _day(date, clock)
    depts = load_departments()
    dept_codes = table.classes.loc[classes, "dept_code"].to_numpy(dtype=object)
    frame = pd.DataFrame(index=range(n))
    defaults = {
        "name": table.classes.loc[classes, "name"].to_numpy(dtype=object),
        "dept_code": dept_codes,
        "dept_name": depts["dept_name"].reindex(dept_codes).fillna("").to_numpy(dtype=object),
        "owner": "",
        "maintainer": "",
        "status": ComponentStatus.INTACT.value,
        "first_survey_date": day,
        "change_date": day,
        "source": ComponentSource.SURVEYED.value,
        "accuracy_m": np.nan,
        "synthetic": False,
    }
    for col in COMPONENT_COLUMNS:
        if col in ("code", "cell_code", "class_code"):
            continue
        frame[col] = records[col].to_numpy() if col in records.columns else defaults[col]
    frame["code"] = codes
    frame["class_code"] = classes
    frame["cell_code"] = cells
    import geopandas as gpd

    new = gpd.GeoDataFrame(frame, geometry=np.asarray(records.geometry.values), crs="EPSG:4326")
    return validate_components(new, table=table)


def _position_of(components: gpd.GeoDataFrame, code: str) -> int:
    hits = np.flatnonzero(components["code"].to_numpy(dtype=object) == code)
    if len(hits) == 0:
        raise NotFoundError(f"no component has code {code!r}")
    return int(hits[0])


_FROZEN_FIELDS = ("code", "class_code", "cell_code", "geometry", "synthetic")


def edit_component(
    components: gpd.GeoDataFrame, code: str, *, date: _dt.date | None = None,
    clock: Clock | None = None, **changes: Any
) -> gpd.GeoDataFrame:
    """Return a copy of ``components`` with one component's attributes changed.

    The code never changes. Changing the class would change what the code says, so it is
    refused: retire the component and register a new one. Use :func:`move_component` to
    move it. ``change_date`` is set to ``date`` (default the city's today, from
    ``clock``, default `gridcore._time.default_clock`).

    Raises
    ------
    NotFoundError
        No component has ``code``.
    ConflictError
        An attempt to change ``code``, ``class_code``, ``cell_code`` or the geometry.
    InvalidCodeError
        An unknown column, status or source value.
    """
    frozen = sorted(set(changes) & set(_FROZEN_FIELDS))
    if frozen:
        raise ConflictError(
            f"cannot edit {frozen} of component {code}: codes are stable; move it with "
            f"move_component, or retire it and register a new one to change its class"
        )
    unknown = sorted(set(changes) - set(COMPONENT_COLUMNS))
    if unknown:
        raise InvalidCodeError(
            f"unknown component attributes {unknown}; valid: {list(COMPONENT_COLUMNS)}"
        )
    if "status" in changes:
        changes["status"] = _enum_value(ComponentStatus, changes["status"], "status")
    if "source" in changes:
        changes["source"] = _enum_value(ComponentSource, changes["source"], "source")
    i = _position_of(components, code)
    out = components.copy()
    for col, value in changes.items():
        out.iloc[i, out.columns.get_loc(col)] = value
    out.iloc[i, out.columns.get_loc("change_date")] = _day(date, clock)
    return out


def move_component(
    components: gpd.GeoDataFrame,
    code: str,
    lon: float,
    lat: float,
    *,
    cell_code: str,
    date: _dt.date | None = None,
    clock: Clock | None = None,
) -> gpd.GeoDataFrame:
    """Return a copy with one component moved to (lon, lat) in cell ``cell_code``.

    The code is kept. A move into another district is refused: the code's district
    prefix must stay its cell's district, and component registers are kept by district;
    retire the component and register it anew in the other district.

    Raises
    ------
    NotFoundError
        No component has ``code``.
    InvalidCodeError
        ``cell_code`` is empty (outside the city).
    ConflictError
        The new cell is in another district.
    """
    import shapely

    i = _position_of(components, code)
    if not cell_code:
        raise InvalidCodeError(f"cannot move component {code} outside the city")
    if str(cell_code)[:6] != code[:6]:
        raise ConflictError(
            f"cannot move component {code} (district {code[:6]}) into cell {cell_code} of "
            f"district {str(cell_code)[:6]}: retire it and register it in that district"
        )
    out = components.copy()
    geoms = np.asarray(out.geometry.values).copy()
    geoms[i] = shapely.points(float(lon), float(lat))
    out = out.set_geometry(geoms, crs="EPSG:4326")
    out.iloc[i, out.columns.get_loc("cell_code")] = str(cell_code)
    out.iloc[i, out.columns.get_loc("change_date")] = _day(date, clock)
    return out


def retire_component(
    components: gpd.GeoDataFrame, code: str, *, date: _dt.date | None = None,
    clock: Clock | None = None,
) -> gpd.GeoDataFrame:
    """Mark a component 移除 (removed); its code stays reserved and is never reissued."""
    return edit_component(components, code, status=ComponentStatus.REMOVED, date=date,
                          clock=clock)


# --------------------------------------------------------------------------------------
# Consistency with the grid, and files


def check_components_in_cells(
    components: gpd.GeoDataFrame, cells: gpd.GeoDataFrame
) -> None:
    """Check that each component's cell exists and its point lies in that cell (closed).

    Raises
    ------
    InvalidCodeError
        A ``cell_code`` not in ``cells``, or a point outside its cell; the first such
        row is named.
    """
    if len(components) == 0:
        return
    import shapely

    pos = pd.Series(np.arange(len(cells)), index=cells["code"].to_numpy())
    idx = pos.reindex(components["cell_code"].to_numpy())
    missing = idx.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InvalidCodeError(
            f"component row {i} ({components['code'].iloc[i]}): cell "
            f"{components['cell_code'].iloc[i]!r} is not a cell of the current grid"
        )
    geoms = np.asarray(cells.geometry.values)[idx.to_numpy(dtype=np.int64)]
    inside = shapely.intersects_xy(geoms, components.geometry.x.to_numpy(),
                                   components.geometry.y.to_numpy())
    if not inside.all():
        i = int(np.flatnonzero(~inside)[0])
        g = components.geometry.iloc[i]
        raise InvalidCodeError(
            f"component row {i} ({components['code'].iloc[i]}) at lon {g.x:.6f}, lat "
            f"{g.y:.6f} lies outside its cell {components['cell_code'].iloc[i]}; check the "
            f"position's CRS (WGS84 expected) or the cell code"
        )


_FILE_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV"}


def _driver(path: Path) -> str:
    driver = _FILE_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise DataFileError(
            f"cannot tell the format of {path.name}: use .gpkg (GeoPackage), .geojson or .csv"
        )
    return driver


def read_components_file(path: str | Path, *, crs: Any = None) -> gpd.GeoDataFrame:
    """Read components from a GeoPackage, GeoJSON or CSV file, as WGS84 points.

    Parameters
    ----------
    path : str or Path
        ``.gpkg``/``.geojson`` with Point features and a declared CRS (converted to
        EPSG:4326 when it is another), or ``.csv`` with ``lon`` and ``lat`` columns.
    crs : {"wgs84", "gcj02", "bd09"}
        Required for CSV files (the CRS of ``lon``/``lat``); must be omitted or
        ``"wgs84"`` for GeoPackage/GeoJSON, whose CRS is in the file.

    Returns
    -------
    geopandas.GeoDataFrame
        The file's columns, text columns as str (codes keep their leading zeros). Not
        yet validated: see :func:`validate_components`.

    Raises
    ------
    DataFileError
        Missing, empty or unreadable file, unknown extension, no CRS, non-point
        geometries, missing ``lon``/``lat`` in a CSV, or a CSV without ``crs``.
    CoordinateError
        A CSV row with NaN, out-of-range, outside-China or swapped coordinates.
    """
    import geopandas as gpd

    from gridcore.crs import CRS, to_wgs84

    path = Path(path)
    driver = _driver(path)
    if not path.exists():
        raise DataFileError(f"components file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataFileError(f"components file {path} is empty")
    if driver == "CSV":
        if crs is None:
            raise DataFileError(
                f"{path.name}: give the CRS of its lon/lat columns (wgs84, gcj02 or bd09)"
            )
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except pd.errors.EmptyDataError:
            raise DataFileError(f"components file {path} has no header row") from None
        except UnicodeDecodeError:
            raise DataFileError(
                f"components file {path} is not UTF-8 text; save it as UTF-8 (e.g. from a "
                "GBK export: iconv -f gb18030 -t utf-8)") from None
        except pd.errors.ParserError as exc:
            raise DataFileError(f"components file {path} is not a well-formed CSV: "
                                f"{str(exc).removeprefix('Error tokenizing data. ')}") from None
        missing = [c for c in ("lon", "lat") if c not in df.columns]
        if missing:
            raise DataFileError(f"{path.name} lacks column(s) {missing}; expected lon and lat")
        if df.empty:
            raise DataFileError(f"components file {path} has no rows")
        lon = pd.to_numeric(df.pop("lon"), errors="coerce").to_numpy(dtype=np.float64)
        lat = pd.to_numeric(df.pop("lat"), errors="coerce").to_numpy(dtype=np.float64)
        lon, lat = to_wgs84(lon, lat, crs=crs)
        import shapely

        frame = gpd.GeoDataFrame(df, geometry=shapely.points(lon, lat), crs="EPSG:4326")
    else:
        if crs is not None and CRS.parse(crs) is not CRS.WGS84:
            raise DataFileError(
                f"{path.name} declares its own CRS; GCJ-02/BD-09 files must be converted "
                f"to WGS84 first (or exported as CSV with crs=...)"
            )
        try:
            frame = gpd.read_file(path)
        except Exception as exc:  # pyogrio raises many types; report them as one
            raise DataFileError(f"cannot read components file {path}: {exc}") from exc
        if len(frame) == 0:
            raise DataFileError(f"components file {path} has no features")
        if frame.crs is None:
            raise DataFileError(f"{path.name} declares no CRS; expected EPSG:4326 (WGS84)")
        frame = frame.to_crs(4326)
    for col in ("code", "class_code", "cell_code", "dept_code"):
        if col in frame.columns:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), "").map(
                lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            )
    if "synthetic" in frame.columns and frame["synthetic"].dtype == object:
        frame["synthetic"] = frame["synthetic"].str.lower().isin(["true", "1"])
    if "accuracy_m" in frame.columns:
        frame["accuracy_m"] = pd.to_numeric(frame["accuracy_m"], errors="coerce")
    for col in ("first_survey_date", "change_date"):
        if col in frame.columns:
            try:
                frame[col] = pd.to_datetime(frame[col])
            except (ValueError, TypeError) as exc:
                raise DataFileError(f"{path.name}: column {col} holds a non-date: {exc}") from None
    return frame


def write_components_file(components: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write components as GeoPackage, GeoJSON, or CSV (``lon``,``lat`` in WGS84).

    Raises
    ------
    DataFileError
        Unsupported extension, or components without a CRS.
    """
    path = Path(path)
    driver = _driver(path)
    if components.crs is None:
        raise DataFileError("components have no CRS; set EPSG:4326 before writing")
    if driver == "CSV":
        components = components.to_crs(4326)
        df = pd.DataFrame(components.drop(columns=components.geometry.name))
        df.insert(0, "lon", [repr(float(v)) for v in components.geometry.x])
        df.insert(1, "lat", [repr(float(v)) for v in components.geometry.y])
        for col in ("first_survey_date", "change_date"):
            df[col] = pd.to_datetime(df[col]).dt.strftime("%Y-%m-%d")
        df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        return path
    if path.exists():
        path.unlink()
    components.to_crs(4326).to_file(path, driver=driver)
    return path
