"""The protocol behaviour tests (``test_protocol.py``) again, with jobs, keys and webhooks on PostgreSQL.

Imported unchanged; ``KINEMA_DATABASE_URL`` is set for this module, so the ``fast`` server and every
``kinema keys create|revoke`` the tests run use one fresh PostgreSQL database (a key revoked from
the command line is refused by the running server at once: its cache is emptied by the change
feed). The ``slow`` server gets a database of its own, as it has a data dir of its own under
SQLite: on a shared database the fast server's worker would (rightly) take its jobs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg import PgCluster
from scale import create_pg_key
from server import Server, running_server

# The tests and their fixtures, imported unchanged and collected here a second time.
from test_protocol import *


@pytest.fixture(scope="module", autouse=True)
def _on_postgres(postgres_env: str) -> str:
    return postgres_env


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster) -> Iterator[Server]:
    url = pg_cluster.create_database()
    with running_server(
        tmp_path_factory.mktemp("protocol-slow"),
        engine="tests/engines/slow.py:render",
        env={"KINEMA_DATABASE_URL": url},
        key=create_pg_key(url),
    ) as s:
        yield s
