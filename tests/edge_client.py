"""Raw-socket helpers for the edge tests: bodies the usual clients will not send, and process memory.

status, headers, body = send_chunked(server, "/path", chunks, headers)
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from server import Server

__all__ = ["Reply", "children", "fd_count", "open_socket", "peak_rss_mib", "read_reply", "rss_mib", "send_chunked"]

Reply = tuple[int, dict[str, str], bytes]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident size (VmHWM) since it started."""
    return _status_kib(pid, "VmHWM") / 1024


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_socket(server: Server, timeout: float = 30.0) -> socket.socket:
    host, port = server.host_port.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_reply(sock: socket.socket, deadline_s: float = 30.0) -> Reply:
    """Read one HTTP/1.1 response (Content-Length framed) from ``sock``."""
    data = b""
    end = time.monotonic() + deadline_s
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.1, end - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        sock.settimeout(max(0.1, end - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _frames(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def send_chunked(
    server: Server,
    path: str,
    chunks: Iterable[bytes],
    headers: dict[str, str],
    deadline_s: float = 120.0,
    method: str = "POST",
) -> tuple[Reply, int]:
    """POST (or ``method``) ``chunks`` with ``Transfer-Encoding: chunked``, reading the reply as soon as one comes
    (the server may answer before the body ends); returns the reply and how many body bytes were sent."""
    sock = open_socket(server)
    head = [f"{method} {path} HTTP/1.1", f"Host: {server.host_port}", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    end = time.monotonic() + deadline_s
    try:
        for frame in _frames(chunks):
            view = memoryview(frame)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], max(0.0, end - time.monotonic()))
                if readable:
                    return read_reply(sock), sent
                if not writable:
                    raise TimeoutError("the server neither read nor answered")
                try:
                    n = sock.send(view)
                except (BrokenPipeError, ConnectionResetError):
                    return read_reply(sock), sent
                view = view[n:]
                sent += n
        return read_reply(sock), sent
    finally:
        sock.close()
