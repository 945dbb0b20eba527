"""What a webhook says and where it may go: fal's webhook body, the URL rule, and the outbox row.

Kept apart from the sender (:mod:`kinema.jobs.webhooks`) so the job store can queue a delivery in
the transaction that ends a job without importing an HTTP client.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kinema.jobs.states import DeliveryState

if TYPE_CHECKING:  # psycopg is an optional extra
    from kinema.jobs.pg_sql import PgSqlConnection

__all__ = ["DestinationRefused", "check_webhook_url", "insert_delivery", "webhook_body"]


def webhook_body(request_id: str, gateway_request_id: str, ok: bool, payload: Any, error: str | None) -> bytes:
    """The JSON body fal POSTs when a request ends.

    A payload that is not JSON-serialisable (or holds NaN/Infinity) is sent as ``null`` with
    ``payload_error`` saying why.
    """
    if ok and error is not None:
        raise ValueError("a successful webhook carries no error")
    if not ok and not (isinstance(error, str) and error):
        raise ValueError("a failed webhook needs a non-empty error string")
    body: dict[str, Any] = {
        "request_id": request_id,
        "gateway_request_id": gateway_request_id,
        "status": "OK" if ok else "ERROR",
        "payload": None,
        "error": error,
    }
    try:
        encoded = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        body["payload_error"] = f"payload is not JSON-serialisable: {exc}"
    else:
        body["payload"] = json.loads(encoded)
    return json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")


class DestinationRefused(Exception):
    """The webhook URL points at a private, loopback or otherwise non-public address."""


def check_webhook_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an absolute http(s) URL with a host and a valid port."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s)://host/...: {url!r}")
    parts.port  # noqa: B018  (raises ValueError on a bad port)


def insert_delivery(
    conn: sqlite3.Connection | PgSqlConnection, request_id: str, user_id: str, url: str, body: bytes, now: float
) -> None:
    """Add a delivery, due at ``now``, inside the caller's transaction (the job store calls it when a job ends)."""
    conn.execute(
        "INSERT INTO webhook_deliveries (request_id, user_id, url, body, attempts, next_attempt_at, status,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
        (request_id, user_id, url, body, now, DeliveryState.PENDING.value, now, now),
    )
