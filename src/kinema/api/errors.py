"""The one mapping from kinema's errors to fal's HTTP answers.

    KinemaError (any)   → ``exc.status_code``, ``exc.body()``, ``X-Fal-Error-Type: exc.error_type``
                          (not on 422s, whose body is fal's ``detail`` list) plus ``exc.headers``
    a stored outcome    → the same shape, through :func:`error_response`
    Starlette's 404/405 → ``not_found`` / ``method_not_allowed``; anything unexpected → 500 ``internal_error``

Every error body kinema sends is built here or by :meth:`kinema.errors.KinemaError.body`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kinema.errors import ApiError, KinemaError, RequestTimeout

__all__ = [
    "ApiError",
    "error_response",
    "exception_response",
    "install_error_handlers",
    "json_response",
]

log = logging.getLogger("kinema.api")


def json_response(body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def error_response(
    status_code: int,
    body: Any,
    error_type: str | None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answer in fal's shape (also used to replay a stored outcome)."""
    h = dict(headers or {})
    if error_type and status_code != 422:
        h["X-Fal-Error-Type"] = error_type
    if status_code == RequestTimeout.status_code and error_type == RequestTimeout.error_type:
        h.update(RequestTimeout.headers)
    return JSONResponse(body, status_code=status_code, headers=h)


def exception_response(exc: KinemaError) -> Response:
    return error_response(exc.status_code, exc.body(), exc.error_type, exc.headers)


async def _kinema_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KinemaError)
    if exc.status_code >= 500:
        log.warning(
            "%s %s answered %d %s: %s",
            request.method,
            request.url.path,
            exc.status_code,
            exc.error_type,
            exc,
        )
    return exception_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return exception_response(ApiError(exc.status_code, str(exc.detail), kind, exc.headers))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return exception_response(ApiError(500, "Internal server error", "internal_error"))


def install_error_handlers(app: Any) -> None:
    app.add_exception_handler(KinemaError, _kinema_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
