"""What fal's clients send about a request's place in the queue.

(fal's three public states, ``IN_QUEUE``/``IN_PROGRESS``/``COMPLETED``, are computed from the
internal :class:`~kinema.jobs.states.JobState` by :func:`kinema.jobs.states.fal_status`.)
"""

from __future__ import annotations

import enum

__all__ = ["Priority"]


class Priority(enum.IntEnum):
    """``X-Fal-Queue-Priority``: lower value runs first."""

    NORMAL = 0
    LOW = 1

    @classmethod
    def parse(cls, header: str | None) -> Priority:
        return cls.LOW if (header or "").strip().lower() == "low" else cls.NORMAL
