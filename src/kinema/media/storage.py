"""File storage: uploads and rendered outputs, served at ``/files/{id}/{name}``.

:class:`Storage` is what the workers need (``put`` an output → a fal ``File``; read one of the
server's own file URLs); :class:`FileStorage` is its local-directory implementation (an S3 one can
follow). Which URLs are the server's own is decided by :class:`OwnUrls` from the server's
addresses (every name it answers to, ``KINEMA_PUBLIC_URL``), never by the worker parsing URLs.

Local layout:
Each file lives in its own folder ``<root>/<id>/`` holding the bytes under a sanitized name and a
JSON sidecar (``meta.json``) with its content type and creation time. Writes go to a temporary
file first and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
import urllib.parse
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kinema.errors import StorageError, StorageFull
from kinema.settings import Settings

if TYPE_CHECKING:
    from kinema.media.s3_storage import S3Storage

__all__ = [
    "FileStorage",
    "ManagedStorage",
    "OwnUrls",
    "Storage",
    "StoredFile",
    "open_storage",
    "sanitize_file_name",
    "sniff_content_type",
]

_ID_RE = re.compile(r"[a-f0-9]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_META = "meta.json"
_META_TMP = _META + ".tmp"
#: Names of the folder's own bookkeeping files, never given to a stored file.
_RESERVED = {_META, _META_TMP}

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "application/json": ".json",
    "text/plain": ".txt",
    "application/octet-stream": ".bin",
}


def sniff_content_type(head: bytes) -> str | None:
    """The content type from magic bytes, for the formats kinema handles."""
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


def sanitize_file_name(name: str | None, content_type: str) -> str:
    """A safe single path component, with an extension matching the content type when it has none."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    ext = _EXTENSIONS.get(content_type, "")
    if not base:
        base = "file"
    if "." not in base and ext:
        base += ext
    return base


@dataclass(frozen=True)
class StoredFile:
    id: str
    file_name: str
    content_type: str
    size: int
    path: Path
    created_at: float


class Storage(Protocol):
    """Where outputs go and own inputs come from (local directory today, S3 later)."""

    def put(self, source: Path, *, file_name: str, content_type: str, base_url: str) -> dict[str, Any]:
        """Take ``source`` (moved, not copied) and return its fal ``File``: url, content_type, file_name, file_size.

        Raises :class:`~kinema.errors.StorageFull` (507) when out of space, else
        :class:`~kinema.errors.StorageError`.
        """
        ...

    def read_own(self, url: str) -> bytes | None:
        """The bytes of one of this server's own file URLs; ``None`` for any other URL or an unknown file."""
        ...


class ManagedStorage(Storage, Protocol):
    """A :class:`Storage` whose files the server also looks after: found by their URL path, deleted with
    their job, purged past retention. :class:`FileStorage` and :class:`~kinema.media.s3_storage.S3Storage`
    (what :func:`open_storage` returns) both implement it; the dispatcher and the retention loop need no more."""

    def parse_url_path(self, path: str) -> tuple[str, str] | None:
        """``/files/{id}/{name}`` → ``(id, name)``; anything else → ``None`` (a static method in both)."""
        ...

    def delete(self, file_id: str) -> bool:
        """Delete one stored file; ``False`` when there was none."""
        ...

    def purge_older_than(self, age_s: float, *, now: float | None = None) -> int:
        """Delete the files older than ``age_s``; returns how many went."""
        ...


_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("0.0.0.0", "::", "")


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class OwnUrls:
    """Recognises this server's own ``/files/`` URLs by every name it answers to.

    A URL is the server's own when it starts with ``public_url`` (or one of ``bases``) followed by
    ``/files/``, or when its host is one of the server's names (``localhost``, ``127.0.0.1``,
    ``::1``, the bind host, ``allowed_hosts``) and its port the server's port. So a file uploaded
    through ``localhost`` is found when the job was submitted through ``127.0.0.1``.
    """

    def __init__(self, *, port: int, hosts: Iterable[str] = (), bases: Iterable[str] = ()):
        self.port = port
        self.hosts = frozenset(_host_key(h) for h in (*_LOCAL_NAMES, *hosts) if _host_key(h) not in _WILDCARDS)
        self.bases = tuple(sorted({b.rstrip("/") for b in bases if b}))

    @classmethod
    def of(cls, settings: Settings) -> OwnUrls:
        # ``allowed_hosts`` arrives with the edge work of issue 7.27 (another branch); until then none.
        allowed: Iterable[str] = getattr(settings, "allowed_hosts", ()) or ()
        hosts = [settings.host, *(h.split(":")[0] if h.count(":") == 1 else h for h in allowed)]
        bases = [settings.public_url] if settings.public_url else []
        return cls(port=settings.port, hosts=hosts, bases=bases)

    def file_path(self, url: str) -> str | None:
        """``/files/{id}/{name}`` of an own URL, else ``None``."""
        for base in self.bases:
            if url.startswith(base + "/files/"):
                return "/files/" + url[len(base) + len("/files/") :].split("?", 1)[0].split("#", 1)[0]
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            return None
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        if _host_key(parts.hostname) not in self.hosts or port != self.port:
            return None
        return urllib.parse.unquote(parts.path) if parts.path.startswith("/files/") else None


class FileStorage:
    """Files on disk under ``root``; ids are random 128-bit hex strings. Implements :class:`Storage`."""

    def __init__(self, root: Path, own: OwnUrls | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.own = own

    # The Storage interface ----------------------------------------------------------
    def file_json(self, f: StoredFile, base_url: str) -> dict[str, Any]:
        """fal's ``File`` of a stored file under ``base_url``."""
        return {
            "url": base_url.rstrip("/") + self.url_path(f),
            "content_type": f.content_type,
            "file_name": f.file_name,
            "file_size": f.size,
        }

    def put(self, source: Path, *, file_name: str, content_type: str, base_url: str) -> dict[str, Any]:
        try:
            stored = self.adopt(source, file_name=file_name, content_type=content_type)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFull("no space left to store the output") from exc
            raise StorageError(f"storing the output failed: {exc}") from exc
        return self.file_json(stored, base_url)

    def read_own(self, url: str) -> bytes | None:
        path = self.own.file_path(url) if self.own is not None else None
        parsed = self.parse_url_path(path) if path is not None else None
        if parsed is None:
            return None
        stored = self.get(*parsed)
        return None if stored is None else stored.path.read_bytes()

    # Writing -----------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """A fresh file id (to promise a URL before the bytes arrive, see ``asave_stream``)."""
        return secrets.token_hex(16)

    @staticmethod
    def stored_name(file_name: str | None, content_type: str) -> str:
        """The name a file gets on disk and in its URL: sanitized, never a sidecar's name."""
        name = sanitize_file_name(file_name, content_type)
        return "file_" + name if name in _RESERVED else name

    def _new_dir(self, file_id: str | None = None) -> tuple[str, Path]:
        file_id = file_id or self.new_id()
        if not _ID_RE.fullmatch(file_id):
            raise ValueError(f"invalid file id {file_id!r}")
        folder = self.root / file_id
        folder.mkdir(parents=True)  # an existing id is an error, never an overwrite
        return file_id, folder

    def _finish(
        self,
        file_id: str,
        folder: Path,
        tmp: Path,
        size: int,
        head: bytes,
        file_name: str | None,
        content_type: str | None,
    ) -> StoredFile:
        sniffed = sniff_content_type(head)
        # Trust the bytes over a declared type; keep a declared type only for what we cannot sniff.
        ctype = sniffed or (content_type or "").split(";")[0].strip().lower() or "application/octet-stream"
        name = self.stored_name(file_name, ctype)
        path = folder / name
        os.replace(tmp, path)
        created = time.time()
        meta = {"file_name": name, "content_type": ctype, "size": size, "created_at": created}
        meta_tmp = folder / _META_TMP
        meta_tmp.write_text(json.dumps(meta))
        os.replace(meta_tmp, folder / _META)
        return StoredFile(file_id, name, ctype, size, path, created)

    def save_bytes(self, data: bytes, *, file_name: str | None = None, content_type: str | None = None) -> StoredFile:
        file_id, folder = self._new_dir()
        tmp = folder / ".upload.tmp"
        try:
            tmp.write_bytes(data)
            return self._finish(file_id, folder, tmp, len(data), data[:16], file_name, content_type)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    async def asave_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        file_name: str | None = None,
        content_type: str | None = None,
        file_id: str | None = None,
    ) -> StoredFile:
        """Store a byte stream; raises ``ValueError`` (and keeps nothing) once it passes ``max_bytes``.

        ``file_id`` stores it under an id handed out earlier with :meth:`new_id`.
        """
        file_id, folder = self._new_dir(file_id)
        tmp = folder / ".upload.tmp"
        size = 0
        head = b""
        try:
            with tmp.open("wb") as fh:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > max_bytes:
                        raise ValueError(f"the file is larger than {max_bytes} bytes")
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    fh.write(chunk)
            return self._finish(file_id, folder, tmp, size, head, file_name, content_type)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def adopt(self, src: Path, *, file_name: str, content_type: str) -> StoredFile:
        """Move an existing file (e.g. a rendered MP4 in the work dir) into storage."""
        src = Path(src)
        if not src.is_file():
            raise FileNotFoundError(src)
        file_id, folder = self._new_dir()
        tmp = folder / ".upload.tmp"
        try:
            shutil.move(str(src), tmp)
            with tmp.open("rb") as fh:
                head = fh.read(16)
            return self._finish(file_id, folder, tmp, tmp.stat().st_size, head, file_name, content_type)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    # Reading -----------------------------------------------------------------
    def get(self, file_id: str, name: str | None = None) -> StoredFile | None:
        """The stored file, or ``None`` (unknown id, wrong name, or a half-written file)."""
        if not _ID_RE.fullmatch(file_id):
            return None
        folder = self.root / file_id
        try:
            meta = json.loads((folder / _META).read_text())
        except (OSError, ValueError):
            return None
        if name is not None and name != meta["file_name"]:
            return None
        path = folder / meta["file_name"]
        if not path.is_file():
            return None
        return StoredFile(
            file_id, meta["file_name"], meta["content_type"], int(meta["size"]), path, float(meta["created_at"])
        )

    @staticmethod
    def url_path(f: StoredFile) -> str:
        return f"/files/{f.id}/{f.file_name}"

    @staticmethod
    def parse_url_path(path: str) -> tuple[str, str] | None:
        """``/files/{id}/{name}`` → ``(id, name)``; anything else → ``None``."""
        parts = path.split("/")
        if len(parts) != 4 or parts[0] != "" or parts[1] != "files":
            return None
        if not _ID_RE.fullmatch(parts[2]) or not parts[3] or parts[3] in {".", ".."}:
            return None
        return parts[2], parts[3]

    # Deleting ----------------------------------------------------------------
    def delete(self, file_id: str) -> bool:
        if not _ID_RE.fullmatch(file_id):
            return False
        folder = self.root / file_id
        if not folder.exists():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def purge_older_than(self, age_s: float, *, now: float | None = None) -> int:
        """Delete files created more than ``age_s`` ago; returns how many went."""
        cutoff = (time.time() if now is None else now) - age_s
        removed = 0
        for folder in self.root.iterdir():
            if not folder.is_dir() or not _ID_RE.fullmatch(folder.name):
                continue
            stored = self.get(folder.name)
            try:
                created = stored.created_at if stored else folder.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile (a job's output purged with its job)
                continue
            if created < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


def open_storage(settings: Settings) -> FileStorage | S3Storage:
    """The storage of a server or worker with these settings: files under the data dir (or
    ``KINEMA_STORAGE_URL``), or objects for an ``s3://`` URL (chosen by ``kinema.jobs.backends.open_storage``)."""
    if (settings.storage_url or "").startswith("s3://"):
        # Imported here: kinema.jobs.backends imports this module (and boto3 only for s3://).
        from kinema.jobs.backends import open_storage as open_configured

        return open_configured(settings)
    return FileStorage(settings.files_dir, OwnUrls.of(settings))
