"""Terminal output of the CLI on stderr, drawn with Rich: a progress bar, log lines above it, errors.

On a terminal the bar is a Rich live display, redrawn in place, and log lines scroll above it. Elsewhere
(pipes, CI logs) Rich draws nothing live; a plain line is printed only when the stage changes or another
tenth of the work is done, so logs stay short and greppable (``rendering [####....] 150/150 frames``).

Three kinds of output, so ``-q`` and ``-v`` are independent:

* :meth:`ProgressBar.update`: the bar; hidden by ``-q`` (``enabled=False``).
* :meth:`ProgressBar.note`: what the command is doing (``request … submitted``); hidden by ``-q``.
* :meth:`ProgressBar.log`: a line the user asked for (``-v``); always printed.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

__all__ = ["ProgressBar", "format_bytes", "format_seconds", "print_error", "stderr_console"]

#: Width of the bar in characters (the plain-text bar and the Rich one).
BAR_WIDTH = 28


def format_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - loop always returns


def format_seconds(s: float) -> str:
    """``75.2`` → ``1:15``."""
    s = max(0, int(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def stderr_console(stream: TextIO | None = None) -> Console:
    """A Rich console on ``stream`` (default: the current ``sys.stderr``) that never wraps a line and
    never reads markup or highlights text: server log lines such as ``[INFO] …`` are printed as sent."""
    return Console(
        file=stream if stream is not None else sys.stderr, soft_wrap=True, highlight=False, markup=False, emoji=False
    )


def print_error(message: str, stream: TextIO | None = None) -> None:
    """``kinema: error: <message>`` on one line (the prefix in bold red on a terminal)."""
    line = Text("kinema: error: ", style="bold red")
    line.append(" ".join(message.splitlines()))
    stderr_console(stream).print(line)


def _count(done: float | None, total: float | None, unit: str) -> str:
    if not total or done is None:
        return ""
    if unit == "bytes":
        return f"{format_bytes(done)}/{format_bytes(total)}"
    return f"{done:g}/{total:g}" + (f" {unit}" if unit else "")


class _Elapsed(ProgressColumn):
    """Time since the command started (not since the stage started), as ``m:ss``."""

    def __init__(self, start: float):
        super().__init__()
        self.start = start

    def render(self, task: Task) -> Text:
        return Text(format_seconds(time.monotonic() - self.start))


class ProgressBar:
    """``stage [#####.....] 45/150 frames 30% 0:03`` on stderr; thread-safe.

    >>> bar = ProgressBar()
    >>> bar.update("rendering", 45, 150, "frames")
    >>> bar.close()
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True):
        self.console = stderr_console(stream)
        self.enabled = enabled
        self.tty = self.console.is_terminal
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._live: Progress | None = None  # terminal only, started by the first update
        self._task: TaskID | None = None
        self._stage = ""
        self._tenth = -1

    def update(
        self, stage: str, done: float | None = None, total: float | None = None, unit: str = "", note: str = ""
    ) -> None:
        """Show ``stage``; with ``total`` a bar and ``done/total``, else only the elapsed time."""
        if not self.enabled:
            return
        with self._lock:
            if self.tty:
                self._update_live(stage, done, total, unit, note)
            else:
                tenth = int(10 * done / total) if total and done is not None else -1
                if stage != self._stage or tenth != self._tenth:
                    self.console.print(self._plain(stage, done, total, unit, note))
                    self._tenth = tenth
            self._stage = stage

    def note(self, message: str) -> None:
        """A line about what the command does; hidden with the bar (``-q``)."""
        if self.enabled:
            self.log(message)

    def log(self, message: str) -> None:
        """A line the user asked for (``-v``): always printed, above the bar on a terminal."""
        with self._lock:
            self.console.print(message)

    def close(self) -> None:
        """Stop the bar (a terminal keeps its last state visible)."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None
                self._task = None

    # -- drawing ---------------------------------------------------------------------------
    def _update_live(self, stage: str, done: float | None, total: float | None, unit: str, note: str) -> None:
        if self._live is None:
            self._live = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=BAR_WIDTH),
                TextColumn("{task.fields[count]}"),
                TextColumn("{task.fields[percent]}"),
                TextColumn("{task.fields[note]}"),
                _Elapsed(self._start),
                console=self.console,
                refresh_per_second=10,
                redirect_stdout=False,  # stdout carries only the summary line, never output moved there by Rich
            )
            self._live.start()
        if self._task is None or stage != self._stage:
            # A new stage is a new task: Rich keeps a task's total once set, and a stage may have none.
            if self._task is not None:
                self._live.remove_task(self._task)
            self._task = self._live.add_task(stage, total=total or None, count="", percent="", note="")
        percent = f"{min(max(done / total, 0.0), 1.0):4.0%}" if total and done is not None else ""
        self._live.update(
            self._task,
            description=stage,
            total=total or None,
            completed=done or 0,
            count=_count(done, total, unit),
            percent=percent,
            note=note,
        )

    def _plain(self, stage: str, done: float | None, total: float | None, unit: str, note: str) -> str:
        parts = [stage]
        if total and done is not None:
            frac = min(max(done / total, 0.0), 1.0)
            filled = round(frac * BAR_WIDTH)
            parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
            parts.append(_count(done, total, unit))
            parts.append(f"{frac:4.0%}")
        if note:
            parts.append(note)
        parts.append(format_seconds(time.monotonic() - self._start))
        return " ".join(parts)
