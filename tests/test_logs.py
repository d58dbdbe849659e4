"""Log lines go to the stderr of the moment they are written, in the format asked for."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from optivgi_csms.logs import configure_logging, get_logger


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_lines_follow_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    configure_logging("json", "info")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    get_logger("test").info("one", station_id="CP-1")
    first.close()  # as a test's output capture is closed when it ends
    monkeypatch.setattr("sys.stderr", second)
    get_logger("test").info("two")
    (line,) = second.getvalue().splitlines()
    assert json.loads(line)["event"] == "two"
