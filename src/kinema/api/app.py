"""The ASGI application: wires settings, stores, the dispatcher, webhooks and routes together."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinema import __version__
from kinema.api import files, queue
from kinema.api.auth import require_key
from kinema.api.errors import ApiError, install_error_handlers
from kinema.api.hosts import AllowedHosts, HostCheckMiddleware
from kinema.api.openapi import build_openapi
from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.store import Job, JobStore
from kinema.jobs.webhooks import WebhookOutbox, webhook_body
from kinema.keys import KeyStore
from kinema.media.storage import FileStorage
from kinema.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("kinema.api")
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


class RequestIdMiddleware:
    """Every response carries ``x-fal-request-id`` (the job id on per-request routes, else a fresh id)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(k.lower() == b"x-fal-request-id" for k, _ in headers):
                    headers.append((b"x-fal-request-id", secrets.token_hex(8).encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _adopt_output(storage: FileStorage):
    def adopt(job: Job, path: Path) -> dict[str, Any]:
        stored = storage.adopt(path, file_name=f"kinema-{job.id[:8]}.mp4", content_type="video/mp4")
        job.output_file = stored.id
        return {"video": files.file_json(storage, stored, job.base_url)}

    return adopt


def create_app(settings: Settings) -> Starlette:
    allowed_hosts = AllowedHosts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = JobStore(settings.db_path)
        storage = FileStorage(settings.files_dir)
        outbox = WebhookOutbox(settings)

        def on_complete(job: Job) -> None:
            if job.webhook_url:
                ok = job.result_status == 200
                error = None
                if not ok:
                    detail = job.result_body.get("detail") if isinstance(job.result_body, dict) else None
                    error = detail if isinstance(detail, str) else json.dumps(detail)
                body = webhook_body(job.id, job.id, ok, job.result_body, error)
                outbox.enqueue(job.id, job.key_id, job.webhook_url, body)
                outbox.wake()

        def purge_files(job: Job) -> None:
            if job.output_file:
                storage.delete(job.output_file)

        dispatcher = Dispatcher(settings, store, adopt_output=_adopt_output(storage), on_complete=on_complete,
                                purge_files=purge_files)
        app.state.settings = settings
        app.state.store = store
        app.state.storage = storage
        app.state.upload_slots = files.UploadSlots(max_per_key=settings.max_pending_uploads_per_key)
        app.state.keys = KeyStore(settings.db_path)
        app.state.outbox = outbox
        app.state.dispatcher = dispatcher
        await dispatcher.start()
        # A crash between completing a job and queueing its webhook must not lose the webhook.
        for job in list(dispatcher.jobs.values()):
            if job.status.is_terminal() and job.webhook_url and not outbox.deliveries(job.id):
                on_complete(job)
        import asyncio

        outbox_task = asyncio.create_task(outbox.run())
        files_task = asyncio.create_task(files.purge_expired(storage, settings.retention_s))
        log.info("kinema ready", extra={"version": __version__, "data_dir": str(settings.data_dir),
                                        "engine": settings.engine, "workers": settings.workers,
                                        "allowed_hosts": allowed_hosts.describe()})
        try:
            yield
        finally:
            outbox_task.cancel()
            files_task.cancel()
            with contextlib.suppress(BaseException):
                await outbox_task
            with contextlib.suppress(BaseException):
                await files_task
            await outbox.aclose()
            await dispatcher.stop()
            store.close()
            app.state.keys.close()

    async def health(request: Request) -> Response:
        d = request.app.state.dispatcher
        return JSONResponse({"status": "ok", "version": __version__, "engine": settings.engine,
                             "queued": sum(1 for j in d.jobs.values() if j.status.value == "IN_QUEUE")})

    async def usage(request: Request) -> Response:
        key_id = require_key(request)
        totals = request.app.state.store.usage(key_id)
        return JSONResponse({"key_id": key_id, **totals, "price_per_second_usd": settings.price_per_second})

    async def list_requests(request: Request) -> Response:
        key_id = require_key(request)
        d: Dispatcher = request.app.state.dispatcher
        try:
            limit = max(1, min(200, int(request.query_params.get("limit", "50"))))
        except ValueError:
            raise ApiError(422, "limit must be an integer", "validation_error") from None
        out = []
        for job in d.list(key_id, limit):
            item = queue.status_body(d, job, with_logs=False)
            item.pop("logs", None)
            item["created_at"] = job.created_at
            item["input"] = job.input
            if job.status.value == "COMPLETED":
                item["result"] = job.result_body if job.result_status == 200 else None
            out.append(item)
        return JSONResponse({"requests": out})

    async def jwks(request: Request) -> Response:
        return JSONResponse(request.app.state.outbox.jwks())

    async def openapi(request: Request) -> Response:
        return JSONResponse(build_openapi(queue.base_url(request)))

    async def index(request: Request) -> Response:
        page = STATIC_DIR / "index.html"
        if not page.exists():
            raise ApiError(404, "the playground is not installed", "not_found")
        return FileResponse(page, media_type="text/html")

    routes: list[Any] = [
        Route("/", index, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/usage", usage, methods=["GET"]),
        Route("/requests", list_requests, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *queue.routes(),
        *files.routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR), check_dir=False), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(HostCheckMiddleware, allowed=allowed_hosts)
    app.add_middleware(RequestIdMiddleware)
    return app
