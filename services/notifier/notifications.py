"""What a notification says, and when a failed delivery is tried again. Pure.

A notification carries operational metadata only: which event (id and type), which case
(its pseudonym), when, and from which agency. Nothing else from the log item is copied,
not even the clear `operational` fields (officer ids, agency ids, free choices): the
receiving system reads the case through its own router, with its own credentials, and
sees exactly what need-to-know allows. The allow-list below is the whole body.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

#: Every key a notification body may have; anything else is a bug (tests check it).
EVENT_FIELDS = frozenset(
    {"notification_id", "kind", "agency", "event_id", "type", "case", "time", "sender"}
)
REMINDER_FIELDS = frozenset(
    {
        "notification_id",
        "kind",
        "agency",
        "type",
        "case",
        "time",
        "deadline",
        "due",
        "about_event_id",
    }
)


def notification_id(agency_id: str, *parts: str) -> str:
    """Stable across restarts and retries: it is the delivery's Idempotency-Key."""
    return str(uuid5(NAMESPACE_URL, "nrm:notification:" + "|".join((agency_id, *parts))))


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys: the exact bytes that are signed and sent."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Notification:
    id: str
    agency_id: str
    kind: str  # "event" or "reminder"
    type: str
    body: bytes


def event_notification(agency_id: str, item: dict[str, Any]) -> Notification:
    """From a received log item, by allow-list (never by copying and deleting)."""
    nid = notification_id(agency_id, "event", str(item["event_id"]))
    body = {
        "notification_id": nid,
        "kind": "event",
        "agency": agency_id,
        "event_id": str(item["event_id"]),
        "type": str(item["type"]),
        "case": str(item["case"]),
        "time": _iso(item["time"]),
        "sender": str(item["sender"]),
    }
    return Notification(nid, agency_id, "event", body["type"], encode(body))


def reminder_notification(
    agency_id: str, deadline: str, case: str, about_event_id: str, due: datetime, at: datetime
) -> Notification:
    """A deadline ahead (e.g. the reflection period ends in N days): no bus event."""
    nid = notification_id(agency_id, "reminder", deadline, about_event_id)
    body = {
        "notification_id": nid,
        "kind": "reminder",
        "agency": agency_id,
        "type": f"reminder.{deadline}",
        "case": case,
        "time": at.isoformat(),
        "deadline": deadline,
        "due": due.isoformat(),
        "about_event_id": about_event_id,
    }
    return Notification(nid, agency_id, "reminder", body["type"], encode(body))


# --- retries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS architecture blog, 2015): the n-th retry
    waits uniform(0, min(cap, base * 2**(n-1))), so failing receivers are not hammered
    in lock-step; after `max_attempts` the delivery goes to the dead letters."""

    max_attempts: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    timeout_seconds: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return rng.uniform(0, ceiling)


#: Answers after which retrying cannot help (the receiver refused the request itself).
_PERMANENT = frozenset({400, 401, 403, 404, 405, 413, 415, 422})


def outcome(status_code: int | None) -> str:
    """'delivered', 'gone' (410: disable the subscription), 'refused' (a 4xx no retry
    will fix: dead-letter now) or 'retry' (network errors, timeouts, 408, 429, 5xx)."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    if status_code in _PERMANENT:
        return "refused"
    return "retry"
