"""The oversight view's tables from envelopes as verified logs serve them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.audit_verification import LeafEntry, LogReport
from referral_router.console.oversight_figures import (
    decisions,
    decisions_by_officer,
    exchange_rows,
    referrals_by_agency,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def env(
    n: int,
    event_type: str,
    sender: str,
    recipients: list[str],
    op: dict[str, Any],
    *,
    at: datetime = T0,
    deadlines: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "type": event_type,
        "subject": "case-aaaaaaaa",
        "time": at.isoformat(),
        "sender": sender,
        "recipients": recipients,
        "operational": op,
        "deadlines": deadlines or {},
    }


def report(agency: str, envelopes: list[dict[str, Any]]) -> LogReport:
    leaves = [LeafEntry(i, e["id"], bytes(32), e) for i, e in enumerate(envelopes)]
    return LogReport(f"nrm.example/XA/{agency}", agency, None, [], leaves, None)


def test_referrals_per_agency_count_answers_overdue_and_escalations() -> None:
    due = (T0 + timedelta(hours=4)).isoformat()
    asked = [
        env(
            1,
            "referral.requested",
            "police",
            ["shelter"],
            {"referral_id": "r1", "to_agency": "shelter"},
            deadlines={"referral-answer": due},
        ),
        env(
            2,
            "referral.requested",
            "police",
            ["shelter"],
            {"referral_id": "r2", "to_agency": "shelter"},
            deadlines={"referral-answer": due},
        ),
        env(
            3,
            "referral.requested",
            "police",
            ["doctor"],
            {"referral_id": "r3", "to_agency": "doctor"},
        ),
        env(4, "referral.accepted", "shelter", ["police"], {"referral_id": "r1"}),
        env(
            5,
            "case.escalated",
            "police",
            ["authority"],
            {"deadline": "referral-answer", "about_event_id": asked_id(2)},
        ),
    ]
    # each event is in the sender's and the recipients' logs: counted once
    rows = referrals_by_agency(asked + asked[:2], T0 + timedelta(hours=5))
    got = {r.agency: (r.requested, r.accepted, r.unanswered, r.overdue, r.escalated) for r in rows}
    assert got == {"shelter": (2, 1, 1, 1, 1), "doctor": (1, 0, 1, 0, 0)}
    early = {r.agency: r.overdue for r in referrals_by_agency(asked, T0)}
    assert early == {"shelter": 0, "doctor": 0}


def asked_id(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def test_decisions_are_grouped_by_agency_and_officer_once_each() -> None:
    found = decisions(
        [
            env(
                1,
                "identification.decided",
                "authority",
                ["police"],
                {"stage": "reasonable-grounds", "decided_by_officer": "ca-1"},
            ),
            env(
                2,
                "referral.accepted",
                "shelter",
                ["police"],
                {"referral_id": "r1", "answered_by_officer": "sh-1"},
            ),
            env(3, "referral.declined", "doctor", ["police"], {"referral_id": "r2"}),
            env(
                1,
                "identification.decided",
                "authority",
                ["police"],
                {"stage": "reasonable-grounds", "decided_by_officer": "ca-1"},
            ),
            env(4, "case.screened", "police", ["authority"], {"screened_by_officer": "p-1"}),
        ]
    )
    rows = {(r.agency, r.officer): dict(r.by_type) for r in decisions_by_officer(found)}
    assert rows == {
        ("authority", "ca-1"): {"identification.decided": 1},
        ("shelter", "sh-1"): {"referral.accepted": 1},
        ("doctor", None): {"referral.declined": 1},  # an R7 gap, shown as such
    }


def test_exchange_rows_tell_held_missing_and_in_transit() -> None:
    now = T0 + timedelta(hours=1)
    sent_old = env(1, "referral.requested", "police", ["shelter"], {}, at=T0)
    sent_lost = env(2, "referral.requested", "police", ["shelter"], {}, at=T0)
    sent_new = env(3, "referral.requested", "police", ["shelter"], {}, at=now)
    logs = {
        "police": report("police", [sent_old, sent_lost, sent_new]),
        "shelter": report("shelter", [sent_old]),
    }
    [row] = exchange_rows(logs, now, timedelta(minutes=5))
    assert (row.sender, row.recipient, row.sent, row.held, row.young, row.missing) == (
        "police",
        "shelter",
        3,
        1,
        1,
        1,
    )
