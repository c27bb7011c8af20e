"""Deadlines from the stored events, with an injectable clock: one escalation per missed
deadline on the bus, even across restarts; reminders as notifications, once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.notifier.conftest import world

CASE = "case-77aa88bb99"


async def test_unanswered_referral_escalates_exactly_once_across_restarts(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        now = w.clock()
        due = now + timedelta(hours=48)
        late = w.router.add(
            "referral.requested",
            CASE,
            direction="sent",
            sender="xa-police",
            recipients=["xa-shelter"],
            operational={"referral_id": "r1", "to_agency": "xa-shelter", "service": "shelter"},
            deadlines={"referral-answer": due},
        )
        w.router.add(
            "referral.requested",
            CASE,
            direction="sent",
            sender="xa-police",
            recipients=["xa-shelter"],
            operational={"referral_id": "r2", "to_agency": "xa-shelter", "service": "medical"},
            deadlines={"referral-answer": due},
        )
        w.router.add(
            "referral.accepted", CASE, sender="xa-shelter", operational={"referral_id": "r2"}
        )
        # a deadline another node set is that node's to escalate, not ours
        w.router.add(
            "case.screened",
            CASE,
            sender="xa-shelter",
            deadlines={"reasonable-grounds": now + timedelta(days=5)},
        )

        rt = w.notifier()
        await rt.step("xa-police")
        assert w.router.escalations() == []
        w.clock.advance(hours=47)
        await rt.step("xa-police")
        assert w.router.escalations() == []  # not due yet

        w.clock.advance(hours=2)
        await rt.step("xa-police")
        await rt.step("xa-police")
        [escalation] = w.router.escalations()
        assert escalation["operational"] == {
            "deadline": "referral-answer",
            "about_event_id": late["event_id"],
            "due": due.isoformat(),
        }
        assert escalation["recipients"] == ["xa-authority"]  # the competent authority
        assert w.router.posted[0]["key"] == f"nrm-escalation:referral-answer:{late['event_id']}"
        [row] = [d for d in rt.store.deadlines("xa-police") if d["status"] == "escalated"]
        assert row["about_event_id"] == late["event_id"]
        rt.store.close()  # the process dies

        again = w.notifier()  # same store: the deadline is settled
        w.clock.advance(days=10)
        await again.step("xa-police")
        again.store.close()

        fresh = w.notifier(db="rebuilt.sqlite")  # store lost: rebuilt from the node's log
        await fresh.step("xa-police")
        statuses = {d["about_event_id"]: d["status"] for d in fresh.store.deadlines("xa-police")}
        fresh.store.close()
        assert statuses[late["event_id"]] == "escalated"  # recognised its own escalation
        assert len(w.router.escalations()) == 1
        assert len(w.router.posted) == 1


async def test_crash_after_posting_replays_the_same_key(tmp: Path) -> None:
    """The router got the escalation but the notifier died before recording it: the
    retry carries the same Idempotency-Key, so the router appends nothing new."""
    async with world(tmp, node_agency="xa-police") as w:
        now = w.clock()
        w.router.add(
            "case.screened",
            CASE,
            direction="sent",
            sender="xa-police",
            recipients=["xa-authority"],
            deadlines={"reasonable-grounds": now + timedelta(days=5)},
        )
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(days=6)
        await rt.step("xa-police")
        assert len(w.router.escalations()) == 1
        # undo the notifier's record, as if the commit was lost, and hide the log item
        rt.store._db.execute("UPDATE deadlines SET status = 'open'")
        escalation = w.router.items.pop()
        await rt.step("xa-police")
        rt.store.close()
        assert len(w.router.posted) == 2
        assert w.router.posted[0]["key"] == w.router.posted[1]["key"]
        assert w.router.escalations() == [] and escalation["type"] == "case.escalated"


async def test_answered_deadlines_do_not_escalate(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        now = w.clock()
        w.router.add(
            "case.screened",
            CASE,
            direction="sent",
            sender="xa-police",
            recipients=["xa-authority"],
            deadlines={"reasonable-grounds": now + timedelta(days=5)},
        )
        w.router.add(
            "identification.decided",
            CASE,
            sender="xa-authority",
            operational={"stage": "reasonable-grounds", "decided_by_officer": "o-1"},
        )
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(days=30)
        await rt.step("xa-police")
        rows = rt.store.deadlines("xa-police")
        rt.store.close()
        assert w.router.escalations() == []
        assert [r["status"] for r in rows] == ["met"]


async def test_reflection_reminder_is_one_notification_not_a_bus_event(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("remind", ["case.escalated"])
        now = w.clock()
        ends = now + timedelta(days=30)
        started = w.router.add(
            "reflection.started",
            CASE,
            sender="xa-police",
            deadlines={"reflection-ends": ends, "reflection-reminder": ends - timedelta(days=7)},
        )
        rt = w.notifier()
        await rt.step("xa-shelter")
        w.clock.advance(days=24)
        await rt.step("xa-shelter")
        await rt.step("xa-shelter")
        await rt.deliver_due()
        rt.store.close()
        again = w.notifier()
        await again.step("xa-shelter")
        await again.deliver_due()
        notes = again.store.notifications_after("xa-shelter", 0)
        again.store.close()
        assert [kind for _, kind, _ in notes] == ["event", "reminder"]  # SSE sees both
        body = notes[1][2]
        note = json.loads(body)
        assert note["type"] == "reminder.reflection-ending"
        assert note["about_event_id"] == started["event_id"] and note["due"] == ends.isoformat()
        [got] = w.receiver.got("remind")
        assert got["verified"] and json.loads(got["body"]) == note
        assert w.router.escalations() == [] and sub["id"]
