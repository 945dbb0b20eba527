"""``GET /files/{id}/{name}`` when the files live in an object store (:class:`~kinema.media.s3_storage.S3Storage`).

``KINEMA_S3_DOWNLOADS=redirect``: 307 to a presigned ``GetObject`` URL (the client downloads from the
store; kinema sends no bytes). ``stream``: kinema relays the object, passing a ``Range`` header through
(browsers' video players seek with ranges) and answering 206 with the store's ``Content-Range``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from kinema.api.errors import ApiError

if TYPE_CHECKING:
    from kinema.media.s3_storage import S3Storage

__all__ = ["object_download"]

_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


async def object_download(request: Request, storage: S3Storage) -> Response:
    file_id, name = request.path_params["file_id"], request.path_params["file_name"]
    stored = await asyncio.to_thread(storage.get, file_id, name)  # one HeadObject, off the event loop
    if stored is None:
        raise ApiError(404, "File not found", "not_found")
    if storage.downloads == "redirect":
        url = await asyncio.to_thread(storage.presigned_url, stored)
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    headers = {"Cache-Control": "private, max-age=3600", "Accept-Ranges": "bytes", **_SAFE_HEADERS}
    if request.method == "HEAD":
        return Response(None, media_type=stored.content_type, headers={**headers, "Content-Length": str(stored.size)})
    byte_range = request.headers.get("range")
    obj, chunks = await asyncio.to_thread(storage.open_object, stored, byte_range)
    headers["Content-Length"] = str(obj["ContentLength"])
    status = 200
    if byte_range and obj.get("ContentRange"):
        headers["Content-Range"] = str(obj["ContentRange"])
        status = 206
    # A sync iterator: Starlette reads it on its thread pool, so a slow store never blocks the loop.
    return StreamingResponse(chunks, status_code=status, media_type=stored.content_type, headers=headers)
