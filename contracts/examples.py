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
            "sex": "female",
            "nationality": "XB",
            "languages": ["xb-lang"],
            "found_at": "Farm 12, north road",
            "indicators": [
                {
                    "form": "forced-labour",
                    "strength": "strong",
                    "observation": "no pay",
                    "code": "common/forced-to-enter-or-remain",
                }
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
        {
            "referral_id": "ref-1",
            "reason_code": "capacity",
            "answered_by_officer": "sh-0001",
            "reason": "full tonight",
        },
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
    "identification.review-requested": (
        ["nrm-authority"],
        {
            "review_id": "review-1",
            "decision_event_id": "0b6f6c3e-1d2a-4e5f-8a9b-0c1d2e3f4a5b",
            "requested_by_officer": "la-0003",
            "grounds": "the interview was held without an interpreter",
        },
    ),
    "reflection.started": (["immigration"], {"decided_by_officer": "ia-0007"}),
    "reflection.extended": (
        ["immigration"],
        {"extra_days": 30, "decided_by_officer": "ia-0007", "reason": "recovery"},
    ),
    "reflection.ended": (
        ["immigration"],
        {"reason_code": "cooperation-decided", "decided_by_officer": "im-0100"},
    ),
    "residence.granted": (
        ["nrm-authority"],
        {"decided_by_officer": "im-0100", "permit_type": "victim", "valid_until": "2027-12-31"},
    ),
    "residence.renewed": (
        ["nrm-authority"],
        {"decided_by_officer": "im-0100", "valid_until": "2028-12-31"},
    ),
    "residence.ended": (
        ["nrm-authority"],
        {"reason_code": "expired", "decided_by_officer": "im-0100"},
    ),
    "asylum.lodged": (["nrm-authority"], {"refugee": False, "claim_reference": "AS-2026-1"}),
    "guardian.appointed": (
        ["nrm-authority"],
        {
            "guardian_agency": "child-protection",
            "decided_by_officer": "cp-0003",
            "guardian_name": "G. Example",
        },
    ),
    "age.assessed": (
        ["nrm-authority", "border-police"],
        {
            "outcome": "inconclusive",
            "assessed_by_officer": "cp-0003",
            "method": "interview and documents",
        },
    ),
    "best-interests.determined": (
        ["nrm-authority"],
        {
            "decided_by_officer": "cp-0003",
            "return_in_best_interests": False,
            "child_heard": "in-person",
            "child_views": "wants to finish the school year here",
        },
    ),
    "risk.assessed": (
        ["nrm-authority"],
        {"serious_risk": True, "assessed_by_officer": "ia-0007", "findings": "threats"},
    ),
    "services.delivered": (
        ["border-police"],
        {"referral_id": "ref-1", "service": "shelter", "details": "housed"},
    ),
    "family.traced": (
        ["nrm-authority"],
        {
            "complicity": "family-cleared",
            "traced_by_officer": "cp-0003",
            "outcome": "family-found",
            "findings": "mother found; no part in the recruitment",
        },
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
        {
            "voluntary": True,
            "consent_id": "consent-2",
            "confirmed_by_officer": "ia-0007",
            "travel_details": "flight XB101",
        },
    ),
    "reintegration.monitored": (
        ["nrm-authority"],
        {"visit_number": 1, "retaliation_risk": False, "notes": "settled"},
    ),
    "cooperation.decided": (
        ["nrm-authority"],
        {"recorded_by_officer": "le-0012", "decision": "will-cooperate"},
    ),
    "witness-protection.decided": (
        ["nrm-authority"],
        {"decided_by_officer": "le-0012", "decision": "granted", "measures": "anonymity"},
    ),
    "proceedings.opened": (
        ["nrm-authority"],
        {"proceedings_id": "proc-1", "recorded_by_officer": "le-0012", "kind": "criminal"},
    ),
    "proceedings.concluded": (
        ["nrm-authority"],
        {
            "proceedings_id": "proc-1",
            "recorded_by_officer": "le-0012",
            "outcome": "convicted",
            "sentence": "6 years",
            "appeal_possible": True,
        },
    ),
    "non-punishment.decided": (
        ["nrm-authority"],
        {"decided_by_officer": "le-0012", "decision": "applied", "offences": "false papers"},
    ),
    "rights.explained": (
        ["nrm-authority"],
        {
            "topic": "rights-and-assistance",
            "explained_by_officer": "sh-0001",
            "language": "xb",
            "mode": "orally-and-in-writing",
            "interpreter": True,
        },
    ),
    "complaint.lodged": (
        ["safe-house", "nrm-authority"],
        {
            "complaint_id": "complaint-1",
            "kind": "complaint",
            "about_agency": "safe-house",
            "recorded_by_officer": "ia-0007",
            "statement": "no interpreter at the medical appointment",
        },
    ),
    "complaint.answered": (
        ["nrm-authority"],
        {
            "complaint_id": "complaint-1",
            "answered_by_officer": "sh-0001",
            "outcome": "upheld",
            "answer": "an interpreter is now booked with every appointment",
        },
    ),
    "compensation.claimed": (
        ["nrm-authority"],
        {"forum": "criminal", "amount_claimed": "5000 EUR"},
    ),
    "compensation.decided": (
        ["nrm-authority"],
        {
            "forum": "criminal",
            "recorded_by_officer": "la-0003",
            "outcome": "awarded",
            "amount_awarded": "4000 EUR",
        },
    ),
    "compensation.paid": (
        ["nrm-authority"],
        {"forum": "criminal", "recorded_by_officer": "la-0003", "amount_paid": "1000 EUR"},
    ),
    "case.closed": (
        ["nrm-authority"],
        {"reason_code": "integrated", "decided_by_officer": "ia-0007"},
    ),
    "case.linked": (
        ["border-police"],
        {
            "earlier_case": "case-0a1b2c3d4e5f6a7b8c9d",
            "linked_by_officer": "ia-0007",
            "legal_basis": "same person, screened again after return (Act s.4)",
        },
    ),
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
