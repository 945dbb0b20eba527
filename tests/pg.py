"""A real PostgreSQL for the tests: Debian's binaries, a throw-away cluster on a loopback port.

    def test_x(pg_url: str) -> None: ...          # a fresh, empty database of the session's cluster

The cluster is created once per session with ``initdb`` in a temp dir (as the ``postgres`` user
when the suite runs as root: PostgreSQL refuses to run as root), started with ``pg_ctl`` on a free
127.0.0.1 port with fsync off (a test cluster; nothing to keep), and removed at the end. Tests that
need PostgreSQL are skipped with the reason when the binaries are missing, unless
``KINEMA_REQUIRE_POSTGRES=1`` (set by ``scripts/test.sh``/CI), which turns the skip into a failure.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PgCluster", "find_bindir", "pg_cluster", "pg_url", "postgres_env", "start_cluster"]

_counter = itertools.count()


def find_bindir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: ``pg_config --bindir``, else ``/usr/lib/postgresql/*/bin``."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    port: int
    run_as: str | None
    #: Test clusters skip fsync (nothing to keep); benchmarks keep PostgreSQL's durable defaults.
    durable: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            " -c max_connections=300"
        )
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast: every connection is cut), stay down ``down_s`` seconds, start again."""
        self.stop("fast")
        time.sleep(down_s)
        self.start()

    def create_database(self) -> str:
        import psycopg

        name = f"kinema_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_cluster(bindir: Path, *, durable: bool = False) -> PgCluster:
    root = Path(tempfile.mkdtemp(prefix="kinema-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    cluster = PgCluster(bindir, root, _free_port(), run_as, durable)
    cluster._run(
        str(bindir / "initdb"),
        "-D",
        str(cluster.data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
        "--locale=C",
    )
    cluster.start()
    return cluster


def _unavailable(reason: str) -> None:
    if os.environ.get("KINEMA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (KINEMA_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"PostgreSQL tests need Debian's postgresql binaries: {reason}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable("initdb/pg_ctl were not found (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("the suite runs as root and there is no 'postgres' user to run the server as")
    assert bindir is not None
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return pg_cluster.create_database()


@pytest.fixture(scope="module")
def postgres_env(pg_cluster: PgCluster) -> Iterator[str]:
    """``KINEMA_DATABASE_URL`` set to a fresh database for one test module: every server, worker and
    CLI command the module starts (``kinema keys`` included) runs on PostgreSQL."""
    url = pg_cluster.create_database()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KINEMA_DATABASE_URL", url)
        yield url
