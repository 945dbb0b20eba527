"""The queue behaviour tests (``test_queue.py``) again, with the server's jobs and keys on PostgreSQL.

The tests are imported unchanged; ``KINEMA_DATABASE_URL`` is set for this module, so the server
and every ``kinema keys`` command the tests run use a fresh PostgreSQL database.
"""

from __future__ import annotations

import pytest

# The tests and their fixtures, imported unchanged and collected here a second time.
from test_queue import *


@pytest.fixture(scope="module", autouse=True)
def _on_postgres(postgres_env: str) -> str:
    return postgres_env
