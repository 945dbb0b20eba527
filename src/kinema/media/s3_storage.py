"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, R2…): ``KINEMA_STORAGE_URL=s3://bucket/prefix``.

The same interface as the local :class:`~kinema.media.storage.FileStorage`, so the API, the workers
and the retention sweep do not know which one they hold:

- a file keeps its kinema URL ``/files/{id}/{name}`` (what fal clients receive and put into inputs);
  its bytes are the object ``<prefix>/{id}/{name}``, its content type the object's ``Content-Type``,
  its creation time the object's ``x-amz-meta-created-at`` (``LastModified`` if absent);
- uploads (``POST /files/upload`` and fal's ``/storage/upload/initiate`` PUT flow) are spooled to a
  temporary file under the byte cap, then written with one ``PutObject``: nothing half-written is
  ever visible, and an upload over the cap leaves no object;
- a job's input that is one of the server's own file URLs is read with ``GetObject`` (never over
  HTTP through the server); outputs are ``put`` from the worker's work file;
- ``GET /files/{id}/{name}`` either redirects to a presigned ``GetObject`` URL
  (``KINEMA_S3_DOWNLOADS=redirect``; the store must be reachable by clients, see
  ``KINEMA_S3_PUBLIC_ENDPOINT_URL``) or is streamed by kinema (``stream``, the default);
- retention deletes the objects of purged jobs and every object older than the retention period.

Endpoint, region and credentials come from ``KINEMA_S3_ENDPOINT_URL`` / ``KINEMA_S3_REGION`` or
boto3's usual sources (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance roles). boto3 is the optional
extra ``s3`` (``pip install 'kinema[s3]'``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kinema.errors import StorageError
from kinema.media.storage import FileStorage, OwnUrls, StoredFile, sniff_content_type
from kinema.settings import Settings

__all__ = [
    "ADDRESSING_STYLES",
    "DOWNLOAD_MODES",
    "S3Location",
    "S3Storage",
    "S3StoredFile",
    "open_s3_storage",
    "parse_s3_url",
]

#: ``KINEMA_S3_DOWNLOADS`` values.
DOWNLOAD_MODES = ("redirect", "stream")
#: ``KINEMA_S3_ADDRESSING_STYLE`` values (botocore's).
ADDRESSING_STYLES = ("auto", "path", "virtual")
#: Uploads up to this size stay in memory while spooled; larger ones go to a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024
#: Streamed downloads are read from the object in chunks of this size.
STREAM_CHUNK = 256 * 1024
#: The retention sweep over the whole prefix runs at most this often (each run lists every object).
SWEEP_EVERY_S = 600.0
_CREATED = "created-at"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    #: ``""`` or a prefix ending in ``/``.
    prefix: str

    def key(self, file_id: str, name: str) -> str:
        return f"{self.prefix}{file_id}/{name}"


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` → ``S3Location("bucket", "some/prefix/")``; ``ValueError`` otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"storage URL must be s3://bucket[/prefix], not {url!r}")
    prefix = parts.path.strip("/")
    return S3Location(parts.netloc, prefix + "/" if prefix else "")


@dataclass(frozen=True)
class S3StoredFile(StoredFile):
    """A stored file whose bytes are an object; ``path`` is the object's key (not a local file)."""

    key: str = ""


class S3Storage:
    """Implements :class:`~kinema.media.storage.Storage` and the API's file methods over one bucket/prefix."""

    def __init__(
        self,
        client: Any,
        location: S3Location,
        own: OwnUrls | None = None,
        *,
        downloads: str = "stream",
        presign_client: Any = None,
        presign_expires_s: float = 3600.0,
    ):
        if downloads not in DOWNLOAD_MODES:
            raise ValueError(f"KINEMA_S3_DOWNLOADS must be one of {', '.join(DOWNLOAD_MODES)}, not {downloads!r}")
        self.client = client
        self.location = location
        self.own = own
        self.downloads = downloads
        self._presign = presign_client or client
        self.presign_expires_s = presign_expires_s
        self._last_sweep = float("-inf")

    # Names and URLs: the same as the local storage's ---------------------------------------
    new_id = staticmethod(FileStorage.new_id)
    stored_name = staticmethod(FileStorage.stored_name)
    url_path = staticmethod(FileStorage.url_path)
    parse_url_path = staticmethod(FileStorage.parse_url_path)

    def file_json(self, f: StoredFile, base_url: str) -> dict[str, Any]:
        return {
            "url": base_url.rstrip("/") + self.url_path(f),
            "content_type": f.content_type,
            "file_name": f.file_name,
            "file_size": f.size,
        }

    def describe(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    # The Storage interface ----------------------------------------------------------------
    def put(self, source: Path, *, file_name: str, content_type: str, base_url: str) -> dict[str, Any]:
        source = Path(source)
        with source.open("rb") as fh:
            head = fh.read(16)
            fh.seek(0)
            stored = self._write(
                fh, source.stat().st_size, head, self.new_id(), file_name, content_type, what="storing the output"
            )
        source.unlink(missing_ok=True)  # the interface moves the file
        return self.file_json(stored, base_url)

    def read_own(self, url: str) -> bytes | None:
        path = self.own.file_path(url) if self.own is not None else None
        parsed = self.parse_url_path(path) if path is not None else None
        if parsed is None:
            return None
        try:
            obj = self.client.get_object(Bucket=self.location.bucket, Key=self.location.key(*parsed))
            return bytes(obj["Body"].read())
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"reading {url} from the object store failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"reading {url} from the object store failed: {exc}") from exc

    # Writing ------------------------------------------------------------------------------
    def _write(
        self,
        body: IO[bytes],
        size: int,
        head: bytes,
        file_id: str,
        file_name: str | None,
        content_type: str | None,
        *,
        what: str,
    ) -> S3StoredFile:
        sniffed = sniff_content_type(head)
        # As the local storage does: trust the bytes over a declared type.
        ctype = sniffed or (content_type or "").split(";")[0].strip().lower() or "application/octet-stream"
        name = self.stored_name(file_name, ctype)
        key = self.location.key(file_id, name)
        created = time.time()
        try:
            self.client.put_object(
                Bucket=self.location.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentType=ctype,
                Metadata={_CREATED: repr(created)},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{what} failed: {exc}") from exc
        return S3StoredFile(file_id, name, ctype, size, Path(key), created, key=key)

    def save_bytes(self, data: bytes, *, file_name: str | None = None, content_type: str | None = None) -> S3StoredFile:
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as fh:
            fh.write(data)
            fh.seek(0)
            return self._write(
                fh,
                len(data),
                data[:16],
                self.new_id(),
                file_name,
                content_type,
                what="storing the upload",
            )

    async def asave_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        file_name: str | None = None,
        content_type: str | None = None,
        file_id: str | None = None,
    ) -> S3StoredFile:
        """Spool the stream under ``max_bytes`` (``ValueError`` past it: no object is written), then put it."""
        file_id = file_id or self.new_id()
        if self.parse_url_path(f"/files/{file_id}/x") is None:
            raise ValueError(f"invalid file id {file_id!r}")
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as fh:
            size = 0
            head = b""
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"the file is larger than {max_bytes} bytes")
                if len(head) < 16:
                    head += chunk[: 16 - len(head)]
                fh.write(chunk)
            fh.seek(0)
            return await asyncio.to_thread(
                self._write,
                fh,
                size,
                head,
                file_id,
                file_name,
                content_type,
                what="storing the upload",
            )

    # Reading ------------------------------------------------------------------------------
    def get(self, file_id: str, name: str | None = None) -> S3StoredFile | None:
        """The stored file (one ``HeadObject``), or ``None``."""
        if name is None:
            keys = self._keys(f"{self.location.prefix}{file_id}/")
            if not keys:
                return None
            name = keys[0][0].rsplit("/", 1)[-1]
        if self.parse_url_path(f"/files/{file_id}/{name}") is None:
            return None
        key = self.location.key(file_id, name)
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"reading {key} from the object store failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"reading {key} from the object store failed: {exc}") from exc
        meta = head.get("Metadata") or {}
        try:
            created = float(meta[_CREATED])
        except (KeyError, ValueError):
            created = head["LastModified"].timestamp()
        return S3StoredFile(
            file_id,
            name,
            head.get("ContentType") or "application/octet-stream",
            int(head["ContentLength"]),
            Path(key),
            created,
            key=key,
        )

    def presigned_url(self, f: S3StoredFile) -> str:
        """A time-limited ``GetObject`` URL for ``f`` (on ``KINEMA_S3_PUBLIC_ENDPOINT_URL`` when set)."""
        url: str = self._presign.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": f.key, "ResponseContentType": f.content_type},
            ExpiresIn=int(self.presign_expires_s),
        )
        return url

    def open_object(self, f: S3StoredFile, byte_range: str | None = None) -> tuple[dict[str, Any], Iterator[bytes]]:
        """``GetObject`` (optionally one ``Range``): its response headers and an iterator over its body."""
        kw: dict[str, Any] = {"Bucket": self.location.bucket, "Key": f.key}
        if byte_range:
            kw["Range"] = byte_range
        try:
            obj = self.client.get_object(**kw)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"reading {f.key} from the object store failed: {exc}") from exc
        body = obj["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(STREAM_CHUNK)
            finally:
                body.close()

        return obj, chunks()

    # Deleting -----------------------------------------------------------------------------
    def _keys(self, prefix: str) -> list[tuple[str, float]]:
        """``(key, last_modified)`` of every object under ``prefix``."""
        out: list[tuple[str, float]] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
            for page in pages:
                out += [(o["Key"], o["LastModified"].timestamp()) for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"listing {prefix!r} in the object store failed: {exc}") from exc
        return out

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            try:
                self.client.delete_objects(Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"deleting objects failed: {exc}") from exc

    def delete(self, file_id: str) -> bool:
        if self.parse_url_path(f"/files/{file_id}/x") is None:
            return False
        keys = [k for k, _ in self._keys(f"{self.location.prefix}{file_id}/")]
        self._delete_keys(keys)
        return bool(keys)

    def purge_older_than(self, age_s: float, *, now: float | None = None) -> int:
        """Delete the files (objects under the prefix) older than ``age_s``; returns how many files went.

        The sweep lists the whole prefix (one ``ListObjectsV2`` per 1000 objects), so it runs at most every
        ``min(SWEEP_EVERY_S, age_s / 4)``; the files of purged jobs are deleted one by one by
        :meth:`delete` in between, and the sweep only catches files no job points to (unused uploads).
        """
        now = time.time() if now is None else now
        if now - self._last_sweep < min(SWEEP_EVERY_S, age_s / 4):
            return 0
        self._last_sweep = now
        cutoff = now - age_s
        old: list[str] = []
        files: set[str] = set()
        for key, modified in self._keys(self.location.prefix):
            rest = key[len(self.location.prefix) :].split("/")
            if len(rest) != 2 or self.parse_url_path(f"/files/{rest[0]}/{rest[1] or 'x'}") is None:
                continue  # not one of ours (another tool's object under the same prefix)
            if modified < cutoff:
                old.append(key)
                files.add(rest[0])
        self._delete_keys(old)
        return len(files)


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _client(settings: Settings, endpoint_url: str | None) -> Any:
    config = Config(s3={"addressing_style": settings.s3_addressing_style}, retries={"mode": "standard"})
    # endpoint_url/region None: boto3 reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS_REGION itself.
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=settings.s3_region, config=config
    )


def open_s3_storage(settings: Settings) -> S3Storage:
    """The S3 storage of ``settings.storage_url`` (``s3://bucket/prefix``)."""
    assert settings.storage_url is not None
    location = parse_s3_url(settings.storage_url)
    if settings.s3_addressing_style not in ADDRESSING_STYLES:
        raise ValueError(
            f"KINEMA_S3_ADDRESSING_STYLE must be one of {', '.join(ADDRESSING_STYLES)},"
            f" not {settings.s3_addressing_style!r}"
        )
    client = _client(settings, settings.s3_endpoint_url)
    presign = _client(settings, settings.s3_public_endpoint_url) if settings.s3_public_endpoint_url else None
    return S3Storage(
        client,
        location,
        OwnUrls.of(settings),
        downloads=settings.s3_downloads,
        presign_client=presign,
        presign_expires_s=settings.s3_presign_expires_s,
    )
