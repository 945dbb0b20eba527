"""Structured log lines: key=value text or JSON, with the request id as its own field."""

from __future__ import annotations

import json
import logging

from kinema.logs import StructuredFormatter


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {"name": "kinema.test", "levelno": logging.INFO, "levelname": "INFO", "msg": msg, "args": ()}
    )
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_text_lines_carry_extra_fields():
    line = StructuredFormatter().format(record("job started", request_id="abc-123", attempt=1))
    assert " info " in line and "kinema.test: job started" in line
    assert "request_id=abc-123" in line and "attempt=1" in line


def test_json_lines_parse_and_drop_uvicorns_colour_copy():
    rec = record("Uvicorn running on %s", request_id="r1", color_message="\x1b[1m%s\x1b[0m")
    rec.args = ("http://127.0.0.1:8000",)
    fields = json.loads(StructuredFormatter(fmt_json=True).format(rec))
    assert fields["msg"] == "Uvicorn running on http://127.0.0.1:8000"
    assert fields["request_id"] == "r1" and fields["level"] == "info"
    assert "color_message" not in fields
    assert fields["ts"].endswith("Z")


def test_exceptions_are_kept():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    text = StructuredFormatter().format(rec)
    assert "ValueError: boom" in text
    assert json.loads(StructuredFormatter(fmt_json=True).format(rec))["exc"].endswith("ValueError: boom")
