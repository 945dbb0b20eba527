"""File upload and download: ``POST /files/upload`` returns a fal ``File``; ``GET /files/{id}/{name}``.

Also the part of fal's storage API that ``@fal-ai/client``'s ``fal.storage.upload`` uses (its requestMiddleware
maps ``https://rest.fal.ai`` to kinema):

    POST /storage/upload/initiate   {content_type, file_name} → {upload_url, file_url}   (API key required)
    PUT  <upload_url>               the raw bytes; no API key: the one-time token in the URL is the credential

``file_url`` is the ``/files/{id}/{name}`` URL the bytes will have once the PUT has finished.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from kinema.api.auth import require_key
from kinema.api.body import BodyLimits, body_chunks, read_json_body, too_large
from kinema.api.errors import ApiError
from kinema.api.object_files import object_download
from kinema.api.queue import base_url
from kinema.errors import InputError, error_item
from kinema.media.storage import FileStorage, ManagedStorage, StoredFile

__all__ = ["routes", "file_json", "UploadSlots", "purge_expired"]

log = logging.getLogger("kinema.api")

#: How long an ``upload_url`` from ``/storage/upload/initiate`` stays usable, and how many may be pending
#: (in all, and per key: one key filled all 10,000 in 22 s and locked every other key out for an hour).
UPLOAD_SLOT_TTL_S = 3600.0
MAX_PENDING_UPLOADS = 10_000
MAX_PENDING_UPLOADS_PER_KEY = 100
#: ``{"content_type": …, "file_name": …}`` needs well under a kilobyte; 16 KiB is plenty.
INITIATE_MAX_BYTES = 16 * 1024
#: Copying a multipart file part into storage, this many bytes at a time.
_COPY_CHUNK = 1024 * 1024


#: Uploaded bytes are served from the playground's origin: never let a browser run them as a page.
_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


def file_json(storage: FileStorage, f: StoredFile, base: str) -> dict[str, Any]:
    return {
        "url": base + storage.url_path(f),
        "content_type": f.content_type,
        "file_name": f.file_name,
        "file_size": f.size,
    }


def _storage(request: Request) -> FileStorage:
    return request.app.state.storage  # type: ignore[no-any-return]


def _upload_limits(request: Request) -> BodyLimits:
    """The upload cap (whatever the framing: see :mod:`kinema.api.body`) and read deadlines."""
    return BodyLimits.for_request(request, request.app.state.settings.upload_max_bytes)


async def _store_body(request: Request, limits: BodyLimits, **kw: Any) -> StoredFile:
    """Stream the raw request body into storage under the cap (413 past it)."""
    try:
        return await _storage(request).asave_stream(body_chunks(request, limits), max_bytes=limits.max_bytes, **kw)
    except ValueError:  # the storage refuses oversize streams with ValueError
        raise too_large(limits.max_bytes, "the file") from None


async def _part_chunks(item: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await item.read(_COPY_CHUNK):
        yield chunk


async def _store_multipart(request: Request, limits: BodyLimits, name: str | None) -> StoredFile:
    """Parse a multipart body from the capped stream (the file part spools to a temporary file, 1 MiB in
    memory at most) and copy its ``file`` field into storage chunk by chunk."""
    parser = MultiPartParser(request.headers, body_chunks(request, limits), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"the multipart body is malformed: {exc.message}", "upload_invalid") from None
    try:
        item = form.get("file")
        if item is None or isinstance(item, str):
            raise ApiError(422, "multipart upload needs a 'file' field", "upload_invalid")
        try:
            return await _storage(request).asave_stream(
                _part_chunks(item),
                max_bytes=limits.max_bytes,
                file_name=name or item.filename,
                content_type=item.content_type,
            )
        except ValueError:
            raise too_large(limits.max_bytes, "the file") from None
    finally:
        await form.close()


async def upload(request: Request) -> Response:
    require_key(request)
    storage = _storage(request)
    limits = _upload_limits(request)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    name = request.headers.get("x-fal-file-name") or request.query_params.get("file_name")
    if ctype == "multipart/form-data":
        stored = await _store_multipart(request, limits, name)
    else:
        stored = await _store_body(request, limits, file_name=name, content_type=ctype or None)
    return JSONResponse(file_json(storage, stored, base_url(request)))


async def download(request: Request) -> Response:
    storage = _storage(request)
    if not isinstance(storage, FileStorage):  # an object store (KINEMA_STORAGE_URL=s3://…): redirect or stream
        return await object_download(request, storage)
    stored = storage.get(request.path_params["file_id"], request.path_params["file_name"])
    if stored is None:
        raise ApiError(404, "File not found", "not_found")
    return FileResponse(
        stored.path,
        media_type=stored.content_type,
        filename=None,
        headers={"Cache-Control": "private, max-age=3600", **_SAFE_HEADERS},
    )


@dataclass(frozen=True)
class _Slot:
    key_id: str
    file_id: str
    file_name: str
    content_type: str
    expires_at: float


class UploadSlots:
    """Pending storage uploads, in memory: one-time token → the file id and name promised in ``file_url``."""

    def __init__(
        self,
        ttl_s: float = UPLOAD_SLOT_TTL_S,
        max_pending: int = MAX_PENDING_UPLOADS,
        max_per_key: int = MAX_PENDING_UPLOADS_PER_KEY,
    ):
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self.max_per_key = max_per_key
        self._slots: dict[str, _Slot] = {}  # insertion order = expiry order (one TTL for all)
        self._per_key: dict[str, int] = {}

    def _expire(self, now: float) -> None:
        while self._slots:
            token, slot = next(iter(self._slots.items()))
            if slot.expires_at > now:
                return
            self._drop(token)

    def _drop(self, token: str) -> _Slot | None:
        slot = self._slots.pop(token, None)
        if slot is not None:
            left = self._per_key.get(slot.key_id, 1) - 1
            if left > 0:
                self._per_key[slot.key_id] = left
            else:
                self._per_key.pop(slot.key_id, None)
        return slot

    def pending(self, key_id: str) -> int:
        return self._per_key.get(key_id, 0)

    def open(self, key_id: str, file_name: str, content_type: str) -> tuple[str, _Slot]:
        now = time.monotonic()
        self._expire(now)
        if self.pending(key_id) >= self.max_per_key:
            raise ApiError(
                429,
                f"this key already has {self.max_per_key} pending uploads; finish or let them "
                f"expire ({self.ttl_s:g} s) first",
                "rate_limited",
            )
        if len(self._slots) >= self.max_pending:
            raise ApiError(429, "too many pending uploads; try again later", "rate_limited")
        slot = _Slot(key_id, FileStorage.new_id(), file_name, content_type, now + self.ttl_s)
        token = secrets.token_urlsafe(24)
        self._slots[token] = slot
        self._per_key[key_id] = self.pending(key_id) + 1
        return token, slot

    def take(self, token: str) -> _Slot | None:
        """The slot for ``token`` (removed: each upload URL works once), or ``None`` if unknown or expired."""
        slot = self._drop(token)
        if slot is None or slot.expires_at <= time.monotonic():
            return None
        return slot


def _slots(request: Request) -> UploadSlots:
    return request.app.state.upload_slots  # type: ignore[no-any-return]


async def initiate_upload(request: Request) -> Response:
    """fal's ``POST /storage/upload/initiate[?storage_type=…]`` (``storage_type`` is ignored: one local store)."""
    key_id = require_key(request)
    # 1. Check inputs
    body = await read_json_body(request, INITIATE_MAX_BYTES)
    if not isinstance(body, dict):
        raise InputError.single(["body"], "the body must be a JSON object", "dict_type")
    ctype = body.get("content_type", "application/octet-stream")
    name = body.get("file_name")
    errors = []
    if not isinstance(ctype, str) or "/" not in ctype:
        errors.append(error_item(["body", "content_type"], "must be a media type such as image/jpeg", "value_error"))
    if name is not None and not isinstance(name, str):
        errors.append(error_item(["body", "file_name"], "must be a string", "string_type"))
    if errors:
        raise InputError(errors)

    # 2. Reserve the file id and name now: the client puts file_url into its input before the PUT is made
    ctype = ctype.split(";")[0].strip().lower()
    file_name = FileStorage.stored_name(name, ctype)
    if "." not in file_name:  # storage would add an extension once it sniffs the bytes; fix the name up front
        file_name += ".bin"
    token, slot = _slots(request).open(key_id, file_name, ctype)
    base = base_url(request)
    return JSONResponse(
        {"upload_url": f"{base}/storage/upload/{token}", "file_url": f"{base}/files/{slot.file_id}/{slot.file_name}"}
    )


async def initiate_multipart(request: Request) -> Response:
    require_key(request)
    limit = request.app.state.settings.upload_max_bytes
    raise ApiError(
        413,
        f"multipart uploads (files over 90 MB) are not supported; kinema takes files of up to {limit} bytes",
        "payload_too_large",
    )


async def put_upload(request: Request) -> Response:
    """The ``PUT`` to an ``upload_url``: stores the body under the id and name ``file_url`` promised."""
    slot = _slots(request).take(request.path_params["token"])
    if slot is None:
        raise ApiError(404, "unknown, used or expired upload URL", "not_found")
    storage = _storage(request)
    limits = _upload_limits(request)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower() or slot.content_type
    stored = await _store_body(request, limits, file_name=slot.file_name, content_type=ctype, file_id=slot.file_id)
    if stored.file_name != slot.file_name:  # cannot happen: the promised name already has an extension
        storage.delete(stored.id)
        raise ApiError(500, f"stored as {stored.file_name!r}, promised {slot.file_name!r}", "upload_failed")
    return JSONResponse(file_json(storage, stored, base_url(request)))


async def purge_expired(storage: ManagedStorage, retention_s: float) -> None:
    """Forever: delete stored files (uploads and outputs) older than the retention period.

    Outputs also go with their job; uploads belong to no job, and without this they stayed for ever.
    Checked every hour, or every quarter of the retention period when that is shorter.
    """
    every = max(0.5, min(3600.0, retention_s / 4))
    while True:
        try:
            removed = await asyncio.to_thread(storage.purge_older_than, retention_s)
        except OSError as exc:  # a vanished folder or a full disk must not end the loop
            log.warning("file retention pass failed: %s", exc)
        else:
            if removed:
                log.info("removed stored files past retention", extra={"count": removed, "retention_s": retention_s})
        await asyncio.sleep(every)


def routes() -> list[Route]:
    return [
        Route("/files/upload", upload, methods=["POST", "PUT"]),
        Route("/files/{file_id}/{file_name}", download, methods=["GET", "HEAD"]),
        Route("/storage/upload/initiate", initiate_upload, methods=["POST"]),
        Route("/storage/upload/initiate-multipart", initiate_multipart, methods=["POST"]),
        Route("/storage/upload/{token}", put_upload, methods=["PUT"]),
    ]
