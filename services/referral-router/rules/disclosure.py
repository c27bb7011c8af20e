"""What one node disclosed in a case, and what it received: its part of the person's
disclosure record (GDPR art. 15(1)(c): the recipients to whom personal data were
disclosed), built from its log alone.

Every disclosure this node made is in its log: an envelope it sent names each recipient
and wraps a data key per category for it (the wraps say exactly which categories each
could open), and each forwarding it made (R10) names its one recipient, its wraps and
its basis. The basis of a sent envelope is replayed from the same log: the referral's
own consent or override, an override an earlier referral recorded, the active consents
naming a consent-bound recipient (R9), or the agreement for a statutory one. Clear
parts and wraps only, never a personal field: the record reads the same after the
case's keys are destroyed. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contracts.envelope import Envelope
from contracts.need_to_know import consent_bound
from contracts.vocabulary import Role
from referral_router.rules.lifecycle import CaseState, Proposal, evolve

#: direction, envelope, the roles of its agencies when it was recorded
History = Iterable[tuple[str, Envelope, Mapping[str, frozenset[Role]]]]


def wrapped_for(wraps: Mapping[str, Any], reader: str) -> list[str]:
    """The categories key wraps (an envelope's, or a forwarding's) give `reader`."""
    return sorted((wraps.get(reader) or {}).get("keys", {}))


def node_disclosures(
    me: str,
    case: str,
    history: History,
    forwardings: Iterable[Mapping[str, Any]],
    refused: Iterable[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """This node's part of the record: `sent` (every delivery it made, with the
    categories and basis), `received` (the events it holds from others) and `refused`
    (what it dead-lettered)."""
    state = CaseState(pseudonym=case)
    overrides: dict[str, dict[str, Any]] = {}
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    for direction, env, roles in history:
        p = _proposal(env, roles)
        if direction == "sent":
            for r in env.recipients:
                basis = _basis(state, p, r, roles.get(r, frozenset()), overrides)
                sent.append(_row(env, r, wrapped_for(env.sealed.get("wraps", {}), r), basis))
            _remember_override(p, overrides)
        else:
            received.append(
                {
                    "event_id": str(env.id),
                    "type": env.type,
                    "from": env.sender,
                    "time": env.time.isoformat(),
                }
            )
        state = evolve(state, p, env.restrictions, env.deadlines)
    for fw in forwardings:
        original = fw["original"]
        basis = fw.get("basis")
        sent.append(
            {
                "event_id": original["id"],
                "type": original["type"],
                "time": fw["time"],
                "from": original["sender"],
                "to": fw["recipient"],
                "categories": wrapped_for(fw.get("wraps") or {}, fw["recipient"]),
                "basis": _forwarding_basis(basis),
                "passed_on_by": me,
                "forwarding_id": fw["id"],
            }
        )
    return {
        "agency": me,
        "case": case,
        "sent": sent,
        "received": received,
        "refused": list(refused),
    }


def _proposal(env: Envelope, roles: Mapping[str, frozenset[Role]]) -> Proposal:
    return Proposal(
        event_id=str(env.id),
        event_type=env.type,
        sender=env.sender,
        sender_roles=roles.get(env.sender, frozenset()),
        recipients={r: roles.get(r, frozenset()) for r in env.recipients},
        time=env.time,
        operational=env.operational,
        restrictions=env.restrictions,
    )


def _row(env: Envelope, to: str, categories: list[str], basis: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(env.id),
        "type": env.type,
        "time": env.time.isoformat(),
        "from": env.sender,
        "to": to,
        "categories": categories,
        "basis": basis,
        "passed_on_by": None,
    }


def _override(value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "basis": "override",
        "legal_basis": value.get("legal_basis"),
        "authorised_by_officer": value.get("authorised_by_officer"),
    }


def _remember_override(p: Proposal, overrides: dict[str, dict[str, Any]]) -> None:
    """An override recorded on a referral persists for that recipient (R9)."""
    op = p.operational
    if p.event_type == "referral.requested" and op.get("consent_override"):
        overrides[str(op["to_agency"])] = _override(op["consent_override"])


def _basis(
    state: CaseState,
    p: Proposal,
    to: str,
    roles: frozenset[Role],
    overrides: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    op = p.operational
    if p.event_type == "referral.requested" and op.get("to_agency") == to:
        if op.get("consent_override"):
            return _override(op["consent_override"])
        if op.get("consent_id"):
            return {"basis": "consent", "consent_ids": [str(op["consent_id"])]}
    if not consent_bound(roles):
        return {"basis": "agreement"}
    if to in overrides:
        return dict(overrides[to])
    ids = sorted(c.consent_id for c in state.consents.values() if c.active and to in c.recipients)
    return {"basis": "consent", "consent_ids": ids} if ids else {"basis": "none"}


def _forwarding_basis(basis: Mapping[str, Any] | None) -> dict[str, Any]:
    if basis is None:  # a border gateway's: the countries' federation agreement
        return {"basis": "federation-agreement"}
    if basis.get("consent_override"):
        return {**_override(basis["consent_override"]), "by_officer": basis.get("by_officer")}
    return {
        "basis": "consent" if basis.get("consent_id") else "none",
        "consent_ids": [basis["consent_id"]] if basis.get("consent_id") else [],
        "by_officer": basis.get("by_officer"),
    }
