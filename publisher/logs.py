"""Structured logs: one line per event, JSON lines when LOG_FORMAT=json, key=value text otherwise.

Events are logged with ``event(log, "digest.queued", region=..., week=...)``: the message is the
event name and the fields travel in ``extra``. Plain ``log.info("...%s", x)`` calls from other
modules work too; their formatted message becomes the event. A traceback is folded into the same
line (an ``exc`` field), so a log shipper never sees half an event.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

FIELDS = "event_fields"
_HANDLER_NAME = "publisher-structured"


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``name`` with ``fields`` as structured data."""
    logger.log(level, name, extra={FIELDS: fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    extra = getattr(record, FIELDS, None)
    if isinstance(extra, dict):
        fields.update(extra)
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


def _text_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\r\t\\'):
        return json.dumps(text, ensure_ascii=False)  # quoted, newlines escaped
    return text


class TextFormatter(logging.Formatter):
    """``ts level logger event k=v ...``, values quoted when they hold spaces or newlines."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        head = f"{fields.pop('ts')} {fields.pop('level'):<7} {fields.pop('logger')}"
        parts = [head, _text_value(fields.pop("event"))]
        parts += [f"{key}={_text_value(value)}" for key, value in fields.items()]
        return " ".join(parts)


def configure_logging(
    fmt: Literal["text", "json"], *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send every logger's records to ``stream`` (stderr) in ``fmt``; calling again replaces it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler reports every run at INFO; our own job events say more, in one line.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
