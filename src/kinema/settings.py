"""Configuration, read once from the environment (prefix ``KINEMA_``) into one object."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Settings"]

#: The weight-free CPU motion engine (``kinema.engines.motion:load``; its old spec
#: ``kinema.engines.motion:render`` names the same engine).
DEFAULT_ENGINE = "motion"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    """Every knob of a kinema process. Build with :meth:`from_env`, then ``replace`` CLI flags in."""

    data_dir: Path = Path("./kinema-data")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: int = 1
    #: ``motion``, ``module:load`` or ``/path/file.py:load``: the engine's loader (see :mod:`kinema.engines`).
    engine: str = DEFAULT_ENGINE
    #: Hosts/CIDRs that input URLs may reach although private/loopback (e.g. ``127.0.0.1,10.0.0.0/8``).
    fetch_allow: tuple[str, ...] = ()
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_timeout_s: float = 20.0
    max_image_pixels: int = 40_000_000
    upload_max_bytes: int = 50 * 1024 * 1024
    #: How long finished results (and their files) are kept.
    retention_s: float = 7 * 24 * 3600
    #: Grace period between a cancel request and killing the worker.
    cancel_grace_s: float = 5.0
    price_per_second: float = 0.045
    webhook_attempts: int = 10
    #: First retry delay; doubles each attempt (10 attempts ≈ 2 h with 15 s).
    webhook_backoff_s: float = 15.0
    webhook_timeout_s: float = 15.0
    #: Allow webhooks to private/loopback addresses (off in production; tests turn it on).
    webhook_allow_private: bool = False
    log_level: str = "info"
    # -- Workers and engines (jobs core, owner B) ------------------------------------------
    #: Devices the workers' engines run on; worker i of N gets ``devices[i % len(devices)]``
    #: (``KINEMA_DEVICES=cuda:0,cuda:1``).
    devices: tuple[str, ...] = ("cpu",)
    #: A running job's lease: a job whose worker stopped heartbeating this long is re-queued once.
    lease_s: float = 30.0
    #: How often the dispatcher renews the leases of the jobs it runs (0: a third of the lease).
    heartbeat_s: float = 0.0
    #: Short side of the output clips. fal's contract is 720; smaller values are for tests and
    #: previews only (they change what clients receive).
    output_short_side: int = 720
    # -- Job store and API (jobs core, owner A) -----------------------------------------------
    #: How long a store write waits for a database locked by another process before the request
    #: gets 503 ``store_unavailable``.
    store_busy_timeout_s: float = 10.0
    # The HTTP edge (issue 7): body caps, read deadlines, connection limits, accepted Host names. ----------
    #: Cap on a JSON request body (submit, ``/run``), whatever its framing (Content-Length or chunked).
    #: 120 MiB holds nine 10 MiB inputs as base64 data URIs (4/3 growth) with room for the rest.
    max_body_bytes: int = 120 * 1024 * 1024
    #: A request's head (request line and headers) must arrive within this many seconds of the connection
    #: opening (or of the previous response on a keep-alive connection).
    header_timeout_s: float = 10.0
    #: A request body is cut off with 408 when no byte arrives for this long ...
    body_idle_timeout_s: float = 30.0
    #: ... or when the whole body takes longer than this.
    body_timeout_s: float = 300.0
    #: Open connections at most; 0 = the process's descriptor limit less a reserve. Past it, the oldest
    #: connection still waiting for its request head is closed.
    max_connections: int = 0
    #: Pending ``/storage/upload/initiate`` slots one key may hold (the server holds 10,000 in all).
    max_pending_uploads_per_key: int = 100
    #: ``Host`` names (ports ignored) the server answers to; ``*`` = any. Empty: the bind address and
    #: localhost names, plus this machine's names and any IP literal when bound to a wildcard address; the
    #: host of ``public_url`` is always accepted. Other names get 400 (DNS rebinding, forged response URLs).
    allowed_hosts: tuple[str, ...] = ()
    # -- Scale-out (issue 10, scale-A) ---------------------------------------------------------
    #: ``postgresql://user:password@host:5432/db``: jobs, logs, keys, usage and the webhook outbox in
    #: PostgreSQL (``pip install 'kinema[postgres]'``), shared by every server and worker. Unset: SQLite
    #: in the data dir (the embedded default).
    database_url: str | None = None
    #: Connections per process in the PostgreSQL pool (the API's 8 read + 4 write threads and the
    #: dispatcher's one share it; a waiter past ``store_busy_timeout_s`` gets 503).
    database_pool_size: int = 12
    #: Where files (uploads, outputs) live: a local directory or ``file:///dir`` that every server and
    #: worker of a deployment sees at the same path. Unset: ``<data_dir>/files``.
    storage_url: str | None = None
    # -- S3 storage and the Ray executor (issue 10, scale-B) ------------------------------------
    #: S3 endpoint (MinIO, Ceph, R2…) for ``storage_url=s3://…``; unset: boto3's own
    #: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS.
    s3_endpoint_url: str | None = None
    #: Endpoint written into presigned download URLs when clients reach the store under another
    #: name than kinema does (e.g. the public MinIO ingress); unset: ``s3_endpoint_url``.
    s3_public_endpoint_url: str | None = None
    #: Region; unset: ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the AWS config.
    s3_region: str | None = None
    #: ``auto``, ``path`` (MinIO and most self-hosted stores) or ``virtual``.
    s3_addressing_style: str = "auto"
    #: ``GET /files/…`` on S3: ``stream`` (kinema relays the bytes; works wherever kinema works) or
    #: ``redirect`` (307 to a presigned URL; the store must be reachable by clients).
    s3_downloads: str = "stream"
    #: Lifetime of a presigned download URL.
    s3_presign_expires_s: float = 3600.0
    #: ``local`` (worker processes of this server) or ``ray`` (engines as Ray actors, see kinema.ray).
    executor: str = "local"
    #: ``auto`` (a running cluster, e.g. inside KubeRay), ``local`` (start one in-process) or
    #: ``ray://head:10001`` / ``host:6379``.
    ray_address: str = "auto"
    #: Engine actors to keep (0: one per GPU of the cluster for GPU actors, else ``workers``).
    ray_actors: int = 0
    #: GPUs per actor (fractions share a GPU); negative: 0 for the CPU motion engine, else 1.
    ray_num_gpus: float = -1.0
    #: CPUs per actor.
    ray_num_cpus: float = 1.0
    #: How often Ray restarts a dead actor (-1: always).
    ray_max_restarts: int = -1
    #: Ray namespace of the actors (names ``kinema-engine-<i>``).
    ray_namespace: str = "kinema"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kw: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = env.get("KINEMA_" + f.name.upper())
            if raw is None:
                continue
            default = f.default
            if f.name in {"data_dir", "tls_cert", "tls_key"}:
                kw[f.name] = Path(raw)
            elif f.name in {"fetch_allow", "devices", "allowed_hosts"}:
                kw[f.name] = _list(raw)
            elif isinstance(default, bool):
                kw[f.name] = _bool(raw)
            elif isinstance(default, int):
                kw[f.name] = int(raw)
            elif isinstance(default, float):
                kw[f.name] = float(raw)
            else:
                kw[f.name] = raw
        return cls(**kw)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between lease renewals: ``heartbeat_s``, or a third of the lease."""
        return self.heartbeat_s if self.heartbeat_s > 0 else self.lease_s / 3

    def device_for(self, index: int) -> str:
        """The device of worker ``index``."""
        return self.devices[index % len(self.devices)] if self.devices else "cpu"

    # Paths inside the data dir -------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "kinema.sqlite3"

    @property
    def files_dir(self) -> Path:
        url = self.storage_url
        if url and "://" not in url:
            return Path(url)
        if url and url.startswith("file://"):
            return Path(url[len("file://") :])
        return self.data_dir / "files"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def webhook_key_path(self) -> Path:
        return self.data_dir / "webhook-ed25519.pem"
