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
  referral asks, the counterpart of a return), which makes that agency a party;
- ``never_to_origin``: justice events (co-operation, witness protection, proceedings,
  non-punishment), which no sender, not even the competent authority, may address to
  the country of origin's side (R4): traffickers may reach the person through it.

The roles follow the domain (docs/domain.md) and the seeds: the competent authority
decides identification, closes the case, plans return and links a new case to an
earlier one; child protection appoints guardians, assesses age and determines best
interests; immigration runs the reflection period and residence; asylum claims come from
the asylum authority or immigration; only the competent authority and immigration assess
the risk of return (R4); the agency receiving a return agrees its plan (a counterpart
abroad, or a service provider or child protection for a return within the country);
law enforcement records proceedings, witness protection and non-punishment. Screening
is open to every role the Bali Process guide names as able to identify a victim (seed
003, "Who can identify a victim?": law enforcement, immigration, social service workers,
"embassy and consular officers", and civil society). A consulate otherwise only answers
referrals addressed to it and delivers what it was asked for (travel documents); the
oversight body emits nothing.
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
CO = Role.CONSULATE

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
    never_to_origin: bool = False


_ASSISTING = frozenset({FR, CA, SP, CP, IM, AS, LE, CT})  # in contact with the person
_ANSWERING = _ASSISTING | {CO}  # a consulate answers referrals for travel documents
_SCREENING = frozenset({FR, CA, SP, CP, IM, AS, LE, CO})
_REFLECTION = frozenset({IM, CA})
_SETS_DEADLINES = frozenset({FR, CA, SP, CP, IM, AS, LE, CT})
_REPRESENTING = frozenset({CA, SP, CP})  # may ask for a review on the person's behalf
_MONITORING = frozenset({CT, CA, SP})  # a return within the country, or abroad
_RECEIVING_RETURN = frozenset({CT, SP, CP})
_TRACING = frozenset({CP, SP, CT, CA})
_COMPENSATION = frozenset({CA, SP, LE})
_JUSTICE = frozenset({LE})

#: event type -> who may emit it and what it may establish. One row per type.
AUTHORITY: Mapping[str, Authority] = {
    "case.screened": Authority(_SCREENING, joins=Joins.ALWAYS),
    "referral.requested": Authority(_ASSISTING, joins=Joins.WHEN_REFERRED, names=("to_agency",)),
    "referral.accepted": Authority(_ANSWERING),
    "referral.declined": Authority(_ANSWERING),
    "consent.recorded": Authority(_ASSISTING),
    "consent.withdrawn": Authority(_ASSISTING),
    "identification.decided": Authority(frozenset({CA})),
    "identification.review-requested": Authority(_REPRESENTING),
    "reflection.started": Authority(_REFLECTION),
    "reflection.extended": Authority(_REFLECTION),
    "reflection.ended": Authority(_REFLECTION),
    "residence.granted": Authority(frozenset({IM})),
    "residence.renewed": Authority(frozenset({IM})),
    "residence.ended": Authority(frozenset({IM})),
    "asylum.lodged": Authority(frozenset({AS, IM})),
    "guardian.appointed": Authority(
        frozenset({CP}), establishes=frozenset({"guardian_appointed"}), names=("guardian_agency",)
    ),
    "age.assessed": Authority(frozenset({CP}), establishes=frozenset({"child_safeguards_lifted"})),
    "best-interests.determined": Authority(
        frozenset({CP}), establishes=frozenset({"best_interests_determined"})
    ),
    "risk.assessed": Authority(frozenset({CA, IM})),
    "services.delivered": Authority(frozenset({FR, SP, CP, LE, CT, CO})),
    "family.traced": Authority(_TRACING),
    "return.planning-started": Authority(frozenset({CA}), names=("counterpart_agency",)),
    "return.plan-agreed": Authority(_RECEIVING_RETURN),
    "return.completed": Authority(frozenset({CA, CT})),
    "reintegration.monitored": Authority(_MONITORING),
    "cooperation.decided": Authority(frozenset({LE, CA, SP}), never_to_origin=True),
    "witness-protection.decided": Authority(_JUSTICE, never_to_origin=True),
    "proceedings.opened": Authority(_JUSTICE, never_to_origin=True),
    "proceedings.concluded": Authority(_JUSTICE, never_to_origin=True),
    "non-punishment.decided": Authority(_JUSTICE, never_to_origin=True),
    "rights.explained": Authority(_ASSISTING),
    "complaint.lodged": Authority(_ASSISTING, names=("about_agency",)),
    "complaint.answered": Authority(_ASSISTING),
    "compensation.claimed": Authority(_COMPENSATION),
    "compensation.decided": Authority(_COMPENSATION),
    "compensation.paid": Authority(_COMPENSATION),
    "case.closed": Authority(frozenset({CA}), opens_case=False),
    "case.linked": Authority(frozenset({CA}), opens_case=False),
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


def justice(event_type: str) -> bool:
    """Whether `event_type` may never be addressed to the country of origin's side (R4)."""
    return authority(event_type).never_to_origin


def origin_contact(roles: Iterable[Role]) -> bool:
    return not ORIGIN_CONTACT_ROLES.isdisjoint(roles)
