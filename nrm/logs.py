"""Logging for every long-running `nrm` command: quiet, structured on request, and never a
case pseudonym.

Quiet: the bus's own loggers (`nrm.*`, the services') at the chosen level, third-party
libraries (Kafka client, HTTP clients and servers, the event store) at WARNING, so a
start-up's list of URLs is not buried. Structured: `--log-format json` writes one JSON
object per line (time, level, logger, message, and the exception if any) for a log
shipper. Private: the services log ids, types and agencies, never payload fields; as a
second line of defence every record's text has case pseudonyms replaced, since a
pseudonym links log lines to a person's case.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
#: Loggers of the bus itself; everything else counts as third-party.
OWN_LOGGERS = ("nrm", "registry", "notifier", "referral_router")
THIRD_PARTY_LEVEL = logging.WARNING
_PSEUDONYM = re.compile(r"case-[a-z0-9]{8,64}")
REDACTED = "case-<redacted>"


def redact(text: str) -> str:
    return _PSEUDONYM.sub(REDACTED, text)


class Redaction(logging.Filter):
    """Replaces case pseudonyms in the message and the exception text of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup(fmt: str | None = None, level: str | None = None) -> None:
    """Configure the root logger once for a command (`NRM_LOG_FORMAT`, `NRM_LOG_LEVEL`
    apply when the options are not given)."""
    fmt = (fmt or os.environ.get("NRM_LOG_FORMAT") or "text").lower()
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    own_level = (level or os.environ.get("NRM_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(own_level)
    if not isinstance(numeric, int):
        raise ValueError(f"log level {own_level!r}: use DEBUG, INFO, WARNING or ERROR")
    third_party = max(THIRD_PARTY_LEVEL, numeric)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redaction())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(third_party)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    # uvicorn configures its own loggers with their own handlers: route them to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
        uv.setLevel(third_party)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=None,
        help="text (default) or json, one object per line (env NRM_LOG_FORMAT)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="level of the bus's own loggers, default INFO; libraries stay at WARNING "
        "(env NRM_LOG_LEVEL)",
    )


def setup_from(args: argparse.Namespace) -> None:
    setup(getattr(args, "log_format", None), getattr(args, "log_level", None))
