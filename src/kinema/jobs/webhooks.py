"""Webhook delivery: the fal webhook body, and a durable, signed, retrying outbox in SQLite.

Retry schedule: after failed attempt ``n`` the next one waits ``webhook_backoff_s * 2**(n-1)``
plus 0-10 % jitter (deterministic per delivery and attempt). With the defaults (10 attempts,
15 s base) the nine waits sum to 15 s * 511 = 7665 s ≈ 2 h 8 min (≤ 2 h 21 min with jitter,
plus up to ``webhook_timeout_s`` per attempt); then the delivery is ``failed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import socket
import sqlite3
import threading
import time
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from kinema import __version__
from kinema.addresses import address_problem
from kinema.jobs import signing
from kinema.settings import Settings

__all__ = ["webhook_body", "WebhookOutbox", "DestinationRefused", "check_webhook_url"]

log = logging.getLogger("kinema.webhooks")

#: At most this many deliveries in flight at once.
MAX_CONCURRENT = 16
#: The run loop re-reads the table at least this often (rows enqueued by other processes).
POLL_S = 30.0
JITTER = 0.1
PURGE_EVERY_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_request ON webhook_deliveries(request_id);
"""
_COLUMNS = ("id", "request_id", "user_id", "url", "body", "attempts", "next_attempt_at", "status",
            "last_error", "created_at", "updated_at")


def webhook_body(request_id: str, gateway_request_id: str, ok: bool, payload: Any, error: str | None) -> bytes:
    """The JSON body fal POSTs when a request ends.

    A payload that is not JSON-serialisable (or holds NaN/Infinity) is sent as ``null`` with
    ``payload_error`` saying why.
    """
    if ok and error is not None:
        raise ValueError("a successful webhook carries no error")
    if not ok and not (isinstance(error, str) and error):
        raise ValueError("a failed webhook needs a non-empty error string")
    body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": gateway_request_id,
                            "status": "OK" if ok else "ERROR", "payload": None, "error": error}
    try:
        encoded = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        body["payload_error"] = f"payload is not JSON-serialisable: {exc}"
    else:
        body["payload"] = json.loads(encoded)
    return json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class DestinationRefused(Exception):
    """The webhook URL points at a private, loopback or otherwise non-public address."""


def check_webhook_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an absolute http(s) URL with a host and a valid port."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s)://host/...: {url!r}")
    parts.port  # noqa: B018  (raises ValueError on a bad port)


class WebhookOutbox:
    """Durable webhook deliveries in the ``webhook_deliveries`` table of ``settings.db_path``.

    ``enqueue`` may be called from any thread; ``run``/``deliver_due``/``aclose`` belong to one
    event loop. Each attempt is claimed in the table first (a lease of the timeout plus 30 s), so
    two outboxes on one database never send the same attempt twice. Only a 2xx is success
    (redirects are not followed). Unless ``webhook_allow_private``, the host is resolved before
    each attempt and any non-public address fails the delivery for good; the attempt then connects
    to the checked address (``Host`` header and TLS server name stay the URL's host), so a second
    DNS answer cannot swap in another address.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        resolver: Callable[[str, int], Awaitable[list[str]]] | None = None,
    ):
        self.settings = settings
        self._resolver = resolver or _resolve
        self._clock = clock
        self._sleep = sleep
        self._key = signing.load_or_create_key(settings.webhook_key_path)
        self._db_lock = threading.Lock()
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(settings.db_path), check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._client = httpx.AsyncClient(
            transport=transport, timeout=settings.webhook_timeout_s, follow_redirects=False,
            headers={"User-Agent": f"kinema-webhooks/{__version__}"},
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._last_purge = float("-inf")
        self._closed = False

    # Public API ---------------------------------------------------------------
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return signing.jwks(self._key.public_key())

    def enqueue(self, request_id: str, user_id: str, url: str, body: bytes) -> int:
        """Store a delivery, due now; committed (synchronous=FULL) when this returns. Returns its id."""
        check_webhook_url(url)
        if not isinstance(body, bytes):
            raise TypeError("webhook body must be bytes")
        now = self._clock()
        with self._db_lock:
            cur = self._db.execute(
                "INSERT INTO webhook_deliveries (request_id, user_id, url, body, attempts, next_attempt_at,"
                " status, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, 'pending', ?, ?)",
                (request_id, user_id, url, body, now, now, now),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def wake(self) -> None:
        """Nudge the ``run`` loop (safe from any thread; a no-op before ``run`` starts)."""
        loop, event = self._loop, self._wakeup
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def deliveries(self, request_id: str) -> list[dict[str, Any]]:
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM webhook_deliveries WHERE request_id = ? ORDER BY id",
                (request_id,),
            ).fetchall()
        return [dict(zip(_COLUMNS, r)) for r in rows]

    def purge(self, older_than_s: float | None = None) -> int:
        """Delete delivered/failed rows last touched more than ``older_than_s`` (default: retention) ago."""
        cutoff = self._clock() - (self.settings.retention_s if older_than_s is None else older_than_s)
        with self._db_lock:
            cur = self._db.execute(
                "DELETE FROM webhook_deliveries WHERE status != 'pending' AND updated_at < ?", (cutoff,))
        return cur.rowcount

    async def deliver_due(self) -> int:
        """Attempt every due delivery once and wait for the outcomes; returns how many were attempted."""
        rows = self._claim_due(MAX_CONCURRENT)
        await asyncio.gather(*(self._attempt(row) for row in rows))
        return len(rows)

    async def run(self) -> None:
        """Deliver due rows (pending ones left from earlier runs included) until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        try:
            while True:
                self._wakeup.clear()
                if self._clock() - self._last_purge >= PURGE_EVERY_S:
                    self._last_purge = self._clock()
                    self.purge()
                for row in self._claim_due(MAX_CONCURRENT - len(self._inflight)):
                    task = asyncio.create_task(self._attempt(row))
                    self._inflight[row["id"]] = task
                    task.add_done_callback(lambda _t, i=row["id"]: self._done(i))
                await self._wait(self._next_delay())
                if self._closed:
                    return
        finally:
            await self._cancel_inflight()
            self._loop = None
            self._wakeup = None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.wake()
        await self._cancel_inflight()
        await self._client.aclose()
        with self._db_lock:
            self._db.close()

    # The loop -----------------------------------------------------------------
    def _done(self, delivery_id: int) -> None:
        self._inflight.pop(delivery_id, None)
        if self._wakeup is not None:
            self._wakeup.set()

    def _next_delay(self) -> float | None:
        if len(self._inflight) >= MAX_CONCURRENT:
            return None  # a finishing task wakes us
        with self._db_lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'").fetchone()
        return None if row[0] is None else max(0.0, row[0] - self._clock())

    async def _wait(self, delay: float | None) -> None:
        assert self._wakeup is not None
        timeout = POLL_S if delay is None else min(delay, POLL_S)
        waiter = asyncio.ensure_future(self._wakeup.wait())
        sleeper = asyncio.ensure_future(self._sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _cancel_inflight(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    def _claim_due(self, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` due pending rows, pushing their ``next_attempt_at`` out by the lease."""
        if limit <= 0:
            return []
        now = self._clock()
        lease = now + self.settings.webhook_timeout_s + 30.0
        claimed = []
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM webhook_deliveries WHERE status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", (now, limit + len(self._inflight)),
            ).fetchall()
            for r in rows:
                row = dict(zip(_COLUMNS, r))
                if row["id"] in self._inflight or len(claimed) >= limit:
                    continue
                cur = self._db.execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?"
                    " AND status = 'pending' AND next_attempt_at <= ?", (lease, now, row["id"], now))
                if cur.rowcount == 1:
                    claimed.append(row)
        return claimed

    # One attempt --------------------------------------------------------------
    async def _check_destination(self, url: str) -> str | None:
        """The vetted address to connect to, or ``None`` when private targets are allowed."""
        if self.settings.webhook_allow_private:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self._resolver(host, port)]
        if not addresses:
            raise OSError(f"{host} did not resolve")
        for ip in addresses:
            problem = address_problem(ip)
            if problem is not None:
                raise DestinationRefused(f"refused: {host} resolves to non-public address {ip} ({problem})"
                                         " (set KINEMA_WEBHOOK_ALLOW_PRIVATE=1 to allow)")
        return str(addresses[0])

    async def _attempt(self, row: dict[str, Any]) -> None:
        error: str | None
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                address = await self._check_destination(row["url"])
                headers = signing.signature_headers(self._key, row["request_id"], row["user_id"],
                                                    int(self._clock()), row["body"])
                headers["Content-Type"] = "application/json"
                url = httpx.URL(row["url"])
                extensions: dict[str, Any] = {}
                if address is not None:  # pin the connection to the address just checked
                    headers["Host"] = url.netloc.decode("ascii")
                    if url.scheme == "https":
                        extensions["sni_hostname"] = url.host
                    url = url.copy_with(host=address)
                request = self._client.build_request("POST", url, content=row["body"], headers=headers,
                                                     extensions=extensions)
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the receiver's body is of no interest
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except asyncio.CancelledError:
            self._release(row["id"])
            raise
        except DestinationRefused as exc:
            log.warning("webhook %d for %s: %s", row["id"], row["request_id"], exc)
            self._finish(row["id"], "failed", row["attempts"], str(exc))
            return
        except TimeoutError:
            error = f"timed out after {self.settings.webhook_timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001  (any failure is a failed attempt, never a dead loop)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempts = row["attempts"] + 1
        if error is None:
            self._finish(row["id"], "delivered", attempts, None)
            log.info("webhook %d for %s delivered (attempt %d)", row["id"], row["request_id"], attempts)
        elif attempts >= self.settings.webhook_attempts:
            self._finish(row["id"], "failed", attempts, error)
            log.warning("webhook %d for %s failed for good after %d attempts: %s", row["id"], row["request_id"],
                        attempts, error)
        else:
            delay = self.retry_delay(row["id"], attempts)
            self._finish(row["id"], "pending", attempts, error, next_attempt_at=self._clock() + delay)
            log.info("webhook %d for %s attempt %d failed (%s); retrying in %.1f s", row["id"], row["request_id"],
                     attempts, error, delay)

    def retry_delay(self, delivery_id: int, attempts: int) -> float:
        """Wait after ``attempts`` failed attempts: base * 2**(attempts-1) * (1 + jitter in [0, 0.1))."""
        digest = hashlib.sha256(f"{delivery_id}:{attempts}".encode()).digest()
        jitter = int.from_bytes(digest[:8], "big") / 2**64 * JITTER
        return self.settings.webhook_backoff_s * 2 ** (attempts - 1) * (1.0 + jitter)

    def _finish(self, delivery_id: int, status: str, attempts: int, error: str | None,
                next_attempt_at: float | None = None) -> None:
        now = self._clock()
        with self._db_lock:
            self._db.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_error = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at), updated_at = ? WHERE id = ?",
                (status, attempts, error, next_attempt_at, now, delivery_id))

    def _release(self, delivery_id: int) -> None:
        """An attempt cut short by shutdown: make it due again at once (for the next run)."""
        now = self._clock()
        try:
            with self._db_lock:
                self._db.execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?"
                    " AND status = 'pending'", (now, now, delivery_id))
        except sqlite3.ProgrammingError:  # connection already closed
            pass
