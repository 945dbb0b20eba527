"""``kinema serve``: the HTTP server with its worker processes."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from kinema.cli.main import CliError, add_database_args, check_database_url, check_storage_url
from kinema.cli.ray import add_ray_args, ray_settings, start_executor
from kinema.jobs.backends import describe
from kinema.logs import configure_logging
from kinema.settings import Settings

__all__ = ["bind", "register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the fal-compatible HTTP server")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--data-dir", type=Path, default=None, help="database, files and keys (env KINEMA_DATA_DIR)")
    p.add_argument("--public-url", default=None, help="base of URLs handed out (default: from the request)")
    p.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="private key for --tls-cert (PEM)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="engine worker processes (default 1; 0: API only, jobs run on `kinema worker`s)",
    )
    p.add_argument("--engine", default=None, help="engine entry point module:function (env KINEMA_ENGINE)")
    add_database_args(p)
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="local: engine worker processes of this server (default); ray: engines as Ray actors"
        " (env KINEMA_EXECUTOR; see kinema ray)",
    )
    add_ray_args(p)
    p.set_defaults(func=run)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything touches the data dir (issue 7.12): a second
    ``kinema serve`` on a busy port stops here, never running against a live store."""
    # The same address choice as uvicorn's own binding: IPv6 only for a literal IPv6 host.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT may be reused
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server running there?);"
            " nothing was started"
        ) from None
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    # uvicorn and the app are imported here, not at module level: `kinema --help` and the other
    # subcommands should not pay for the server stack.
    import uvicorn

    from kinema.api.app import create_app
    from kinema.api.connections import guarded_protocol, raise_fd_limit

    settings = Settings.from_env().replace(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        public_url=args.public_url,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        workers=args.workers,
        engine=args.engine,
        database_url=args.database_url,
        storage_url=args.storage,
    )
    check_database_url(settings)
    check_storage_url(settings)
    if settings.executor not in ("local", "ray"):
        raise CliError(f"KINEMA_EXECUTOR must be local or ray, not {settings.executor!r}")
    if (args.executor or settings.executor) == "ray":  # engines as Ray actors; this process runs none
        settings = ray_settings(settings, args)
        settings = settings.replace(ray_actors=settings.ray_actors or (args.workers or 0)).replace(workers=0)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            raise CliError(f"TLS file not found: {path}")
    if settings.workers < 0:
        raise CliError("--workers must be 0 (API only: jobs run on `kinema worker`s) or more")
    configure_logging(settings.log_level)
    sock = bind(settings.host, settings.port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    scheme = "https" if settings.tls_cert else "http"
    print(
        f"kinema serving on {scheme}://{settings.host}:{settings.port} (data: {settings.data_dir},"
        f" database: {describe(settings)})",
        flush=True,
    )
    # Slow and idle clients: header deadline and a connection cap below the descriptor limit (kinema.api.connections).
    protocol, _guard = guarded_protocol(settings, raise_fd_limit())
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        http=protocol,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,
    )
    executor = start_executor(settings) if settings.executor == "ray" else None
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if executor is not None:
            executor.stop()  # type: ignore[attr-defined]
    return 0
