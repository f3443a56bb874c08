"""Open311 GeoReport v2: the civic-tech reporting interface, over gridcore's own cases.

An event class (事件类别) is a *service*; a *service request* is a case (案卷), reported
and followed through the same closed loop. This module is the translation and nothing
else: it lists services from the event class table, reads a request's fields and the
query filters of ``GET requests`` into plain values (refusing bad ones with gridcore
errors), maps a case to the spec's request record, and renders a list of records as the
spec's XML. It never touches the store or the web.

GeoReport v2 knows two statuses, ``open`` and ``closed``. The 数字城管 state of a case
(上报, 立案, 派遣, 处置, 结案, 不予立案) goes into ``status_notes`` and the extension field
``case_state``. A rejected report (不予立案) is ``closed``: nothing more will be done.

Extensions (none is among the spec's fields; a client that does not know them ignores
them): on every request ``grid_code`` (the 15-digit unit grid cell), ``street_code``,
``district_code``, ``component_code``, ``case_state``, ``deadline_status`` and
``agencies`` (every body answering for it: its department, and each side of a joint
task, 跨区吹哨); on ``GET requests`` the filters ``polygon`` (GeoJSON, WGS84: requests
located inside), ``updated_after`` (a step after that instant), ``page`` and
``page_size``.

Times are ISO 8601 with the city's offset (``2026-04-10T12:00:00+08:00``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

from ._time import city_tz, to_city, to_utc
from .cases import OPEN_STATES, Case, CaseState
from .crs import CRS
from .errors import (
    CoordinateError,
    GeometryError,
    InvalidCodeError,
    InvalidValueError,
    NotFoundError,
)

__all__ = [
    "CASE_STATE_NAMES",
    "COMMAND_CENTRE",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "SPEC_URL",
    "Format",
    "RequestQuery",
    "ServiceRequestInput",
    "case_agencies",
    "case_to_request",
    "discovery",
    "error_records",
    "format_time",
    "parse_query",
    "parse_request",
    "records_to_xml",
    "service_definition",
    "services",
]

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_WINDOW = dt.timedelta(days=90)  # the spec's default range of GET requests
MAX_POLYGON_M2 = 100e6  # a search area of a city quarter, not the whole city at once
MAX_TEXT = 4000  # longest description accepted

#: Who answers for a case before it is dispatched to a department.
COMMAND_CENTRE = "城市管理监督指挥中心"

#: The 数字城管 step each state stands at, as officials read it.
CASE_STATE_NAMES: dict[CaseState, str] = {
    CaseState.REPORTED: "上报",
    CaseState.FILED: "立案",
    CaseState.DISPATCHED: "派遣",
    CaseState.HANDLED: "处置",
    CaseState.CLOSED: "结案",
    CaseState.REJECTED: "不予立案",
}

#: The container element of each list in the XML, and of its items.
_XML_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "agencies": "agency",
}


class Format(StrEnum):
    """The two formats every resource is served in."""

    JSON = "json"
    XML = "xml"

    @property
    def media_type(self) -> str:
        """Content type of the format (UTF-8 is declared by the caller)."""
        return "application/json" if self is Format.JSON else "text/xml"


# --------------------------------------------------------------------------- services

#: The attributes every service takes beyond the spec's fields (``attribute[code]``).
_ATTRIBUTES: list[dict[str, Any]] = [
    {
        "variable": True, "code": "crs", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "wgs84 (默认, GPS), gcj02 (高德/腾讯), bd09 (百度)",
        "order": 1,
        "description": "坐标系: lat/long 的坐标参考系; 不填则为 WGS84",
        "values": [{"key": c.value, "name": n} for c, n in (
            (CRS.WGS84, "WGS84 (GPS)"), (CRS.GCJ02, "GCJ-02 (高德、腾讯)"),
            (CRS.BD09, "BD-09 (百度)"))],
    },
    {
        "variable": True, "code": "component_code", "datatype": "string", "required": False,
        "datatype_description": "部件编码: 16 或 17 位数字",
        "order": 2,
        "description": "涉及的城市部件 (如井盖、路灯) 的编码, 如有",
        "values": [],
    },
]
_ATTRIBUTE_CODES = {a["code"] for a in _ATTRIBUTES}


def services(event_classes: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the spec's service list: one service per event class.

    Parameters
    ----------
    event_classes : pandas.DataFrame
        As `gridcore.cases.event_classes` returns it.

    Returns
    -------
    list of dict
        ``service_code`` (the 4-digit class), ``service_name``, ``description`` (with
        its time limit), ``metadata`` (true: see `service_definition`), ``type``
        (``realtime``: the id is returned at once), ``keywords``, ``group`` (the major
        class).

    Example
    -------
    >>> from gridcore.cases import event_classes
    >>> services(event_classes())[0]["service_code"]
    '0101'
    """
    rows = _classes(event_classes).sort_values("code")
    return [
        {
            "service_code": str(r.code),
            "service_name": str(r.name),
            "description": f"{r.major_name} · {r.name}; 处置时限 {_hours(r.time_limit_hours)} 小时",
            "metadata": True,
            "type": "realtime",
            "keywords": ",".join([str(r.major_name), str(r.name)]),
            "group": str(r.major_name),
        }
        for r in rows.itertuples(index=False)
    ]


def _hours(h: float) -> str:
    return f"{h:g}"


def service_definition(service_code: str, event_classes: pd.DataFrame) -> dict[str, Any]:
    """Return the definition of one service: its code and the attributes it takes.

    Raises
    ------
    NotFoundError
        No event class has this code (the message lists the known ones).
    """
    try:
        _check_service_code(service_code, event_classes)
    except InvalidCodeError as exc:  # asked for by its code: a resource not found
        raise NotFoundError(str(exc)) from None
    return {"service_code": service_code, "attributes": [dict(a) for a in _ATTRIBUTES]}


def _classes(event_classes: pd.DataFrame) -> pd.DataFrame:
    return event_classes.reset_index(drop=True)


def _check_service_code(code: str, event_classes: pd.DataFrame) -> str:
    if code not in set(event_classes["code"]):
        known = ", ".join(sorted(event_classes["code"]))
        raise InvalidCodeError(f"no service has code {code!r}; known service codes: {known}")
    return code


def discovery(*, base_url: str, changeset: dt.datetime, contact: str,
              key_service: str, tz=None) -> dict[str, Any]:
    """Return the service discovery document: one production endpoint, both formats."""
    stamp = format_time(changeset, tz)
    return {
        "changeset": stamp,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [{
            "specification": SPEC_URL,
            "url": base_url,
            "changeset": stamp,
            "type": "production",
            "formats": [Format.XML.media_type, Format.JSON.media_type],
        }],
    }


# --------------------------------------------------------------------------- POST requests

@dataclass(frozen=True)
class ServiceRequestInput:
    """A new service request, read and checked: what `gridcore.app.report_case` needs.

    ``lon``/``lat`` are in ``crs`` (convert them before locating).
    """

    service_code: str
    lon: float
    lat: float
    crs: CRS
    description: str
    component_code: str | None = None
    media_url: str | None = None
    api_key: str | None = None
    jurisdiction_id: str | None = None


def parse_request(fields: Mapping[str, Any], event_classes: pd.DataFrame
                  ) -> ServiceRequestInput:
    """Read the fields of ``POST requests`` (form-encoded or JSON, already decoded).

    Attributes come as ``attribute[code]`` keys, or in JSON also as an ``attribute``
    object. A position is needed (``lat`` and ``long``): this server locates a request on
    its unit grid, so ``address_string`` or ``address_id`` alone are refused. Without a
    ``description`` the service's name stands for it.

    Raises
    ------
    InvalidValueError
        A field missing, of the wrong type or unknown, or a value not allowed.
    InvalidCodeError
        No service has the ``service_code``.
    CoordinateError
        ``lat``/``long`` not finite numbers.
    """
    fields = dict(fields)
    attrs = _attributes(fields)
    code = _text(fields, "service_code", required=True, max_len=8)
    _check_service_code(code, event_classes)
    lat, lon = _number(fields, "lat"), _number(fields, "long")
    if lat is None or lon is None:
        has_address = any(_text(fields, k) for k in ("address_string", "address_id"))
        raise InvalidValueError(
            "a position is required: send lat and long (WGS84, or the CRS in attribute[crs])"
            + ("; this server locates requests on its unit grid and cannot geocode "
               "address_string or address_id" if has_address else ""))
    crs_text = attrs.get("crs") or CRS.WGS84.value
    try:
        crs = CRS.parse(crs_text)
    except ValueError:
        raise InvalidValueError(
            f"attribute[crs] {crs_text!r} is not one of wgs84, gcj02, bd09") from None
    component = attrs.get("component_code") or None
    if component is not None and not re.fullmatch(r"[0-9]{16,17}", component, flags=re.ASCII):
        raise InvalidValueError(
            f"attribute[component_code] {component!r} is not a component code of 16 or 17 "
            "digits")
    description = _text(fields, "description", max_len=MAX_TEXT)
    table = _classes(event_classes)
    name = str(table.loc[table["code"] == code, "name"].iloc[0])
    media_url = _text(fields, "media_url", max_len=2000)
    if media_url and not re.match(r"https?://", media_url):
        raise InvalidValueError(f"media_url {media_url!r} is not an http(s) URL")
    return ServiceRequestInput(
        service_code=code, lon=lon, lat=lat, crs=crs,
        description=description or name, component_code=component,
        media_url=media_url or None, api_key=_text(fields, "api_key", max_len=200) or None,
        jurisdiction_id=_text(fields, "jurisdiction_id", max_len=20) or None,
    )


_KNOWN_FIELDS = {
    "api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string",
    "address_id", "email", "device_id", "account_id", "first_name", "last_name", "phone",
    "description", "media_url", "attribute",
}


def _attributes(fields: dict[str, Any]) -> dict[str, str]:
    attrs: dict[str, Any] = {}
    nested = fields.get("attribute")
    if nested is not None:
        if not isinstance(nested, Mapping):
            raise InvalidValueError("attribute must be an object of attribute codes and values")
        attrs.update(nested)
    for key in list(fields):
        m = re.fullmatch(r"attribute\[([^\]]*)\](\[\])?", key)
        if m:
            attrs[m[1]] = fields.pop(key)
        elif key not in _KNOWN_FIELDS:
            raise InvalidValueError(
                f"unknown field {key!r}; GeoReport v2 fields are "
                f"{', '.join(sorted(_KNOWN_FIELDS))} and attribute[code]")
    unknown = set(attrs) - _ATTRIBUTE_CODES
    if unknown:
        raise InvalidValueError(
            f"unknown attribute {sorted(unknown)[0]!r}; this server's attributes are "
            f"{', '.join(sorted(_ATTRIBUTE_CODES))} (GET services/{{code}} lists them)")
    out = {}
    for k, v in attrs.items():
        if not isinstance(v, str):
            raise InvalidValueError(f"attribute[{k}] must be text")
        out[k] = v.strip()
    return out


def _text(fields: Mapping[str, Any], key: str, *, required: bool = False,
          max_len: int = 200) -> str:
    value = fields.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidValueError(f"{key} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidValueError(f"{key} must be text, not {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidValueError(f"{key} is longer than {max_len} characters")
    if "\x00" in value:
        raise InvalidValueError(f"{key} contains a NUL character")
    return value.strip()


def _number(fields: Mapping[str, Any], key: str) -> float | None:
    value = fields.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValueError(f"{key} must be a number")
    try:
        x = float(value)
    except ValueError:
        raise InvalidValueError(f"{key} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise CoordinateError(f"{key} is {value!r}; send a finite number of degrees")
    return x


# --------------------------------------------------------------------------- GET requests

class RequestStatus(StrEnum):
    """The spec's two statuses."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class RequestQuery:
    """The filters of ``GET requests``, read and checked.

    ``ids`` given, the other filters are ignored (as the spec says). Without a date
    range or ``updated_after`` the spec's default range applies: the 90 days up to now.
    """

    ids: tuple[int, ...] | None = None
    service_codes: tuple[str, ...] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    states: tuple[CaseState, ...] | None = None
    updated_after: dt.datetime | None = None
    polygon: Any = None  # shapely (Multi)Polygon, WGS84
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.page_size


def parse_query(params: Mapping[str, str | None], event_classes: pd.DataFrame, *,
                now: dt.datetime, tz=None) -> RequestQuery:
    """Read the filters of ``GET requests`` from text parameters.

    Parameters
    ----------
    params : mapping
        ``service_request_id`` (comma list), ``service_code`` (comma list),
        ``start_date``, ``end_date``, ``status`` (``open``, ``closed`` or both, comma
        list), and the extensions ``updated_after``, ``polygon``, ``page``,
        ``page_size``. A time with no offset, or a plain date, is read in the city's
        time zone.
    event_classes : pandas.DataFrame
        To check the service codes.
    now : datetime
        The instant the default range ends at.

    Raises
    ------
    InvalidValueError, InvalidCodeError, GeometryError, CoordinateError
    """
    tz = city_tz(tz)
    ids = _id_list(params.get("service_request_id"))
    codes = _list(params.get("service_code"))
    if codes is not None:
        for code in codes:
            _check_service_code(code, event_classes)
    statuses = _list(params.get("status"))
    states = None
    if statuses is not None:
        try:
            wanted = {RequestStatus(s) for s in statuses}
        except ValueError:
            raise InvalidValueError(
                f"status must be open, closed or both (comma separated); got "
                f"{params.get('status')!r}") from None
        states = tuple(sorted(s for s in CaseState if _status(s) in wanted))
    start = _instant(params.get("start_date"), "start_date", tz)
    end = _instant(params.get("end_date"), "end_date", tz, end_of_day=True)
    if start is not None and end is not None and end <= start:
        raise InvalidValueError("end_date must be after start_date")
    updated_after = _instant(params.get("updated_after"), "updated_after", tz)
    if start is None and end is None and updated_after is None and ids is None:
        start = now - DEFAULT_WINDOW
    return RequestQuery(
        ids=ids, service_codes=codes, start=start, end=end, states=states,
        updated_after=updated_after, polygon=_polygon(params.get("polygon")),
        page=_int(params.get("page"), "page", 1, 10**6, 1),
        page_size=_int(params.get("page_size"), "page_size", 1, MAX_PAGE_SIZE,
                       DEFAULT_PAGE_SIZE),
    )


def _list(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip():
        return None
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def _id_list(text: str | None) -> tuple[int, ...] | None:
    parts = _list(text)
    if parts is None:
        return None
    if len(parts) > MAX_PAGE_SIZE:
        raise InvalidValueError(f"at most {MAX_PAGE_SIZE} service_request_id at once")
    out = []
    for p in parts:
        if not re.fullmatch(r"[0-9]{1,19}", p, flags=re.ASCII) or not 1 <= int(p) <= 2**62:
            raise InvalidValueError(
                f"service_request_id {p!r} is not a request id (a whole number from 1)")
        out.append(int(p))
    return tuple(out)


def _int(text: str | None, name: str, lo: int, hi: int, default: int) -> int:
    if text is None or not str(text).strip():
        return default
    s = str(text).strip()
    if not re.fullmatch(r"[0-9]{1,9}", s, flags=re.ASCII) or not lo <= int(s) <= hi:
        raise InvalidValueError(f"{name} must be a whole number from {lo} to {hi}; got {s!r}")
    return int(s)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", flags=re.ASCII)


def _instant(text: str | None, name: str, tz, *, end_of_day: bool = False
             ) -> dt.datetime | None:
    if text is None or not text.strip():
        return None
    s = text.strip()
    try:
        if _DATE.fullmatch(s):
            day = dt.date.fromisoformat(s)
            t = dt.datetime.combine(day + dt.timedelta(days=1 if end_of_day else 0),
                                    dt.time())
        else:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.,]+(Z|[+-][0-9:]+)?", s,
                                flags=re.ASCII):
                raise ValueError(s)
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValueError(
            f"{name} {s!r} is not an ISO 8601 time such as 2026-04-10T08:00:00+08:00 (or a "
            "date, 2026-04-10, read in the city's time zone)") from None
    if not 1900 <= t.year <= 9998:
        raise InvalidValueError(f"{name} {s!r} lies outside the years 1900-9998")
    return to_utc(t, tz)


def _polygon(text: str | None):
    if text is None or not text.strip():
        return None
    import shapely
    from shapely.geometry import shape

    from .crs import validate_lonlat, wgs84_to_projected

    example = '{"type": "Polygon", "coordinates": [[[116.37, 39.91], [116.38, 39.91], ' \
              '[116.38, 39.92], [116.37, 39.91]]]}'
    try:
        obj = json.loads(text)
    except ValueError:
        raise GeometryError(f"polygon is not GeoJSON; send e.g. {example}") from None
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"polygon must be a GeoJSON Polygon or MultiPolygon, e.g. {example}")
    try:
        geom = shape(obj)
        coords = shapely.get_coordinates(geom)
    except Exception:  # shapely raises several types for malformed coordinates
        raise GeometryError(
            f"polygon's coordinates are not rings of [lon, lat] pairs; e.g. {example}"
        ) from None
    if geom.is_empty or len(coords) < 4:
        raise GeometryError("polygon is empty: a ring needs at least four positions")
    validate_lonlat(coords[:, 0], coords[:, 1])
    if not geom.is_valid:
        raise GeometryError(
            f"polygon is not valid ({shapely.is_valid_reason(geom)}): rings must not cross "
            "themselves or each other")
    x, y = wgs84_to_projected(coords[:, 0], coords[:, 1])
    box_area = (x.max() - x.min()) * (y.max() - y.min())
    if box_area > MAX_POLYGON_M2:
        raise GeometryError(
            f"polygon spans {box_area / 1e6:.0f} km²; search at most "
            f"{MAX_POLYGON_M2 / 1e6:.0f} km² at once")
    return geom


# --------------------------------------------------------------------------- records

def _status(state: CaseState) -> RequestStatus:
    return RequestStatus.OPEN if state in OPEN_STATES else RequestStatus.CLOSED


def format_time(t: dt.datetime | None, tz=None) -> str | None:
    """Return an instant as ISO 8601 with the city's offset, to the second."""
    if t is None:
        return None
    return to_city(t, city_tz(tz)).isoformat(timespec="seconds")


def case_to_request(case: Case, *, service_name: str, now: dt.datetime,
                    agencies: Sequence[Mapping[str, str]] = (),
                    district_code: str | None = None, address: str | None = None,
                    tz=None) -> dict[str, Any]:
    """Return the spec's service request record of a case, with the extensions.

    Parameters
    ----------
    case : Case
    service_name : str
        Name of the case's event class.
    now : datetime
        The instant its deadline status is judged at.
    agencies : sequence of mapping
        ``{"code", "name"}`` of every body answering for it, the one in charge first;
        ``agency_responsible`` is the first one's name (the command centre when empty).
    district_code, address : str, optional
        Where it is (codes and names of its divisions).
    """
    state = case.state
    last = case.events[-1] if case.events else None
    notes = f"{CASE_STATE_NAMES[state]} ({state.value})"
    if last is not None and last.note:
        notes += f": {last.note}"
    agencies = [dict(a) for a in agencies]
    limit = _hours(case.time_limit_hours)
    media = case.photo_ref if case.photo_ref and re.match(r"https?://", case.photo_ref) else None
    return {
        "service_request_id": str(case.id),
        "status": _status(state).value,
        "status_notes": notes,
        "service_name": service_name,
        "service_code": case.event_class,
        "description": case.description,
        "agency_responsible": agencies[0]["name"] if agencies else COMMAND_CENTRE,
        "service_notice": f"处置时限 {limit} 小时, 期限 {format_time(case.deadline, tz)}",
        "requested_datetime": format_time(case.reported_at, tz),
        "updated_datetime": format_time(last.at if last else case.reported_at, tz),
        "expected_datetime": format_time(case.deadline, tz),
        "address": address,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": media,
        # extensions
        "grid_code": case.cell_code,
        "street_code": case.street_code,
        "district_code": district_code,
        "component_code": case.component_code,
        "case_state": state.value,
        "deadline_status": case.deadline_status(now).value,
        "agencies": agencies,
    }


def error_records(status: int, description: str) -> list[dict[str, Any]]:
    """Return the spec's error list of one error."""
    return [{"code": int(status), "description": description}]


def records_to_xml(records: Iterable[Mapping[str, Any]] | Mapping[str, Any], root: str
                   ) -> bytes:
    """Render records as the spec's XML (UTF-8, with the declaration).

    A list becomes ``<root>`` holding one element per record, named by the root
    (``services/service``, ``service_requests/request``, ``errors/error``); a mapping
    becomes ``<root>`` holding its fields (``service_definition``, ``discovery``). Nested
    lists take the same names (``attributes/attribute``, ``values/value``,
    ``endpoints/endpoint``, ``formats/format``, ``agencies/agency``); booleans are
    ``true``/``false``; None is an empty element.

    Example
    -------
    >>> records_to_xml([{"code": 400, "description": "x"}], "errors").splitlines()[-1]
    b'<errors><error><code>400</code><description>x</description></error></errors>'
    """
    top = ET.Element(root)
    if isinstance(records, Mapping):
        _fill(top, records)
    else:
        _fill_list(top, root, records)
    return _XML_DECLARATION + ET.tostring(top, encoding="unicode").encode("utf-8")


def _fill_list(parent: ET.Element, name: str, items: Iterable[Any]) -> None:
    child_name = _XML_ITEMS.get(name, "item")
    for item in items:
        _fill(ET.SubElement(parent, child_name), item)


def _fill(el: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, v in value.items():
            child = ET.SubElement(el, key)
            if isinstance(v, list | tuple):
                _fill_list(child, key, v)
            else:
                _fill(child, v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = _xml_text(str(value))


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(s: str) -> str:
    # characters XML 1.0 cannot carry (stored text never has NUL; other controls might)
    return _XML_BAD.sub("\ufffd", s)


def case_agencies(case: Case, joint_tasks: Iterable[Any], department_names: Mapping[str, str]
                  ) -> list[dict[str, str]]:
    """Return every body answering for a case, the one in charge first.

    The department it was dispatched to, then, for each joint task (跨区吹哨) of the same
    event class whose footprint holds the case's position, every side of the task and
    every department it called; each body once.

    Parameters
    ----------
    case : Case
    joint_tasks : iterable of `gridcore.disputes.JointTask`
        Candidates (e.g. the tasks of the case's street); those that do not hold the
        case are skipped.
    department_names : mapping
        Department code to name.
    """
    import shapely

    out: dict[str, str] = {}
    if case.department:
        out[case.department] = department_names.get(case.department, case.department)
    for task in joint_tasks:
        if task.event_class != case.event_class or not shapely.intersects_xy(
                task.footprint, case.lon, case.lat):
            continue
        for party in task.parties:
            out.setdefault(party.code, party.name)
        for dept in task.departments:
            out.setdefault(dept.code, dept.name)
    return [{"code": code, "name": name} for code, name in out.items()]
