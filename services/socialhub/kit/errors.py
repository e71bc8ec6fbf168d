"""One JSON error envelope for every 4xx and 5xx answer.

    {"error": {"status": 409, "code": "conflict", "message": "...", "fields": {"email": "..."}},
     "requestId": "..."}

`fields` names the offending input fields (validation errors, conflicts); it is omitted when
empty. Unexpected exceptions become a generic 500 whose details go to the log, never the client
(UnexpectedErrorMiddleware).
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialhub.kit.telemetry import current_request_id

log = logging.getLogger("socialhub.errors")


class ApiError(Exception):
    """Raise from domain code to answer with a specific status and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def bad_request(message: str, **fields: str) -> ApiError:
    return ApiError(400, "bad_request", message, fields=fields)


def unauthorized(message: str = "authentication required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def conflict(message: str, **fields: str) -> ApiError:
    return ApiError(409, "conflict", message, fields=fields)


def invalid_input(**fields: str) -> ApiError:
    """422 naming each bad field, exactly as a request that fails its schema is answered."""
    summary = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    return ApiError(422, "validation_error", f"invalid input ({summary})", fields=fields)


def payload_too_large(message: str) -> ApiError:
    return ApiError(413, "payload_too_large", message)


def rate_limited(message: str, *, retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return ApiError(429, "rate_limited", message, headers=headers)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = dict(fields)
    return JSONResponse(
        {"error": body, "requestId": current_request_id()},
        status_code=status,
        headers=dict(headers or {}),
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or str(location[-1] if location else "body")


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "request body is not valid JSON")
    fields: dict[str, str] = {}
    for error in errors:
        name = _field_name(tuple(error.get("loc", ())))
        fields.setdefault(name, str(error.get("msg", "invalid")))
    refusal = invalid_input(**fields)
    return error_response(refusal.status, refusal.code, refusal.message, fields=refusal.fields)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    code = HTTPStatus(status).phrase.lower().replace(" ", "_")
    headers = dict(exc.headers or {})
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = _allowed_methods(request)
    return error_response(status, code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method a route answers at the request's path: Starlette's 405 names only those of
    the first route that matches the path (GET, where GET, PATCH and DELETE are allowed)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


class UnexpectedErrorMiddleware:
    """Answers an unexpected exception with the 500 envelope and returns normally.

    It runs inside the request id's context (TelemetryMiddleware wraps it), so the answer
    carries the id. An exception handler for `Exception` would run in Starlette's outermost
    middleware, which re-raises: the server then closes a keep-alive connection the gateway has
    already pooled, and the next request on it (maybe another user's) fails with 502.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            if started:
                raise  # part of a response went out: only closing the connection ends it
            log.exception("unhandled error")
            response = error_response(500, "internal_error", "internal server error")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
