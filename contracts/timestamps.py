"""Times in contracts: always timezone-aware, always normalised to UTC.

A naive time in a signed or logged document would mean different instants on different
nodes, so one annotated type refuses them everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (RFC 3339)")
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
