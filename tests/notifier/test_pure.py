"""The pure parts: signatures, notification bodies, retry policy, deadline planning."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import CATALOGUE, categories_of
from contracts.vocabulary import DataCategory
from contracts.webhook_signature import SignatureError, sign, verify
from notifier.deadlines import (
    ALL_KINDS,
    Close,
    Escalated,
    Open,
    escalation_key,
    plan,
    retention_key,
)
from notifier.notifications import EVENT_FIELDS, RetryPolicy, event_notification, outcome

SECRET = "nrmwh_test-secret"
BODY = b'{"kind":"event"}'


def test_signature_round_trip_and_tampering() -> None:
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    assert verify(SECRET, BODY, header, now=1_700_000_010) == 1_700_000_000
    with pytest.raises(SignatureError):
        verify(SECRET, BODY + b" ", header, now=1_700_000_010)
    with pytest.raises(SignatureError):
        verify("nrmwh_other", BODY, header, now=1_700_000_010)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, BODY, header, now=1_700_000_000 + 301)
    forged_time = header.replace("t=1700000000", "t=1700000005")
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, forged_time, now=1_700_000_010)
    for bad in (None, "", "garbage", "t=x,v1=00", "t=1700000000"):
        with pytest.raises(SignatureError):
            verify(SECRET, BODY, bad, now=1_700_000_010)


def test_signature_accepts_any_of_several_v1_during_rotation() -> None:
    old = sign("nrmwh_old", BODY, timestamp=100).split(",")[1]
    header = sign(SECRET, BODY, timestamp=100) + "," + old
    assert verify("nrmwh_old", BODY, header, now=100) == 100


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_notification_body_is_the_allow_list_only(event_type: str) -> None:
    """Every field of every event type, clear or personal, set to a canary value in the
    log item: none of them reaches the body."""
    canary = "CANARY-" + uuid.uuid4().hex[:8]
    fields = categories_of(CATALOGUE[event_type])
    item = {
        "position": 1,
        "direction": "received",
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "case": "case-0123456789",
        "time": datetime.now(UTC),
        "sender": "xa-police",
        "recipients": ["xa-shelter", canary],
        "operational": {name: canary for name in fields},
        "deadlines": {"referral-answer": canary},
        "sealed": {c.value: canary for c in DataCategory},
    }
    note = event_notification("xa-shelter", item)
    body = json.loads(note.body)
    assert set(body) == EVENT_FIELDS
    assert canary.encode() not in note.body
    assert body["type"] == event_type and body["case"] == "case-0123456789"


def test_full_jitter_backoff_stays_under_its_ceiling() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=1, cap_seconds=30)
    rng = random.Random(7)
    for attempt in range(1, 9):
        ceiling = min(30, 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range (jitter)


def test_outcomes() -> None:
    assert [outcome(c) for c in (200, 204, 410, 400, 401, 408, 429, 500, 503, None)] == [
        "delivered",
        "delivered",
        "gone",
        "refused",
        "refused",
        "retry",
        "retry",
        "retry",
        "retry",
        "retry",
    ]


def _item(event_type: str, direction: str = "sent", **kw: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "case": "case-0123456789",
        "direction": direction,
        "operational": kw.get("operational", {}),
        "deadlines": kw.get("deadlines", {}),
    }


def test_plan_opens_escalations_only_for_own_deadlines() -> None:
    due = datetime(2030, 1, 1, tzinfo=UTC)
    sent = _item(
        "referral.requested", operational={"referral_id": "r1"}, deadlines={"referral-answer": due}
    )
    [opened] = plan(sent)
    assert opened == Open(
        "referral-answer", "case-0123456789", "r1", sent["event_id"], due, "escalate"
    )  # type: ignore[arg-type]
    received = dict(sent, direction="received")
    assert plan(received) == []
    answer = _item("referral.declined", "received", operational={"referral_id": "r1"})
    [closed] = plan(answer)
    assert isinstance(closed, Close) and closed.key == "r1" and closed.status == "met"


def test_plan_reflection_supersedes_and_reminds_every_holder() -> None:
    ends = datetime(2030, 1, 31, tzinfo=UTC)
    item = _item(
        "reflection.extended",
        "received",
        deadlines={"reflection-ends": ends, "reflection-reminder": ends - timedelta(days=7)},
    )
    changes = plan(item)
    assert [type(c).__name__ for c in changes] == ["Close", "Close", "Open"]
    assert changes[-1].action == "remind" and changes[-1].target == ends  # type: ignore[union-attr]
    esc = _item(
        "case.escalated", operational={"deadline": "reflection-ending", "about_event_id": "e1"}
    )
    assert plan(esc) == [Escalated("reflection-ending", "e1")]
    closed = plan(_item("case.closed", "received"))
    assert isinstance(closed[0], Close) and set(closed[0].kinds) == set(ALL_KINDS)


def test_plan_a_closing_starts_retention_and_its_end_orders_erasure() -> None:
    ends = datetime(2031, 3, 1, tzinfo=UTC)
    sent = _item("case.closed", "sent", deadlines={"retention-ends": ends})
    sent["recipients"] = ["border-police", "safe-house"]
    opened = [c for c in plan(sent) if isinstance(c, Open)]
    assert [(o.kind, o.action, o.due, o.key) for o in opened] == [
        ("retention-ends", "erase", ends, "border-police,safe-house")
    ]
    closing = next(c for c in plan(sent) if isinstance(c, Close) and c.status == "met")
    assert "retention-ends" not in closing.kinds  # the closing does not close its own period
    received = _item("case.closed", "received", deadlines={"retention-ends": ends})
    assert [c for c in plan(received) if isinstance(c, Open)] == []  # only the closer acts
    erased = plan(_item("case.erasure-ordered", "received"))
    assert isinstance(erased[0], Close) and "retention-ends" in erased[0].kinds
    assert retention_key("e1") != escalation_key("retention-ends", "e1")
