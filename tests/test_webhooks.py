"""The webhook outbox against a real loopback receiver, verified with an independent Ed25519 check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import math
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kinema.jobs.webhooks import WebhookOutbox, webhook_body
from kinema.media.fetch import address_problem
from kinema.settings import Settings


class Receiver:
    """A loopback HTTP server answering each POST with the next code of ``codes`` (then the last one)."""

    def __init__(self, codes: list[int] | None = None, delay_s: float = 0.0):
        self.codes = codes or [200]
        self.delay_s = delay_s
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                outer.arrived.set()
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                code = outer.codes[min(len(outer.received), len(outer.codes)) - 1]
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(codes: list[int] | None = None, delay_s: float = 0.0) -> Receiver:
        made.append(Receiver(codes, delay_s))
        return made[-1]

    yield make
    for r in made:
        r.close()


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def settings_for(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path, "webhook_allow_private": True, "webhook_timeout_s": 3.0}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def verify(jwks_json: str, headers: dict[str, str], body: bytes) -> bool:
    """Independent receiver-side check: key from the JWKS text only, message rebuilt per the spec."""
    jwk = json.loads(jwks_json)["keys"][0]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "=" not in jwk["x"]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
    message = (
        headers["x-fal-webhook-request-id"]
        + "\n"
        + headers["x-fal-webhook-user-id"]
        + "\n"
        + headers["x-fal-webhook-timestamp"]
        + "\n"
        + hashlib.sha256(body).hexdigest()
    ).encode("utf-8")
    signature = bytes.fromhex(headers["x-fal-webhook-signature"])
    assert len(signature) == 64
    try:
        key.verify(signature, message)
        return True
    except InvalidSignature:
        return False


def test_delivery_is_signed_and_verifies(tmp_path, receiver):
    rx = receiver()
    payload = {
        "video": {
            "url": "https://example.com/v.mp4",
            "content_type": "video/mp4",
            "file_name": "v.mp4",
            "file_size": 123,
        }
    }

    async def main() -> tuple[str, list[dict]]:
        outbox = WebhookOutbox(settings_for(tmp_path))
        body = webhook_body("req-1", "gw-1", True, payload, None)
        outbox.enqueue("req-1", "key-abc", rx.url, body)
        assert await outbox.deliver_due() == 1
        jwks_json = json.dumps(outbox.jwks())
        rows = outbox.deliveries("req-1")
        await outbox.aclose()
        return jwks_json, rows

    jwks_json, rows = asyncio.run(main())
    assert len(rx.received) == 1
    headers, body = rx.received[0]
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "request_id": "req-1",
        "gateway_request_id": "gw-1",
        "status": "OK",
        "payload": payload,
        "error": None,
    }
    assert headers["x-fal-webhook-request-id"] == "req-1" and headers["x-fal-webhook-user-id"] == "key-abc"
    assert abs(int(headers["x-fal-webhook-timestamp"]) - time.time()) < 300
    assert verify(jwks_json, headers, body)
    assert not verify(jwks_json, headers, body.replace(b'"OK"', b'"ER"'))
    assert not verify(jwks_json, {**headers, "x-fal-webhook-timestamp": str(int(time.time()) + 1000)}, body)
    assert not verify(jwks_json, {**headers, "x-fal-webhook-user-id": "someone-else"}, body)
    jwk = json.loads(jwks_json)["keys"][0]
    assert jwk["use"] == "sig" and jwk["alg"] == "EdDSA" and jwk["kid"]
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("delivered", 1, None)]


def test_retries_with_exponential_backoff(tmp_path, receiver):
    rx = receiver([500, 500, 200])
    clock = FakeClock()
    t0 = clock.now

    async def main() -> list[list[dict]]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_backoff_s=15.0), clock=clock)
        outbox.enqueue("req-2", "key-abc", rx.url, webhook_body("req-2", "req-2", True, {"a": 1}, None))
        snapshots = []
        assert await outbox.deliver_due() == 1
        snapshots.append(outbox.deliveries("req-2"))
        clock.now = t0 + 14.9  # before the first backoff ends: nothing due
        assert await outbox.deliver_due() == 0
        clock.now = snapshots[-1][0]["next_attempt_at"]
        assert await outbox.deliver_due() == 1
        snapshots.append(outbox.deliveries("req-2"))
        clock.now = snapshots[-1][0]["next_attempt_at"]
        assert await outbox.deliver_due() == 1
        snapshots.append(outbox.deliveries("req-2"))
        assert await outbox.deliver_due() == 0
        await outbox.aclose()
        return snapshots

    s1, s2, s3 = (s[0] for s in asyncio.run(main()))
    assert (s1["status"], s1["attempts"], s1["last_error"]) == ("pending", 1, "HTTP 500")
    assert 15.0 <= s1["next_attempt_at"] - t0 < 16.5
    t1 = s1["next_attempt_at"]
    assert (s2["status"], s2["attempts"]) == ("pending", 2)
    assert 30.0 <= s2["next_attempt_at"] - t1 < 33.0
    assert (s3["status"], s3["attempts"], s3["last_error"]) == ("delivered", 3, None)
    assert len(rx.received) == 3
    # every attempt is signed afresh with the time of that attempt
    stamps = [int(h["x-fal-webhook-timestamp"]) for h, _ in rx.received]
    assert stamps == [int(t0), int(t1), int(s2["next_attempt_at"])]
    assert len({h["x-fal-webhook-signature"] for h, _ in rx.received}) == 3


def test_run_loop_retries_with_injected_sleep(tmp_path, receiver):
    rx = receiver([503, 200])
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        await asyncio.sleep(0.005)

    async def main() -> list[dict]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_backoff_s=100.0), clock=clock, sleep=fake_sleep)
        outbox.enqueue("req-3", "u", rx.url, webhook_body("req-3", "req-3", False, {"detail": "x"}, "x"))
        task = asyncio.create_task(outbox.run())
        for _ in range(500):
            if outbox.deliveries("req-3")[0]["status"] in ("delivered", "failed"):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rows = outbox.deliveries("req-3")
        await outbox.aclose()
        return rows

    rows = asyncio.run(main())
    assert (rows[0]["status"], rows[0]["attempts"]) == ("delivered", 2)
    assert len(rx.received) == 2
    # the loop slept (in poll-sized steps) until the backoff was over, then retried at once
    t1, t2 = (int(h["x-fal-webhook-timestamp"]) for h, _ in rx.received)
    assert t2 - t1 >= 100 and max(slept) <= 30.0 and sum(slept) >= 100, slept
    assert json.loads(rx.received[0][1])["status"] == "ERROR"


def test_wake_from_another_thread(tmp_path, receiver):
    rx = receiver()

    async def main() -> float:
        outbox = WebhookOutbox(settings_for(tmp_path))
        task = asyncio.create_task(outbox.run())
        await asyncio.sleep(0.2)  # the loop is idle now, waiting up to POLL_S

        def from_thread() -> None:
            outbox.enqueue("req-4", "u", rx.url, webhook_body("req-4", "req-4", True, 1, None))
            outbox.wake()

        start = time.monotonic()
        threading.Thread(target=from_thread).start()
        await asyncio.get_running_loop().run_in_executor(None, rx.arrived.wait, 10)
        elapsed = time.monotonic() - start
        await outbox.aclose()  # closing stops a running loop cleanly
        assert await asyncio.wait_for(task, 5) is None
        return elapsed

    assert asyncio.run(main()) < 5.0
    assert len(rx.received) == 1


def test_exhaustion_marks_failed(tmp_path, receiver):
    rx = receiver([500])
    clock = FakeClock()

    async def main() -> list[dict]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_attempts=4, webhook_backoff_s=1.0), clock=clock)
        outbox.enqueue("req-5", "u", rx.url, b"{}")
        for _ in range(4):
            assert await outbox.deliver_due() == 1
            clock.now += 60
        assert await outbox.deliver_due() == 0
        rows = outbox.deliveries("req-5")
        await outbox.aclose()
        return rows

    rows = asyncio.run(main())
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("failed", 4, "HTTP 500")]
    assert len(rx.received) == 4


def test_connection_error_and_timeout_are_failed_attempts(tmp_path, receiver):
    slow = receiver([200], delay_s=2.0)
    dead = receiver()
    dead_url = dead.url
    dead.close()

    async def main() -> tuple[list[dict], list[dict]]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_timeout_s=0.5))
        outbox.enqueue("slow", "u", slow.url, b"{}")
        outbox.enqueue("dead", "u", dead_url, b"{}")
        started = time.monotonic()
        assert await outbox.deliver_due() == 2
        assert time.monotonic() - started < 1.8
        rows = outbox.deliveries("slow"), outbox.deliveries("dead")
        await outbox.aclose()
        return rows

    slow_rows, dead_rows = asyncio.run(main())
    assert (slow_rows[0]["status"], slow_rows[0]["attempts"]) == ("pending", 1)
    assert "timed out" in slow_rows[0]["last_error"] or "Timeout" in slow_rows[0]["last_error"]
    assert (dead_rows[0]["status"], dead_rows[0]["attempts"]) == ("pending", 1)
    assert "Connect" in dead_rows[0]["last_error"]


def test_pending_delivery_survives_restart(tmp_path, receiver):
    rx = receiver()
    settings = settings_for(tmp_path)

    async def first() -> None:
        outbox = WebhookOutbox(settings)
        outbox.enqueue("req-6", "u", rx.url, webhook_body("req-6", "req-6", True, {"n": 6}, None))
        await outbox.aclose()  # shut down without delivering

    async def second() -> list[dict]:
        outbox = WebhookOutbox(settings)
        task = asyncio.create_task(outbox.run())
        await asyncio.get_running_loop().run_in_executor(None, rx.arrived.wait, 10)
        for _ in range(200):
            if outbox.deliveries("req-6")[0]["status"] == "delivered":
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rows = outbox.deliveries("req-6")
        await outbox.aclose()
        return rows

    asyncio.run(first())
    assert rx.received == []
    rows = asyncio.run(second())
    assert rows[0]["status"] == "delivered"
    assert json.loads(rx.received[0][1])["payload"] == {"n": 6}


def test_attempt_cut_short_by_shutdown_is_due_again(tmp_path, receiver):
    hang = receiver([200], delay_s=3.0)
    settings = settings_for(tmp_path, webhook_timeout_s=10.0)

    async def main() -> list[dict]:
        outbox = WebhookOutbox(settings)
        outbox.enqueue("req-7", "u", hang.url, b"{}")
        task = asyncio.create_task(outbox.run())
        await asyncio.get_running_loop().run_in_executor(None, hang.arrived.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await outbox.aclose()
        reopened = WebhookOutbox(settings)
        rows = reopened.deliveries("req-7")
        await reopened.aclose()
        return rows

    before = time.time()
    rows = asyncio.run(main())
    # released, not leased out for timeout + 30 s; counted, because the receiver got the copy (issue 7.22)
    assert (rows[0]["status"], rows[0]["attempts"]) == ("pending", 1) and len(hang.received) == 1
    assert rows[0]["next_attempt_at"] <= time.time() and rows[0]["next_attempt_at"] >= before


def test_private_destinations_refused(tmp_path, receiver):
    rx = receiver()

    async def main() -> tuple[list[dict], list[dict]]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_allow_private=False))
        outbox.enqueue("ip", "u", rx.url, b"{}")
        outbox.enqueue("name", "u", f"http://localhost:{rx.port}/hook", b"{}")
        assert await outbox.deliver_due() == 2
        rows = outbox.deliveries("ip"), outbox.deliveries("name")
        await outbox.aclose()
        return rows

    ip_rows, name_rows = asyncio.run(main())
    assert rx.received == []
    for rows in (ip_rows, name_rows):
        assert rows[0]["status"] == "failed" and "non-public" in rows[0]["last_error"]
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2606:4700:4700::1111")) is None
    for private in (
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ):
        assert address_problem(ipaddress.ip_address(private)) is not None, private


def test_enqueue_refuses_bad_urls(tmp_path):
    async def main() -> None:
        outbox = WebhookOutbox(settings_for(tmp_path))
        for bad in ("ftp://example.com/x", "http:///nohost", "example.com/hook", "http://example.com:99999/"):
            with pytest.raises(ValueError):
                outbox.enqueue("r", "u", bad, b"{}")
        assert outbox.deliveries("r") == []
        await outbox.aclose()

    asyncio.run(main())


def test_key_persisted_and_reused(tmp_path, receiver):
    rx = receiver()

    async def main() -> tuple[str, str, str]:
        a = WebhookOutbox(settings_for(tmp_path / "a"))
        jwks_a = json.dumps(a.jwks())
        await a.aclose()
        b = WebhookOutbox(settings_for(tmp_path / "a"))
        b.enqueue("req-8", "u", rx.url, b'{"x":1}')
        await b.deliver_due()
        jwks_b = json.dumps(b.jwks())
        await b.aclose()
        c = WebhookOutbox(settings_for(tmp_path / "c"))
        jwks_c = json.dumps(c.jwks())
        await c.aclose()
        return jwks_a, jwks_b, jwks_c

    jwks_a, jwks_b, jwks_c = asyncio.run(main())
    key_path = settings_for(tmp_path / "a").webhook_key_path
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert jwks_a == jwks_b != jwks_c
    headers, body = rx.received[0]
    assert verify(jwks_a, headers, body)  # signed by the second instance, verified with the first one's JWKS
    assert not verify(jwks_c, headers, body)


def test_webhook_body_shapes():
    err = json.loads(webhook_body("r", "g", False, {"detail": "boom", "error_type": "x"}, "boom"))
    assert err == {
        "request_id": "r",
        "gateway_request_id": "g",
        "status": "ERROR",
        "payload": {"detail": "boom", "error_type": "x"},
        "error": "boom",
    }
    for bad_payload in ({"v": object()}, {"v": math.nan}, {1j: 2}):
        msg = json.loads(webhook_body("r", "g", True, bad_payload, None))
        assert msg["payload"] is None and msg["status"] == "OK" and msg["error"] is None
        assert isinstance(msg["payload_error"], str) and msg["payload_error"]
    assert "payload_error" not in json.loads(webhook_body("r", "g", True, {"ü": "✓"}, None))
    with pytest.raises(ValueError):
        webhook_body("r", "g", True, {}, "an error on success")
    with pytest.raises(ValueError):
        webhook_body("r", "g", False, {}, None)


def test_purge_keeps_pending(tmp_path):
    clock = FakeClock()

    async def main() -> tuple[int, list[dict], list[dict]]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_allow_private=False), clock=clock)
        outbox.enqueue("old", "u", "http://127.0.0.1:9/x", b"{}")
        await outbox.deliver_due()  # refused -> failed
        outbox.enqueue("waiting", "u", "http://127.0.0.1:9/x", b"{}")
        clock.now += 10 * 24 * 3600
        removed = outbox.purge()
        rows = outbox.deliveries("old"), outbox.deliveries("waiting")
        await outbox.aclose()
        return removed, *rows

    removed, old, waiting = asyncio.run(main())
    assert removed == 1 and old == [] and waiting[0]["status"] == "pending"


def test_attempt_connects_to_the_checked_address(tmp_path):
    """The name is resolved once, vetted, and the request goes to that address with the original Host."""
    seen: list[httpx.Request] = []
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a second answer would be a rebinding attack

    async def resolver(host: str, port: int) -> list[str]:
        return next(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async def main() -> list[dict]:
        outbox = WebhookOutbox(
            settings_for(tmp_path, webhook_allow_private=False),
            transport=httpx.MockTransport(handler),
            resolver=resolver,
        )
        outbox.enqueue("pin", "u", "https://hooks.example.com:8443/in?x=1", b"{}")
        assert await outbox.deliver_due() == 1
        rows = outbox.deliveries("pin")
        await outbox.aclose()
        return rows

    rows = asyncio.run(main())
    assert rows[0]["status"] == "delivered"
    (req,) = seen
    assert req.url.host == "93.184.216.34" and req.url.port == 8443 and req.url.raw_path == b"/in?x=1"
    assert req.headers["host"] == "hooks.example.com:8443"
    assert req.extensions["sni_hostname"] == "hooks.example.com"


def test_one_keys_slow_receiver_does_not_delay_another_key(tmp_path, receiver):
    """Issue 7.22: 64 deliveries of one key to a receiver that takes 2 s each must not hold up another key's."""
    slow = receiver([200], delay_s=2.0)
    fast = receiver([200])

    async def main() -> tuple[float, int]:
        outbox = WebhookOutbox(settings_for(tmp_path, webhook_timeout_s=10.0))
        for i in range(64):
            outbox.enqueue(f"slow-{i}", "key-a", slow.url, b"{}")
        task = asyncio.create_task(outbox.run())
        await asyncio.get_running_loop().run_in_executor(None, slow.arrived.wait, 10)
        start = time.monotonic()
        outbox.enqueue("fast", "key-b", fast.url, b"{}")
        outbox.wake()
        await asyncio.get_running_loop().run_in_executor(None, fast.arrived.wait, 30)
        elapsed = time.monotonic() - start
        in_flight_a = len(slow.received)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await outbox.aclose()
        return elapsed, in_flight_a

    elapsed, slow_started = asyncio.run(main())
    assert len(fast.received) == 1
    # Key a's receiver holds every one of its slots for 2 s; key b's webhook is sent at once, not after them.
    assert elapsed < 1.0, elapsed
    assert slow_started <= 4  # at most PER_KEY_CONCURRENT of key a's attempts were in flight


def test_a_receiver_that_always_times_out_gets_at_most_the_attempt_limit(tmp_path, receiver):
    """Issue 7.22: two outboxes on one database, one shut down mid-attempt: never more copies than attempts."""
    hang = receiver([200], delay_s=5.0)
    settings = settings_for(tmp_path, webhook_timeout_s=0.4, webhook_attempts=3, webhook_backoff_s=0.05)

    async def main() -> list[dict]:
        first, second = WebhookOutbox(settings), WebhookOutbox(settings)
        first.enqueue("hang", "u", hang.url, b"{}")
        tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
        await asyncio.get_running_loop().run_in_executor(None, hang.arrived.wait, 10)
        tasks[0].cancel()  # shut one down in the middle of its attempt
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        for _ in range(300):
            if second.deliveries("hang")[0]["status"] == "failed":
                break
            second.wake()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # anything still to be sent would go out now
        rows = second.deliveries("hang")
        await first.aclose()
        await second.aclose()
        await asyncio.gather(*tasks, return_exceptions=True)
        return rows

    rows = asyncio.run(main())
    assert (rows[0]["status"], rows[0]["attempts"]) == ("failed", 3)
    assert len(hang.received) == 3
