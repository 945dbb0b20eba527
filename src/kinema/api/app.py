"""The ASGI application: wires settings, the job store and its change feed, the dispatcher, webhooks and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinema import __version__
from kinema.api import account, files, queue
from kinema.api.errors import ApiError, install_error_handlers
from kinema.api.hosts import AllowedHosts, HostCheckMiddleware
from kinema.api.openapi import build_openapi
from kinema.api.state import AppState, StoreGate, app_state
from kinema.jobs.backends import open_change_feed, open_job_store, open_keys
from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.feed import ChangeFeed
from kinema.jobs.webhooks import WebhookOutbox
from kinema.media.storage import open_storage
from kinema.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("kinema.api")
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
#: After a store change made elsewhere, the webhook outbox looks for due deliveries at most this often.
OUTBOX_WAKE_S = 0.25


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


async def _wake_outbox_on_changes(feed: ChangeFeed, outbox: WebhookOutbox) -> None:
    """Deliveries are queued by whichever process ends a job: look at most every OUTBOX_WAKE_S after a change.

    (Jobs this process's dispatcher ends wake the outbox at once, through its ``on_complete``.)
    Waking on every change cost two store reads per log line of every running job.
    """
    version = feed.version
    while not feed.closed:
        version = await feed.wait(version, timeout=None)
        outbox.wake()
        await asyncio.sleep(OUTBOX_WAKE_S)


def create_app(settings: Settings) -> Starlette:
    allowed_hosts = AllowedHosts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # SQLite in the data dir, or PostgreSQL shared by several servers (KINEMA_DATABASE_URL).
        store = await asyncio.to_thread(open_job_store, settings)
        feed = open_change_feed(settings, store)
        await feed.start()
        storage = open_storage(settings)
        outbox = WebhookOutbox(settings)
        keys = open_keys(settings, feed)
        dispatcher = Dispatcher(settings, store, feed, storage, on_complete=lambda _job: outbox.wake())
        gate = StoreGate(store, feed)
        app.state.kinema = AppState(settings, store, feed, gate, storage, keys, outbox, dispatcher)
        # Read by kinema.api.files (owned by the edge work; it moves to app_state() when that merges).
        app.state.settings = settings
        app.state.storage = storage
        app.state.keys = keys
        app.state.upload_slots = files.UploadSlots(max_per_key=settings.max_pending_uploads_per_key)
        await dispatcher.start()
        tasks = [
            asyncio.create_task(outbox.run()),
            asyncio.create_task(_wake_outbox_on_changes(feed, outbox)),
            asyncio.create_task(files.purge_expired(storage, settings.retention_s)),
        ]
        log.info(
            "kinema ready",
            extra={
                "version": __version__,
                "data_dir": str(settings.data_dir),
                "engine": settings.engine,
                "workers": settings.workers,
                "allowed_hosts": allowed_hosts.describe(),
            },
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=10)  # bounded: shutdown never hangs on one of them
            await outbox.aclose()
            await dispatcher.stop()
            await feed.stop()
            gate.close()
            store.close()
            keys.close()

    async def health(request: Request) -> Response:
        # Never touches the store: it answers while another process holds the database locked.
        body = {
            "status": "ok",
            "version": __version__,
            "engine": settings.engine,
            **app_state(request).dispatcher.health(),
        }
        return JSONResponse(body, status_code=503 if body["status"] == "unavailable" else 200)

    async def jwks(request: Request) -> Response:
        return JSONResponse(app_state(request).outbox.jwks())

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
        *account.routes(),
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
