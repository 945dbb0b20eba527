"""``Authorization: Key <id>:<secret>`` on every private route."""

from __future__ import annotations

from starlette.requests import Request

from kinema.api.errors import ApiError
from kinema.api.state import app_state

__all__ = ["require_key"]


def require_key(request: Request) -> str:
    """The calling key's id, or a 401 in fal's shape."""
    key_id = app_state(request).keys.verify(request.headers.get("authorization"))
    if key_id is None:
        raise ApiError(
            401,
            "No valid API key: send 'Authorization: Key <key_id>:<key_secret>' (create one with `kinema keys create`)",
            "unauthorized",
        )
    return key_id
