"""The client of fal's queue protocol shared by ``generate --server``, ``batch --server`` and
``kinema status|result|cancel``.

Works against a kinema server or any fal-compatible one: submit, then the SSE status stream
(polling ``…/status?logs=1`` when streaming is unavailable), result, cancel, file upload, download.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kinema import ENDPOINT_ID, __version__
from kinema.cli.local import format_detail
from kinema.cli.main import CliError

__all__ = ["QueueClient", "RemoteError", "ServerUnusable", "OnUpdate", "download", "OWNER_ALIAS"]

OWNER_ALIAS = "/".join(ENDPOINT_ID.split("/")[:2])
#: Seconds between status polls when the stream is unavailable.
POLL_S = 0.5
#: A stream silent for this long (the server pings every ≤ 15 s) is treated as dropped.
STREAM_READ_TIMEOUT_S = 60.0

OnUpdate = Callable[[dict[str, Any], list[dict[str, Any]]], None]


class ServerUnusable(CliError):
    """The server cannot be used at all (unreachable, key refused): no point trying other requests."""


class RemoteError(Exception):
    """The server answered a request with an error (or the request ended in one)."""

    def __init__(self, status_code: int, body: Any, request_id: str | None = None):
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        super().__init__(self.describe())

    @property
    def detail(self) -> Any:
        return self.body.get("detail") if isinstance(self.body, dict) else self.body

    @property
    def error_type(self) -> str | None:
        return self.body.get("error_type") if isinstance(self.body, dict) else None

    def describe(self, flags: Any = None) -> str:
        kind = f" {self.error_type}" if self.error_type else ""
        what = f"request {self.request_id} failed" if self.request_id else "the server refused the request"
        return f"{what} ({self.status_code}{kind}): {format_detail(self.detail, flags)}"

    def record(self) -> dict[str, Any]:
        """The error as a JSON object for ``results.jsonl``."""
        out: dict[str, Any] = {"http_status": self.status_code, "detail": self.detail}
        if self.error_type:
            out["error_type"] = self.error_type
        if self.request_id:
            out["request_id"] = self.request_id
        return out


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


class QueueClient:
    """fal's queue protocol over HTTP; the key is only ever sent to the server's own origin."""

    def __init__(self, server: str, key: str, *, timeout: float = 30.0):
        server = server.strip().rstrip("/")
        if not server.lower().startswith(("http://", "https://")):
            raise CliError(f"--server must be an http:// or https:// URL, got {server!r}")
        self.server = server
        self._auth = {"Authorization": f"Key {key}"}
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": f"kinema-cli/{__version__}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _headers(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        own = _origin(url) == _origin(self.server)
        return {**(self._auth if own else {}), **(extra or {})}

    def _check_auth(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise ServerUnusable(
                f"{self.server} refused the key ({response.status_code}): {_detail_text(response)}; "
                "pass --key or set KINEMA_KEY / FAL_KEY"
            )

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        kw["headers"] = self._headers(url, kw.get("headers"))
        try:
            response = self._http.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerUnusable(f"cannot reach the server at {self.server}: {exc}") from None
        except httpx.TimeoutException:
            raise ServerUnusable(f"the server at {self.server} did not answer in time ({method} {url})") from None
        except httpx.HTTPError as exc:
            raise CliError(f"HTTP error talking to {self.server}: {type(exc).__name__}: {exc}") from None
        self._check_auth(response)
        return response

    def urls(self, request_id: str) -> dict[str, str]:
        root = f"{self.server}/{OWNER_ALIAS}/requests/{request_id}"
        return {"response_url": root, "status_url": root + "/status", "cancel_url": root + "/cancel"}

    # -- the protocol ------------------------------------------------------------------------
    def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a request; returns fal's IN_QUEUE body (request_id and the three URLs)."""
        r = self.request("POST", f"{self.server}/{ENDPOINT_ID}", json=payload)
        if r.status_code != 200:
            raise RemoteError(r.status_code, _json(r))
        body = _json(r)
        if not isinstance(body, dict) or "request_id" not in body:
            raise CliError(f"{self.server} answered the submit without a request_id: {r.text[:200]}")
        rid = body["request_id"]
        for name, url in self.urls(rid).items():
            body.setdefault(name, url)
        return body

    def status(self, status_url: str, *, logs: bool = True) -> dict[str, Any]:
        r = self.request("GET", status_url, params={"logs": "1" if logs else "0"})
        if r.status_code not in (200, 202):
            raise RemoteError(r.status_code, _json(r))
        return _json(r)  # type: ignore[no-any-return]

    def stream(self, status_url: str, *, logs: bool = True) -> Iterator[dict[str, Any]]:
        """Status events from the SSE stream; raises :class:`RemoteError` if the server has none."""
        timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_S)
        url = status_url.rstrip("/") + "/stream"
        try:
            with self._http.stream(
                "GET",
                url,
                params={"logs": "1" if logs else "0"},
                timeout=timeout,
                headers=self._headers(url, {"Accept": "text/event-stream"}),
            ) as r:
                self._check_auth(r)
                if r.status_code != 200 or not r.headers.get("content-type", "").startswith("text/event-stream"):
                    r.read()
                    raise RemoteError(r.status_code, _json(r))
                data: list[str] = []
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif line == "" and data:
                        yield json.loads("\n".join(data))
                        data = []
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise RemoteError(0, {"detail": f"status stream broke: {type(exc).__name__}: {exc}"}) from None

    def result(self, response_url: str) -> tuple[int, Any]:
        r = self.request("GET", response_url)
        return r.status_code, _json(r)

    def cancel(self, cancel_url: str) -> tuple[int, Any]:
        r = self.request("PUT", cancel_url)
        return r.status_code, _json(r)

    def upload(self, path: Path) -> str:
        """Upload a file with ``POST /files/upload`` (kinema servers) and return its URL."""
        from kinema.cli.local import data_uri

        ctype = data_uri(path).split(";", 1)[0][5:]  # same type detection as data URIs
        with path.open("rb") as f:
            r = self.request(
                "POST",
                f"{self.server}/files/upload",
                content=f.read(),
                headers={"Content-Type": ctype, "X-Fal-File-Name": path.name},
            )
        if r.status_code != 200:
            raise CliError(f"upload of {path} failed ({r.status_code}): {_detail_text(r)}")
        return str(_json(r)["url"])

    def follow(self, submitted: dict[str, Any], on_update: OnUpdate) -> dict[str, Any]:
        """Watch a request until COMPLETED; ``on_update(status, new_logs)`` sees every change.

        Uses the SSE stream, falling back to polling if the server has none or it drops.
        """
        status_url = submitted["status_url"]
        seen_logs = 0
        try:
            for event in self.stream(status_url):
                new = event.get("logs") or []
                seen_logs += len(new)
                on_update(event, new)
                if event.get("status") == "COMPLETED":
                    return event
        except RemoteError:
            pass  # no stream here, or it dropped: poll instead
        while True:
            body = self.status(status_url)
            logs = body.get("logs") or []
            new = logs[seen_logs:]
            seen_logs = max(seen_logs, len(logs))
            on_update(body, new)
            if body.get("status") == "COMPLETED":
                return body
            time.sleep(POLL_S)


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {"detail": r.text[:500] or f"HTTP {r.status_code}"}


def _detail_text(r: httpx.Response) -> str:
    body = _json(r)
    detail = body.get("detail") if isinstance(body, dict) else body
    return format_detail(detail)


# -- downloading ----------------------------------------------------------------------------
def download(
    client: QueueClient, url: str, dest: Path, on_progress: Callable[[int, int | None], None] | None = None
) -> int:
    """Save ``url`` (http(s) or data URI) to ``dest`` via a partial file; returns the byte count."""
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        if url.startswith("data:"):
            _, _, b64 = url.partition(",")
            partial.write_bytes(base64.b64decode(b64))
        else:
            try:
                with client._http.stream("GET", url, headers=client._headers(url), timeout=60.0) as r:
                    if r.status_code != 200:
                        r.read()
                        raise CliError(f"download of {url} failed ({r.status_code}): {_detail_text(r)}")
                    total = int(r.headers["content-length"]) if r.headers.get("content-length", "").isdigit() else None
                    done = 0
                    with partial.open("wb") as f:
                        for chunk in r.iter_bytes(1 << 16):
                            f.write(chunk)
                            done += len(chunk)
                            if on_progress is not None:
                                on_progress(done, total)
            except httpx.HTTPError as exc:
                raise CliError(f"download of {url} failed: {type(exc).__name__}: {exc}") from None
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest.stat().st_size
