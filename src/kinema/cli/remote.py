"""``kinema status|result|cancel``, and ``run_remote``: one request through a server's queue,
start to finish (used by ``generate --server`` and ``batch --server``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinema.cli.main import CliError
from kinema.cli.progress import ProgressBar
from kinema.cli.queue_client import OnUpdate, QueueClient, RemoteError, ServerUnusable, download

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
    "log_line",
]


# -- one request, start to finish --------------------------------------------------------------
@dataclass(frozen=True)
class RemoteResult:
    request_id: str
    output: dict[str, Any]
    path: Path | None
    wall_s: float


def log_line(entry: dict[str, Any]) -> str:
    """A status log entry as one line: ``[INFO] input image 512x512; rendering 150 frames``."""
    return f"[{entry.get('level', 'INFO')}] {entry.get('message', '')}"


def _show(bar: ProgressBar | None, log: Callable[[str], None] | None) -> OnUpdate:
    def on_update(body: dict[str, Any], new_logs: list[dict[str, Any]]) -> None:
        if log is not None:  # independent of the bar: -v lines show under -q too
            for entry in new_logs:
                log(log_line(entry))
        if bar is None:
            return
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
    log: Callable[[str], None] | None = None,
    on_submitted: Callable[[dict[str, Any]], None] | None = None,
) -> RemoteResult:
    """Submit, follow to completion, fetch the output and download its video to ``out``.

    ``log`` gets the request's log lines as they arrive (``-v``). Raises :class:`RemoteError` if the
    request ends in an error; Ctrl-C cancels it on the server.
    """
    t0 = time.monotonic()
    if bar is not None:
        bar.update("submitting")
    submitted = client.submit(payload)
    rid = submitted["request_id"]
    if on_submitted is not None:
        on_submitted(submitted)
    try:
        client.follow(submitted, _show(bar, log))
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
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="kinema or fal-compatible server, e.g. http://127.0.0.1:8000 (env KINEMA_SERVER)",
    )
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
