"""Exceptions raised by kinema.

Two families are kept apart: errors that become an API response (they carry
what the user sees), and internal control-flow signals (never shown as such).

    KinemaError
    ├── InputError            a request input is invalid → 422 with fal's ``detail`` list
    │   └── FetchError        an input URL could not be fetched safely (refused, too big, timed out)
    ├── EngineError           the engine failed on valid input → 500 ``engine_error``
    └── RunnerDisconnected    the worker process died → 503 ``runner_disconnected``

    Cancelled                 control flow: the job was cancelled; raised inside the engine
                              from its cancel check and caught by the worker (not a KinemaError)
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = [
    "KinemaError",
    "InputError",
    "FetchError",
    "EngineError",
    "RunnerDisconnected",
    "Cancelled",
    "error_item",
]


def error_item(loc: Sequence[str | int], msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    """One entry of a fal/pydantic 422 ``detail`` list."""
    item: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = ctx
    return item


class KinemaError(Exception):
    """Base of every error that becomes an API response."""

    status_code = 500
    error_type = "internal_error"

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "error_type": self.error_type}


class InputError(KinemaError):
    """Invalid input; ``errors`` is fal's 422 ``detail`` list."""

    status_code = 422
    error_type = "validation_error"

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))

    @classmethod
    def single(cls, loc: Sequence[str | int], msg: str, type_: str, **ctx: Any) -> "InputError":
        return cls([error_item(loc, msg, type_, **ctx)])

    def body(self) -> dict[str, Any]:
        return {"detail": self.errors}


class FetchError(InputError):
    """An input URL was refused or could not be fetched within the limits."""


class EngineError(KinemaError):
    """The engine failed on input that passed validation."""

    status_code = 500
    error_type = "engine_error"


class RunnerDisconnected(KinemaError):
    """The worker process running the request died."""

    status_code = 503
    error_type = "runner_disconnected"


class Cancelled(Exception):
    """Control flow: the job was cancelled while the engine ran."""
