"""moto's standalone S3 server (``python -m moto.server``) on a loopback port, one per test session (this file is
not named moto.py: that would shadow the moto package).

    def test_x(s3): s3.env("bucket/prefix") → the KINEMA_/AWS_ variables of a server using it
                    s3.client              → a boto3 client for checking objects

It is a separate process speaking the S3 wire protocol over HTTP, so kinema's boto3 client talks to
it exactly as to MinIO or AWS; nothing in kinema is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import free_port

__all__ = ["MotoS3", "s3"]

#: Fake credentials: moto accepts any, and they keep boto3 from looking for real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "kinema-test",
    "AWS_SECRET_ACCESS_KEY": "kinema-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class MotoS3:
    endpoint: str
    proc: subprocess.Popen  # type: ignore[type-arg]
    client: Any

    def env(self, bucket: str, prefix: str = "kinema", **extra: str) -> dict[str, str]:
        """Variables for a kinema process storing its files in ``s3://bucket/prefix`` (bucket created here)."""
        self.client.create_bucket(Bucket=bucket)
        return {
            **CREDENTIALS,
            "KINEMA_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "KINEMA_S3_ENDPOINT_URL": self.endpoint,
            **extra,
        }

    def keys(self, bucket: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install 'moto[server]')")
    import boto3

    port = free_port()
    log: Path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **CREDENTIALS},
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text(errors='replace')}")
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start: {log.read_text(errors='replace')}") from None
            time.sleep(0.1)
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        yield MotoS3(endpoint, proc, client)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
