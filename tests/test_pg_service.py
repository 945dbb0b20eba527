"""Webhooks, sync ``/run``, the SSE stream and retention again, with the server on PostgreSQL.

Imported unchanged from their modules (``KINEMA_DATABASE_URL`` is set for this module). Left out:
``test_pending_delivery_is_sent_after_kill_and_restart``, which reads the SQLite file directly;
its PostgreSQL counterpart is the outbox surviving a database restart in ``test_pg_keys_and_db.py``.
"""

from __future__ import annotations

import pytest
from test_retention import test_results_and_files_expire_after_retention, test_results_are_kept_within_retention
from test_run import test_sync_run_returns_output_and_drop_cancels
from test_stream import test_status_stream_sends_new_logs_and_closes
from test_webhooks_service import test_webhook_signed_and_retried

__all__ = [
    "test_results_and_files_expire_after_retention",
    "test_results_are_kept_within_retention",
    "test_status_stream_sends_new_logs_and_closes",
    "test_sync_run_returns_output_and_drop_cancels",
    "test_webhook_signed_and_retried",
]


@pytest.fixture(scope="module", autouse=True)
def _on_postgres(postgres_env: str) -> str:
    return postgres_env
