"""Retention as policy data, on a real bus: a case run from screening to its closing is
erased by the competent authority's own node when the retention period of XA's policy
for its closing reason passes on the notifier's (test) clock, on the legal basis
`retention-expired`; every key on every node then fails to open any of it, the log
stays whole, and oversight lists the erasure as upcoming, then as executed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.policy import RETENTION_OFFICER, load_policy
from tests.bus.running import RunningBus, running_bus

XA = load_policy("XA")


def post(bus: RunningBus, agency: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with bus.client(agency) as c:
        r = c.post(path, json=body)
    assert r.status_code == 201, r.text
    bus.settle()
    return dict(r.json())


def step(bus: RunningBus, agency: str, case: str, kind: str, to: list[str], **p: Any) -> None:
    post(bus, agency, f"/v1/cases/{case}/events", {"type": kind, "recipients": to, "payload": p})


def lifecycle(bus: RunningBus) -> str:
    """Screened, consented, referred and sheltered, identified (reasonable grounds, then
    conclusive), a reflection period started and ended, a residence permit, closed."""
    case = post(
        bus,
        "border-police",
        "/v1/cases",
        {
            "recipients": ["nrm-authority", "immigration"],
            "payload": {
                "forms_of_exploitation": ["forced-labour"],
                "age_status": "adult",
                "screened_by_officer": "bp-1",
                "full_name": "Ana Example",
                "nationality": "XB",
                "found_at": "Farm 12",
                "indicators": [
                    {"form": "forced-labour", "strength": "strong", "observation": "no pay"}
                ],
                "account": "recruited with a false offer",
            },
        },
    )["case"]
    step(bus, "border-police", case, "consent.recorded", ["nrm-authority", "safe-house"],
         consent_id="consent-1", recipients=["safe-house"], categories=["identity", "service"],
         recorded_by_officer="bp-1")  # fmt: skip
    step(bus, "border-police", case, "referral.requested", ["safe-house"],
         referral_id="ref-1", to_agency="safe-house", service="shelter", consent_id="consent-1",
         full_name="Ana Example", needs="a bed")  # fmt: skip
    step(bus, "safe-house", case, "referral.accepted", ["border-police", "nrm-authority"],
         referral_id="ref-1", answered_by_officer="sh-1",
         shelter_address="12 Hidden Lane")  # fmt: skip
    step(bus, "nrm-authority", case, "identification.decided", ["immigration", "border-police"],
         stage="reasonable-grounds", decided_by_officer="ia-1", outcome="positive")  # fmt: skip
    step(bus, "immigration", case, "reflection.started", ["nrm-authority", "safe-house"],
         decided_by_officer="im-1")  # fmt: skip
    step(bus, "nrm-authority", case, "identification.decided", ["immigration", "border-police"],
         stage="conclusive", decided_by_officer="ia-1", outcome="positive",
         reasoning="indicators confirmed")  # fmt: skip
    step(bus, "safe-house", case, "services.delivered", ["border-police"],
         referral_id="ref-1", service="shelter", details="housed, counselling")  # fmt: skip
    step(bus, "immigration", case, "reflection.ended", ["nrm-authority", "safe-house"],
         reason_code="cooperation-decided", decided_by_officer="im-1")  # fmt: skip
    step(bus, "immigration", case, "residence.granted", ["nrm-authority"],
         decided_by_officer="im-1", permit_type="victim", valid_until="2028-12-31")  # fmt: skip
    step(bus, "nrm-authority", case, "case.closed", ["border-police", "immigration"],
         reason_code="integrated", decided_by_officer="ia-1")  # fmt: skip
    return case


def erasure_list(bus: RunningBus, caller: str) -> dict[str, Any]:
    token = bus.bus.token(caller, "nrm-authority")
    r = httpx.get(
        f"{bus.bus.urls['nrm-authority']}/v1/audit/erasures",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_closed_case_is_erased_when_its_retention_period_passes(tmp_path: Path) -> None:
    with running_bus(tmp_path) as bus:
        case = lifecycle(bus)
        nodes = bus.bus.nodes
        holders = [a for a, n in nodes.items() if n.store.case_file(case) is not None]
        assert set(holders) == {"border-police", "nrm-authority", "immigration", "safe-house"}
        with bus.client("safe-house") as c:  # the shelter opens what it may, before
            events = c.get(f"/v1/cases/{case}").json()["events"]
        referral = next(e for e in events if e["type"] == "referral.requested")
        assert referral["fields"]["full_name"] == "Ana Example"

        listed = erasure_list(bus, "rapporteur")  # oversight, from the authority's log
        (upcoming,) = listed["upcoming"]
        closed_at = datetime.fromisoformat(upcoming["closed_at"])
        days = XA.retention_days_after_closing["integrated"]
        assert upcoming["case"] == case and upcoming["reason_code"] == "integrated"
        assert datetime.fromisoformat(upcoming["erase_by"]) == closed_at + timedelta(days=days)
        assert listed["executed"] == [] and listed["overdue"] == []

        time.sleep(1.5)  # the notifier runs; nothing is due yet: nothing happens
        assert all(nodes[a].store.case_file(case).state.erased is False for a in holders)
        bus.bus.clock_offset = timedelta(days=days - 1)
        time.sleep(1.5)
        assert nodes["nrm-authority"].store.case_file(case).state.erased is False

        bus.bus.clock_offset = timedelta(days=days, hours=1)  # the period has passed
        order = _wait_for_order(bus, case)
        assert order.operational == {
            "legal_basis": "retention-expired",
            "ordered_by_officer": RETENTION_OFFICER,
        }
        assert set(order.recipients) == set(holders) - {"nrm-authority"}
        bus.settle()

        envelopes = []
        for agency in holders:
            node = nodes[agency]
            file = node.store.case_file(case)
            assert file is not None and file.state.erased, agency
            assert case not in node.case_keys.cases(), agency
            mine = [e.envelope for e in node.store.log(limit=10_000) if e.envelope.subject == case]
            envelopes += mine
            with bus.client(agency) as c:
                view = c.get(f"/v1/cases/{case}").json()
            for ev in view["events"]:
                personal = {k: v for k, v in ev["fields"].items() if k not in ev["operational"]}
                assert all(isinstance(v, dict) and "withheld" in v for v in personal.values())
        assert len(envelopes) > 25
        bus.prove_nothing_opens(envelopes)

        listed = erasure_list(bus, "rapporteur")
        assert listed["upcoming"] == [] and listed["overdue"] == []
        (executed,) = listed["executed"]
        assert executed["case"] == case and executed["legal_basis"] == "retention-expired"
        assert (
            executed["officer"] == RETENTION_OFFICER and executed["ordered_by"] == "nrm-authority"
        )
        assert executed["closed_at"] == upcoming["closed_at"]
        assert erasure_list(bus, "nrm-authority") == listed  # the node itself may list too
        token = bus.bus.token("safe-house", "nrm-authority")  # no oversight role
        r = httpx.get(
            f"{bus.bus.urls['nrm-authority']}/v1/audit/erasures",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 403


def _wait_for_order(bus: RunningBus, case: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    node = bus.bus.nodes["nrm-authority"]
    while time.monotonic() < deadline:
        for e in node.store.log(limit=10_000):
            if e.envelope.subject == case and e.envelope.type == "case.erasure-ordered":
                return e.envelope
        time.sleep(0.2)
    raise AssertionError(f"no erasure order for {case} at {datetime.now(UTC).isoformat()}")
