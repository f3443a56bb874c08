"""One table from exception to HTTP status, answered as ``application/problem+json``.

Routes raise gridcore exceptions; these handlers turn them into RFC 9457 problem details.
Nothing below a route raises HTTPException. Only the input errors in the table are 4xx:
any other exception, a bare ``ValueError`` or ``KeyError`` included, is a bug, answered
500 and logged with its traceback, so it never looks like the client's mistake.

Under ``/open311/`` the same table answers in GeoReport v2's error shape instead
(``[{"code", "description"}]`` or its XML, 401 as 403 and 422 as 400): clients of that
interface expect the spec's errors; the rest of the API keeps problem+json.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridcore import errors as e

log = logging.getLogger("gridcore.api")

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first class an exception is an instance of wins.
DEFAULT_STATUS_CODES: list[tuple[type[BaseException], int, str]] = [
    (e.AuthenticationError, 401, "Authentication required"),
    (e.PermissionDeniedError, 403, "Forbidden"),
    (e.OutsideCityError, 404, "Outside the city"),
    (e.CellNotFoundError, 404, "No such cell"),
    (e.NotFoundError, 404, "Not found"),
    (e.TransitionError, 409, "Step not allowed"),
    (e.ConflictError, 409, "Conflict"),
    (e.CRSError, 422, "Bad coordinate reference system"),
    (e.CoordinateError, 422, "Bad coordinates"),
    (e.InvalidCodeError, 422, "Invalid code"),
    (e.GeometryError, 422, "Bad geometry"),
    (e.DataFileError, 422, "Bad data file"),
    (e.InvalidValueError, 422, "Invalid value"),
]
# Not in the table, so 500: GridcoreError itself and any subclass not listed (a time zone
# setting the server cannot read is the operator's problem, not the client's), and every
# built-in exception. The table is the list of input errors.


def _slug(title: str) -> str:
    return title.lower().replace(" ", "-")


def problem(status: int, title: str, detail: str, *, instance: str | None = None,
            headers: dict | None = None, **extra) -> JSONResponse:
    """Return an RFC 9457 problem response."""
    body = {"type": f"urn:gridcore:problem:{_slug(title)}", "title": title,
            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON,
                        headers=headers)


OPEN311_PREFIX = "/open311/"
# Open311 answers the spec's statuses: a missing or bad api_key is 403, bad input 400
_OPEN311_STATUS = {401: 403, 422: 400}


def is_open311(path: str | None) -> bool:
    """Whether ``path`` is under /open311/, which answers errors in the spec's shape."""
    return bool(path) and path.startswith(OPEN311_PREFIX)


def open311_error(status: int, detail: str, *, path: str,
                  headers: dict | None = None) -> Response:
    """Return an error in GeoReport v2's shape: ``[{"code", "description"}]`` or its XML.

    The format follows the resource's suffix (``.xml``, else JSON); 401 is answered 403
    and 422 as 400, the spec's statuses for a bad api_key and for bad input.
    """
    from gridcore.open311 import error_records, records_to_xml

    status = _OPEN311_STATUS.get(status, status)
    records = error_records(status, detail)
    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    if path.endswith(".xml"):
        return Response(records_to_xml(records, "errors"), status_code=status,
                        media_type="text/xml; charset=utf-8", headers=headers)
    return JSONResponse(records, status_code=status, headers=headers)


def error_response(status: int, title: str, detail: str, *, path: str | None = None,
                   headers: dict | None = None, **extra) -> Response:
    """Answer an error: problem+json, or the spec's shape under /open311/."""
    if is_open311(path):
        return open311_error(status, detail, path=path, headers=headers)
    return problem(status, title, detail, instance=path, headers=headers, **extra)


def status_for(exc: BaseException) -> tuple[int, str]:
    """Return (status, title) for an exception from the table (500 when unknown)."""
    for cls, status, title in DEFAULT_STATUS_CODES:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal error"


def _clean(value):
    """Make validation error inputs JSON-safe (NaN/inf are not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def install(app: FastAPI) -> None:
    """Install the handlers on ``app``."""

    @app.exception_handler(e.GridcoreError)
    async def _gridcore(request: Request, exc: e.GridcoreError):
        return answer_exception(exc, path=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return answer_validation(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return error_response(exc.status_code, titles.get(exc.status_code, "HTTP error"),
                              str(exc.detail), path=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # reached only by what InternalErrors (the outer middleware) did not see
        return answer_exception(exc, path=request.url.path)


def answer_validation(request: Request, exc: RequestValidationError) -> Response:
    """Answer what FastAPI's request validation refused, in words a client can act on.

    A body the route cannot read as JSON (another or no Content-Type) is a 415; malformed
    JSON a 400; a lon or lat outside the ranges the schema declares (or NaN, inf) is said
    the way `gridcore.crs.describe_lonlat` says it, with the "looks swapped" hint; the
    rest is pydantic's field messages.
    """
    if _unread_body(exc):
        return _unsupported_media_type(request)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""),
         "type": err.get("type", "")}
        for err in exc.errors()
    ]
    coordinates = False
    for err, raw in zip(errors, exc.errors(), strict=True):
        words = _coordinate_words(request, exc, raw)
        if words:
            err["msg"], err["coordinate"], coordinates = words, True, True
    malformed = any(err["type"] == "json_invalid" for err in errors)
    if malformed:
        status, title = 400, "Malformed JSON"
    elif coordinates:
        status, title = 422, "Bad coordinates"
    else:
        status, title = 422, "Invalid request"
    said = dict.fromkeys(_said(err) for err in errors[:5])  # a swapped pair: said once
    for err in errors:
        err.pop("coordinate", None)
    return error_response(status, title, "; ".join(said), path=request.url.path,
                          errors=_clean(errors))


_COORDINATES = ("lon", "lat")
# the constraints a declared coordinate range (ge/le) and allow_inf_nan=False produce
_RANGE_ERRORS = {"less_than_equal", "greater_than_equal", "less_than", "greater_than",
                 "finite_number"}


def _said(err: dict) -> str:
    loc = [str(p) for p in err["loc"]]
    if err.get("coordinate"):  # a sentence naming lon and lat; only an object path before it
        return ".".join(loc[1:-1]) + ": " + err["msg"] if len(loc) > 2 else err["msg"]
    return f"{'.'.join(loc)}: {err['msg']}"


def _coordinate_words(request: Request, exc: RequestValidationError, err: dict) -> str | None:
    """`describe_lonlat`'s words for a lon/lat range error, read with its partner."""
    from gridcore.crs import describe_lonlat

    loc = tuple(err.get("loc", ()))
    if len(loc) < 2 or loc[-1] not in _COORDINATES or err.get("type") not in _RANGE_ERRORS:
        return None
    given = _siblings(request, exc, loc)
    lon, lat = (_as_float(given.get(name)) for name in _COORDINATES)
    if lon is None or lat is None:  # the partner is missing or not a number: this one alone
        lon, lat = (_as_float(err.get("input")), 0.0) if loc[-1] == "lon" else (
            0.0, _as_float(err.get("input")))
    if lon is None or lat is None:
        return None
    city = getattr(request.app.state, "city", None)
    return describe_lonlat(lon, lat, region="world",
                           city_bounds=city.extent() if city is not None else None)


def _siblings(request: Request, exc: RequestValidationError, loc: tuple) -> dict:
    """Return the mapping the field at ``loc`` was read from: the query or its body object."""
    if loc[0] == "query" and len(loc) == 2:
        return dict(request.query_params)
    if loc[0] == "body":
        node = exc.body
        for key in loc[1:-1]:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return {}
        return node if isinstance(node, dict) else {}
    return {}


def _as_float(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _unread_body(exc: RequestValidationError) -> bool:
    """Whether the route got its body as raw bytes: FastAPI did not read it as JSON.

    FastAPI reads a body as JSON only when its Content-Type is JSON (application/json,
    ``+json``); any other type, or none, leaves the bytes, which then fail validation.
    A form route gets form data, not bytes, so this never fires for it.
    """
    return isinstance(exc.body, bytes | bytearray) and len(exc.body) > 0


def _unsupported_media_type(request: Request) -> Response:
    given = request.headers.get("content-type")
    if given:
        detail = f"the body is sent as {given.split(';')[0].strip()!r}"
        if "x-www-form-urlencoded" in given:
            detail += " (what curl -d and HTML forms send)"
    else:
        # No type is not read as JSON: a browser may send a body without one across
        # sites with no CORS preflight (FastAPI's strict content type).
        detail = "the body has no Content-Type"
    detail += ("; this route reads JSON: send it with Content-Type: application/json "
               "(curl: --json or -H 'Content-Type: application/json')")
    return error_response(415, "Unsupported media type", detail, path=request.url.path,
                          headers={"Accept-Post": "application/json"}
                          if request.method == "POST" else None)


def answer_exception(exc: BaseException, *, path: str | None = None) -> Response:
    """Answer an exception from the table; log a 5xx with its traceback.

    A 4xx repeats the exception's message (it says what was wrong with the input); a 500
    says nothing of the internals and leaves the traceback in the ``gridcore.api`` log.
    """
    status, title = status_for(exc)
    if status < 500:
        return error_response(status, title, str(exc), path=path)
    log.error("internal error on %s", path, exc_info=(type(exc), exc, exc.__traceback__))
    return error_response(status, title, "an unexpected error occurred; it was logged",
                          path=path)


class InternalErrors:
    """ASGI middleware answering any exception that escaped the app as a problem.

    Starlette's own last-resort handler answers too, but then re-raises, so every bug
    would be logged twice (once here, once by uvicorn). An exception raised after the
    response started cannot be answered: it is logged and the connection closed.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        """Run the app; answer 500 (and log) what it raises."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            if started:
                log.exception("internal error on %s after the response started",
                              scope.get("path"))
                return
            await answer_exception(exc, path=scope.get("path"))(scope, receive, send)


def _allowed_methods(request: Request) -> str:
    """Every method the OpenAPI schema documents for the resource at this path.

    Starlette answers 405 with the methods of the first route whose path matches, so a
    path served by two routes (GET and POST /v1/cases) would advertise only one; and the
    routers FastAPI includes are not plain routes one could walk for their methods.
    """
    from starlette.routing import compile_path

    path = request.scope.get("path", "")
    matches = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi().get("paths", {}).items()
        if compile_path(template)[0].match(path)
    ]
    if not matches:
        return ""
    # the most literal template is the resource: /v1/disputes/screen, not /{task_id}
    fewest = min(n for n, _ in matches)
    methods = {m.upper() for n, ops in matches if n == fewest for m in ops if m != "parameters"}
    return ", ".join(sorted(methods))


class BodySizeLimit:
    """ASGI middleware refusing request bodies larger than ``max_bytes`` with a 413 problem.

    Checks ``Content-Length`` up front and counts streamed (chunked) bodies as they
    arrive. Before answering it reads and drops the rest of the body (up to
    ``drain_bytes`` or ``drain_seconds``): a server that answers and closes while the
    client is still sending makes the client's kernel see a reset, and the client loses
    the 413 it was sent. A client that asked ``Expect: 100-continue`` is answered at once
    (it has sent nothing yet). The answer closes the connection.
    """

    def __init__(self, app, *, max_bytes: int, drain_bytes: int | None = None,
                 drain_seconds: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(
            16 * max_bytes, 64 * 2**20)
        self.drain_seconds = drain_seconds

    async def __call__(self, scope, receive, send):
        """Pass the request on, or answer 413 once the body passes the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = _content_length(headers.get(b"content-length"))
        if declared is not None and declared > self.max_bytes:
            if headers.get(b"expect", b"").lower() == b"100-continue":
                return await self._refuse(scope, receive, send)
            # a body too big to drain is refused at once: a reset is then the lesser harm
            drain = 0 if declared > self.drain_bytes else self.drain_bytes
            return await self._refuse(scope, receive, send, drain=drain)

        seen = 0
        too_large = False
        body_done = False
        started = False

        async def counted_receive():
            nonlocal seen, too_large, body_done
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes and not started:
                    # the app sees the client go away; this middleware answers for it
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if not too_large:  # what the app makes of the "disconnect" is not sent
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(scope, receive, send, drain=0 if body_done else self.drain_bytes,
                               seen=seen)

    async def _refuse(self, scope, receive, send, *, drain: int = 0, seen: int = 0):
        if drain:
            await self._drain(receive, drain - seen)
        response = error_response(413, "Payload too large",
                                  f"request bodies are limited to {self.max_bytes} bytes",
                                  path=scope.get("path"), headers={"Connection": "close"})
        await response(scope, receive, send)

    async def _drain(self, receive, budget: int) -> None:
        """Read and drop the request body until it ends, or the budget or time runs out."""
        import asyncio

        try:
            async with asyncio.timeout(self.drain_seconds):
                while budget > 0:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    budget -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            pass


def _content_length(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the HTTP parser refuses a malformed length before we get here
