"""One example of every event type as an agency system sends it: the OpenAPI documents
show them, and a test checks each against its payload model, so none can go stale.

Values are invented (names "A. Example", places "Farm 12"); ids are officers' badges.
"""

from __future__ import annotations

from typing import Any

#: event type -> (recipients, payload), in the catalogue's order.
EXAMPLES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "case.screened": (
        ["nrm-authority"],
        {
            "forms_of_exploitation": ["forced-labour"],
            "age_status": "adult",
            "screened_by_officer": "bp-0042",
            "full_name": "A. Example",
            "nationality": "XB",
            "languages": ["xb-lang"],
            "found_at": "Farm 12, north road",
            "indicators": [
                {"form": "forced-labour", "strength": "strong", "observation": "no pay"}
            ],
        },
    ),
    "referral.requested": (
        ["safe-house"],
        {
            "referral_id": "ref-1",
            "to_agency": "safe-house",
            "service": "shelter",
            "consent_id": "consent-1",
            "full_name": "A. Example",
            "needs": "a bed tonight",
        },
    ),
    "referral.accepted": (
        ["border-police"],
        {"referral_id": "ref-1", "shelter_address": "12 Hidden Lane", "placement": "room 3"},
    ),
    "referral.declined": (
        ["border-police"],
        {"referral_id": "ref-1", "reason_code": "capacity", "reason": "full tonight"},
    ),
    "consent.recorded": (
        ["nrm-authority"],
        {
            "consent_id": "consent-1",
            "recipients": ["safe-house"],
            "categories": ["identity", "service"],
            "recorded_by_officer": "bp-0042",
        },
    ),
    "consent.withdrawn": (["safe-house"], {"consent_id": "consent-1"}),
    "identification.decided": (
        ["border-police"],
        {"stage": "reasonable-grounds", "decided_by_officer": "ia-0007", "outcome": "positive"},
    ),
    "reflection.started": (["immigration"], {"decided_by_officer": "ia-0007"}),
    "reflection.extended": (
        ["immigration"],
        {"extra_days": 30, "decided_by_officer": "ia-0007", "reason": "recovery"},
    ),
    "reflection.ended": (["immigration"], {"reason_code": "cooperation-decided"}),
    "residence.granted": (
        ["nrm-authority"],
        {"decided_by_officer": "im-0100", "permit_type": "victim", "valid_until": "2027-12-31"},
    ),
    "asylum.lodged": (
        ["nrm-authority", "immigration"],
        {"refugee": False, "claim_reference": "AS-2026-1"},
    ),
    "guardian.appointed": (
        ["nrm-authority"],
        {
            "guardian_agency": "child-protection",
            "decided_by_officer": "cp-0003",
            "guardian_name": "G. Example",
        },
    ),
    "best-interests.determined": (
        ["nrm-authority"],
        {"decided_by_officer": "cp-0003", "return_in_best_interests": False},
    ),
    "risk.assessed": (
        ["nrm-authority"],
        {"serious_risk": True, "assessed_by_officer": "ia-0007", "findings": "threats"},
    ),
    "services.delivered": (
        ["border-police"],
        {"referral_id": "ref-1", "service": "shelter", "details": "housed"},
    ),
    "return.planning-started": (
        ["consulate-xb"],
        {
            "counterpart_agency": "xb-reintegration",
            "destination_country": "XB",
            "full_name": "A. Example",
        },
    ),
    "return.plan-agreed": (["nrm-authority"], {"agreed_by_officer": "xb-0001"}),
    "return.completed": (
        ["nrm-authority"],
        {"voluntary": True, "consent_id": "consent-2", "travel_details": "flight XB101"},
    ),
    "reintegration.monitored": (
        ["nrm-authority"],
        {"visit_number": 1, "retaliation_risk": False, "notes": "settled"},
    ),
    "compensation.claimed": (
        ["nrm-authority"],
        {"forum": "criminal", "amount_claimed": "5000 EUR"},
    ),
    "case.closed": (["nrm-authority"], {"reason_code": "integrated"}),
    "case.erasure-ordered": (
        ["nrm-authority"],
        {"legal_basis": "erasure-request", "ordered_by_officer": "ia-0007"},
    ),
    "case.escalated": (
        ["nrm-authority"],
        {
            "deadline": "referral-answer",
            "about_event_id": "0b6f6c3e-1d2a-4e5f-8a9b-0c1d2e3f4a5b",
            "due": "2026-11-30T12:00:00+00:00",
        },
    ),
}


def openapi_examples(*, screening: bool) -> dict[str, dict[str, Any]]:
    """FastAPI `openapi_examples` for a request body: the screening (POST /v1/cases) or
    every other event type (POST /v1/cases/{case}/events, with its `type`)."""
    out: dict[str, dict[str, Any]] = {}
    for event_type, (recipients, payload) in EXAMPLES.items():
        if (event_type == "case.screened") != screening:
            continue
        body: dict[str, Any] = {"recipients": recipients, "payload": payload}
        if not screening:
            body = {"type": event_type, **body}
        out[event_type] = {"summary": event_type, "value": body}
    return out
