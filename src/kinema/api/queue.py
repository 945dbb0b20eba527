"""fal's queue and sync-run routes for the Kling endpoint.

Submit ``POST /{endpoint}``; per request ``GET …/requests/{id}/status``, ``…/status/stream`` (SSE),
``GET …/requests/{id}``, ``PUT …/requests/{id}/cancel`` under owner/alias and full path, trailing
slash tolerated; sync run ``POST /run/{endpoint}``.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kinema import ENDPOINT_ID
from kinema.api.auth import require_key
from kinema.api.body import read_json_body
from kinema.api.errors import ApiError, error_response
from kinema.errors import InputError, error_item
from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.status import Priority, Status
from kinema.jobs.webhooks import check_webhook_url
from kinema.jobs.store import Job
from kinema.media.fetch import check_data_uri_sizes
from kinema.schema import parse_input

__all__ = ["routes", "status_body", "base_url"]

OWNER_ALIAS = "/".join(ENDPOINT_ID.split("/")[:2])  # fal-ai/kling-video
SSE_PING_S = 10.0  #: fal: a ": ping" comment at least every 15 s


def base_url(request: Request) -> str:
    public = request.app.state.settings.public_url
    if public:
        return public.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def _urls(job: Job) -> dict[str, str]:
    root = f"{job.base_url}/{OWNER_ALIAS}/requests/{job.id}"
    return {"response_url": root, "status_url": root + "/status", "cancel_url": root + "/cancel"}


def status_body(dispatcher: Dispatcher, job: Job, with_logs: bool, log_start: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"status": job.status.value, "request_id": job.id, **_urls(job)}
    if job.status is Status.IN_QUEUE:
        body["queue_position"] = dispatcher.queue_position(job)
    body["logs"] = [e.as_dict() for e in job.logs[log_start:]] if with_logs else None
    if job.status is Status.IN_PROGRESS and job.progress is not None:
        body["progress"] = {"step": job.progress[0], "total": job.progress[1]}  # kinema extension
    if job.status is Status.COMPLETED:
        body["metrics"] = {"inference_time": job.inference_time}
        if job.result_status != 200:
            detail = job.result_body.get("detail") if isinstance(job.result_body, dict) else None
            body["error"] = detail if isinstance(detail, str) else json.dumps(detail)
            body["error_type"] = job.error_type
    return body


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


def _job(request: Request) -> Job:
    key_id = require_key(request)
    job = _dispatcher(request).get(request.path_params["request_id"], key_id)
    if job is None:
        raise ApiError(404, "Request not found", "not_found")
    return job


async def _payload(request: Request) -> dict[str, Any]:
    return await read_json_body(request, request.app.state.settings.max_body_bytes)  # type: ignore[no-any-return]


def _start_timeout(request: Request) -> float | None:
    raw = request.headers.get("x-fal-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError.single(["header", "x-fal-request-timeout"], "must be a positive number of seconds",
                                "timeout_invalid")
    return value


def _submit(request: Request, key_id: str, payload: Any, webhook: str | None) -> Job:
    req = parse_input(payload)
    check_data_uri_sizes(req, request.app.state.settings.fetch_max_bytes)
    if webhook is not None:
        try:
            check_webhook_url(webhook)
        except ValueError as exc:
            raise InputError([error_item(["query", "fal_webhook"], f"must be an http(s):// URL ({exc})",
                                         "url_scheme")]) from None
    return _dispatcher(request).submit(
        key_id,
        req.model_dump(exclude_none=True, mode="json"),
        base_url(request),
        priority=Priority.parse(request.headers.get("x-fal-queue-priority")),
        webhook_url=webhook,
        start_timeout_s=_start_timeout(request),
    )


async def submit(request: Request) -> Response:
    key_id = require_key(request)
    payload = await _payload(request)
    job = _submit(request, key_id, payload, request.query_params.get("fal_webhook"))
    body = {
        "status": "IN_QUEUE",
        "request_id": job.id,
        "gateway_request_id": job.id,
        **_urls(job),
        "queue_position": _dispatcher(request).queue_position(job),
    }
    return JSONResponse(body, headers={"x-fal-request-id": job.id})


async def status(request: Request) -> Response:
    job = _job(request)
    body = status_body(_dispatcher(request), job, _flag(request.query_params.get("logs")))
    return JSONResponse(body, status_code=job.status.http_status(), headers={"x-fal-request-id": job.id})


async def status_stream(request: Request) -> Response:
    job = _job(request)
    dispatcher = _dispatcher(request)
    with_logs = _flag(request.query_params.get("logs"))

    async def events() -> AsyncIterator[str]:
        # The ping runs on its own clock: job changes that send no event (or a steady flow of
        # events) must not hold it back, so a ping goes out every SSE_PING_S seconds whatever happens.
        clock = asyncio.get_running_loop().time
        next_ping = clock() + SSE_PING_S
        sent_logs = 0
        last: str | None = None
        while True:
            body = status_body(dispatcher, job, with_logs, sent_logs)
            if with_logs:
                sent_logs = len(job.logs)
            text = json.dumps(body)
            if text != last or body["logs"]:
                last = text
                yield f"data: {text}\n\n"
            if job.status is Status.COMPLETED:
                return
            if clock() >= next_ping:
                yield ": ping\n\n"
                next_ping = clock() + SSE_PING_S
            await dispatcher.wait(job, timeout=max(0.0, next_ping - clock()))

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "x-fal-request-id": job.id},
    )


def result_response(job: Job, dispatcher: Dispatcher) -> Response:
    headers = {"x-fal-request-id": job.id}
    if job.status is not Status.COMPLETED:
        return JSONResponse({"detail": "Request is still in progress"}, status_code=400, headers=headers)
    if job.result_status == 200:
        headers["x-fal-billable-units"] = f"{job.billed_seconds:g}"
        return JSONResponse(job.result_body, headers=headers)
    return error_response(job.result_status or 500, job.result_body, job.error_type, headers)


async def result(request: Request) -> Response:
    job = _job(request)
    return result_response(job, _dispatcher(request))


async def cancel(request: Request) -> Response:
    key_id = require_key(request)
    job = _dispatcher(request).get(request.path_params["request_id"], key_id)
    if job is None:
        return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
    if not _dispatcher(request).cancel(job):
        return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400, headers={"x-fal-request-id": job.id})
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202, headers={"x-fal-request-id": job.id})


async def run(request: Request) -> Response:
    """Sync run: submit, wait for the result; a dropped connection cancels the job."""
    key_id = require_key(request)
    payload = await _payload(request)
    job = _submit(request, key_id, payload, None)
    dispatcher = _dispatcher(request)
    while job.status is not Status.COMPLETED:
        await dispatcher.wait(job, timeout=0.5)
        if job.status is not Status.COMPLETED and await _disconnected(request):
            dispatcher.cancel(job)
            return Response(status_code=499)
    return result_response(job, dispatcher)


async def _disconnected(request: Request) -> bool:
    try:
        return await asyncio.wait_for(request.is_disconnected(), timeout=0.05)
    except asyncio.TimeoutError:
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
