"""Every exception kinema raises on purpose, in one tree.

Errors that end a request or refuse an HTTP call are :class:`KinemaError`\\ s: each carries the
status code, fal ``error_type`` and body that users see (:mod:`kinema.api.errors` turns them into
responses; the worker turns them into a job's outcome). Control-flow signals are kept apart.

    KinemaError                 base: ``status_code``, ``error_type``, ``body()``
    ├── ApiError                an HTTP call refused at the edge (401, 404, 413, 429, ...), status given per call
    ├── InputError              a request input is invalid → 422 with fal's ``detail`` list
    │   └── FetchError          an input URL could not be fetched safely (refused, too big, timed out)
    ├── EngineError             the engine failed on valid input → 500 ``engine_error``
    │   └── EngineLoadError     the engine could not be loaded (its worker is DEFUNCT) → 503 ``engine_unavailable``
    ├── RequestCancelled        the request was cancelled → 400 ``request_cancelled`` (its outcome)
    ├── RequestTimeout          the request did not start before its deadline → 504 ``request_timeout``
    ├── RunnerDisconnected      the worker running the request died or lost its lease → 503 ``runner_disconnected``
    ├── StorageError            an output could not be stored → 500 ``storage_error``
    │   └── StorageFull         no space left on the data dir → 507 ``storage_full``
    └── StoreUnavailable        the job store could not be read or written in time → 503 ``store_unavailable``
        └── StoreFull           the disk holding the job store is full → 507 ``store_full``

    Cancelled                   control flow: the engine saw its cancel check turn true (not a KinemaError;
                                the worker reports it as :class:`RequestCancelled`)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

__all__ = [
    "ApiError",
    "Cancelled",
    "EngineError",
    "EngineLoadError",
    "FetchError",
    "InputError",
    "KinemaError",
    "RequestCancelled",
    "RequestTimeout",
    "RunnerDisconnected",
    "StorageError",
    "StorageFull",
    "StoreFull",
    "StoreUnavailable",
    "error_item",
]


def error_item(loc: Sequence[str | int], msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    """One entry of a fal/pydantic 422 ``detail`` list."""
    item: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = ctx
    return item


class KinemaError(Exception):
    """Base of every error that becomes an API response or a request's outcome."""

    status_code = 500
    error_type = "internal_error"
    #: Extra response headers (``Retry-After``, ``WWW-Authenticate``, ...).
    headers: Mapping[str, str] = MappingProxyType({})

    def body(self) -> dict[str, Any]:
        """fal's body for this error: ``{"detail": "...", "error_type": "..."}``."""
        return {"detail": str(self), "error_type": self.error_type}


class ApiError(KinemaError):
    """An HTTP call refused at the edge; the status code and ``error_type`` are given per call."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        error_type: str,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.headers = dict(headers or {})


class InputError(KinemaError):
    """Invalid input; ``errors`` is fal's 422 ``detail`` list."""

    status_code = 422
    error_type = "validation_error"

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))

    @classmethod
    def single(cls, loc: Sequence[str | int], msg: str, type_: str, **ctx: Any) -> InputError:
        return cls([error_item(loc, msg, type_, **ctx)])

    def body(self) -> dict[str, Any]:
        return {"detail": self.errors}


class FetchError(InputError):
    """An input URL was refused or could not be fetched within the limits."""


class EngineError(KinemaError):
    """The engine failed on input that passed validation. Engines raise it for their own failures."""

    status_code = 500
    error_type = "engine_error"


class EngineLoadError(EngineError):
    """The engine could not be loaded (bad spec, import error, its loader raised)."""

    status_code = 503
    error_type = "engine_unavailable"


class RequestCancelled(KinemaError):
    """The request was cancelled (fal: 400 ``request_cancelled``)."""

    status_code = 400
    error_type = "request_cancelled"

    def __init__(self, detail: str = "Request was cancelled"):
        super().__init__(detail)


class RequestTimeout(KinemaError):
    """The request did not start before its ``X-Fal-Request-Timeout`` deadline."""

    status_code = 504
    error_type = "request_timeout"
    headers: Mapping[str, str] = MappingProxyType({"X-Fal-Request-Timeout-Type": "user"})

    def __init__(self, detail: str = "Request timed out before processing started"):
        super().__init__(detail)


class RunnerDisconnected(KinemaError):
    """The worker process running the request died, or its lease lapsed too often."""

    status_code = 503
    error_type = "runner_disconnected"

    def __init__(self, detail: str = "The runner disconnected while processing the request"):
        super().__init__(detail)


class StorageError(KinemaError):
    """An output could not be stored."""

    status_code = 500
    error_type = "storage_error"


class StorageFull(StorageError):
    """No space left where outputs are stored."""

    status_code = 507
    error_type = "storage_full"


class StoreUnavailable(KinemaError):
    """The job store could not be read or written in time (e.g. the database was locked past its timeout)."""

    status_code = 503
    error_type = "store_unavailable"
    headers: Mapping[str, str] = MappingProxyType({"Retry-After": "1"})


class StoreFull(StoreUnavailable):
    """The disk holding the job store is full."""

    status_code = 507
    error_type = "store_full"


class Cancelled(Exception):
    """Control flow: the job was cancelled while the engine ran."""
