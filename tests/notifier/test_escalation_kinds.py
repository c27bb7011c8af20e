"""Each escalation kind by its owner and to its audience: a decline nobody re-routes (the
referring agency escalates), a guardian not appointed (child protection escalates), a
complaint left unanswered (the oversight body is told too)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.notifier.conftest import world

CASE = "case-1122334455"
REFERRAL = {"referral_id": "r1", "to_agency": "xa-shelter", "service": "shelter"}


def _refer_and_decline(w: Any, *, referrer: str) -> tuple[dict[str, Any], Any]:
    now = w.clock()
    sent = "sent" if referrer == w.router.agency_id else "received"
    w.router.add(
        "referral.requested",
        CASE,
        direction=sent,
        sender=referrer,
        recipients=["xa-shelter"],
        operational=REFERRAL,
        deadlines={"referral-answer": now + timedelta(hours=48)},
    )
    due = now + timedelta(hours=24)
    decline = w.router.add(
        "referral.declined",
        CASE,
        sender="xa-shelter",
        operational={"referral_id": "r1", "reason_code": "capacity"},
        deadlines={"re-referral": due},
    )
    return decline, due


async def test_a_decline_nobody_re_routes_is_escalated_by_the_referring_agency(
    tmp: Path,
) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        decline, due = _refer_and_decline(w, referrer="xa-police")
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(hours=23)
        await rt.step("xa-police")
        assert w.router.escalations() == []  # the referral was answered; not yet due
        w.clock.advance(hours=2)
        await rt.step("xa-police")
        [escalation] = w.router.escalations()
        assert escalation["operational"] == {
            "deadline": "re-referral",
            "about_event_id": decline["event_id"],
            "due": due.isoformat(),
        }
        assert escalation["recipients"] == ["xa-authority"]
        rt.store.close()


async def test_a_re_referral_naming_the_decline_stops_the_clock(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        _refer_and_decline(w, referrer="xa-police")
        w.router.add(
            "referral.requested",
            CASE,
            direction="sent",
            sender="xa-police",
            operational={**REFERRAL, "referral_id": "r2", "replaces_referral_id": "r1"},
        )
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(days=3)
        await rt.step("xa-police")
        assert w.router.escalations() == []
        [row] = [d for d in rt.store.deadlines("xa-police") if d["kind"] == "re-referral"]
        assert row["status"] == "met"
        rt.store.close()


async def test_a_decline_of_another_agency_s_referral_is_not_ours_to_escalate(
    tmp: Path,
) -> None:
    async with world(tmp, node_agency="xa-authority") as w:
        _refer_and_decline(w, referrer="xa-police")
        rt = w.notifier()
        await rt.step("xa-authority")
        w.clock.advance(days=3)
        await rt.step("xa-authority")
        assert w.router.escalations() == []
        assert [d for d in rt.store.deadlines("xa-authority") if d["kind"] == "re-referral"] == []
        rt.store.close()


def _child_screened(w: Any, direction: str) -> tuple[dict[str, Any], Any]:
    due = w.clock() + timedelta(hours=24)
    screening = w.router.add(
        "case.screened",
        CASE,
        direction=direction,
        sender="xa-police",
        recipients=["xa-cp", "xa-authority"],
        operational={"age_status": "disputed"},
        deadlines={"guardian-appointment": due},
    )
    return screening, due


async def test_child_protection_owes_the_guardian_and_escalates_it(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-cp") as w:
        screening, due = _child_screened(w, "received")
        rt = w.notifier()
        await rt.step("xa-cp")
        w.clock.advance(hours=25)
        await rt.step("xa-cp")
        [escalation] = w.router.escalations()
        assert escalation["operational"]["deadline"] == "guardian-appointment"
        assert escalation["operational"]["due"] == due.isoformat()
        assert escalation["operational"]["about_event_id"] == screening["event_id"]
        rt.store.close()


async def test_an_age_assessment_finding_an_adult_meets_the_guardian_deadline(
    tmp: Path,
) -> None:
    async with world(tmp, node_agency="xa-cp") as w:
        _child_screened(w, "received")
        w.router.add(
            "age.assessed",
            CASE,
            direction="sent",
            sender="xa-cp",
            operational={"outcome": "adult", "assessed_by_officer": "cp-1"},
        )
        rt = w.notifier()
        await rt.step("xa-cp")
        w.clock.advance(days=2)
        await rt.step("xa-cp")
        assert w.router.escalations() == []
        rt.store.close()


async def test_the_screening_agency_does_not_escalate_a_guardian_it_does_not_owe(
    tmp: Path,
) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        _child_screened(w, "sent")
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(days=2)
        await rt.step("xa-police")
        assert w.router.escalations() == []
        rt.store.close()


async def test_an_unanswered_complaint_goes_to_the_oversight_body_too(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        due = w.clock() + timedelta(days=28)
        w.router.add(
            "complaint.lodged",
            CASE,
            direction="sent",
            sender="xa-police",
            recipients=["xa-shelter"],
            operational={"complaint_id": "c1", "kind": "complaint", "about_agency": "xa-shelter"},
            deadlines={"complaint-answer": due},
        )
        rt = w.notifier()
        await rt.step("xa-police")
        w.clock.advance(days=29)
        await rt.step("xa-police")
        [escalation] = w.router.escalations()
        assert escalation["operational"]["deadline"] == "complaint-answer"
        assert escalation["recipients"] == ["xa-authority", "xa-rapporteur"]
        rt.store.close()


async def test_an_answer_naming_the_complaint_meets_its_deadline(tmp: Path) -> None:
    async with world(tmp, node_agency="xa-police") as w:
        w.router.add(
            "complaint.lodged",
            CASE,
            direction="sent",
            sender="xa-police",
            operational={"complaint_id": "c1", "kind": "complaint"},
            deadlines={"complaint-answer": w.clock() + timedelta(days=28)},
        )
        w.router.add(
            "complaint.answered",
            CASE,
            sender="xa-shelter",
            operational={"complaint_id": "c2"},  # another complaint: this one stays open
        )
        rt = w.notifier()
        await rt.step("xa-police")
        open_ = [d for d in rt.store.deadlines("xa-police") if d["kind"] == "complaint-answer"]
        assert [d["status"] for d in open_] == ["open"]
        w.router.add(
            "complaint.answered", CASE, sender="xa-shelter", operational={"complaint_id": "c1"}
        )
        await rt.step("xa-police")
        met = [d for d in rt.store.deadlines("xa-police") if d["kind"] == "complaint-answer"]
        assert [d["status"] for d in met] == ["met"]
        rt.store.close()
