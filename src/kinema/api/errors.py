"""API errors: what the HTTP edge answers, in fal's shapes.

    ApiError(status_code, detail, error_type)   → ``{"detail": "...", "error_type": "..."}`` + ``X-Fal-Error-Type``
    kinema.errors.InputError                     → 422 ``{"detail": [{"loc", "msg", "type"}, ...]}``

Kept apart from the engine's control-flow exceptions; the handlers below turn both into responses
and make sure nothing escapes as a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kinema.errors import InputError

__all__ = ["ApiError", "error_response", "install_error_handlers", "json_response"]

log = logging.getLogger("kinema.api")


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, error_type: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.headers = headers or {}


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=headers)


def error_response(status_code: int, body: Any, error_type: str | None, headers: dict[str, str] | None = None) -> Response:
    h = dict(headers or {})
    if error_type and status_code != 422:
        h["X-Fal-Error-Type"] = error_type
    if status_code == 504 and error_type == "request_timeout":
        h["X-Fal-Request-Timeout-Type"] = "user"
    return JSONResponse(body, status_code=status_code, headers=h)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, {"detail": exc.detail, "error_type": exc.error_type}, exc.error_type,
                          exc.headers)


async def _input_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return JSONResponse(exc.body(), status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, {"detail": exc.detail, "error_type": kind}, kind,
                          dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, {"detail": "Internal server error", "error_type": "internal_error"}, "internal_error")


def install_error_handlers(app: Any) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
