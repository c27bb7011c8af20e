"""Passing a case on (R10): an agency's node hands what it received to another agency,
re-wrapping data keys it holds for the new recipient, never re-encrypting.

`POST /v1/cases/{case}/forward`. The rules are those of a referral
(`rules.forwarding`): R4 (only the competent authority addresses the country of
origin's side, never under `no_origin_contact`), R9 (the person's consent naming the
new recipient, or an override with a legal-basis code; a consent-bound recipient gets
no more than that consent), and R10: per event, what the agreement allows the new
recipient, never more than this node could open (for an event it received: the keys
its sender wrapped for it; for one it sent: its own). Each event becomes one signed
forwarding, appended to this node's log with its basis (consent or override, officer)
and published by the relay to the new recipient's inbox, where reception takes it like
any record (`receiving.passed_on`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from contracts.envelope import Envelope
from contracts.events import ConsentOverride
from contracts.sealing import Forwarding, ForwardingBasis, Verified
from contracts.vocabulary import DataCategory
from referral_router.rules.forwarding import (
    PassingOn,
    check_forward,
    forwarding_entitlement,
    passes_on,
)
from referral_router.rules.lifecycle import UnknownCase
from referral_router.sending.node import AgencyNode, InvalidSubmission, Receipt
from referral_router.store.case_store import IdempotentRequest


class Forwarder(Protocol):
    """What passing on needs of the node's sealing."""

    def held(self, envelope: Envelope) -> tuple[Verified, frozenset[DataCategory]]: ...

    def forward(
        self,
        verified: Verified,
        to: str,
        entitled: frozenset[DataCategory],
        time: datetime,
        basis: ForwardingBasis | None = None,
    ) -> Forwarding: ...


@dataclass(frozen=True)
class PassOn:
    """A validated request from the agency's own systems to pass a case on."""

    case: str
    to: str
    by_officer: str
    consent_id: str | None = None
    consent_override: ConsentOverride | None = None
    #: Only these events (ids); None: every event of the case this node holds that the
    #: new recipient lacks.
    event_ids: tuple[str, ...] | None = None

    def fingerprint(self) -> str:
        data = {
            "forward": self.case,
            "to": self.to,
            "by": self.by_officer,
            "consent_id": self.consent_id,
            "override": self.consent_override.model_dump(mode="json")
            if self.consent_override
            else None,
            "events": list(self.event_ids) if self.event_ids is not None else None,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def pass_case_on(
    node: AgencyNode, sealing: Forwarder, req: PassOn, idempotency_key: str | None = None
) -> Receipt:
    """Check, re-wrap and append the forwardings of one passing on; a retry with the same
    Idempotency-Key gets the first answer and appends nothing."""
    earlier = node.earlier_answer(idempotency_key, req.fingerprint())
    if earlier is not None:
        return earlier
    node.roster.fresh()
    node.roster.active(req.to)
    case = node.store.case_file(req.case)
    if case is None:
        raise UnknownCase(req.case)
    roles = node.roster.roles((node.agency_id, req.to))
    override = req.consent_override.model_dump(mode="json") if req.consent_override else None
    f = PassingOn(
        node.agency_id,
        roles[node.agency_id],
        req.to,
        roles[req.to],
        node.clock(),
        req.consent_id,
        override,
    )
    check_forward(case.state, f)
    held = {str(env.id): env for _, env in node.store.envelopes(req.case) if passes_on(env, f)}
    chosen = list(held) if req.event_ids is None else list(req.event_ids)
    unknown = sorted(set(chosen) - set(held))
    if unknown:
        raise InvalidSubmission(
            f"not events of {req.case} this node holds and {req.to} lacks: {', '.join(unknown)}"
        )
    if not chosen:
        raise InvalidSubmission(f"nothing of {req.case} to pass on: {req.to} holds all it could")
    basis = ForwardingBasis(
        consent_id=req.consent_id, consent_override=req.consent_override, by_officer=req.by_officer
    )
    forwardings = []
    for event_id in chosen:
        verified, keys = sealing.held(held[event_id])
        entitled = forwarding_entitlement(case.state, held[event_id], f, node.roster.entitled, keys)
        forwardings.append(sealing.forward(verified, req.to, entitled, f.time, basis))
    body = _receipt(req, forwardings)
    answer = (
        IdempotentRequest(node.agency_id, idempotency_key, req.fingerprint(), 201, body)
        if idempotency_key is not None
        else None
    )
    node.store.record_forwarded(case, forwardings, answer)
    return Receipt(201, body)


def _receipt(req: PassOn, forwardings: list[Forwarding]) -> dict[str, Any]:
    """What was passed on: per event, the categories the new recipient can open."""
    return {
        "case": req.case,
        "to": req.to,
        "basis": forwardings[0].basis.model_dump(mode="json") if forwardings[0].basis else None,
        "forwardings": [
            {
                "forwarding_id": str(fw.id),
                "event_id": str(fw.original.id),
                "type": fw.original.type,
                "time": fw.time.isoformat(),
                "shared": sorted(fw.wraps.get(fw.recipient, {}).get("keys", {})),
            }
            for fw in forwardings
        ],
    }
