"""Webhook delivery: the fal webhook body, and a durable, signed, retrying outbox in SQLite.

Retry schedule: after failed attempt ``n`` the next one waits ``webhook_backoff_s * 2**(n-1)``
plus 0-10 % jitter (deterministic per delivery and attempt). With the defaults (10 attempts,
15 s base) the nine waits sum to 15 s * 511 = 7665 s ≈ 2 h 8 min (≤ 2 h 21 min with jitter,
plus up to ``webhook_timeout_s`` per attempt); then the delivery is ``failed``. Delivery states are
:class:`~kinema.jobs.states.DeliveryState` (stored lower-case, as kinema 0.1 stored them).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from kinema import __version__
from kinema.addresses import address_problem
from kinema.errors import StoreUnavailable
from kinema.jobs import signing
from kinema.jobs.states import DeliveryState, check_delivery_transition
from kinema.jobs.webhook_message import DestinationRefused, check_webhook_url, insert_delivery, webhook_body
from kinema.settings import Settings

__all__ = ["DestinationRefused", "WebhookOutbox", "check_webhook_url", "insert_delivery", "webhook_body"]
# (the message, URL rules and outbox row live in kinema.jobs.webhook_message; re-exported here)

log = logging.getLogger("kinema.webhooks")

#: At most this many deliveries in flight at once.
MAX_CONCURRENT = 16
#: At most this many of one key's deliveries in flight at once (fairness across keys, issue 7.22).
PER_KEY_CONCURRENT = 4
#: A claimed attempt is leased for the timeout plus this long before another process may take it over.
LEASE_MARGIN_S = 30.0
#: The run loop re-reads the table at least this often (rows enqueued by other processes).
POLL_S = 30.0
JITTER = 0.1
PURGE_EVERY_S = 3600.0
#: How soon the loop looks again after the database could not be reached.
STORE_RETRY_S = 1.0

_COLUMNS = (
    "id",
    "request_id",
    "user_id",
    "url",
    "body",
    "attempts",
    "next_attempt_at",
    "status",
    "last_error",
    "created_at",
    "updated_at",
)


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class WebhookOutbox:
    """Durable webhook deliveries in the ``webhook_deliveries`` table of the job store's database.

    Rows are added by the job store in the transaction that ends a job (or by :meth:`enqueue`).
    ``run``/``deliver_due``/``aclose`` belong to one event loop. An attempt is claimed in the table
    first (PENDING → DELIVERING, ``attempts`` + 1, leased for the timeout plus 30 s), so two outboxes
    on one database never send the same attempt twice, and every copy that may have reached the
    receiver is counted: a receiver is never sent more than ``webhook_attempts`` copies, whether
    attempts time out, the process shuts down mid-attempt or dies (a lapsed DELIVERING lease is
    PENDING again, or FAILED once the attempts are used up). Fair across keys: at most
    :data:`PER_KEY_CONCURRENT` attempts of one key are in flight at once and due rows are taken
    round-robin across keys, so one key's slow receiver cannot hold up another key's webhook.
    Only a 2xx is success (redirects are not followed). Unless ``webhook_allow_private``, the host
    is resolved before each attempt and any non-public address fails the delivery for good; the
    attempt then connects to the checked address (``Host`` header and TLS server name stay the
    URL's host), so a second DNS answer cannot swap in another address.
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
        # SQLite in the data dir, or PostgreSQL (KINEMA_DATABASE_URL); imported here because the
        # backends module imports the stores, which import this module.
        from kinema.jobs.backends import open_sql

        self._db = open_sql(settings)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            headers={"User-Agent": f"kinema-webhooks/{__version__}"},
            limits=httpx.Limits(max_connections=MAX_CONCURRENT, max_keepalive_connections=MAX_CONCURRENT),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._inflight: dict[int, tuple[str, asyncio.Task[None]]] = {}
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
        with self._db_lock:
            insert_delivery(self._db, request_id, user_id, url, body, self._clock())
            last = self._db.execute("SELECT last_insert_rowid()").fetchone()
            assert last is not None  # the function always returns one row
            (rowid,) = last
        return int(rowid)

    def wake(self) -> None:
        """Nudge the ``run`` loop (safe from any thread; a no-op before ``run`` starts)."""
        loop, event = self._loop, self._wakeup
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def deliveries(self, request_id: str) -> list[dict[str, Any]]:
        with self._db_lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM webhook_deliveries WHERE request_id = ? ORDER BY id", (request_id,)
            ).fetchall()
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def purge(self, older_than_s: float | None = None) -> int:
        """Delete delivered/failed rows last touched more than ``older_than_s`` (default: retention) ago."""
        cutoff = self._clock() - (self.settings.retention_s if older_than_s is None else older_than_s)
        with self._db_lock:
            cur = self._db.execute(
                "DELETE FROM webhook_deliveries WHERE status IN (?, ?) AND updated_at < ?",
                (DeliveryState.DELIVERED.value, DeliveryState.FAILED.value, cutoff),
            )
        return cur.rowcount

    async def deliver_due(self) -> int:
        """Attempt every due delivery once (within the limits) and wait for the outcomes; returns how many."""
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
                try:
                    if self._clock() - self._last_purge >= PURGE_EVERY_S:
                        self._last_purge = self._clock()
                        await asyncio.to_thread(self.purge)
                    rows = await asyncio.to_thread(self._claim_due, MAX_CONCURRENT - len(self._inflight), self._busy())
                    for row in rows:
                        task = asyncio.create_task(self._attempt(row))
                        self._inflight[row["id"]] = (row["user_id"], task)
                        task.add_done_callback(functools.partial(self._done, int(row["id"])))
                    delay = await asyncio.to_thread(self._next_delay, self._busy())
                except StoreUnavailable as exc:  # the database is away (restarting): try again shortly
                    log.warning("webhooks: %s", exc)
                    delay = STORE_RETRY_S
                await self._wait(delay)
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
    def _done(self, delivery_id: int, _task: object = None) -> None:
        self._inflight.pop(delivery_id, None)
        if self._wakeup is not None:
            self._wakeup.set()

    def _busy(self) -> dict[int, str]:
        """A snapshot of the attempts in flight (delivery id → key), for use off the event loop."""
        return {i: key for i, (key, _) in self._inflight.items()}

    def _next_delay(self, inflight: dict[int, str]) -> float | None:
        if len(inflight) >= MAX_CONCURRENT:
            return None  # a finishing task wakes us
        busy = [k for k, n in Counter(inflight.values()).items() if n >= PER_KEY_CONCURRENT]
        marks = ",".join("?" * len(busy))
        with self._db_lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status IN (?, ?)"
                + (f" AND user_id NOT IN ({marks})" if busy else ""),
                (DeliveryState.PENDING.value, DeliveryState.DELIVERING.value, *busy),
            ).fetchone()
        assert row is not None  # an aggregate always returns one row
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
        tasks = [task for _, task in self._inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    def _claim_due(self, limit: int, inflight: dict[int, str] | None = None) -> list[dict[str, Any]]:
        """Take up to ``limit`` due rows, round-robin across keys, each key within :data:`PER_KEY_CONCURRENT`."""
        if limit <= 0:
            return []
        now = self._clock()
        lease = now + self.settings.webhook_timeout_s + LEASE_MARGIN_S
        inflight = self._busy() if inflight is None else inflight
        busy = Counter(inflight.values())
        claimed: list[dict[str, Any]] = []
        with self._db_lock:
            due = self._db.execute(
                "SELECT 1 FROM webhook_deliveries WHERE status IN (?, ?) AND next_attempt_at <= ? LIMIT 1",
                (DeliveryState.PENDING.value, DeliveryState.DELIVERING.value, now),
            ).fetchone()
            if due is None:  # the common case: no write transaction at all
                return []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._recover_lapsed(now)
                rows = self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id"
                    " ORDER BY next_attempt_at, id) AS turn FROM webhook_deliveries WHERE status = ?"
                    " AND next_attempt_at <= ?) AS due ORDER BY turn, next_attempt_at, id LIMIT ?",
                    (DeliveryState.PENDING.value, now, limit + len(inflight) + MAX_CONCURRENT),
                ).fetchall()
                for r in rows:
                    row = dict(zip(_COLUMNS, r, strict=True))
                    if len(claimed) >= limit or row["id"] in inflight or busy[row["user_id"]] >= PER_KEY_CONCURRENT:
                        continue
                    check_delivery_transition(DeliveryState.PENDING, DeliveryState.DELIVERING)
                    self._db.execute(
                        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,"
                        " updated_at = ? WHERE id = ? AND status = ?",
                        (DeliveryState.DELIVERING.value, lease, now, row["id"], DeliveryState.PENDING.value),
                    )
                    row["attempts"] += 1
                    busy[row["user_id"]] += 1
                    claimed.append(row)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return claimed

    def _recover_lapsed(self, now: float) -> None:
        """DELIVERING rows whose lease lapsed (their process died mid-attempt): due again, or failed."""
        interrupted = "the delivering process stopped during the attempt"
        self._db.execute(
            "UPDATE webhook_deliveries SET status = CASE WHEN attempts >= ? THEN ? ELSE ? END,"
            " last_error = ?, updated_at = ? WHERE status = ? AND next_attempt_at <= ?",
            (
                self.settings.webhook_attempts,
                DeliveryState.FAILED.value,
                DeliveryState.PENDING.value,
                interrupted,
                now,
                DeliveryState.DELIVERING.value,
                now,
            ),
        )

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
                raise DestinationRefused(
                    f"refused: {host} resolves to non-public address {ip} ({problem})"
                    " (set KINEMA_WEBHOOK_ALLOW_PRIVATE=1 to allow)"
                )
        return str(addresses[0])

    async def _attempt(self, row: dict[str, Any]) -> None:
        error: str | None
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                address = await self._check_destination(row["url"])
                headers = signing.signature_headers(
                    self._key, row["request_id"], row["user_id"], int(self._clock()), row["body"]
                )
                headers["Content-Type"] = "application/json"
                url = httpx.URL(row["url"])
                extensions: dict[str, Any] = {}
                if address is not None:  # pin the connection to the address just checked
                    headers["Host"] = url.netloc.decode("ascii")
                    if url.scheme == "https":
                        extensions["sni_hostname"] = url.host
                    url = url.copy_with(host=address)
                request = self._client.build_request(
                    "POST", url, content=row["body"], headers=headers, extensions=extensions
                )
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the receiver's body is of no interest
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except asyncio.CancelledError:
            # Shut down mid-attempt: the receiver may have the copy, so the attempt counts; due again at once.
            self._release(row)
            raise
        except DestinationRefused as exc:
            log.warning("webhook %d for %s: %s", row["id"], row["request_id"], exc)
            await asyncio.to_thread(self._finish, row["id"], DeliveryState.FAILED, str(exc))
            return
        except TimeoutError:
            error = f"timed out after {self.settings.webhook_timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001  (any failure is a failed attempt, never a dead loop)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempts = row["attempts"]
        if error is None:
            await asyncio.to_thread(self._finish, row["id"], DeliveryState.DELIVERED, None)
            log.info("webhook %d for %s delivered (attempt %d)", row["id"], row["request_id"], attempts)
        elif attempts >= self.settings.webhook_attempts:
            await asyncio.to_thread(self._finish, row["id"], DeliveryState.FAILED, error)
            log.warning(
                "webhook %d for %s failed for good after %d attempts: %s", row["id"], row["request_id"], attempts, error
            )
        else:
            delay = self.retry_delay(row["id"], attempts)
            await asyncio.to_thread(self._finish, row["id"], DeliveryState.PENDING, error, self._clock() + delay)
            log.info(
                "webhook %d for %s attempt %d failed (%s); retrying in %.1f s",
                row["id"],
                row["request_id"],
                attempts,
                error,
                delay,
            )

    def retry_delay(self, delivery_id: int, attempts: int) -> float:
        """Wait after ``attempts`` failed attempts: base * 2**(attempts-1) * (1 + jitter in [0, 0.1))."""
        digest = hashlib.sha256(f"{delivery_id}:{attempts}".encode()).digest()
        jitter = int.from_bytes(digest[:8], "big") / 2**64 * JITTER
        return float(self.settings.webhook_backoff_s * 2 ** (attempts - 1) * (1.0 + jitter))

    def _finish(
        self, delivery_id: int, state: DeliveryState, error: str | None, next_attempt_at: float | None = None
    ) -> None:
        check_delivery_transition(DeliveryState.DELIVERING, state)
        now = self._clock()
        with self._db_lock:
            self._db.execute(
                "UPDATE webhook_deliveries SET status = ?, last_error = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at),"
                " updated_at = ? WHERE id = ? AND status = ?",
                (state.value, error, next_attempt_at, now, delivery_id, DeliveryState.DELIVERING.value),
            )

    def _release(self, row: dict[str, Any]) -> None:
        """An attempt cut short by shutdown: due again at once (for the next run), or failed if it was the last."""
        last = row["attempts"] >= self.settings.webhook_attempts
        try:
            self._finish(
                row["id"],
                DeliveryState.FAILED if last else DeliveryState.PENDING,
                "the attempt was cut short by a shutdown",
                None if last else self._clock(),
            )
        except sqlite3.ProgrammingError:  # connection already closed
            pass
