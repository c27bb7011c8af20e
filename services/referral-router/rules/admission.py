"""What a receiving node admits into its view of a case, trusting nothing but signatures,
the directory and that view itself (docs/domain.md, "Trust model").

A correctly signed envelope from a registered agency is only the start. The receiver
checks, on its own:

- order and authority (`lifecycle.check_common`): the sender may emit the type (ROLE),
  the case is not closed or erased (LIFECYCLE, ERASED), and R4's addressing holds; a
  referral is not declined for the person's migration status or co-operation (R1);
- parties (R6): the sender takes part in the case as this node knows it, unless the
  event legitimately brings it in (`contracts.authority.Joins`), and only events that
  may open a case open one;
- R4 on the country of origin's side: a consulate's, counterpart's or gateway's node
  refuses every envelope of a case it knows may not contact the country of origin
  (`no_origin_contact`: an asylum claim, refugee status or a serious risk, it never
  learns which), including from an earlier envelope it refused for that reason (events
  may arrive in any order);
- deadlines (R3, R8): those its own country sets are recomputed from its policy file,
  and a sender's that differ are refused;
- time: an envelope may not claim a time after it reached the transport (beyond a small
  clock skew), since that time would push every deadline computed from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.authority import Joins, authority, justice
from contracts.need_to_know import origin_side
from contracts.policy import CountryPolicy
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    Roles,
    RuleViolation,
    barred_from_origin,
    check_common,
    check_decline_reason,
    derive_deadlines,
)

#: The clock skew tolerated between a sender and the transport.
DEFAULT_SKEW = timedelta(minutes=2)

#: deadline -> the rule a wrong value would break: a reflection that ends early lets a
#: return happen during it (R3); a guardian due later leaves a child without one (R2); an
#: answer due later delays the escalation (R8); a retention period longer than the
#: policy's keeps personal data too long (POLICY).
DEADLINE_RULES: Mapping[str, str] = {
    "reflection-ends": "R3",
    "reflection-reminder": "R3",
    "guardian-appointment": "R2",
    "referral-answer": "R8",
    "re-referral": "R8",
    "reasonable-grounds": "R8",
    "post-return-monitoring": "R8",
    "decision-review": "R8",
    "complaint-answer": "R8",
    "residence-renewal": "R8",
    "outcome-information": "R8",
    "retaliation-found": "R8",
    "retention-ends": "POLICY",
}


@dataclass(frozen=True)
class Receiver:
    """The receiving node, as the rules need it."""

    agency_id: str
    roles: Roles
    #: Its own country's policy; None when the sender is of another country, whose
    #: deadlines this node does not set.
    policy: CountryPolicy | None = None


def check_receive(
    state: CaseState,
    p: Proposal,
    me: Receiver,
    deadlines: Mapping[str, datetime],
    *,
    received_by: str | None = None,
    origin_barred: bool = False,
) -> dict[str, datetime]:
    """Every rule a receiver decides from its own view; returns the deadlines to record.

    `received_by`: whom the event reached on this side, if not this node itself (for an
    event forwarded across a border or passed on by an agency, the one that received or
    sent it and forwarded it; an erasure order may be passed on by any holder).
    `origin_barred`: this node refused an envelope of the case earlier because it
    carried `no_origin_contact` (events may arrive in any order).
    """
    addressee = received_by or me.agency_id
    # brought by another agency (a gateway, or one passing the case on), not addressed here
    brought = received_by if received_by not in (None, me.agency_id) else None
    passed_on = brought is not None and (
        brought == p.sender or p.event_type == "case.erasure-ordered"
    )
    if addressee not in p.recipients and not passed_on:
        raise RuleViolation("R6", f"{addressee} is not a recipient of the event")
    check_common(state, p)
    check_party(state, p, me.agency_id, brought_by=brought)
    if origin_side(me.roles) and (origin_barred or barred_from_origin(state, p)):
        raise RuleViolation(
            "R4",
            "no contact with the country of origin applies to this case: this node, on the "
            "country of origin's side, takes nothing more of it",
        )
    if origin_side(me.roles) and justice(p.event_type):
        raise RuleViolation(
            "R4",
            f"{p.event_type} is a justice event: this node, on the country of origin's "
            "side, takes none, whoever sent or passed it on",
        )
    if p.event_type in ("referral.accepted", "referral.declined"):
        ref = state.referrals.get(str(p.operational["referral_id"]))
        if ref is not None and ref.to_agency != p.sender:  # the requester knows the referral
            raise RuleViolation(
                "LIFECYCLE",
                f"referral {ref.referral_id} was addressed to {ref.to_agency}, not {p.sender}",
            )
        if p.event_type == "referral.declined":
            check_decline_reason(p.operational)
    if me.policy is None:
        return dict(deadlines)
    return check_deadlines(state, p, me.policy, deadlines)


def check_party(state: CaseState, p: Proposal, me: str, brought_by: str | None = None) -> None:
    """R6 in a case: only its parties, as this node knows them, add to it. An event passed
    on to this node (`brought_by`: the agency that forwarded it) is brought by that
    agency, which must then be a party, as the sender of any event must."""
    row = authority(p.event_type)
    if not state.exists:
        if not row.opens_case:
            raise RuleViolation(
                "R6",
                f"this node holds nothing of {state.pseudonym}: a {p.event_type} cannot open "
                "a case here",
            )
        return  # the agency that opens a case to this node is its first party here
    if p.sender in state.parties or (brought_by is not None and brought_by in state.parties):
        return
    if row.joins is Joins.ALWAYS:
        return
    if row.joins is Joins.WHEN_REFERRED and p.operational.get("to_agency") == me:
        return
    raise RuleViolation(
        "R6",
        f"{p.sender} takes no part in {state.pseudonym} as this node knows it: it did not "
        "open the case here, exchanged no event of it with this node, and no known event "
        "names it",
    )


def check_deadlines(
    state: CaseState, p: Proposal, policy: CountryPolicy, claimed: Mapping[str, datetime]
) -> dict[str, datetime]:
    """The deadlines this node computes from its own policy; a claimed one that differs
    (or that this node cannot compute from its view) is refused with the rule it serves."""
    expected = derive_deadlines(state, p, policy)
    for name in sorted(set(expected) | set(claimed)):
        mine, theirs = expected.get(name), claimed.get(name)
        if mine == theirs:
            continue
        rule = DEADLINE_RULES.get(name, "POLICY")
        if mine is None:
            raise RuleViolation(
                rule,
                f"deadline {name} cannot be checked against {policy.country}'s policy from "
                "this node's view of the case",
            )
        said = "none" if theirs is None else theirs.isoformat()
        raise RuleViolation(
            rule,
            f"deadline {name} is {mine.isoformat()} by {policy.country}'s policy; the "
            f"envelope says {said}",
        )
    return expected


def check_arrival(claimed: datetime, arrived: datetime, skew: timedelta = DEFAULT_SKEW) -> None:
    """An envelope may not claim a time after it reached the transport, beyond `skew`."""
    if claimed > arrived + skew:
        raise RuleViolation(
            "TIME",
            f"the envelope claims {claimed.isoformat()}, after it reached the transport at "
            f"{arrived.isoformat()} (more than {int(skew.total_seconds())} s of clock skew)",
        )
