"""Logs of the long-running commands: the bus's own lines at their level, libraries only
from WARNING, JSON lines on request, and no case pseudonym in any line or traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from nrm import logs

PSEUDONYM = "case-3f9a0c1d2e4b5a6c7d8e"


@pytest.fixture
def restored() -> Iterator[None]:
    """`logs.setup` changes the process's root logger: put it back afterwards."""
    root = logging.getLogger()
    names = [*logs.OWN_LOGGERS, "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = (
        list(root.handlers),
        root.level,
        {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in names},
    )
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for n, (level, handlers) in saved[2].items():
        logging.getLogger(n).setLevel(level)
        logging.getLogger(n).handlers[:] = handlers


def test_json_lines_without_pseudonyms(restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("json", "INFO")
    log = logging.getLogger("nrm.notifier")
    log.info("escalation refused: no case %s at this node", PSEUDONYM)
    try:
        raise RuntimeError(f"while reading /v1/cases/{PSEUDONYM}")
    except RuntimeError:
        log.exception("loop failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [x["message"] for x in lines] == [
        "escalation refused: no case case-<redacted> at this node",
        "loop failed",
    ]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "nrm.notifier"
    assert "RuntimeError: while reading /v1/cases/case-<redacted>" in lines[1]["exception"]
    assert PSEUDONYM not in json.dumps(lines)


def test_quiet_by_default_libraries_from_warning(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup("text", None)
    logging.getLogger("aiokafka.conn").info("Authenticated as ...")  # 77 of these, once
    logging.getLogger("httpx").info("HTTP Request: GET /v1/log")
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("nrm.node").debug("details nobody asked for")
    logging.getLogger("a_library.of_ours").warning("group rebalanced")  # none set its level
    logging.getLogger("nrm.node").info("node started")
    err = capsys.readouterr().err
    assert "group rebalanced" in err and "node started" in err
    for quiet in ("Authenticated", "HTTP Request", "Started server", "nobody asked"):
        assert quiet not in err


def test_bad_settings_are_refused(restored: None) -> None:
    with pytest.raises(ValueError, match="log format"):
        logs.setup("xml")
    with pytest.raises(ValueError, match="log level"):
        logs.setup("text", "LOUD")
