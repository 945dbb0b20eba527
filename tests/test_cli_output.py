"""What the CLI prints: ``-v`` lines with and without ``-q``, every server log line through the stream and
through polling, batch log lines, the Rich bar on a terminal, ``--version``."""

from __future__ import annotations

import contextlib
import http.server
import os
import pty
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server import running_server
from test_cli_generate import KINEMA, cli_env, run_cli, write_photo

from kinema import __version__

INPUT_LINE = "[INFO] input image 512x512; rendering 150 frames"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("srv"), engine="tests/engines/cli_fixture.py:render") as s:
        yield s


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photo(tmp_path_factory.mktemp("img") / "astronaut.png")


@contextlib.contextmanager
def no_stream_proxy(upstream: str) -> Iterator[str]:
    """A real HTTP proxy in front of ``upstream`` that answers 404 to ``…/status/stream`` (a server without
    SSE), so the CLI must poll ``…/status?logs=1``. The Host header is passed on, so the URLs the server
    hands out point at the proxy."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path.split("?", 1)[0].endswith("/status/stream"):
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "22")
                self.end_headers()
                self.wfile.write(b'{"detail": "no stream"}'[:22])
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"content-length", "connection"}}
            r = httpx.request(self.command, upstream + self.path, content=body, headers=headers, timeout=30)
            self.send_response(r.status_code)
            for k, v in r.headers.items():
                if k.lower() not in {"content-length", "transfer-encoding", "connection", "content-encoding"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def _server_log(server, rid: str) -> list[str]:
    body = httpx.get(
        f"{server.url}/fal-ai/kling-video/requests/{rid}/status", params={"logs": "1"}, headers=server.headers
    ).json()
    return [f"[{e['level']}] {e['message']}" for e in body["logs"]]


def _request_id(stdout: str) -> str:
    return stdout.strip().rsplit("request ", 1)[1].split()[0]


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"kinema {__version__}"


def test_verbose_lines_show_under_quiet_in_process(tmp_path: Path, image: Path) -> None:
    out = tmp_path / "o.mp4"
    quiet = run_cli("generate", str(image), "--prompt", "p", "--out", str(out), "-q", "-v")
    assert quiet.returncode == 0, quiet.stderr
    assert "cli fixture engine: 150 frames" in quiet.stderr
    # No bar: "frames" appears only in log lines (the engine's, and the pipeline's "rendering N frames"/"done: …").
    log_lines = ("cli fixture engine:", "input image ", "done: ")
    assert not [line for line in quiet.stderr.splitlines() if "frames" in line and not line.startswith(log_lines)]
    assert len(quiet.stdout.strip().splitlines()) == 1
    silent = run_cli("generate", str(image), "--prompt", "p", "--out", str(out), "-q")
    assert silent.returncode == 0 and silent.stderr == ""


@pytest.mark.parametrize("transport", ["stream", "polling"])
@pytest.mark.parametrize("quiet", [False, True])
def test_every_server_log_line_is_printed_once(
    tmp_path: Path, image: Path, server, transport: str, quiet: bool
) -> None:
    """The CLI prints the server's whole log, in order and once, over SSE and over polling, with or without
    the bar: the ``input image WxH; rendering N frames`` line included."""
    out = tmp_path / "o.mp4"
    with contextlib.ExitStack() as stack:
        url = server.url if transport == "stream" else stack.enter_context(no_stream_proxy(server.url))
        proc = run_cli(
            "generate",
            str(image),
            "--prompt",
            f"x slow {transport} {quiet}",
            "--out",
            str(out),
            "-v",
            *(["-q"] if quiet else []),
            "--server",
            url,
            "--key",
            server.key,
        )
    assert proc.returncode == 0, proc.stderr
    printed = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert printed == _server_log(server, _request_id(proc.stdout))
    assert printed.count(INPUT_LINE) == 1
    assert ("rendering [" in proc.stderr) is not quiet
    assert ("submitted" in proc.stderr) is not quiet


def test_batch_through_a_server_prints_log_lines_per_line(tmp_path: Path, image: Path, server) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        f'{{"prompt": "batch a", "image_url": "{image}"}}\n\n{{"prompt": "batch b", "image_url": "{image}"}}\n'
    )
    proc = run_cli(
        "batch",
        str(jobs),
        "--out-dir",
        str(tmp_path / "out"),
        "-v",
        "-q",
        "--concurrency",
        "2",
        "--server",
        server.url,
        "--key",
        server.key,
    )
    assert proc.returncode == 0, proc.stderr
    for number in (1, 3):
        assert proc.stderr.count(f"line {number}: {INPUT_LINE}") == 1, proc.stderr
        assert f"line {number}: [INFO] cli fixture engine: 150 frames" in proc.stderr


def test_terminal_gets_a_rich_bar_with_log_lines_above(tmp_path: Path, image: Path, server) -> None:
    """On a terminal the bar is Rich's (``━``) and is redrawn in place; -v lines are printed whole."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            KINEMA,
            "generate",
            str(image),
            "--prompt",
            "tty",
            "--out",
            str(tmp_path / "t.mp4"),
            "-v",
            "--server",
            server.url,
            "--key",
            server.key,
        ],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**cli_env(), "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    tty = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, tty
    assert "━" in tty and "\r" in tty
    assert INPUT_LINE in tty
    assert out.decode().startswith(str(tmp_path / "t.mp4"))


def test_error_is_one_line_on_a_terminal_too(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [KINEMA, "generate", str(tmp_path / "missing.png"), "--prompt", "p", "--out", str(tmp_path / "o.mp4")],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**cli_env(), "COLUMNS": "40", "TERM": "xterm"},
    )
    os.close(slave)
    proc.wait(timeout=60)
    text = os.read(master, 65536).decode(errors="replace")
    os.close(master)
    assert proc.returncode == 2
    lines = [ln for ln in text.replace("\r", "").split("\n") if ln]
    assert len(lines) == 1 and "kinema: error: " in lines[0] and "no such file" in lines[0], text
