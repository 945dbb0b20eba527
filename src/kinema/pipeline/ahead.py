"""Make frames ahead on a thread while the caller encodes (engines and the encoder release the GIL).

The old motion-engine entry point did this for itself and measured renders 10 % faster on 2 cores;
doing it here gives every engine the overlap (a GPU model's next frames while the CPU encodes).

With ``background=True`` the producer steps aside for the encoder: after its first item (the
engine's setup) it runs at idle priority (Linux ``SCHED_IDLE``) and takes only the CPU that
x264's threads leave. On 2 cores a busy thread beside an encode cost the encoder 0.45-0.54 s of
wall time per CPU-second it used at normal priority, 0.46-0.50 s at nice 19 and 0.31-0.37 s at
``SCHED_IDLE`` (``benchmarks/bench_motion.py`` measures the effect on whole renders).

An idle-priority thread gets almost nothing while other processes keep every core busy, and it
cannot raise its own priority back without privileges, so when the consumer has waited
``starved_s`` for an item, production moves to a new thread at normal priority after the item in
progress (started by the consumer: a thread inherits its creator's scheduling class).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["STARVED_S", "ahead", "lower_priority"]

T = TypeVar("T")
_DONE = object()
_HANDOFF = object()  # a background producer stopped for the consumer to start one at normal priority
#: How long leaving the context waits for the producer to notice (a hung engine is left to its process).
_JOIN_S = 2.0
#: A background producer the consumer has waited this long for continues at normal priority.
STARVED_S = 0.5


def lower_priority() -> bool:
    """Put the calling thread in the idle scheduling class (Linux); False where that is not possible."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread on Linux
    except (AttributeError, OSError):
        return False
    return True


@contextmanager
def ahead(
    items: Iterator[T],
    depth: int = 4,
    *,
    waiting: Callable[[], None] | None = None,
    every: float = 0.1,
    background: bool = False,
    starved_s: float = STARVED_S,
) -> Iterator[Iterator[T]]:
    """An iterator over ``items`` produced on a thread, at most ``depth`` ahead.

    An exception raised by ``items`` is raised by the returned iterator. While the consumer waits for
    an item, ``waiting()`` is called every ``every`` seconds (to pass on what the producer logged).
    ``background``: see the module's docstring. Leaving the context stops the producer after its
    current item and closes ``items``.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    lowered = threading.Event()  # the producer runs at idle priority
    promote = threading.Event()  # set by a consumer starved since then: go on at normal priority
    workers: list[threading.Thread] = []

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce(demote: bool) -> None:
        handed_off = False
        try:
            for item in items:  # a later thread goes on with the same iterator
                if not offer((True, item)):
                    return
                if demote and not lowered.is_set() and lower_priority():
                    lowered.set()
                if demote and promote.is_set():
                    # A thread inherits its creator's scheduling class: the consumer starts the next.
                    handed_off = offer((False, _HANDOFF))
                    return
            offer((False, _DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer((False, exc))
        finally:
            close = getattr(items, "close", None)
            if not handed_off and close is not None:
                close()

    def start(*, demote: bool) -> None:
        worker = threading.Thread(target=produce, args=(demote,), name="kinema-frames-ahead", daemon=True)
        workers.append(worker)
        worker.start()

    def consume() -> Iterator[T]:
        waited = 0.0
        while True:
            try:
                ok, value = slots.get(timeout=every)
            except queue.Empty:
                if waiting is not None:
                    waiting()
                if lowered.is_set():  # (the first item, the engine's setup, is made at normal priority)
                    waited += every
                    if waited >= starved_s:
                        promote.set()
                continue
            waited = 0.0
            if ok:
                yield value  # type: ignore[misc]
            elif value is _DONE:
                return
            elif value is _HANDOFF:
                start(demote=False)
            else:
                assert isinstance(value, BaseException)
                raise value

    start(demote=background)
    try:
        yield consume()
    finally:
        stop.set()
        for worker in workers:
            worker.join(_JOIN_S)
