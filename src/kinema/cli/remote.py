"""``kinema status|result|cancel``, and the client of fal's queue protocol they share with
``generate --server`` and ``batch --server``.

Works against a kinema server or any fal-compatible one: submit, then the SSE status stream
(polling ``…/status?logs=1`` when streaming is unavailable), result, cancel, file upload.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from kinema import ENDPOINT_ID, __version__
from kinema.cli.main import CliError
from kinema.cli.local import format_detail
from kinema.cli.progress import ProgressBar

__all__ = [
    "register",
    "add_server_args",
    "server_and_key",
    "QueueClient",
    "RemoteError",
    "ServerUnusable",
    "RemoteResult",
    "run_remote",
    "download",
]

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

    def __enter__(self) -> "QueueClient":
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
            with self._http.stream("GET", url, params={"logs": "1" if logs else "0"}, timeout=timeout,
                                   headers=self._headers(url, {"Accept": "text/event-stream"})) as r:
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
            r = self.request("POST", f"{self.server}/files/upload", content=f.read(),
                             headers={"Content-Type": ctype, "X-Fal-File-Name": path.name})
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
def download(client: QueueClient, url: str, dest: Path, on_progress: Callable[[int, int | None], None] | None = None
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


# -- one request, start to finish --------------------------------------------------------------
@dataclass(frozen=True)
class RemoteResult:
    request_id: str
    output: dict[str, Any]
    path: Path | None
    wall_s: float


def _show(bar: ProgressBar | None, verbose: bool) -> OnUpdate:
    def on_update(body: dict[str, Any], new_logs: list[dict[str, Any]]) -> None:
        if bar is None:
            return
        if verbose:
            for entry in new_logs:
                bar.log(f"[{entry.get('level', 'INFO')}] {entry.get('message', '')}")
        status = body.get("status")
        if status == "IN_QUEUE":
            bar.update(f"queued (position {body.get('queue_position', '?')})")
        elif status == "IN_PROGRESS":
            prog = body.get("progress")
            if isinstance(prog, dict) and prog.get("total"):
                bar.update("rendering", prog.get("step", 0), prog["total"], "frames")
            else:
                bar.update("running")
    return on_update


def run_remote(
    client: QueueClient,
    payload: dict[str, Any],
    out: Path | None,
    *,
    bar: ProgressBar | None = None,
    verbose: bool = False,
    on_submitted: Callable[[dict[str, Any]], None] | None = None,
) -> RemoteResult:
    """Submit, follow to completion, fetch the output and download its video to ``out``.

    Raises :class:`RemoteError` if the request ends in an error; Ctrl-C cancels it on the server.
    """
    t0 = time.monotonic()
    if bar is not None:
        bar.update("submitting")
    submitted = client.submit(payload)
    rid = submitted["request_id"]
    if on_submitted is not None:
        on_submitted(submitted)
    try:
        client.follow(submitted, _show(bar, verbose))
    except KeyboardInterrupt:
        try:
            client.cancel(submitted["cancel_url"])
            print(f"kinema: cancelled request {rid}", file=sys.stderr)
        except CliError:
            pass
        raise
    code, output = client.result(submitted["response_url"])
    if code != 200:
        raise RemoteError(code, output, rid)
    url = output.get("video", {}).get("url") if isinstance(output, dict) else None
    path = None
    if out is not None:
        if not isinstance(url, str):
            raise CliError(f"request {rid}: the output has no video url: {json.dumps(output)[:300]}")
        progress = None
        if bar is not None:
            progress = lambda done, total: bar.update("downloading", done, total, "bytes")  # noqa: E731
        download(client, url, out, progress)
        path = out
    return RemoteResult(rid, output, path, time.monotonic() - t0)


# -- arguments -------------------------------------------------------------------------------
def add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=None, metavar="URL",
                   help="kinema or fal-compatible server, e.g. http://127.0.0.1:8000 (env KINEMA_SERVER)")
    p.add_argument("--key", default=None, help="API key (env KINEMA_KEY or FAL_KEY)")


def server_and_key(args: argparse.Namespace, *, required: bool = True) -> tuple[str, str] | None:
    """The server URL and key from flags or environment; None when no server is named and not required."""
    server = args.server or os.environ.get("KINEMA_SERVER")
    if not server:
        if required:
            raise CliError("no server: pass --server URL or set KINEMA_SERVER")
        return None
    key = args.key or os.environ.get("KINEMA_KEY") or os.environ.get("FAL_KEY")
    if not key:
        raise CliError("no API key for the server: pass --key or set KINEMA_KEY / FAL_KEY")
    return server, key


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("status", help="show a queued request's status and logs as JSON")
    s.add_argument("request_id")
    add_server_args(s)
    s.add_argument("--no-logs", action="store_true", help="leave the logs out")
    s.set_defaults(func=status_cmd)

    r = sub.add_parser("result", help="print a request's output JSON, or download its video")
    r.add_argument("request_id")
    add_server_args(r)
    r.add_argument("--out", type=Path, default=None, metavar="FILE.mp4", help="download the video here")
    r.add_argument("--wait", action="store_true", help="wait for the request to finish first")
    r.set_defaults(func=result_cmd)

    c = sub.add_parser("cancel", help="cancel a queued or running request")
    c.add_argument("request_id")
    add_server_args(c)
    c.set_defaults(func=cancel_cmd)


def _client(args: argparse.Namespace) -> QueueClient:
    server, key = server_and_key(args)  # type: ignore[misc]
    return QueueClient(server, key)


def _not_found(client: QueueClient, rid: str, code: int) -> None:
    if code == 404:
        raise CliError(f"no request {rid} on {client.server} (unknown, expired, or another key's)")


def _print_json(body: Any) -> None:
    print(json.dumps(body, indent=2))


def status_cmd(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            body = client.status(client.urls(args.request_id)["status_url"], logs=not args.no_logs)
        except RemoteError as exc:
            _not_found(client, args.request_id, exc.status_code)
            raise CliError(exc.describe()) from None
        _print_json(body)
    return 0


def result_cmd(args: argparse.Namespace) -> int:
    out: Path | None = args.out
    if out is not None and not out.parent.is_dir():
        raise CliError(f"--out: directory does not exist: {out.parent}")
    with _client(args) as client:
        urls = client.urls(args.request_id)
        if args.wait:
            try:
                client.follow(urls, lambda body, logs: None)
            except RemoteError as exc:
                _not_found(client, args.request_id, exc.status_code)
                raise CliError(exc.describe()) from None
        code, body = client.result(urls["response_url"])
        _not_found(client, args.request_id, code)
        if code == 400 and isinstance(body, dict) and "still in progress" in str(body.get("detail", "")):
            raise CliError(f"request {args.request_id} has not finished yet (try again, or pass --wait)")
        if code != 200:
            raise CliError(RemoteError(code, body, args.request_id).describe())
        if out is None:
            _print_json(body)
            return 0
        url = body.get("video", {}).get("url") if isinstance(body, dict) else None
        if not isinstance(url, str):
            raise CliError(f"request {args.request_id}: the output has no video url")
        bar = ProgressBar()
        size = download(client, url, out, lambda done, total: bar.update("downloading", done, total, "bytes"))
        bar.close()
    from kinema.cli.progress import format_bytes

    print(f"{out}  {format_bytes(size)}")
    return 0


def cancel_cmd(args: argparse.Namespace) -> int:
    with _client(args) as client:
        code, body = client.cancel(client.urls(args.request_id)["cancel_url"])
    _print_json(body)
    return 0 if 200 <= code < 300 else 1
