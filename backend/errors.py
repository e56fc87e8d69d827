"""Errors the API answers with, and how each becomes a JSON body.

ApiError                     every answer is {"error": {"code", "message"}}
 ├── InvalidJson              400 the body is not JSON
 ├── InvalidHeader            400 a header holds a value that cannot be used
 ├── IncompleteBody           400 the body ended before its Content-Length
 ├── Unauthorized             401 no bearer token, or one that is expired or forged
 ├── BodyTimeout              408 the body stopped arriving before its end
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


class BodyTimeout(ApiError):
    status = 408
    code = "body_timeout"
    # The rest of the body may still come: the connection cannot be reused.
    headers = {"Connection": "close"}


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


def describe_validation_error(exc: ValidationError | RequestValidationError) -> str:
    """One readable sentence per problem: the field, what is wrong with it."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        kind = problem.get("type", "")
        if kind == "extra_forbidden":
            parts.append(f"unknown field '{where}': remove it")
        elif kind == "missing":
            parts.append(f"'{where}' is required")
        else:
            parts.append(f"'{where or 'body'}': {problem.get('msg', 'is invalid')}")
    return "; ".join(parts)


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
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        body = {
            "error": {
                "code": codes.get(exc.status_code, "http_error"),
                "message": str(exc.detail),
            }
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

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
