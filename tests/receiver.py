"""A real webhook receiver on loopback for service tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Receiver"]


class Receiver:
    """A real HTTP receiver on loopback that fails the first ``fail_first`` deliveries and takes
    ``delay_s`` to answer each one."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrival_times: list[float] = []
        self.fail_first = fail_first
        self.delay_s = delay_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                outer.arrival_times.append(time.monotonic())
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                code = 500 if len(outer.received) <= outer.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
