"""Process-wide logging setup, called once by the entry points (never at import).

One line per event. On a terminal the lines are for people; otherwise (a file, a
pipe, a container's log driver) each line is one JSON object, so a collector can
index the fields. Structured fields travel in the record's `fields` attribute:
`log.info("request", extra={"fields": {...}})`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from juststorage.domain.timestamps import utc_text

LogFormat = Literal["auto", "json", "text"]
FIELDS_ATTR = "fields"


def record_fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, FIELDS_ATTR, None)
    return fields if isinstance(fields, Mapping) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return utc_text(datetime.fromtimestamp(record.created, UTC), fraction_digits=3)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", <fields>..., "exc"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record_fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message> key=value ...` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in record_fields(record).items() if v != "")
        if extras:
            text = f"{text}  {extras}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def _wants_json(log_format: LogFormat, stream: TextIO) -> bool:
    return log_format == "json" or (log_format == "auto" and not stream.isatty())


def configure_logging(
    level: str, log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Send every log line to `stream` (stderr): text on a terminal, JSON otherwise."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if _wants_json(log_format, out) else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def server_log_config(log_format: LogFormat = "auto") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the HTTP server's own loggers (granian's
    start, stop and worker lines), in the same format and on stderr like ours."""
    formatter = JsonFormatter if _wants_json(log_format, sys.stderr) else TextFormatter
    name = f"{formatter.__module__}.{formatter.__qualname__}"
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"generic": {"()": name}, "access": {"()": name}},
        "handlers": {
            "console": {**handler, "formatter": "generic"},
            "access": {**handler, "formatter": "access"},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
