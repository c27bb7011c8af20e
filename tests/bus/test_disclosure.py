"""The disclosure record of the demo's case (GDPR art. 15(1)(c)), produced by the
competent authority's node from every node's log: it lists exactly the deliveries that
happened (as the recipients' own logs hold them, forwardings included), each with its
categories and basis, no personal value anywhere in it, and it reads the same after
the case is erased."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx

from contracts.sealing import parse_forwarding
from nrm.demo import CANARY, run_demo
from referral_router.store.case_store import RECEIVED
from tests.bus.running import RunningBus, running_bus


def record(bus: RunningBus, case: str) -> dict[str, Any]:
    with bus.client("nrm-authority") as c:
        r = c.get(f"/v1/cases/{case}/disclosure-record")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["complete"] is True, body["nodes"]
    assert CANARY not in json.dumps(body)  # clear parts and wraps only
    return body


def deliveries(bus: RunningBus, case: str) -> set[tuple[str, str, str | None, tuple[str, ...]]]:
    """What every node holds of the case, as its own log and forwardings say: (event,
    recipient, the agency that passed it on or None, the categories it got keys to)."""
    out = set()
    for agency, node in bus.bus.nodes.items():
        for e in node.store.log(limit=10_000):
            env = e.envelope
            if env.subject != case or e.direction != RECEIVED:
                continue
            kept = node.forwardings.get(str(env.id), agency)
            if kept is None:
                keys = env.sealed["wraps"].get(agency, {}).get("keys", {})
                out.add((str(env.id), agency, None, tuple(sorted(keys))))
            else:
                fw = parse_forwarding(kept)
                keys = fw.wraps.get(agency, {}).get("keys", {})
                out.add((str(env.id), agency, fw.forwarder, tuple(sorted(keys))))
    return out


def listed(rec: dict[str, Any]) -> set[tuple[str, str, str | None, tuple[str, ...]]]:
    return {
        (d["event_id"], d["to"], d["passed_on_by"], tuple(d["categories"]))
        for d in rec["disclosures"]
    }


def test_the_demo_cases_record_lists_exactly_the_deliveries_that_happened(
    tmp_path: Path,
) -> None:
    with running_bus(tmp_path) as bus:
        case = bus.run(run_demo(bus.bus, io.StringIO()), timeout=240)
        bus.settle()
        rec = record(bus, case)
        happened = deliveries(bus, case)
        assert len(happened) > 20
        assert listed(rec) == happened
        assert {d["status"] for d in rec["disclosures"]} == {"received"}
        assert set(rec["nodes"]) == set(bus.bus.nodes)  # every node asked, itself included
        assert rec["nodes"]["consulate-xb"] == "holds nothing"  # R4: nothing reached it

        by = {(d["type"], d["to"], d["passed_on_by"]): d for d in rec["disclosures"]}
        to_cp = [
            d
            for d in rec["disclosures"]
            if d["type"] == "referral.requested" and d["to"] == "child-protection"
        ]
        override = next(d for d in to_cp if d["basis"]["basis"] == "override")
        assert override["basis"]["legal_basis"] == "child-protection"
        shelter = by[("referral.requested", "safe-house", None)]
        assert shelter["basis"] == {"basis": "consent", "consent_ids": ["consent-1"]}
        assert shelter["categories"] == ["identity", "service"]  # the consent's, no health
        screening = by[("case.screened", "nrm-authority", None)]
        assert screening["basis"] == {"basis": "agreement"}
        passed = [d for d in rec["disclosures"] if d["passed_on_by"] == "child-protection"]
        assert passed and {d["to"] for d in passed} == {"asylum-office"}
        assert all(d["basis"]["legal_basis"] == "child-protection" for d in passed)
        assert all(d["basis"]["by_officer"] == "cp-0101" for d in passed)
        screened_to_cp = by[("case.screened", "child-protection", None)]
        assert screened_to_cp["passed_on_to"] == ["asylum-office"]
        assert not {"location", "health"} & {c for d in passed for c in d["categories"]}

        # after erasure: the same record, and the order's own deliveries
        with bus.client("nrm-authority") as c:
            order = c.post(
                f"/v1/cases/{case}/events",
                json={
                    "type": "case.erasure-ordered",
                    "recipients": ["child-protection"],
                    "payload": {"legal_basis": "erasure-request", "ordered_by_officer": "ia-1"},
                },
            )
        assert order.status_code == 201, order.text
        bus.settle()
        after = record(bus, case)
        order_id = order.json()["event_id"]
        kept = [d for d in after["disclosures"] if d["event_id"] != order_id]
        assert kept == rec["disclosures"]  # nothing of it needed a key that is now gone
        erasure = [d for d in after["disclosures"] if d["event_id"] == order_id]
        assert erasure and all(d["categories"] == [] for d in erasure)
        assert all(d["status"] == "received" for d in erasure)

        # who may ask: the record at the authority's node, for its own systems only;
        # a node's part for a competent authority or an oversight body
        with bus.client("safe-house") as c:
            assert c.get(f"/v1/cases/{case}/disclosure-record").status_code == 403
        assert _part(bus, "rapporteur", "border-police", case).status_code == 200
        assert _part(bus, "safe-house", "border-police", case).status_code == 403


def _part(bus: RunningBus, caller: str, node: str, case: str) -> httpx.Response:
    token = bus.bus.token(caller, node)
    return httpx.get(
        f"{bus.bus.urls[node]}/v1/cases/{case}/disclosures",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
