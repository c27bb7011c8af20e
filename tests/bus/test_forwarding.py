"""Passing a case on over a real bus (R10): a shelter passes a case on to a clinic
through its node's HTTP API; the clinic opens what the agreement, the person's consent
and the shelter's own keys allow, and nothing more; it may answer in the case; refusals
name their rule; and the authority's erasure order reaches the clinic, which it never
heard of, so that every key of the case fails everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contracts.vocabulary import Role, ServiceKind
from nrm.embedded import DEMO_AGENCIES, AgencySpec
from tests.bus.running import RunningBus, running_bus

CLINIC = AgencySpec("clinic", "Clinic", (Role.SERVICE_PROVIDER,), (ServiceKind.MEDICAL,))
AGENCIES = (*DEMO_AGENCIES, CLINIC)


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    with running_bus(tmp_path_factory.mktemp("forwarding"), agencies=AGENCIES) as b:
        yield b


def post(bus: RunningBus, agency: str, path: str, body: dict[str, Any], key: str = "") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    with bus.client(agency) as c:
        return c.post(path, json=body, headers=headers)


def event(bus: RunningBus, agency: str, case: str, kind: str, to: list[str], **payload: Any) -> Any:
    r = post(
        bus,
        agency,
        f"/v1/cases/{case}/events",
        {"type": kind, "recipients": to, "payload": payload},
    )
    assert r.status_code == 201, r.text
    bus.settle()
    return r.json()


@pytest.fixture(scope="module")
def case(bus: RunningBus) -> str:
    """An adult screened by police, her consent to the shelter and the clinic, a referral
    to the shelter on it, and the shelter's acceptance (with its address)."""
    r = post(
        bus,
        "border-police",
        "/v1/cases",
        {
            "recipients": ["nrm-authority"],
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
            },
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()["case"]
    event(
        bus, "border-police", case, "consent.recorded", ["safe-house"],
        consent_id="consent-1", recipients=["safe-house", "clinic"],
        categories=["identity", "health"], recorded_by_officer="bp-1",
    )  # fmt: skip
    event(
        bus, "border-police", case, "referral.requested", ["safe-house"],
        referral_id="ref-1", to_agency="safe-house", service="shelter", consent_id="consent-1",
        full_name="Ana Example", medical_notes="insulin twice a day",
        pickup_location="3 Quay Street",
    )  # fmt: skip
    event(
        bus, "safe-house", case, "referral.accepted", ["border-police"],
        referral_id="ref-1", answered_by_officer="sh-1", shelter_address="12 Hidden Lane",
    )  # fmt: skip
    bus.settle()
    return case


def forward(bus: RunningBus, case: str, to: str, key: str = "", **body: Any) -> Any:
    return post(
        bus,
        "safe-house",
        f"/v1/cases/{case}/forward",
        {"to": to, "forwarded_by_officer": "sh-1", **body},
        key,
    )


def override(basis: str) -> dict[str, str]:
    return {"legal_basis": basis, "authorised_by_officer": "sh-1"}


@pytest.mark.parametrize(
    ("to", "body", "status", "rule"),
    [
        ("clinic", {}, 409, "R9"),  # neither consent nor override
        ("clinic", {"consent_id": "consent-9"}, 409, "R9"),  # no such consent
        ("immigration", {"consent_id": "consent-1"}, 409, "R9"),  # the consent does not name it
        ("consulate-xb", {"consent_override": override("public-task")}, 409, "R4"),
        ("nobody-here", {"consent_id": "consent-1"}, 422, "R6"),
        ("clinic", {"consent_override": override("because")}, 422, None),  # not a code
    ],
)
def test_passing_on_is_refused_as_a_referral_would_be(
    bus: RunningBus, case: str, to: str, body: dict[str, Any], status: int, rule: str | None
) -> None:
    r = forward(bus, case, to, **body)
    assert r.status_code == status, r.text
    assert r.json().get("rule") == rule
    with bus.client("safe-house") as c:
        assert c.get(f"/v1/cases/{case}").json()["forwarded"] == []


def test_the_clinic_opens_what_is_due_and_never_more(bus: RunningBus, case: str) -> None:
    r = forward(bus, case, "clinic", "fwd-1", consent_id="consent-1")
    assert r.status_code == 201, r.text
    shared = {f["type"]: f["shared"] for f in r.json()["forwardings"]}
    # The agreement and the consent would let the clinic (medical) open identity and
    # health; but the shelter (no medical service) never received health, and nothing of
    # the consent record (sent before the consent existed): it cannot pass on a key it
    # never had. Never the pickup location or the shelter's address: location is not
    # the clinic's own service.
    assert shared == {
        "consent.recorded": [],
        "referral.requested": ["identity"],
        "referral.accepted": [],
    }
    assert r.json()["basis"] == {
        "consent_id": "consent-1",
        "consent_override": None,
        "by_officer": "sh-1",
    }
    again = forward(bus, case, "clinic", "fwd-1", consent_id="consent-1")
    assert again.json() == r.json()  # a retry appends nothing
    bus.settle()
    with bus.client("clinic") as c:
        view = c.get(f"/v1/cases/{case}").json()
    by_type = {e["type"]: e for e in view["events"]}
    referral = by_type["referral.requested"]["fields"]
    assert referral["full_name"] == "Ana Example"
    assert referral["medical_notes"]["withheld"] == "health"  # the shelter never had it
    assert referral["pickup_location"]["withheld"] == "location"
    accepted = by_type["referral.accepted"]
    assert accepted["fields"]["shelter_address"]["withheld"] == "location"
    assert {e["forwarded_by"] for e in view["events"]} == {"safe-house"}
    with bus.client("safe-house") as c:
        sent = c.get(f"/v1/cases/{case}").json()["forwarded"]
    assert len(sent) == 3 and {f["to"] for f in sent} == {"clinic"}
    # the clinic takes part from now on: it may answer the shelter in the case
    event(
        bus, "clinic", case, "services.delivered", ["safe-house"],
        referral_id="ref-1", service="medical", medical_notes="insulin given",
    )  # fmt: skip
    bus.settle()
    with bus.client("safe-house") as c:
        assert c.get("/v1/dead-letters").json()["items"] == []
        types = [e["type"] for e in c.get(f"/v1/cases/{case}").json()["events"]]
    assert "services.delivered" in types


def test_an_erasure_order_reaches_the_clinic_the_authority_never_heard_of(
    bus: RunningBus, case: str
) -> None:
    r = post(
        bus,
        "nrm-authority",
        f"/v1/cases/{case}/events",
        {
            "type": "case.erasure-ordered",
            "recipients": ["border-police"],
            "payload": {"legal_basis": "erasure-request", "ordered_by_officer": "ia-1"},
        },
    )
    assert r.status_code == 201, r.text
    assert "clinic" not in r.json()["recipients"]
    bus.settle()
    bus.settle()
    nodes = bus.bus.nodes
    for agency in ("border-police", "safe-house", "clinic", "nrm-authority"):
        assert case not in nodes[agency].case_keys.cases(), agency
        with bus.client(agency) as c:
            view = c.get(f"/v1/cases/{case}").json()
        assert view["erased"] is True, agency
        for ev in view["events"]:
            personal = {k: v for k, v in ev["fields"].items() if k not in ev["operational"]}
            assert all(isinstance(v, dict) and "withheld" in v for v in personal.values())
    assert nodes["clinic"].forwardings.get(str(_referral_id(bus, case)), "clinic") is None


def _referral_id(bus: RunningBus, case: str) -> str:
    with bus.client("clinic") as c:
        events = c.get(f"/v1/cases/{case}").json()["events"]
    return next(e["event_id"] for e in events if e["type"] == "referral.requested")
