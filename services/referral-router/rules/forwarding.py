"""R10 at the node that passes a case on: may it, to whom, and how much of each event.

Passing a case on (a shelter to a doctor) is a disclosure like a referral, so the same
rules hold: the case is neither erased nor closed; R4, only the competent authority may
address the country of origin's side, never when `no_origin_contact` applies; R9, the
person's consent naming the new recipient or an override with a legal-basis code, a
consent-bound recipient getting no more than that consent's categories. R10 itself: per
event, what the agreement lets the new recipient read in that event, never more than
this node could itself open (`contracts.sealing.forwardable`), so nothing its sender
withheld from this node can reach the new recipient. Pure: the node supplies its view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts.authority import justice
from contracts.envelope import Envelope
from contracts.need_to_know import CaseContext, origin_side
from contracts.vocabulary import DataCategory
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    Roles,
    RuleViolation,
    check_consent_for,
    check_origin_addressing,
)
from referral_router.rules.sharing import referral_cap


@dataclass(frozen=True)
class PassingOn:
    """A request to pass a case on, as the rules see it: clear data only."""

    forwarder: str
    forwarder_roles: Roles
    to: str
    to_roles: Roles
    time: datetime
    consent_id: str | None = None
    consent_override: Mapping[str, Any] | None = None


def check_forward(state: CaseState, f: PassingOn) -> None:
    """Every rule a passing on must meet, against the forwarding node's view."""
    if state.erased:
        raise RuleViolation("ERASED", "the case's data was erased; nothing of it is passed on")
    if state.closed:
        raise RuleViolation("LIFECYCLE", "the case is closed; nothing of it is passed on")
    if f.to == f.forwarder:
        raise RuleViolation("LIFECYCLE", "an agency does not pass a case on to itself")
    check_origin_addressing(
        state,
        Proposal(
            event_id="",
            event_type="",
            sender=f.forwarder,
            sender_roles=f.forwarder_roles,
            recipients={f.to: f.to_roles},
            time=f.time,
            operational={},
        ),
    )
    check_consent_for(state, f.to, f.consent_id, f.consent_override, "passing the case on")


def passes_on(envelope: Envelope, f: PassingOn) -> bool:
    """Whether `envelope` is one this node may pass on: one it sent, or received as a
    named recipient (not one passed on to it: a chain would not be verifiable at its
    end), and that the new recipient does not hold already. A justice event never goes
    to the country of origin's side (R4), whoever passes it on."""
    holds = f.forwarder in envelope.recipients or envelope.sender == f.forwarder
    if justice(envelope.type) and origin_side(f.to_roles):
        return False
    return holds and envelope.sender != f.to and f.to not in envelope.recipients


def forwarding_entitlement(
    state: CaseState,
    envelope: Envelope,
    f: PassingOn,
    entitled: Any,
    held: frozenset[DataCategory],
) -> frozenset[DataCategory]:
    """What the new recipient gets of `envelope`: the agreement's entitlement in this
    event (`entitled(agency, ctx)`, the directory's), limited to what this node holds
    (`held`, R10) and to the consent or override the passing on names (R9)."""
    ctx = CaseContext(
        event_type=envelope.type,
        case_originator=state.originator,
        service_providers=state.service_providers,
        no_origin_contact=state.restrictions.no_origin_contact
        or envelope.restrictions.no_origin_contact,
        forwarding_limit=held,
    )
    allowed: frozenset[DataCategory] = entitled(f.to, ctx) & held
    cap = referral_cap(state, f.to, f.to_roles, f.consent_id, f.consent_override)
    return allowed if cap is None else allowed & cap


def forwarded(state: CaseState, to: str) -> CaseState:
    """The forwarding node's view after passing the case on to `to`: a party of the case
    from now on (it may answer), and reached by an erasure order this node applies."""
    return replace(state, parties=state.parties | {to}, forwarded_to=state.forwarded_to | {to})
