"""pipeline/ahead.py: frames made on a thread ahead of the encoder, and the background producer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from kinema.pipeline.ahead import ahead

LINUX = sys.platform.startswith("linux")


def spin(seconds: float) -> None:
    """Burn this thread's CPU for ``seconds`` of CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def traced(n: int, cost_s: float = 0.0) -> tuple[Iterator[int], list[tuple[int, int, int]]]:
    """Items 0..n-1, each costing ``cost_s`` of CPU; records (item, thread id, scheduling policy)."""
    seen: list[tuple[int, int, int]] = []

    def items() -> Iterator[int]:
        for i in range(n):
            spin(cost_s)
            seen.append((i, threading.get_ident(), os.sched_getscheduler(0) if LINUX else 0))
            yield i

    return items(), seen


def test_items_arrive_in_order_and_errors_reach_the_consumer() -> None:
    made, _ = traced(20)
    with ahead(made, depth=3) as got:
        assert list(got) == list(range(20))

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("engine broke")

    with ahead(failing()) as got, pytest.raises(RuntimeError, match="engine broke"):
        list(got)


def test_leaving_early_closes_the_items() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    with ahead(items(), depth=2) as got:
        assert next(got) == 0
    assert closed.wait(2.0)


@pytest.mark.skipif(not LINUX, reason="SCHED_IDLE is Linux's")
def test_a_background_producer_runs_at_idle_priority_after_its_first_item() -> None:
    made, seen = traced(10)
    with ahead(made, background=True) as got:
        assert list(got) == list(range(10))
    policies = [policy for _, _, policy in seen]
    assert policies[0] != os.SCHED_IDLE  # the engine's set-up runs at normal priority
    assert policies[1] == os.SCHED_IDLE


@pytest.mark.skipif(not LINUX, reason="SCHED_IDLE is Linux's")
def test_a_starved_background_producer_goes_on_at_normal_priority() -> None:
    """Every core kept busy by other processes: an idle-priority producer would get almost nothing.

    30 items of 20 ms CPU each: at idle priority behind one busy process per core they would take
    minutes; the consumer, starved for 0.3 s, has production move to a normal-priority thread.
    """
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)  # the hogs are running
        made, seen = traced(30, cost_s=0.02)
        start = time.monotonic()
        got_items: list[int] = []
        with ahead(made, background=True, starved_s=0.3) as got:
            for item in got:
                got_items.append(item)
                if time.monotonic() - start > 30.0:
                    break  # starved for good: fail below instead of waiting minutes
        took = time.monotonic() - start
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    threads = [thread for _, thread, _ in seen]
    policies = [policy for _, _, policy in seen]
    print(f"starved producer: 30 items in {took:.1f} s on {len(set(threads))} threads")
    assert got_items == list(range(30)) and took < 20.0
    assert len(set(threads)) == 2 and policies[-1] != os.SCHED_IDLE
