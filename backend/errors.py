"""Errors the API answers with, and how each becomes a JSON body.

ApiError                     every answer is {"error": {"code", "message"}}
 ├── InvalidJson              400 the body is not JSON
 ├── InvalidHeader            400 a header holds a value that cannot be used
 ├── IncompleteBody           400 the body ended before its Content-Length
 ├── Unauthorized             401 no bearer token, or one that is expired or forged
 ├── UnsupportedMediaType     415 the body is not application/json
 ├── PayloadTooLarge          413 the body or the text is over the limit
 ├── InvalidRequest           422 a field is missing, unknown or out of range
 ├── NotFound                 404 no such job (or not yours)
 └── Conflict                 409 the job is in a state that refuses the request
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("digest.backend.api")


class ApiError(Exception):
    status = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}


class InvalidJson(ApiError):
    code = "invalid_json"


class InvalidHeader(ApiError):
    code = "invalid_header"


class IncompleteBody(ApiError):
    code = "incomplete_body"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    # RFC 6750: a 401 names the scheme the client must use.
    headers = {"WWW-Authenticate": "Bearer"}


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class InvalidRequest(ApiError):
    status = 422
    code = "invalid_request"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


# Pydantic's prefixes on the messages of a validator's own ValueError or
# AssertionError; the sentence after them is the validator's.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def describe_validation_error(exc: ValidationError | RequestValidationError) -> str:
    """One readable sentence per problem: the field, what is wrong with it.

    A problem of the whole body (a model validator's, which has no field) is
    its message alone, without pydantic's "Value error, " in front.
    """
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        kind = problem.get("type", "")
        message = str(problem.get("msg", "is invalid"))
        for prefix in _PYDANTIC_PREFIXES:
            message = message.removeprefix(prefix)
        if kind == "extra_forbidden":
            parts.append(f"unknown field '{where}': remove it")
        elif kind == "missing":
            parts.append(f"'{where}' is required")
        elif where:
            parts.append(f"'{where}': {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


# What to send to a path that was asked with a method it does not answer,
# beyond the methods its Allow header names.
METHOD_HINTS = {
    "/api/dev/token": 'POST a JSON object such as {"sub": "local-user"}',
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request, allow: str) -> list[str]:
    """Every method the request's path answers, from all its routes.

    Starlette's Allow header names only the first route whose path matched,
    so GET and POST on one path, declared as two routes, would name one:
    each method is asked of every route instead, as the router would.
    """
    methods = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return methods or [m.strip() for m in allow.split(",") if m.strip()]


def method_not_allowed_message(method: str, path: str, allowed: list[str]) -> str:
    """A 405's message: the methods `path` answers, and what to send it."""
    if not allowed:
        return f"{path} does not answer {method}"
    message = f"{path} does not answer {method}; it answers {' or '.join(allowed)}"
    hint = METHOD_HINTS.get(path.rstrip("/") or "/")
    return f"{message}: {hint}" if hint else message


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(
        _request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        problems = exc.errors()
        error: ApiError
        if problems and all(p.get("type") == "json_invalid" for p in problems):
            # A body that is not JSON at all is a 400, as on /api/summaries,
            # not a field-by-field 422.
            error = InvalidJson(
                "the body is not valid JSON; send a JSON object with the "
                "fields this route names in /docs"
            )
        else:
            error = InvalidRequest(describe_validation_error(exc))
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = str(exc.detail)
        headers = exc.headers
        if exc.status_code == 405:
            allowed = allowed_methods(request, (headers or {}).get("Allow", ""))
            message = method_not_allowed_message(
                request.method, request.url.path, allowed
            )
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        body = {
            "error": {
                "code": codes.get(exc.status_code, "http_error"),
                "message": message,
            }
        }
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        body = {
            "error": {
                "code": "internal",
                "message": "the server failed to answer; the error is in its log",
            }
        }
        return JSONResponse(body, status_code=500)
