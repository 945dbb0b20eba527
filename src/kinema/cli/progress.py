"""A one-line terminal progress bar on stderr, without dependencies.

On a terminal the line is redrawn in place (``\\r``); elsewhere (pipes, CI logs) a line is
printed only when the stage changes or another tenth of the work is done, so logs stay short.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_bytes", "format_seconds"]


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


class ProgressBar:
    """``stage [#####.....] 45/150 frames 30% 0:03``; thread-safe; disabled when ``enabled`` is false.

    >>> bar = ProgressBar()
    >>> bar.update("rendering", 45, 150, "frames")
    >>> bar.close()
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, width: int = 28):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._line = ""  # what is drawn now (tty) or was printed last (non-tty)
        self._stage = ""
        self._tenth = -1
        self._last_draw = 0.0

    def update(self, stage: str, done: float | None = None, total: float | None = None, unit: str = "",
               note: str = "") -> None:
        """Show ``stage``; with ``total`` a bar and ``done/total``, else only the elapsed time."""
        if not self.enabled:
            return
        with self._lock:
            line = self._render(stage, done, total, unit, note)
            if self.tty:
                now = time.monotonic()
                finished = total is not None and done is not None and done >= total
                if line != self._line and (now - self._last_draw >= 0.05 or finished or stage != self._stage):
                    self._draw(line)
                    self._last_draw = now
            else:
                tenth = int(10 * done / total) if total and done is not None else -1
                if stage != self._stage or tenth != self._tenth:
                    self.stream.write(line + "\n")
                    self.stream.flush()
                    self._tenth = tenth
                    self._line = line
            self._stage = stage

    def log(self, message: str) -> None:
        """Print a line above the bar (the bar is redrawn after it)."""
        if not self.enabled:
            return
        with self._lock:
            if self.tty and self._line:
                self.stream.write("\r\x1b[K" + message + "\n" + self._line)
            else:
                self.stream.write(message + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line (a terminal keeps the last state visible)."""
        if not self.enabled:
            return
        with self._lock:
            if self.tty and self._line:
                self.stream.write("\n")
                self.stream.flush()
            self._line = ""

    # -- drawing ---------------------------------------------------------------------------
    def _render(self, stage: str, done: float | None, total: float | None, unit: str, note: str) -> str:
        elapsed = format_seconds(time.monotonic() - self._start)
        parts = [stage]
        if total and done is not None:
            frac = min(max(done / total, 0.0), 1.0)
            filled = int(round(frac * self.width))
            parts.append("[" + "#" * filled + "." * (self.width - filled) + "]")
            if unit == "bytes":
                parts.append(f"{format_bytes(done)}/{format_bytes(total)}")
            else:
                parts.append(f"{done:g}/{total:g}" + (f" {unit}" if unit else ""))
            parts.append(f"{frac:4.0%}")
        if note:
            parts.append(note)
        parts.append(elapsed)
        return " ".join(parts)

    def _draw(self, line: str) -> None:
        cols = shutil.get_terminal_size((100, 20)).columns
        if len(line) >= cols:
            line = line[: max(cols - 1, 10)]
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._line = line
