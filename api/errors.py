"""One table from exception to HTTP status, answered as ``application/problem+json``.

Routes raise gridcore exceptions; these handlers turn them into RFC 9457 problem details.
Nothing below a route raises HTTPException. An unexpected exception is still answered as
a problem (500) and logged, so a client never sees an HTML error page.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
    (e.GridcoreError, 400, "Bad request"),
    (ValueError, 422, "Invalid value"),
]


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
        status, title = status_for(exc)
        return problem(status, title, str(exc), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""),
             "type": err.get("type", "")}
            for err in exc.errors()
        ]
        malformed = any(err["type"] == "json_invalid" for err in errors)
        status, title = (400, "Malformed JSON") if malformed else (422, "Invalid request")
        detail = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in errors[:5])
        return problem(status, title, detail, instance=request.url.path,
                       errors=_clean(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem(exc.status_code, titles.get(exc.status_code, "HTTP error"),
                       str(exc.detail), instance=request.url.path, headers=headers)

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError):
        return problem(422, "Invalid value", str(exc), instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it was logged",
                       instance=request.url.path)


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

    Checks ``Content-Length`` up front and counts streamed (chunked) bodies as they arrive.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        """Pass the request on, or answer 413 once the body passes the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                return await self._refuse(scope, receive, send)
        seen = 0

        class _TooLarge(Exception):
            pass

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            return await self.app(scope, counted_receive, send)
        except _TooLarge:
            return await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        response = problem(413, "Payload too large",
                           f"request bodies are limited to {self.max_bytes} bytes",
                           instance=scope.get("path"))
        await response(scope, receive, send)
