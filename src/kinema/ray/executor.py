"""The Ray executor: keeps N engine actors alive in a Ray cluster (``kinema ray``, ``kinema serve --executor ray``).

    executor = RayExecutor(settings)
    executor.start()          # ray.init(address) + one named actor per slot (kinema-engine-<i>)
    executor.wait_ready(120)  # every actor's engine loaded
    executor.health()         # [{worker, pid, device, job, …}] or {"error": …} per actor
    executor.stop()           # kill the actors (their running jobs are re-queued when the leases lapse)

Placement: ``KINEMA_RAY_NUM_GPUS`` GPUs per actor (default 1, or 0 for the CPU motion engine; 0.5 shares
a GPU between two actors) and ``KINEMA_RAY_NUM_CPUS`` CPUs. ``KINEMA_RAY_ACTORS`` actors (default: as many as
the cluster's GPUs allow for GPU actors, else ``--workers``). Ray restarts a dead actor up to
``KINEMA_RAY_MAX_RESTARTS`` times (-1: always). The actors get this process's ``KINEMA_*`` and ``AWS_*``
variables (Ray's ``runtime_env``), so an engine configured by environment behaves as under ``kinema serve``.

The executor holds no job: the actors claim from the store themselves, so losing the executor, an actor or
the whole cluster loses no accepted job (running ones are re-queued when their leases lapse).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import ray

from kinema.ray.actor import EngineActor
from kinema.settings import DEFAULT_ENGINE, Settings

__all__ = ["ACTOR_PREFIX", "RayExecutor", "actor_gpus", "passed_env"]

log = logging.getLogger("kinema.ray")

#: Actor names: ``kinema-engine-0``, ``kinema-engine-1``, … in ``KINEMA_RAY_NAMESPACE``.
ACTOR_PREFIX = "kinema-engine-"
_PASSED_PREFIXES = ("KINEMA_", "AWS_")


def actor_gpus(settings: Settings) -> float:
    """GPUs per actor: ``KINEMA_RAY_NUM_GPUS``, else 0 for the weight-free motion engine and 1 for any other."""
    if settings.ray_num_gpus >= 0:
        return settings.ray_num_gpus
    return (
        0.0
        if settings.engine in (DEFAULT_ENGINE, "kinema.engines.motion:load", "kinema.engines.motion:render")
        else 1.0
    )


def passed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables handed to the actors (configuration and credentials, nothing else)."""
    env = dict(os.environ if environ is None else environ)
    return {k: v for k, v in env.items() if k.startswith(_PASSED_PREFIXES)}


@ray.remote
class _RemoteEngineActor(EngineActor):
    """The Ray actor class (placement options are given per actor in :meth:`RayExecutor.start`)."""

    def __init__(self, settings: Settings, index: int):
        super().__init__(settings, index, gpus=[str(g) for g in ray.get_gpu_ids()])


class RayExecutor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.actors: list[Any] = []
        self._connected = False

    @property
    def address(self) -> str | None:
        """``ray.init``'s address: ``None`` starts a local cluster (``local``)."""
        return None if self.settings.ray_address == "local" else self.settings.ray_address

    def actor_count(self) -> int:
        if self.settings.ray_actors > 0:
            return self.settings.ray_actors
        gpus = actor_gpus(self.settings)
        if gpus > 0:
            # Ray leaves cluster_resources unannotated.
            total = float(ray.cluster_resources().get("GPU", 0.0))  # type: ignore[no-untyped-call]
            if total < gpus:
                raise RuntimeError(
                    f"the Ray cluster has {total:g} GPUs; an actor needs {gpus:g}"
                    " (set KINEMA_RAY_NUM_GPUS=0 for a CPU engine)"
                )
            return int(total // gpus)
        return max(1, self.settings.workers)

    def start(self) -> None:
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                namespace=self.settings.ray_namespace,
                log_to_driver=True,
                include_dashboard=False if self.address is None else None,
            )
            self._connected = True
        gpus = actor_gpus(self.settings)
        count = self.actor_count()
        env = passed_env()
        for i in range(count):
            options: dict[str, Any] = {
                "name": f"{ACTOR_PREFIX}{i}",
                "namespace": self.settings.ray_namespace,
                "get_if_exists": True,  # a second executor (or a restarted one) adopts running actors
                "num_gpus": gpus,
                "num_cpus": self.settings.ray_num_cpus,
                "max_restarts": self.settings.ray_max_restarts,
                "max_task_retries": 0,
                "max_concurrency": 2,  # info() answers while the claim thread runs a job
                "runtime_env": {"env_vars": env},
            }
            # ray.remote's class wrapper is untyped: .options/.remote are added at run time.
            actor_class: Any = _RemoteEngineActor
            self.actors.append(actor_class.options(**options).remote(self.settings, i))
        log.info(
            "ray actors started",
            extra={
                "actors": count,
                "num_gpus": gpus,
                "num_cpus": self.settings.ray_num_cpus,
                "address": self.settings.ray_address,
            },
        )

    def wait_ready(self, timeout: float) -> list[dict[str, Any]]:
        """Every actor's ``info()`` once its engine is loaded; raises if one fails within ``timeout``."""
        deadline = time.monotonic() + timeout
        infos: list[dict[str, Any]] = ray.get(
            [a.info.remote() for a in self.actors], timeout=max(0.1, deadline - time.monotonic())
        )
        for info in infos:
            log.info("ray actor ready", extra={k: info[k] for k in ("worker", "host", "device", "load_s")})
        return infos

    def health(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        refs = [a.info.remote() for a in self.actors]
        for i, ref in enumerate(refs):
            try:
                out.append({"actor": f"{ACTOR_PREFIX}{i}", **ray.get(ref, timeout=timeout)})
            except Exception as exc:  # noqa: BLE001 - restarting, dead or unreachable: say which
                out.append({"actor": f"{ACTOR_PREFIX}{i}", "error": f"{type(exc).__name__}: {exc}"[:300]})
        return out

    def stop(self) -> None:
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already gone
                log.debug("killing an actor failed: %s", exc)
        self.actors.clear()
        if self._connected:
            ray.shutdown()
            self._connected = False
