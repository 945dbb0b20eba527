"""Every command honours the database URL: ``kinema keys``, ``kinema db upgrade``; the webhook outbox
on PostgreSQL keeps its deliveries through a database restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from pg import PgCluster
from queueclient import submit, wait_status
from receiver import Receiver
from scale import create_pg_key, pg_env
from server import ROOT, start_server, stop_server


def _kinema(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "KINEMA_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "kinema", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(ROOT),
        env={**full, **(env or {})},
        timeout=120,
    )


def test_keys_commands_use_the_database_url_flag_and_env(tmp_path: Path, pg_url: str) -> None:
    made = _kinema("keys", "create", "--label", "ci", "--database-url", pg_url, "--data-dir", str(tmp_path / "d"))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert pg_url.rsplit("/", 1)[1] in made.stdout  # says which database it wrote to
    assert not (tmp_path / "d" / "kinema.sqlite3").exists()  # nothing written to the data dir
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, label, revoked FROM api_keys").fetchall()
    assert rows == [(key.split(":")[0], "ci", 0)]
    listed = _kinema("keys", "list", env={"KINEMA_DATABASE_URL": pg_url})  # the environment variable
    assert listed.returncode == 0, listed.stderr
    key_id, _created, label = listed.stdout.rstrip("\n").split("\t")  # id, creation time, label
    assert (key_id, label) == (key.split(":")[0], "ci")
    gone = _kinema("keys", "revoke", key.split(":")[0], "--database-url", pg_url)
    assert gone.returncode == 0, gone.stderr
    assert _kinema("keys", "list", "--database-url", pg_url).stdout.strip() == ""


def test_a_key_made_on_the_command_line_works_on_every_server_and_a_revoke_reaches_them(
    tmp_path: Path, pg_url: str
) -> None:
    key = create_pg_key(pg_url)
    env = pg_env(pg_url, tmp_path / "files")
    servers = [start_server(tmp_path / f"s{i}", env=env, key=key, workers=0) for i in range(2)]
    try:
        headers = {"Authorization": f"Key {key}"}
        for s in servers:
            assert httpx.get(f"{s.url}/requests", headers=headers).status_code == 200
        assert _kinema("keys", "revoke", key.split(":")[0], "--database-url", pg_url).returncode == 0
        deadline = time.monotonic() + 5
        codes: list[int] = []
        while time.monotonic() < deadline:
            codes = [httpx.get(f"{s.url}/requests", headers=headers).status_code for s in servers]
            if codes == [401, 401]:
                break
            time.sleep(0.05)
        assert codes == [401, 401]
    finally:
        for s in servers:
            stop_server(s)


def test_db_upgrade_on_postgres_and_sqlite(tmp_path: Path, pg_url: str) -> None:
    first = _kinema("db", "upgrade", "--database-url", pg_url)
    assert first.returncode == 0, first.stderr
    assert "schema version 0 -> 1" in first.stdout
    again = _kinema("db", "upgrade", env={"KINEMA_DATABASE_URL": pg_url})
    assert again.returncode == 0 and "schema version 1, up to date" in again.stdout
    with psycopg.connect(pg_url) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM kinema_schema")] == [1]
    lite = _kinema("db", "upgrade", "--data-dir", str(tmp_path / "lite"))
    assert lite.returncode == 0, lite.stderr
    assert (tmp_path / "lite" / "kinema.sqlite3").exists()
    # A newer schema than this kinema knows is refused, in one line, not guessed at.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO kinema_schema VALUES (99, 0)")
    newer = _kinema("db", "upgrade", "--database-url", pg_url)
    assert newer.returncode == 2 and "version 99" in newer.stderr and "Traceback" not in newer.stderr


def test_bad_or_unreachable_database_urls_are_one_line_errors(tmp_path: Path, pg_cluster: PgCluster) -> None:
    bad = _kinema("keys", "create", "--database-url", "mysql://x/y")
    assert bad.returncode == 2 and "postgresql://" in bad.stderr and "Traceback" not in bad.stderr
    down = _kinema("db", "upgrade", "--database-url", "postgresql://postgres@127.0.0.1:1/none")
    assert down.returncode == 2 and "unavailable" in down.stderr and "Traceback" not in down.stderr
    worker = _kinema(
        "worker", "--database-url", "postgresql://postgres@127.0.0.1:1/none", "--data-dir", str(tmp_path / "w")
    )
    assert worker.returncode == 2 and "unavailable" in worker.stderr and "Traceback" not in worker.stderr


def test_webhook_outbox_delivers_after_a_database_restart(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, photo_uri: str
) -> None:
    receiver = Receiver(fail_first=1)  # the first attempt fails: the retry is due after the restart
    env = pg_env(pg_url, tmp_path / "files", KINEMA_WEBHOOK_ALLOW_PRIVATE="1", KINEMA_WEBHOOK_BACKOFF_S="3")
    server = start_server(tmp_path / "s", env=env, key=create_pg_key(pg_url))
    try:
        rid = submit(server, {"prompt": "hook", "image_url": photo_uri}, params={"fal_webhook": receiver.url}).json()[
            "request_id"
        ]
        wait_status(server, rid, "COMPLETED", timeout=60)
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.received) == 1  # the failed first attempt
        pg_cluster.restart(down_s=1.0)
        deadline = time.monotonic() + 30
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.received) == 2, "the retry was not sent after the database came back"
        assert json.loads(receiver.received[-1][1])["request_id"] == rid
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT status, attempts FROM webhook_deliveries").fetchall() == [("delivered", 2)]
    finally:
        stop_server(server)
        receiver.close()
