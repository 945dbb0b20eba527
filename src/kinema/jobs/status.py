"""The request state machine as fal's clients see it."""

from __future__ import annotations

import enum

__all__ = ["Status", "Priority"]


class Status(str, enum.Enum):
    """fal has exactly three states; failure and cancellation are ``COMPLETED`` with an error."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"

    def is_terminal(self) -> bool:
        return self is Status.COMPLETED

    def http_status(self) -> int:
        """Status endpoint code: 202 while waiting or running, 200 once completed."""
        return 200 if self is Status.COMPLETED else 202


class Priority(enum.IntEnum):
    """``X-Fal-Queue-Priority``: lower value runs first."""

    NORMAL = 0
    LOW = 1

    @classmethod
    def parse(cls, header: str | None) -> "Priority":
        return cls.LOW if (header or "").strip().lower() == "low" else cls.NORMAL
