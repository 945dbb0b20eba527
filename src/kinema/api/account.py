"""A key's own records: ``GET /requests`` (paginated summaries, never input bytes) and ``GET /usage``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kinema.api.auth import require_key
from kinema.api.bodies import summary_body
from kinema.api.state import app_state
from kinema.errors import InputError

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "routes"]

DEFAULT_PAGE = 50
MAX_PAGE = 200


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise InputError.single(["query", "limit"], f"must be an integer from 1 to {MAX_PAGE}", "int_range")
    return value


async def list_requests(request: Request) -> Response:
    """Newest first; ``?before=<request_id>`` continues after that request (``next_before`` of the last page)."""
    key_id = require_key(request)
    limit = _limit(request.query_params.get("limit"))
    before = request.query_params.get("before") or None
    st = app_state(request)
    rows = await st.gate.read(st.store.list, key_id, limit=limit, before=before)
    return JSONResponse(
        {"requests": [summary_body(s) for s in rows], "next_before": rows[-1].id if len(rows) == limit else None}
    )


async def usage(request: Request) -> Response:
    key_id = require_key(request)
    st = app_state(request)
    totals = await st.gate.read(st.store.usage, key_id)
    return JSONResponse({"key_id": key_id, **totals, "price_per_second_usd": st.settings.price_per_second})


def routes() -> list[Route]:
    return [Route("/requests", list_requests, methods=["GET"]), Route("/usage", usage, methods=["GET"])]
