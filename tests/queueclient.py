"""Small helpers for speaking fal's queue protocol to a test server with httpx."""

from __future__ import annotations

import time
from typing import Any

import httpx
from server import Server

ENDPOINT = "fal-ai/kling-video/v1/standard/image-to-video"
OWNER_ALIAS = "fal-ai/kling-video"


def submit(
    server: Server,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    h = {"Authorization": f"Key {key or server.key}", **(headers or {})}
    return httpx.post(f"{server.url}/{ENDPOINT}", json=payload, headers=h, params=params, timeout=30)


def status(server: Server, rid: str, *, logs: bool = True, key: str | None = None) -> httpx.Response:
    return httpx.get(
        f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status",
        params={"logs": "1" if logs else "0"},
        headers={"Authorization": f"Key {key or server.key}"},
        timeout=10,
    )


def result(server: Server, rid: str, *, key: str | None = None) -> httpx.Response:
    return httpx.get(
        f"{server.url}/{OWNER_ALIAS}/requests/{rid}", headers={"Authorization": f"Key {key or server.key}"}, timeout=10
    )


def cancel(server: Server, rid: str, *, key: str | None = None) -> httpx.Response:
    return httpx.put(
        f"{server.url}/{OWNER_ALIAS}/requests/{rid}/cancel",
        headers={"Authorization": f"Key {key or server.key}"},
        timeout=10,
    )


def wait_status(server: Server, rid: str, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    order = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    while time.monotonic() < deadline:
        body = status(server, rid).json()
        if order.index(body["status"]) >= order.index(wanted):
            return body
        time.sleep(0.05)
    raise AssertionError(f"request {rid} did not reach {wanted} in {timeout} s; last status {body}")
