"""``kinema worker``: engine processes that claim jobs from a shared database, with no HTTP server.

Run one per GPU machine (or per GPU with ``--device``) next to any number of ``kinema serve``
API servers on the same database and files directory:

    kinema worker --database-url postgresql://kinema@db/kinema --storage /mnt/kinema-files \\
        --engine motion --device cuda:0

It loads the engine once per process, claims jobs in priority order, renews their leases,
writes logs, progress and outcomes to the store and outputs to the storage, and stops a job that
turns CANCELLING (whichever server took the cancel). If it dies (``kill -9``, power loss) the
leases of its jobs lapse and another worker runs them once more. SIGTERM/SIGINT stop it cleanly:
a running job is cut short and its lease lapses the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from kinema.cli.main import CliError, add_database_args, check_database_url
from kinema.logs import configure_logging
from kinema.settings import Settings

__all__ = ["register", "run_worker"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="run engine workers that claim jobs from the database (no HTTP server)")
    p.add_argument(
        "--engine", default=None, help="engine: motion, module:load or /path/file.py:load (env KINEMA_ENGINE)"
    )
    p.add_argument(
        "--device",
        default=None,
        help="device(s) of the engine processes, e.g. cuda:0 or cuda:0,cuda:1 (env KINEMA_DEVICES)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="engine processes (default: one per --device, else KINEMA_WORKERS or 1)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="local scratch (work files); with SQLite also the database (env KINEMA_DATA_DIR)",
    )
    add_database_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    devices = tuple(d.strip() for d in args.device.split(",") if d.strip()) if args.device else None
    workers = args.workers if args.workers is not None else (len(devices) if devices else None)
    settings = Settings.from_env().replace(
        engine=args.engine,
        devices=devices,
        workers=workers,
        data_dir=args.data_dir,
        database_url=args.database_url,
        storage_url=args.storage,
    )
    check_database_url(settings)
    if settings.workers < 1:
        raise CliError("--workers must be at least 1")
    configure_logging(settings.log_level)
    return asyncio.run(run_worker(settings))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Claim and run jobs until ``stop`` is set (or SIGTERM/SIGINT)."""
    from kinema.errors import StoreUnavailable
    from kinema.jobs.backends import BackendMissing, describe, open_change_feed, open_job_store
    from kinema.jobs.dispatcher import Dispatcher
    from kinema.media.storage import open_storage

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        store = await asyncio.to_thread(open_job_store, settings)
    except (StoreUnavailable, BackendMissing) as exc:
        raise CliError(str(exc)) from None
    feed = open_change_feed(settings, store)
    await feed.start()
    dispatcher = Dispatcher(settings, store, feed, open_storage(settings))
    await dispatcher.start()
    devices = ",".join(settings.device_for(i) for i in range(settings.workers))
    print(
        f"kinema worker: {settings.workers} engine process(es) [{devices}], engine {settings.engine},"
        f" database {describe(settings)}, files {settings.files_dir}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await dispatcher.stop()
        await feed.stop()
        store.close()
    return 0
