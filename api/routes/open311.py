"""Open311 GeoReport v2 under /open311/v2/: services are event classes, requests are cases.

Thin: each route reads its parameters with `gridcore.open311`, calls the same use cases
as /v1/cases (`gridcore.app.report_case`) and the store, and renders the answer as JSON
or the spec's XML. Errors are gridcore exceptions, answered by api/errors.py in the
spec's shape (``[{"code", "description"}]``) because the path is under /open311/.

Who may do what is `gridcore.access`'s, as for ``/v1/cases``: anyone reads discovery and
services; requests need a token (the ``api_key`` parameter or field, or
``Authorization: Bearer``) and show only the cases its holder may see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import CityDep, ClockDep, StoreDep
from gridcore import app
from gridcore import open311 as o311
from gridcore.access import Permission, Scope, authorize
from gridcore.auth import Principal, bearer_to_token
from gridcore.cases import Case, departments, event_class, event_classes
from gridcore.codes import parent_code, parse_cell_code
from gridcore.crs import to_wgs84, validate_lonlat
from gridcore.errors import (
    AuthenticationError,
    InvalidCodeError,
    InvalidValueError,
    NotFoundError,
)
from gridcore.open311 import Format

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])

_STARTED = dt.datetime.now(dt.UTC)  # the service list changes only with a release
_UTF8 = "; charset=utf-8"


# --------------------------------------------------------------------------- OpenAPI

def _array(items: dict) -> dict:
    return {"type": "array", "items": items}


_ERRORS = _array({"type": "object", "required": ["code", "description"],
                  "properties": {"code": {"type": "integer"},
                                 "description": {"type": "string"}}})
_SERVICE = {"type": "object", "required": ["service_code", "service_name", "metadata", "type"],
            "properties": {"service_code": {"type": "string"},
                           "service_name": {"type": "string"},
                           "description": {"type": "string"},
                           "metadata": {"type": "boolean"},
                           "type": {"enum": ["realtime", "batch", "blackbox"]},
                           "keywords": {"type": "string"}, "group": {"type": "string"}}}
_TEXT = {"type": "string"}
_NULLABLE = {"type": ["string", "null"]}
_ATTRIBUTE = {
    "type": "object",
    "required": ["variable", "code", "datatype", "required", "order", "description"],
    "properties": {
        "variable": {"type": "boolean"}, "code": _TEXT,
        "datatype": {"enum": ["string", "number", "datetime", "text", "singlevaluelist",
                              "multivaluelist"]},
        "required": {"type": "boolean"}, "datatype_description": _NULLABLE,
        "order": {"type": "integer"}, "description": _TEXT,
        "values": _array({"type": "object", "required": ["key", "name"],
                          "properties": {"key": _TEXT, "name": _TEXT}})}}
_DEFINITION = {"type": "object", "required": ["service_code", "attributes"],
               "properties": {"service_code": _TEXT, "attributes": _array(_ATTRIBUTE)}}
_REQUEST = {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime",
                 "lat", "long"],
    "properties": {
        **{k: _NULLABLE for k in (
            "status_notes", "service_name", "description", "agency_responsible",
            "service_notice", "updated_datetime", "expected_datetime", "address",
            "address_id", "zipcode", "media_url", "grid_code", "street_code",
            "district_code", "component_code")},
        "service_request_id": _TEXT, "service_code": _TEXT,
        "status": {"enum": ["open", "closed"]},
        "requested_datetime": {"type": "string", "description": "ISO 8601, the city's offset"},
        "lat": {"type": "number"}, "long": {"type": "number"},
        "case_state": {"enum": ["reported", "filed", "dispatched", "handled", "closed",
                                "rejected"], "description": "Extension: the 数字城管 step"},
        "deadline_status": {"enum": ["green", "yellow", "red"]},
        "agencies": _array({"type": "object", "required": ["code", "name"],
                            "properties": {"code": _TEXT, "name": _TEXT}}),
    }}
_CREATED = _array({"type": "object", "required": ["service_request_id"],
                   "properties": {"service_request_id": {"type": "string"},
                                  "token": {"type": "string"},
                                  "service_notice": {"type": "string"}}})
_TOKEN = _array({"type": "object", "required": ["service_request_id", "token"]})
_DISCOVERY = {
    "type": "object", "required": ["changeset", "contact", "key_service", "endpoints"],
    "properties": {"changeset": _TEXT, "contact": _TEXT, "key_service": _TEXT,
                   "endpoints": _array({
                       "type": "object",
                       "required": ["specification", "url", "changeset", "type", "formats"],
                       "properties": {"specification": _TEXT, "url": _TEXT,
                                      "changeset": _TEXT, "type": _TEXT,
                                      "formats": _array(_TEXT)}})}}

_ERROR_DOCS = {
    400: "Bad input: a missing or invalid parameter (the spec's 400); in a POST also an "
         "unknown jurisdiction_id or a position outside the city",
    403: "Missing or invalid api_key, or a role that may not do this (the spec's 403)",
    404: "No such service, request, token or jurisdiction, or outside the city",
    409: "Idempotency-Key reused with another request",
    413: "Request body too large",
}


def _responses(schema: dict, *errors: int, ok: int = 200) -> dict:
    both = {"application/json": {"schema": _ERRORS}, "text/xml": {"schema": {"type": "string"}}}
    out: dict[int | str, dict] = {
        ok: {"description": "JSON or the spec's XML, as the suffix says",
             "content": {"application/json": {"schema": schema},
                         "text/xml": {"schema": {"type": "string"}}}}}
    for code in (400, *errors):
        out[code] = {"description": _ERROR_DOCS[code], "content": both}
    return out


FmtPath = Annotated[Format, Path(description="Format: json or xml.")]
Jurisdiction = Annotated[str | None, Query(
    pattern=r"^[0-9]{6}$", description="District code (行政区划代码); optional: this "
                                       "endpoint serves every district of the city.")]
ApiKey = Annotated[str | None, Query(
    max_length=200, description="A gridcore token (or send Authorization: Bearer).")]


# --------------------------------------------------------------------------- access

def _principal(store, api_key: str | None, authorization: str | None) -> Principal:
    """Return the caller named by ``api_key`` or the Bearer header (403 under /open311/)."""
    if api_key:
        return store.principal_for_token(api_key)
    if not authorization:
        raise AuthenticationError(
            "an api_key is required: a gridcore token, as the api_key parameter (field "
            "in a POST) or an 'Authorization: Bearer TOKEN' header")
    return store.principal_for_token(bearer_to_token(authorization))


# --------------------------------------------------------------------------- helpers

def _render(data: Any, fmt: Format, root: str, *, status_code: int = 200,
            headers: dict | None = None) -> Response:
    if fmt is Format.XML:
        body = o311.records_to_xml(data, root)
    else:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status_code, media_type=fmt.media_type + _UTF8,
                    headers=headers)


def _check_jurisdiction(city, jurisdiction_id: str | None) -> str | None:
    if jurisdiction_id is None:
        return None
    codes = set(city.divisions.districts["code"])
    if jurisdiction_id not in codes:
        raise NotFoundError(
            f"jurisdiction_id {jurisdiction_id!r} is not a district of this city; "
            f"known: {', '.join(sorted(codes))}")
    return jurisdiction_id


def _district_of(case: Case) -> str | None:
    return parent_code(case.street_code) if case.street_code else None


def _address(city, case: Case) -> str | None:
    parts = []
    community = parse_cell_code(case.cell_code).community if case.cell_code else None
    for code in (_district_of(case), case.street_code, community):
        if code:
            try:
                parts.append(city.divisions.name_of(code))
            except NotFoundError:
                parts.append(code)
    if case.cell_code:
        parts.append(f"单元网格 {case.cell_code}")
    return " ".join(parts) or None


def _records(store, city, cases: list[Case], now: dt.datetime, tz) -> list[dict]:
    names = dict(zip(departments()["code"], departments()["name"], strict=True))
    streets = sorted({c.street_code for c in cases if c.street_code})
    tasks = store.list_disputes(party_codes=streets, limit=500) if streets else []
    return [
        o311.case_to_request(
            c, service_name=_service_name(c.event_class), now=now,
            agencies=o311.case_agencies(c, tasks, names), district_code=_district_of(c),
            address=_address(city, c), tz=tz)
        for c in cases
    ]


def _service_name(code: str) -> str:
    try:
        return event_class(code).name
    except InvalidCodeError:  # a class no longer in the table
        return code


def _today(clock) -> tuple[dt.datetime, dt.date]:
    now = clock.now_utc()
    return now, clock.local(now).date()


# --------------------------------------------------------------------------- routes

@router.get("/discovery.{fmt}", summary="Service discovery",
            response_class=Response, responses=_responses(_DISCOVERY))
def get_discovery(fmt: FmtPath, request: Request) -> Response:
    """Where the GeoReport v2 endpoint is, its formats, and how to get an api_key."""
    doc = o311.discovery(
        base_url=str(request.base_url).rstrip("/") + router.prefix + "/",
        changeset=_STARTED, contact="城市管理监督指挥中心 (gridcore)",
        key_service="an api_key is a gridcore token: gridcore token create --role "
                    "supervisor --name NAME",
        tz=request.app.state.clock.tz)
    return _render(doc, fmt, "discovery")


@router.get("/services.{fmt}", summary="Services: the event classes (事件类别)",
            response_class=Response, responses=_responses(_array(_SERVICE), 404))
def get_services(fmt: FmtPath, city: CityDep, jurisdiction_id: Jurisdiction = None
                 ) -> Response:
    """Every service a request can be made for: one per event class. No token needed."""
    _check_jurisdiction(city, jurisdiction_id)
    return _render(o311.services(event_classes()), fmt, "services")


@router.get("/services/{service_code}.{fmt}", summary="A service's definition (attributes)",
            response_class=Response, responses=_responses(_DEFINITION, 404))
def get_service_definition(
    service_code: Annotated[str, Path(max_length=20, description="Service code.")],
    fmt: FmtPath, city: CityDep, jurisdiction_id: Jurisdiction = None,
) -> Response:
    """Define a service: the attributes its requests may carry (attribute[code])."""
    _check_jurisdiction(city, jurisdiction_id)
    definition = o311.service_definition(service_code, event_classes())
    return _render(definition, fmt, "service_definition")


_REQUEST_FIELDS = {
    "type": "object", "required": ["service_code", "lat", "long"],
    "properties": {
        "api_key": {"type": "string", "maxLength": 200},
        "jurisdiction_id": {"type": "string", "pattern": "^[0-9]{6}$"},
        "service_code": {"type": "string", "maxLength": 8},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "description": {"type": "string", "maxLength": o311.MAX_TEXT},
        "media_url": {"type": "string", "maxLength": 2000},
        "attribute[crs]": {"enum": ["wgs84", "gcj02", "bd09"]},
        "attribute[component_code]": {"type": "string", "pattern": "^[0-9]{16,17}$"},
    },
}


@router.post(
    "/requests.{fmt}", summary="Report a request (上报): a new case",
    status_code=status.HTTP_201_CREATED, response_class=Response,
    responses=_responses(_CREATED, 403, 409, 413, ok=201),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": _REQUEST_FIELDS},
        "application/json": {"schema": _REQUEST_FIELDS}}}},
)
async def post_request(
    fmt: FmtPath, request: Request, store: StoreDep, city: CityDep, clock: ClockDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    idempotency_key: Annotated[str | None, Header(
        max_length=200, description="Client-chosen key: a retry with the same key and "
                                    "fields creates one case, and GET tokens/{key} finds "
                                    "it.")] = None,
) -> Response:
    """Report a problem at lat/long (WGS84, or attribute[crs]); answers its id at once.

    Form-encoded or JSON. The api_key is a gridcore token whose role may report
    (supervisor, chief, dispatcher, admin). The case enters the closed loop as
    ``reported`` (上报), exactly as ``POST /v1/cases``.
    """
    fields = _decode_fields(await request.body(), request.headers.get("content-type", ""))
    return await run_in_threadpool(
        _post_request, fmt, fields, store, city, clock, authorization, idempotency_key)


def _decode_fields(body: bytes, content_type: str) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValueError("the request body is not UTF-8 text") from None
    if kind == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidValueError("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidValueError("the JSON body must be an object of request fields")
        return data
    if kind in ("application/x-www-form-urlencoded", ""):
        return dict(parse_qsl(text, keep_blank_values=True))
    raise InvalidValueError(
        f"content type {kind!r} is not read here; send application/x-www-form-urlencoded "
        "or application/json")


def _post_request(fmt, fields, store, city, clock, authorization, idempotency_key):
    try:
        return _report(fmt, fields, store, city, clock, authorization, idempotency_key)
    except NotFoundError as exc:
        # an unknown jurisdiction_id or a position outside the city: in a POST the
        # spec calls these bad input (400), not a resource not found
        raise InvalidValueError(str(exc)) from None


def _report(fmt, fields, store, city, clock, authorization, idempotency_key):
    req = o311.parse_request(fields, event_classes())
    principal = _principal(store, req.api_key, authorization)
    authorize(principal, Permission.REPORT_CASE)
    scope = app.scope_of(store, principal, today=clock.today())
    jurisdiction = _check_jurisdiction(city, req.jurisdiction_id)
    validate_lonlat([req.lon], [req.lat])  # before converting: swapped, out of range
    lon, lat = to_wgs84([req.lon], [req.lat], crs=req.crs)
    validate_lonlat(lon, lat)
    lon, lat = float(lon[0]), float(lat[0])
    if jurisdiction is not None:
        cell, street = app.locate_point(city, lon, lat)
        if parent_code(street) != jurisdiction:
            raise InvalidValueError(
                f"the position lies in district {parent_code(street)}, not in "
                f"jurisdiction_id {jurisdiction}")
    canonical = json.dumps({k: v for k, v in sorted(fields.items()) if k != "api_key"},
                           ensure_ascii=False, default=str)
    done = app.report_case(
        store, city, event_class_code=req.service_code, lon=lon, lat=lat,
        description=req.description, reporter=principal.name, role=principal.role,
        at=clock.now_utc(), component_code=req.component_code, photo_ref=req.media_url,
        idempotency_key=idempotency_key,
        request_hash="open311:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        principal=f"{principal.role.value}:{principal.subject}", scope=scope)
    case = done.case
    answer = {"service_request_id": str(case.id),
              "service_notice": f"已受理 (上报); 处置时限 {case.time_limit_hours:g} 小时",
              "account_id": None}
    if idempotency_key is not None:
        answer["token"] = idempotency_key
    headers = {"Location": f"{router.prefix}/requests/{case.id}.{fmt.value}"}
    if not done.created:
        headers["Idempotent-Replayed"] = "true"
    return _render([answer], fmt, "service_requests",
                   status_code=201 if done.created else 200, headers=headers)


_Text = Annotated[str | None, Query(max_length=2000)]


@router.get("/requests.{fmt}", summary="Requests (案卷), filtered",
            response_class=Response, responses=_responses(_array(_REQUEST), 403, 404))
def get_requests(
    fmt: FmtPath, store: StoreDep, city: CityDep, clock: ClockDep,
    api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[str | None, Query(
        max_length=10000, description="Comma-separated ids; the other filters are then "
                                      "ignored.")] = None,
    service_code: Annotated[str | None, Query(
        max_length=1000, description="Comma-separated service codes.")] = None,
    start_date: Annotated[str | None, Query(
        max_length=40, description="Requested at or after (ISO 8601; a date is the "
                                   "city's midnight). Default: 90 days ago.")] = None,
    end_date: Annotated[str | None, Query(
        max_length=40, description="Requested before (ISO 8601; a date counts whole).")
    ] = None,
    status_: Annotated[str | None, Query(
        alias="status", max_length=20, description="open, closed, or both comma-separated.")
    ] = None,
    updated_after: Annotated[str | None, Query(
        max_length=40, description="Extension: a step of the case after this instant.")
    ] = None,
    polygon: Annotated[str | None, Query(
        max_length=20000, description="Extension: GeoJSON Polygon or MultiPolygon (WGS84); "
                                      "requests located inside.")] = None,
    page: Annotated[int, Query(ge=1, le=10**6, description="Extension: page, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=o311.MAX_PAGE_SIZE,
                                    description="Extension: requests per page.")
                         ] = o311.DEFAULT_PAGE_SIZE,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """List the requests the caller may see, newest first (the rules of ``GET /v1/cases``)."""
    principal = _principal(store, api_key, authorization)
    jurisdiction = _check_jurisdiction(city, jurisdiction_id)
    now, today = _today(clock)
    query = o311.parse_query(
        dict(service_request_id=service_request_id, service_code=service_code,
             start_date=start_date, end_date=end_date, status=status_,
             updated_after=updated_after, polygon=polygon, page=str(page),
             page_size=str(page_size)),
        event_classes(), now=now, tz=clock.tz)
    authorize(principal, Permission.READ_CASES)
    scope = app.scope_of(store, principal, today=today)
    cases = _find(store, city, query, scope, jurisdiction)
    return _render(_records(store, city, cases, now, clock.tz), fmt, "service_requests")


def _find(store, city, query: o311.RequestQuery, scope: Scope,
          jurisdiction: str | None) -> list[Case]:
    import shapely

    cells = None
    grid = city.cells

    def narrow(mask) -> None:
        nonlocal cells
        inside = set(grid["code"][mask])
        cells = inside if cells is None else cells & inside

    if jurisdiction is not None:
        narrow(grid["district_code"] == jurisdiction)
    if query.ids is not None:  # the spec: ids override the other filters
        kw: dict[str, Any] = dict(ids=list(query.ids))
    else:
        if query.polygon is not None:
            narrow(shapely.intersects(grid.geometry.values, query.polygon))
        kw = dict(states=query.states, event_class=query.service_codes,
                  reported_since=query.start, reported_before=query.end,
                  updated_since=query.updated_after)
    kw.update(cell_codes=None if cells is None else sorted(cells),
              visible=scope.case_filter())
    if query.polygon is None or query.ids is not None:
        return store.list_cases(limit=query.page_size, offset=query.offset, **kw)
    # exact containment of the positions: candidates from the cells, then paged here
    found = store.list_cases(**kw)
    keep = shapely.intersects_xy(query.polygon, [c.lon for c in found], [c.lat for c in found])
    found = [c for c, k in zip(found, keep, strict=True) if k]
    return found[query.offset:query.offset + query.page_size]


@router.get("/requests/{service_request_id}.{fmt}", summary="One request (案卷)",
            response_class=Response, responses=_responses(_array(_REQUEST), 403, 404))
def get_request(
    service_request_id: Annotated[int, Path(ge=1, le=2**62, description="Request id.")],
    fmt: FmtPath, store: StoreDep, city: CityDep, clock: ClockDep,
    api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """One request, as a list of one (the spec's shape): the rules of ``GET /v1/cases/{id}``."""
    principal = _principal(store, api_key, authorization)
    jurisdiction = _check_jurisdiction(city, jurisdiction_id)
    now, today = _today(clock)
    case = store.get_case(service_request_id)
    authorize(principal, Permission.READ_CASES)
    app.scope_of(store, principal, today=today).check_case(case)
    if jurisdiction is not None and _district_of(case) != jurisdiction:
        raise NotFoundError(
            f"request {service_request_id} is not in jurisdiction {jurisdiction}")
    return _render(_records(store, city, [case], now, clock.tz), fmt, "service_requests")


@router.get("/tokens/{token}.{fmt}", summary="The request a token stands for",
            response_class=Response, responses=_responses(_TOKEN, 403, 404))
def get_token(
    token: Annotated[str, Path(max_length=200, description="The Idempotency-Key of a POST.")],
    fmt: FmtPath, store: StoreDep, city: CityDep, clock: ClockDep,
    api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Find the request posted with ``Idempotency-Key: token`` (its service_request_id).

    Requests are created at once, so a POST answers its id; the token finds it again
    when that answer was lost. Only whoever posted it finds it.
    """
    principal = _principal(store, api_key, authorization)
    _check_jurisdiction(city, jurisdiction_id)
    case_id = store.case_for_idempotency_key(
        token, principal=f"{principal.role.value}:{principal.subject}")
    if case_id is None:
        raise NotFoundError(f"no request of yours was posted with token {token!r}")
    _, today = _today(clock)
    authorize(principal, Permission.READ_CASES)
    app.scope_of(store, principal, today=today).check_case(store.get_case(case_id))
    return _render([{"service_request_id": str(case_id), "token": token}], fmt,
                   "service_requests")


__all__ = ["router"]
