"""``kinema batch FILE.jsonl --out-dir DIR``: one request per line, resumable.

Each non-blank line is a JSON object in fal's input schema; local paths in its URL fields are
resolved relative to the JSONL file. Videos go to ``DIR/line-0001.mp4`` …; ``DIR/results.jsonl``
holds one record per line (line number, a hash of the line, ok + output or error). A rerun skips
lines whose record is ok with the same hash and whose video still exists; changed lines run again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinema.cli.main import CliError

__all__ = ["register", "BatchLine", "read_lines", "load_results", "RESULTS_NAME", "line_hash", "output_name"]

RESULTS_NAME = "results.jsonl"


@dataclass(frozen=True)
class BatchLine:
    number: int  # 1-based line number in the file
    text: str
    digest: str


def line_hash(text: str) -> str:
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def output_name(number: int) -> str:
    return f"line-{number:04d}.mp4"


def read_lines(path: Path) -> list[BatchLine]:
    """The non-blank lines of a JSONL file, with their numbers and hashes."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    return [BatchLine(i, raw, line_hash(raw)) for i, raw in enumerate(text.splitlines(), 1) if raw.strip()]


def load_results(path: Path) -> dict[int, dict[str, Any]]:
    """Records of an earlier run by line number (unreadable lines are ignored: they are simply redone)."""
    records: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return records
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("line"), int):
            records[rec["line"]] = rec
    return records


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from kinema.cli.remote import add_server_args

    p = sub.add_parser(
        "batch",
        help="make one video per line of a JSONL file (resumable)",
        description="One request per line (fal's input schema as a JSON object); local paths in URL fields "
        "are relative to the JSONL file. Writes DIR/line-NNNN.mp4 and DIR/results.jsonl; rerunning skips "
        "lines already done unless they changed.",
    )
    p.add_argument("file", type=Path, metavar="FILE.jsonl")
    p.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="videos and results.jsonl")
    add_server_args(p)
    p.add_argument("--local", action="store_true", help="run in-process even if KINEMA_SERVER is set")
    p.add_argument(
        "--upload",
        action="store_true",
        help="with --server: upload local files to /files/upload instead of sending data URIs",
    )
    p.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="with --server: requests in flight at once (default 4)"
    )
    p.add_argument("--force", action="store_true", help="redo every line, even those already done")
    p.add_argument("--engine", default=None, help="in-process engine module:function (env KINEMA_ENGINE)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (-v lines still show)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the engine's or server's log lines, each prefixed with its line number",
    )
    p.set_defaults(func=run)


class _Results:
    """``results.jsonl``, rewritten atomically after every finished line."""

    def __init__(self, path: Path, lines: list[BatchLine], previous: dict[int, dict[str, Any]]):
        self.path = path
        current = {ln.number: ln.digest for ln in lines}
        self.records = {n: r for n, r in previous.items() if current.get(n) == r.get("hash")}
        self._lock = threading.Lock()
        self._save()

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.records[record["line"]] = record
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for n in sorted(self.records):
                f.write(json.dumps(self.records[n]) + "\n")
        os.replace(tmp, self.path)


def run(args: argparse.Namespace) -> int:
    from kinema.cli.progress import ProgressBar
    from kinema.cli.remote import server_and_key

    t0 = time.monotonic()
    # 1. Read the batch and what an earlier run finished.
    lines = read_lines(args.file)
    if not lines:
        raise CliError(f"{args.file}: no requests (one JSON object per line expected)")
    if args.local and args.server:
        raise CliError("--local and --server exclude each other")
    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    out_dir: Path = args.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"--out-dir: not a directory: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = _Results(out_dir / RESULTS_NAME, lines, {} if args.force else load_results(out_dir / RESULTS_NAME))
    todo = [ln for ln in lines if args.force or not _done(results.records.get(ln.number), out_dir)]
    skipped = len(lines) - len(todo)

    # 2. Run the lines left, in-process or through the server.
    remote = None if args.local else server_and_key(args, required=False)
    bar = ProgressBar(enabled=not args.quiet)
    counts = {"ok": 0, "error": 0}
    base_dir = args.file.resolve().parent

    def show(note: str) -> None:
        bar.update("batch", skipped + counts["ok"] + counts["error"], len(lines), "lines", note=note)

    def finished(record: dict[str, Any]) -> None:
        results.put(record)
        counts[record["status"]] += 1
        if record["status"] == "error":
            bar.log(f"line {record['line']}: error: {_error_text(record['error'])}")
        show(f"{counts['ok']} ok, {counts['error']} failed")

    _warn_unknown_keys(todo, bar.log)
    show(f"{skipped} already done")
    try:
        if remote is None:
            _run_local(todo, base_dir, out_dir, args, show, bar.log if args.verbose else None, finished)
        else:
            _run_remote(todo, base_dir, out_dir, remote, args, bar.log if args.verbose else None, finished)
    finally:
        bar.close()

    # 3. Summary.
    print(
        f"{counts['ok']} ok, {counts['error']} failed, {skipped} already done; "
        f"results in {results.path}  wall {time.monotonic() - t0:.1f} s"
    )
    return 1 if counts["error"] else 0


def _warn_unknown_keys(lines: list[BatchLine], warn: Callable[[str], None]) -> None:
    """Warn about keys the API does not know (the server ignores them: ``"durration"`` gives 5 s)."""
    from kinema.cli.unknown_keys import find_unknown_keys

    for line in lines:
        try:
            payload = json.loads(line.text)
        except ValueError:
            continue  # reported as the line's error when it runs
        for unknown in find_unknown_keys(payload):
            warn(f"line {line.number}: warning: {unknown}")


def _done(record: dict[str, Any] | None, out_dir: Path) -> bool:
    return bool(record and record.get("status") == "ok" and (out_dir / str(record.get("output", ""))).is_file())


def _error_text(error: dict[str, Any]) -> str:
    from kinema.cli.local import format_detail

    code = error.get("http_status")
    return (f"({code}) " if code else "") + format_detail(error.get("detail"))


def _prepare(line: BatchLine, base_dir: Path) -> dict[str, Any]:
    """The line's request with its local files checked (not yet read); raises InputError."""
    from kinema.cli.local import resolve_files
    from kinema.errors import InputError
    from kinema.schema import parse_input

    try:
        payload = json.loads(line.text)
    except ValueError as exc:
        raise InputError.single(["body"], f"the line is not valid JSON: {exc}", "json_invalid") from None
    if not isinstance(payload, dict):
        raise InputError.single(["body"], "Input should be a JSON object", "model_attributes_type")
    parse_input(resolve_files(payload, base_dir, convert=lambda path, loc: "data:,"))
    return payload


def _ok_record(line: BatchLine, name: str, out_dir: Path, wall_s: float, **extra: Any) -> dict[str, Any]:
    from kinema.cli.generate import probe_video

    info = probe_video(out_dir / name)
    return {
        "line": line.number,
        "hash": line.digest,
        "status": "ok",
        "output": name,
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "duration_s": round(info.duration_s, 3),
        "size": info.size,
        "wall_s": round(wall_s, 2),
        **extra,
    }


def _error_record(line: BatchLine, error: dict[str, Any]) -> dict[str, Any]:
    return {"line": line.number, "hash": line.digest, "status": "error", "error": error}


def _run_local(
    todo: list[BatchLine],
    base_dir: Path,
    out_dir: Path,
    args: argparse.Namespace,
    show: Callable[[str], None],
    log: Callable[[str], None] | None,
    finished: Callable[[dict[str, Any]], None],
) -> None:
    from kinema.cli.local import LocalRenderer, render_local, resolve_files
    from kinema.errors import InputError

    renderer = LocalRenderer(args.engine)  # the engine loads once for the whole file
    for line in todo:
        name = output_name(line.number)
        try:
            payload = _prepare(line, base_dir)
            on_progress = lambda step, total, n=line.number: show(f"line {n}: {step}/{total} frames")  # noqa: E731
            result = render_local(
                resolve_files(payload, base_dir), out_dir / name, renderer=renderer, on_progress=on_progress, on_log=log
            )
            finished(_ok_record(line, name, out_dir, result.wall_s))
        except InputError as exc:
            finished(_error_record(line, {"http_status": 422, "detail": exc.errors}))
        except CliError as exc:
            finished(_error_record(line, {"detail": str(exc)}))


def _run_remote(
    todo: list[BatchLine],
    base_dir: Path,
    out_dir: Path,
    remote: tuple[str, str],
    args: argparse.Namespace,
    log: Callable[[str], None] | None,
    finished: Callable[[dict[str, Any]], None],
) -> None:
    from kinema.cli.local import resolve_files
    from kinema.cli.remote import QueueClient, RemoteError, ServerUnusable, run_remote
    from kinema.errors import InputError

    in_flight: dict[int, str] = {}  # line number → cancel_url
    lock = threading.Lock()

    with QueueClient(*remote) as client:
        convert = (lambda path, loc: client.upload(path)) if args.upload else None

        def one(line: BatchLine) -> dict[str, Any]:
            t0 = time.monotonic()
            name = output_name(line.number)
            try:
                body = resolve_files(_prepare(line, base_dir), base_dir, convert)

                def submitted(s: dict[str, Any]) -> None:
                    with lock:
                        in_flight[line.number] = s["cancel_url"]

                line_log = None if log is None else (lambda message: log(f"line {line.number}: {message}"))
                res = run_remote(client, body, out_dir / name, log=line_log, on_submitted=submitted)
                return _ok_record(
                    line,
                    name,
                    out_dir,
                    time.monotonic() - t0,
                    request_id=res.request_id,
                    video_url=res.output["video"]["url"],
                )
            except InputError as exc:
                return _error_record(line, {"http_status": 422, "detail": exc.errors})
            except RemoteError as exc:
                return _error_record(line, exc.record())
            except ServerUnusable:
                raise
            except CliError as exc:  # e.g. a failed upload or download: this line only
                return _error_record(line, {"detail": str(exc)})
            finally:
                with lock:
                    in_flight.pop(line.number, None)

        pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="kinema-batch")
        pending: set[Future[dict[str, Any]]] = set()
        queue = list(todo)
        try:
            while queue or pending:
                while queue and len(pending) < args.concurrency:
                    pending.add(pool.submit(one, queue.pop(0)))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    finished(fut.result())  # a CliError (server gone, key refused) stops the batch
        except BaseException:
            with lock:
                urls = list(in_flight.values())
            for url in urls:
                try:
                    client.cancel(url)
                except CliError:
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
