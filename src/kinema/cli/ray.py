"""``kinema ray``: run the engines as Ray actors of a Ray cluster, next to API servers on one database.

    kinema ray --ray-address auto --database-url postgresql://kinema@db/kinema \\
        --storage s3://kinema-files/prod --engine my_model:load --num-gpus 1

It connects to the cluster (``auto``: the one this node belongs to, e.g. a KubeRay head; ``local``: start
one here; ``ray://head:10001``), places one actor per GPU (or ``--actors N``), each loading the engine
once and claiming jobs from the store, and keeps them there until SIGTERM/SIGINT. It serves no HTTP:
run ``kinema serve --workers 0`` API servers on the same database and storage (or use
``kinema serve --executor ray``, which does both in one process). Ray restarts a dead actor; a job it
was running is re-queued when its lease lapses.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from kinema.cli.main import CliError, add_database_args, check_database_url, check_storage_url
from kinema.logs import configure_logging
from kinema.settings import Settings

__all__ = ["add_ray_args", "ray_settings", "register", "start_executor"]

#: Seconds to wait for every actor's engine to load before giving up.
READY_TIMEOUT_S = 600.0
#: Actor health is logged this often while running.
HEALTH_EVERY_S = 30.0


def add_ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray-address",
        default=None,
        help="auto (the cluster of this node), local (start one) or ray://head:10001 (env KINEMA_RAY_ADDRESS)",
    )
    p.add_argument(
        "--actors",
        type=int,
        default=None,
        help="engine actors (env KINEMA_RAY_ACTORS; default: one per GPU, or --workers for CPU engines)",
    )
    p.add_argument(
        "--num-gpus",
        type=float,
        default=None,
        help="GPUs per actor, 0.5 shares one (env KINEMA_RAY_NUM_GPUS; default 1, 0 for the motion engine)",
    )
    p.add_argument("--num-cpus", type=float, default=None, help="CPUs per actor (env KINEMA_RAY_NUM_CPUS; default 1)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ray", help="run the engines as Ray actors claiming jobs from the database (no HTTP server)")
    p.add_argument(
        "--engine", default=None, help="engine: motion, module:load or /path/file.py:load (env KINEMA_ENGINE)"
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="with SQLite: the data dir (shared by the actors: one machine only)"
    )
    add_ray_args(p)
    add_database_args(p)
    p.set_defaults(func=run)


def ray_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """Ray's flags in; paths made absolute (an actor's working directory is not this process's)."""
    storage = settings.storage_url
    if storage and "://" not in storage:
        storage = str(Path(storage).resolve())
    return settings.replace(
        executor="ray",
        ray_address=args.ray_address,
        ray_actors=args.actors,
        ray_num_gpus=args.num_gpus,
        ray_num_cpus=args.num_cpus,
        data_dir=settings.data_dir.resolve(),
        storage_url=storage,
    )


def start_executor(settings: Settings) -> object:
    """Connect to Ray and place the actors (the executor; ``.stop()`` it). A missing ``ray`` is a CliError."""
    try:
        from kinema.ray.executor import RayExecutor  # ray: optional (the `ray` extra), imported only when used
    except ImportError as exc:
        raise CliError(f"the Ray executor needs ray: pip install 'kinema[ray]' ({exc})") from None
    executor = RayExecutor(settings)
    try:
        executor.start()
    except (ConnectionError, RuntimeError) as exc:
        executor.stop()
        raise CliError(f"cannot start the Ray actors at {settings.ray_address}: {exc}") from None
    return executor


def run(args: argparse.Namespace) -> int:
    settings = ray_settings(
        Settings.from_env().replace(
            engine=args.engine,
            data_dir=args.data_dir,
            database_url=args.database_url,
            storage_url=args.storage,
        ),
        args,
    )
    check_database_url(settings)
    check_storage_url(settings)
    configure_logging(settings.log_level)
    from kinema.jobs.backends import describe
    from kinema.ray.executor import RayExecutor

    executor = start_executor(settings)
    assert isinstance(executor, RayExecutor)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            infos = executor.wait_ready(READY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - Ray's errors for a failed actor __init__ or a timeout
            raise CliError(f"the engine actors did not start: {str(exc).strip().splitlines()[-1][:500]}") from None
        print(
            f"kinema ray: {len(infos)} actor(s) ready on {settings.ray_address}, engine {settings.engine},"
            f" database {describe(settings)}",
            flush=True,
        )
        while not stop.wait(HEALTH_EVERY_S):
            for actor in executor.health():
                if "error" in actor:
                    print(f"kinema ray: {actor['actor']}: {actor['error']}", flush=True)
    finally:
        executor.stop()
    return 0
