"""One local Ray cluster per test session (``ray.init`` here: the test process is its first driver).

    def test_x(ray_cluster): ray_cluster.address  → what ``kinema serve --ray-address`` connects to
                             ray_cluster.actor(namespace, i) → the handle of ``kinema-engine-<i>``

Starting Ray takes ~10-15 s on the 2-core test machine, so every Ray test shares this cluster; each
server uses a namespace of its own so its actors are never adopted by another test's server.
``ray.shutdown()`` at the end stops exactly the processes this ``ray.init`` started.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["RayCluster", "ray_cluster"]

#: Logical CPUs of the test cluster (actors take 1 each; the machine itself has 2 cores).
CLUSTER_CPUS = 4


@dataclass
class RayCluster:
    address: str

    def actor(self, namespace: str, index: int) -> Any:
        import ray

        return ray.get_actor(f"kinema-engine-{index}", namespace=namespace)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'kinema[ray]')")
    # No usage report to Ray's servers from the tests (the suite needs no network); inherited by the servers.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A short temp dir: Ray's unix sockets live under it and must stay under ~100 characters.
    temp = tempfile.mkdtemp(prefix="kray-", dir="/tmp")
    ray.init(
        num_cpus=CLUSTER_CPUS,
        num_gpus=0,
        include_dashboard=False,
        _temp_dir=temp,
        _node_ip_address="127.0.0.1",
        namespace="kinema-tests",
        log_to_driver=False,
    )
    try:
        yield RayCluster(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
