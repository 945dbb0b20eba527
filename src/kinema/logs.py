"""Structured logging: one line per event, ``key=value`` text or JSON (``KINEMA_LOG_FORMAT=json``).

Call sites pass the request id as ``extra={"request_id": ...}``; it is printed as its own field.
"""

from __future__ import annotations

import json
import logging
import os
import time

__all__ = ["configure_logging", "StructuredFormatter"]

# uvicorn adds `color_message`, a copy of the message with ANSI colours: not a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class StructuredFormatter(logging.Formatter):
    def __init__(self, fmt_json: bool = False):
        super().__init__()
        self.fmt_json = fmt_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.fmt_json:
            return json.dumps(fields, default=str)
        head = f"{fields.pop('ts')} {fields.pop('level'):<7} {fields.pop('logger')}: {fields.pop('msg')}"
        rest = " ".join(f"{k}={v}" for k, v in fields.items() if k != "exc")
        text = f"{head} {rest}".rstrip()
        return text + ("\n" + fields["exc"] if "exc" in fields else "")


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter(os.environ.get("KINEMA_LOG_FORMAT", "text") == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
