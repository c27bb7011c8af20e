"""When to try a request again, and how long to wait first. Pure (no clock, no I/O).

Retried: 429 and 503 (waiting at least what `Retry-After` asks), 502 and 504, and
requests that got no answer at all. Only requests that are safe to repeat are retried:
reads, and writes that carry an Idempotency-Key (the client always sends one), for
which the node answers a repeat with the first answer and appends nothing twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25  # seconds before the second attempt, doubled each time
    max_delay: float = 8.0
    #: A Retry-After longer than this ends the retries instead of waiting.
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter before attempt `attempt + 1` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, retry_after: str | None, now: datetime) -> float | None:
        """Seconds to wait before the next attempt, or None: give up."""
        if attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt)
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            if asked > self.max_retry_after:
                return None
            wait = max(wait, asked)
        return wait


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
