"""Run a frame generator one or two frames ahead on a worker thread (OpenCV releases the GIL).

The encoder keeps about one core busy; building the next frame meanwhile on the other core
hides most of the engine's own cost. At most ``depth`` frames wait in the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_DONE = object()


@contextmanager
def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """Context manager giving an iterator over ``items`` computed ahead on a thread.

    Exceptions raised by ``items`` are re-raised by the returned iterator. Leaving the context
    stops the thread after the item it is working on and closes ``items``.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, _DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            ok, value = slots.get()
            if ok:
                yield value  # type: ignore[misc]
            elif value is _DONE:
                return
            else:
                raise value  # type: ignore[misc]

    worker = threading.Thread(target=work, name="kinema-motion-frames", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        worker.join()
