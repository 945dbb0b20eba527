"""File upload and download: ``POST /files/upload`` returns a fal ``File``; ``GET /files/{id}/{name}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from kinema.api.auth import require_key
from kinema.api.errors import ApiError
from kinema.api.queue import base_url
from kinema.media.storage import FileStorage, StoredFile

__all__ = ["routes", "file_json"]


def file_json(storage: FileStorage, f: StoredFile, base: str) -> dict[str, Any]:
    return {
        "url": base + storage.url_path(f),
        "content_type": f.content_type,
        "file_name": f.file_name,
        "file_size": f.size,
    }


def _storage(request: Request) -> FileStorage:
    return request.app.state.storage  # type: ignore[no-any-return]


async def upload(request: Request) -> Response:
    require_key(request)
    storage = _storage(request)
    limit = request.app.state.settings.upload_max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"the file is larger than {limit} bytes", "payload_too_large")
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    name = request.headers.get("x-fal-file-name") or request.query_params.get("file_name")
    try:
        if ctype == "multipart/form-data":
            async with request.form(max_files=1, max_fields=10) as form:
                item = form.get("file")
                if item is None or isinstance(item, str):
                    raise ApiError(422, "multipart upload needs a 'file' field", "upload_invalid")
                data = await item.read()
                if len(data) > limit:
                    raise ApiError(413, f"the file is larger than {limit} bytes", "payload_too_large")
                stored = storage.save_bytes(data, file_name=name or item.filename, content_type=item.content_type)
        else:
            stored = await storage.asave_stream(
                request.stream(), max_bytes=limit, file_name=name, content_type=ctype or None
            )
    except ValueError as exc:  # the storage refuses oversize streams with ValueError
        raise ApiError(413, str(exc), "payload_too_large") from None
    return JSONResponse(file_json(storage, stored, base_url(request)))


async def download(request: Request) -> Response:
    stored = _storage(request).get(request.path_params["file_id"], request.path_params["file_name"])
    if stored is None:
        raise ApiError(404, "File not found", "not_found")
    return FileResponse(stored.path, media_type=stored.content_type, filename=None,
                        headers={"Cache-Control": "private, max-age=3600"})


def routes() -> list[Route]:
    return [
        Route("/files/upload", upload, methods=["POST", "PUT"]),
        Route("/files/{file_id}/{file_name}", download, methods=["GET", "HEAD"]),
    ]
