"""Log formats: JSON lines off a terminal, readable text on one; the level is applied."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from juststorage.logs import configure_logging


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_off_a_terminal_each_record_is_one_json_object() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    logging.getLogger("juststorage.access").info(
        'GET "x"\nline', extra={"fields": {"status": 200, "tenant": "acme"}}
    )
    logging.getLogger("juststorage").debug("below the level")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["msg"] == 'GET "x"\nline'  # escaped, so still one line
    assert (record["status"], record["tenant"], record["level"]) == (200, "acme", "info")
    assert record["logger"] == "juststorage.access" and record["ts"].endswith("Z")


def test_on_a_terminal_records_are_text() -> None:
    out = _Terminal()
    configure_logging("warning", stream=out)
    logging.getLogger("juststorage").warning("disk %s", "full", extra={"fields": {"root": "hot"}})
    text = out.getvalue()
    assert "WARNING" in text and "disk full" in text and "root=hot" in text
    assert not text.startswith("{")


def test_the_format_can_be_forced() -> None:
    out = _Terminal()
    configure_logging("info", "json", stream=out)
    logging.getLogger("juststorage").info("hello")
    assert json.loads(out.getvalue())["msg"] == "hello"
