"""Who may emit each event type, as data: the table every node checks, sending and receiving.

One row per event type of the catalogue, and no default: a type without a row is a
contract error (a test holds the table to the catalogue). A row says

- ``emitters``: the roles that may emit the event (an agency with several roles may emit
  it if any of them may: authority is a capability);
- ``establishes``: the relaxing restrictions the event establishes
  (`contracts.restrictions`). Such a restriction counts at a node only when it comes
  from a sender holding a role that emits an event establishing it (guardian appointed:
  child protection). Protective restrictions (child safeguards, no contact with the
  country of origin, no return) count from anyone: fail safe;
- ``joins``: whether the event brings its sender into a case it is not yet a party of at
  the receiving node (a screening; a referral addressed to that node; an escalation,
  which R8 addresses to the competent authority whoever it has heard of; an erasure
  order, which must reach every holder of the case);
- ``opens_case``: whether it may be the first event of a case a node holds (an order to
  close or erase a case it never held is refused, or anyone knowing a pseudonym could
  block a case at a node before its first real event arrives);
- ``names``: clear fields naming an agency that takes part in the case (the agency a
  referral asks, the counterpart of a return), which makes that agency a party.

The roles follow the domain (docs/domain.md) and the seeds: the competent authority
decides identification, closes the case and plans return; child protection appoints
guardians and determines best interests; immigration runs the reflection period and
residence; asylum claims come from the asylum authority or immigration; only the
competent authority and immigration assess the risk of return (R4); counterparts agree
return plans and monitor reintegration; consulates and oversight bodies emit nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from contracts.restrictions import RELAXING
from contracts.vocabulary import Role

FR = Role.FIRST_RESPONDER
CA = Role.COMPETENT_AUTHORITY
SP = Role.SERVICE_PROVIDER
CP = Role.CHILD_PROTECTION
IM = Role.IMMIGRATION
AS = Role.ASYLUM
LE = Role.LAW_ENFORCEMENT
CT = Role.COUNTERPART
NC = Role.NATIONAL_COORDINATOR

#: R4: the only roles that may address the country of origin (a consulate, a counterpart,
#: a gateway). Every asylum claim must be addressed to every active agency holding one of
#: them, so whoever contacts the country of origin has always heard of the claim.
ORIGIN_CONTACT_ROLES: frozenset[Role] = frozenset({CA})


class Joins(StrEnum):
    """When an event brings its sender into a case it is not a party of at the receiver."""

    NEVER = "never"
    ALWAYS = "always"
    WHEN_REFERRED = "when-referred"  # the event's `to_agency` is the receiving node


@dataclass(frozen=True)
class Authority:
    emitters: frozenset[Role]
    establishes: frozenset[str] = frozenset()
    joins: Joins = Joins.NEVER
    opens_case: bool = True
    names: tuple[str, ...] = ()


_ASSISTING = frozenset({FR, CA, SP, CP, IM, AS, LE, CT})  # in contact with the person
_REFLECTION = frozenset({IM, CA})
_SETS_DEADLINES = frozenset({FR, CA, SP, CP, IM, AS, LE, CT})

#: event type -> who may emit it and what it may establish. One row per type.
AUTHORITY: Mapping[str, Authority] = {
    "case.screened": Authority(frozenset({FR, CA, SP, CP, LE}), joins=Joins.ALWAYS),
    "referral.requested": Authority(_ASSISTING, joins=Joins.WHEN_REFERRED, names=("to_agency",)),
    "referral.accepted": Authority(_ASSISTING),
    "referral.declined": Authority(_ASSISTING),
    "consent.recorded": Authority(_ASSISTING),
    "consent.withdrawn": Authority(_ASSISTING),
    "identification.decided": Authority(frozenset({CA})),
    "reflection.started": Authority(_REFLECTION),
    "reflection.extended": Authority(_REFLECTION),
    "reflection.ended": Authority(_REFLECTION),
    "residence.granted": Authority(frozenset({IM})),
    "asylum.lodged": Authority(frozenset({AS, IM})),
    "guardian.appointed": Authority(
        frozenset({CP}), establishes=frozenset({"guardian_appointed"}), names=("guardian_agency",)
    ),
    "best-interests.determined": Authority(
        frozenset({CP}), establishes=frozenset({"best_interests_determined"})
    ),
    "risk.assessed": Authority(frozenset({CA, IM})),
    "services.delivered": Authority(frozenset({FR, SP, CP, LE, CT})),
    "return.planning-started": Authority(frozenset({CA}), names=("counterpart_agency",)),
    "return.plan-agreed": Authority(frozenset({CT})),
    "return.completed": Authority(frozenset({CA, CT})),
    "reintegration.monitored": Authority(frozenset({CT})),
    "compensation.claimed": Authority(frozenset({CA, SP, LE})),
    "case.closed": Authority(frozenset({CA}), opens_case=False),
    "case.erasure-ordered": Authority(frozenset({CA, NC}), joins=Joins.ALWAYS, opens_case=False),
    "case.escalated": Authority(_SETS_DEADLINES, joins=Joins.ALWAYS),
}


class UnknownEventType(KeyError):
    """An event type without a row: nobody may emit it."""


def authority(event_type: str) -> Authority:
    try:
        return AUTHORITY[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def may_emit(roles: Iterable[Role], event_type: str) -> bool:
    """Whether an agency holding `roles` may emit `event_type` (any one role suffices)."""
    return not authority(event_type).emitters.isdisjoint(roles)


def vouchers(restriction: str) -> frozenset[Role]:
    """The roles whose envelopes may carry the relaxing `restriction`: those emitting an
    event type that establishes it."""
    if restriction not in RELAXING:
        raise ValueError(f"{restriction!r} is not a relaxing restriction")
    out: frozenset[Role] = frozenset()
    for row in AUTHORITY.values():
        if restriction in row.establishes:
            out |= row.emitters
    return out


def origin_contact(roles: Iterable[Role]) -> bool:
    return not ORIGIN_CONTACT_ROLES.isdisjoint(roles)
