"""Slow and idle clients cannot hold the server (issue 7, point 21).

20,000 connections that sent nothing exhausted the server's descriptors and ``/health`` failed until they
closed; a client could also trickle its request head or body for ever.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
from edge_client import fd_count, open_socket, read_reply
from server import running_server

from kinema.api.connections import FD_RESERVE, auto_max_connections

ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"


def _closed_by_server(sock: socket.socket, within_s: float) -> float | None:
    """Seconds until the server closed ``sock`` (``None`` if it stayed open ``within_s``)."""
    start = time.monotonic()
    sock.settimeout(within_s)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - start
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - start


def test_request_head_deadline(tmp_path):
    with running_server(tmp_path, env={"KINEMA_HEADER_TIMEOUT_S": "1.5"}) as server:
        silent = open_socket(server)
        partial = open_socket(server)
        partial.sendall(b"GET /health HTTP/1.1\r\nHost: ")
        t_silent = _closed_by_server(silent, 8)
        t_partial = _closed_by_server(partial, 8)
        assert t_silent is not None and t_partial is not None
        # Slowloris: one header byte every 0.25 s keeps data flowing but never finishes the head.
        slow = open_socket(server)
        start = time.monotonic()
        closed = False
        for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 200:
            try:
                slow.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.25)
            if time.monotonic() - start > 10:
                break
        if not closed:
            closed = _closed_by_server(slow, 1) is not None
        assert closed and time.monotonic() - start < 5
        # A client that sends its head in time is served, also on its second request (keep-alive).
        sock = open_socket(server)
        for _ in range(2):
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: {server.host_port}\r\n\r\n".encode())
            assert read_reply(sock)[0] == 200
        sock.close()


def test_request_body_deadline(tmp_path):
    with running_server(tmp_path, env={"KINEMA_BODY_IDLE_TIMEOUT_S": "1"}) as server:
        sock = open_socket(server)
        sock.sendall(
            (
                f"POST {ENDPOINT} HTTP/1.1\r\nHost: {server.host_port}\r\nAuthorization: Key {server.key}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt": '
            ).encode()
        )
        start = time.monotonic()
        status, headers, body = read_reply(sock, deadline_s=10)
        assert status == 408 and json.loads(body)["error_type"] == "request_timeout"
        assert time.monotonic() - start < 5
        assert headers.get("connection") == "close"


def test_idle_connection_flood_leaves_health_answering(tmp_path):
    limit = 200
    with running_server(tmp_path, env={"KINEMA_MAX_CONNECTIONS": str(limit)}) as server:
        pid = server.proc.pid
        base_fds = fd_count(pid)
        flood = []
        peak = 0
        for i in range(2000):
            flood.append(open_socket(server))
            if i % 250 == 0:
                r = httpx.get(server.url + "/health", timeout=5)
                assert r.status_code == 200
                peak = max(peak, fd_count(pid))
        time.sleep(0.5)
        peak = max(peak, fd_count(pid))
        # /health answers while 2000 idle sockets knock, and the server holds at most `limit` of them.
        for _ in range(5):
            assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        print(f"server descriptors: {base_fds} idle, {peak} at most under a 2000-socket flood (limit {limit})")
        assert peak <= base_fds + limit + 5
        assert "too many open connections" in server.log_text()
        for s in flood:
            s.close()


def test_auto_limit_leaves_a_reserve():
    assert auto_max_connections(1024) == 1024 - FD_RESERVE
    assert auto_max_connections(20_000) == 20_000 - FD_RESERVE
    assert auto_max_connections(100) >= 16
