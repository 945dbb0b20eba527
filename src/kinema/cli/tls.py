"""``kinema tls``: create (or reuse) a local CA and localhost certificate under ``DATA_DIR/tls/``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from kinema.cli.main import CliError
from kinema.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "tls",
        help="create a local CA and a localhost certificate for HTTPS (needed by the Python fal client)",
        description="Writes ca.pem, server.pem and server-key.pem under DATA_DIR/tls/ (reused while valid) and "
        "prints the client environment and the serve flags to use.",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (env KINEMA_DATA_DIR)")
    p.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="NAME",
        help="host name or IP for the certificate (repeatable; default localhost, 127.0.0.1, ::1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kinema.tls import DEFAULT_HOSTS, ensure_local_tls

    settings = Settings.from_env().replace(data_dir=args.data_dir)
    tls_dir = (settings.data_dir / "tls").resolve()
    try:
        files = ensure_local_tls(tls_dir, tuple(args.hosts) if args.hosts else DEFAULT_HOSTS)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write TLS files in {tls_dir}: {exc.strerror or exc}") from None
    q = shlex.quote
    print(f"Local CA and server certificate in {tls_dir}")
    print("Serve with:")
    # The data dir as given: serve must open the same store, and a relative path means the same from here.
    data_dir = f"--data-dir {q(str(args.data_dir))} " if args.data_dir is not None else ""
    print(f"  kinema serve {data_dir}--tls-cert {q(str(files.cert))} --tls-key {q(str(files.key))}")
    print("Make clients trust the CA (Python fal_client/httpx; for Node use NODE_EXTRA_CA_CERTS):")
    print(f"export SSL_CERT_FILE={q(str(files.ca_cert))}")
    return 0
