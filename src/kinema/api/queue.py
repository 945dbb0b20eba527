"""fal's queue and sync-run routes for the Kling endpoint.

Submit ``POST /{endpoint}``; per request ``GET …/requests/{id}/status``, ``…/status/stream`` (SSE),
``GET …/requests/{id}``, ``PUT …/requests/{id}/cancel`` under owner/alias and full path, trailing
slash tolerated; sync run ``POST /run/{endpoint}``. Every answer is read from the job store (through
:class:`~kinema.api.state.StoreGate`); waiters wake on the store's change feed, so a request
submitted to one server is followed, cancelled and awaited through any other on the same store.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kinema import ENDPOINT_ID
from kinema.api.auth import require_key
from kinema.api.bodies import OWNER_ALIAS, status_body, urls
from kinema.api.body import read_json_body
from kinema.api.errors import ApiError, error_response
from kinema.api.state import AppState, app_state
from kinema.errors import InputError, StoreUnavailable, error_item
from kinema.jobs.states import JobState
from kinema.jobs.status import Priority
from kinema.jobs.store import Job, JobStore, LogEntry
from kinema.jobs.webhooks import check_webhook_url
from kinema.media.fetch import check_data_uri_sizes
from kinema.schema import parse_input

__all__ = ["base_url", "routes"]

SSE_PING_S = 10.0  #: fal: a ": ping" comment at least every 15 s
#: A sync run checks for a dropped client at least this often.
RUN_DISCONNECT_CHECK_S = 0.5


def base_url(request: Request) -> str:
    public = app_state(request).settings.public_url
    if public:
        return public.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


@dataclass(frozen=True)
class _Snapshot:
    job: Job
    logs: list[LogEntry] | None
    position: int


def _snapshot(store: JobStore, request_id: str, key_id: str, with_logs: bool, log_start: int) -> _Snapshot | None:
    """One read of what a status answer needs (runs on a store thread); None for another key's job."""
    job = store.get(request_id)
    if job is None or job.key_id != key_id:
        return None
    logs = store.logs(request_id, log_start) if with_logs else None
    position = store.queue_position(request_id) if job.state is JobState.QUEUED else 0
    return _Snapshot(job, logs, position)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


async def _read(request: Request, key_id: str, with_logs: bool = False, log_start: int = 0) -> _Snapshot:
    st = app_state(request)
    rid = request.path_params["request_id"]
    key = ("status", rid, key_id, with_logs, log_start)
    version = st.feed.version  # taken before the read: a change during it makes the entry stale at once
    hit, snap = st.reads.get(key, version)
    if not hit:
        snap = await st.gate.read(_snapshot, st.store, rid, key_id, with_logs, log_start)
        st.reads.put(key, version, snap)
    if snap is None:
        raise ApiError(404, "Request not found", "not_found")
    assert isinstance(snap, _Snapshot)
    return snap


async def _payload(request: Request) -> dict[str, Any]:
    return await read_json_body(request, app_state(request).settings.max_body_bytes)  # type: ignore[no-any-return]


def _start_timeout(request: Request) -> float | None:
    raw = request.headers.get("x-fal-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError.single(
            ["header", "x-fal-request-timeout"], "must be a positive number of seconds", "timeout_invalid"
        )
    return value


async def _submit(request: Request, key_id: str, payload: Any, webhook: str | None) -> tuple[Job, int]:
    req = parse_input(payload)
    del payload  # the raw body is not kept past validation
    check_data_uri_sizes(req, app_state(request).settings.fetch_max_bytes)
    if webhook is not None:
        try:
            check_webhook_url(webhook)
        except ValueError as exc:
            raise InputError(
                [error_item(["query", "fal_webhook"], f"must be an http(s):// URL ({exc})", "url_scheme")]
            ) from None
    timeout = _start_timeout(request)
    st = app_state(request)
    return await st.gate.write(
        _submit_and_place,
        st.store,
        key_id=key_id,
        payload=req.model_dump(exclude_none=True, mode="json"),
        priority=int(Priority.parse(request.headers.get("x-fal-queue-priority"))),
        base_url=base_url(request),
        webhook_url=webhook,
        start_deadline=None if timeout is None else time.time() + timeout,
    )


def _submit_and_place(store: JobStore, **fields: Any) -> tuple[Job, int]:
    """Insert the job and read its queue position in one trip to a store thread."""
    job = store.submit(**fields)
    return job, store.queue_position(job.id)


async def submit(request: Request) -> Response:
    key_id = require_key(request)
    job, position = await _submit(request, key_id, await _payload(request), request.query_params.get("fal_webhook"))
    body = {
        "status": "IN_QUEUE",
        "request_id": job.id,
        "gateway_request_id": job.id,
        **urls(job.id, job.base_url),
        "queue_position": position,
    }
    return JSONResponse(body, headers={"x-fal-request-id": job.id})


def _json_bytes(body: dict[str, Any]) -> bytes:
    """The bytes Starlette's ``JSONResponse`` would send for ``body``."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


async def status(request: Request) -> Response:
    key_id = require_key(request)
    with_logs = _flag(request.query_params.get("logs"))
    st = app_state(request)
    key = ("status-body", request.path_params["request_id"], key_id, with_logs)
    version = st.feed.version
    hit, rendered = st.reads.get(key, version)
    if not hit:  # a job that has not changed is answered with the bytes rendered last time
        snap = await _read(request, key_id, with_logs)
        body = _json_bytes(status_body(snap.job, snap.logs, snap.position))
        rendered = (200 if snap.job.terminal else 202, snap.job.id, body)
        st.reads.put(key, version, rendered)
    code, rid, body = rendered
    return Response(body, status_code=code, media_type="application/json", headers={"x-fal-request-id": rid})


async def status_stream(request: Request) -> Response:
    key_id = require_key(request)
    with_logs = _flag(request.query_params.get("logs"))
    first = await _read(request, key_id, with_logs)
    st = app_state(request)

    async def events() -> AsyncIterator[str]:
        # The ping runs on its own clock: job changes that send no event (or a steady flow of
        # events) must not hold it back, so a ping goes out every SSE_PING_S seconds whatever happens.
        clock = asyncio.get_running_loop().time
        next_ping = clock() + SSE_PING_S
        snap: _Snapshot | None = first
        sent_logs = 0
        last: str | None = None
        version = st.feed.version
        while True:
            if snap is not None:
                body = status_body(snap.job, snap.logs, snap.position)
                if snap.logs:
                    sent_logs = snap.logs[-1].index + 1
                text = json.dumps(body)
                if text != last or body["logs"]:
                    last = text
                    yield f"data: {text}\n\n"
                if snap.job.terminal:
                    return
            if clock() >= next_ping:
                yield ": ping\n\n"
                next_ping = clock() + SSE_PING_S
            version = await st.feed.wait(version, timeout=max(0.0, next_ping - clock()))
            try:
                async with asyncio.timeout(next_ping - clock()):  # (not wait_for: see kinema.jobs.feed)
                    snap = await _read(request, key_id, with_logs, sent_logs)
            except (TimeoutError, StoreUnavailable):
                snap = None  # a slow or unreadable store: ping on time, try again next round
            except ApiError:
                return  # the request is gone (purged after its retention)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "x-fal-request-id": first.job.id},
    )


def result_response(job: Job) -> Response:
    headers = {"x-fal-request-id": job.id}
    outcome = job.outcome
    if outcome is None:
        return JSONResponse({"detail": "Request is still in progress"}, status_code=400, headers=headers)
    if outcome.ok:
        headers["x-fal-billable-units"] = f"{outcome.billed_seconds:g}"
        return JSONResponse(outcome.body, headers=headers)
    return error_response(outcome.status_code, outcome.body, outcome.error_type, headers)


async def result(request: Request) -> Response:
    return result_response((await _read(request, require_key(request))).job)


async def cancel(request: Request) -> Response:
    key_id = require_key(request)
    st = app_state(request)
    rid = request.path_params["request_id"]
    job = await st.gate.read(st.store.get, rid)
    if job is None or job.key_id != key_id:
        return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
    if job.terminal:
        return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400, headers={"x-fal-request-id": rid})
    if (await st.gate.write(st.store.request_cancel, rid)) is not None:
        st.outbox.wake()  # a queued job ends here, with its webhook
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202, headers={"x-fal-request-id": rid})


async def _wait_terminal(st: AppState, request: Request, job: Job) -> Job | None:
    """Wait until ``job`` ends; None if the client went away first."""
    version = st.feed.version
    while not job.terminal:
        version = await st.feed.wait(version, timeout=RUN_DISCONNECT_CHECK_S)
        fresh = await st.gate.read(st.store.get, job.id)
        if fresh is None:
            raise ApiError(404, "Request not found", "not_found")
        job = fresh
        if not job.terminal and await _disconnected(request):
            return None
    return job


async def run(request: Request) -> Response:
    """Sync run: submit, wait for the result; a dropped connection cancels the job."""
    key_id = require_key(request)
    job, _ = await _submit(request, key_id, await _payload(request), None)
    st = app_state(request)
    done = await _wait_terminal(st, request, job)
    if done is None:
        await st.gate.write(st.store.request_cancel, job.id)
        return Response(status_code=499)
    return result_response(done)


async def _disconnected(request: Request) -> bool:
    try:
        async with asyncio.timeout(0.05):
            return await request.is_disconnected()
    except TimeoutError:
        return False


def _both(path: str, endpoint: Any, methods: list[str]) -> list[Route]:
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def routes() -> list[Route]:
    out: list[Route] = []
    out += _both(f"/{ENDPOINT_ID}", submit, ["POST"])
    out += _both(f"/run/{ENDPOINT_ID}", run, ["POST"])
    for prefix in (f"/{OWNER_ALIAS}", f"/{ENDPOINT_ID}"):
        out += _both(prefix + "/requests/{request_id}/status", status, ["GET"])
        out += _both(prefix + "/requests/{request_id}/status/stream", status_stream, ["GET"])
        out += _both(prefix + "/requests/{request_id}/cancel", cancel, ["PUT"])
        out += _both(prefix + "/requests/{request_id}", result, ["GET"])
    return out
