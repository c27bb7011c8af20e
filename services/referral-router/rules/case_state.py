"""What a node knows of a case, and how a rule refuses: the pure data the lifecycle rules
(`rules.lifecycle`, `rules.remedies`) and the receiving node's admission share. Built
only from clear envelope data (docs/domain.md, "Trust model")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from contracts.restrictions import Restrictions
from contracts.vocabulary import Role

#: The roles of one agency, as the directory lists them.
Roles = frozenset[Role]


class RuleViolation(Exception):
    """An event the rules forbid. `rule` is R1..R10, or ROLE / LIFECYCLE / POLICY."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


class UnknownCase(LookupError):
    """The case has no events at this node."""


@dataclass(frozen=True)
class Referral:
    referral_id: str
    from_agency: str
    to_agency: str
    service: str
    status: str  # requested | accepted | declined
    requested_at: datetime
    answer_due: datetime | None
    replaces: str | None = None  # the declined referral this one re-routes (R8)


@dataclass(frozen=True)
class Decision:
    """An identification decision, as the clear envelope shows it (the outcome is sealed)."""

    event_id: str
    stage: str
    sender: str


@dataclass(frozen=True)
class Review:
    review_id: str
    decision_event_id: str
    stage: str  # the stage of the decision reviewed, which the answer decides again
    requested_by: str
    answered: bool = False


@dataclass(frozen=True)
class Complaint:
    complaint_id: str
    kind: str
    recorded_by: str
    about: str | None
    answered: bool = False


@dataclass(frozen=True)
class Proceedings:
    proceedings_id: str
    opened_by: str
    concluded_by: str | None = None


@dataclass(frozen=True)
class Consent:
    consent_id: str
    recipients: frozenset[str]
    voluntary_return: bool
    categories: frozenset[str] = frozenset()  # what the person agreed may be shared
    active: bool = True


@dataclass(frozen=True)
class Reflection:
    started: datetime
    ends: datetime
    extra_days: int = 0
    ended: bool = False

    def running_at(self, when: datetime) -> bool:
        return not self.ended and self.started <= when < self.ends


@dataclass(frozen=True)
class CaseState:
    """What a node knows of a case, built only from clear envelope data."""

    pseudonym: str = ""
    originator: str = ""
    screened: bool = False
    restrictions: Restrictions = field(default_factory=Restrictions)
    referrals: Mapping[str, Referral] = field(default_factory=dict)
    consents: Mapping[str, Consent] = field(default_factory=dict)
    #: Every agency this node knows takes part: senders and recipients of the events it
    #: holds, and agencies those events name (a referral's, a return's counterpart).
    parties: frozenset[str] = frozenset()
    #: R9: recipients a referral shared with on an override with a recorded legal basis.
    overrides: frozenset[str] = frozenset()
    #: R10: agencies this node passed the case on to (an erasure order follows them).
    forwarded_to: frozenset[str] = frozenset()
    identification: str | None = None  # None | reasonable-grounds | conclusive
    #: Identification decisions in order; reviews of them by id.
    decisions: tuple[Decision, ...] = ()
    reviews: Mapping[str, Review] = field(default_factory=dict)
    reflection: Reflection | None = None
    #: R4: an agency that may assess the risk of return did (a serious risk found sets
    #: `no_origin_contact`, so an assessment without it found none).
    risk_assessed: bool = False
    #: R2: when child protection last determined the child's best interests (a finding
    #: against return sets `no_return`, for good).
    best_interests_at: datetime | None = None
    age_assessment: str | None = None  # the latest outcome, from child protection
    family_check: str | None = None  # the latest complicity finding (ComplicityCheck)
    family_checked_at: datetime | None = None
    return_counterpart: str | None = None  # who receives the return and agrees its plan
    return_stage: str | None = None  # planning | agreed | completed
    monitoring_visits: int = 0
    residence: str | None = None  # None | active | ended
    proceedings: Mapping[str, Proceedings] = field(default_factory=dict)
    complaints: Mapping[str, Complaint] = field(default_factory=dict)
    compensation: Mapping[str, str] = field(default_factory=dict)  # forum -> claimed | decided
    linked_to: frozenset[str] = frozenset()  # earlier closed cases of the same person
    closed: bool = False
    erased: bool = False
    event_ids: frozenset[str] = frozenset()
    last_event_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return bool(self.event_ids)

    @property
    def open_reviews(self) -> list[Review]:
        return [r for r in self.reviews.values() if not r.answered]

    @property
    def service_providers(self) -> frozenset[str]:
        """Agencies asked for or delivering a service: 'own service' in the agreement."""
        return frozenset(r.to_agency for r in self.referrals.values() if r.status != "declined")

    def consented(self, agency_id: str) -> frozenset[str]:
        """R9: the categories active consents let the person's data go to `agency_id`."""
        out: frozenset[str] = frozenset()
        for c in self.consents.values():
            if c.active and agency_id in c.recipients:
                out |= c.categories
        return out


@dataclass(frozen=True)
class Proposal:
    """A new event as the rules see it: only clear data, and the roles of the agencies
    involved as the directory lists them (an agency may hold several)."""

    event_id: str
    event_type: str
    sender: str
    sender_roles: Roles
    recipients: Mapping[str, Roles]
    time: datetime
    operational: Mapping[str, Any]
    #: The envelope's routing restrictions, as its sender claims them.
    restrictions: Restrictions = field(default_factory=Restrictions)


def require(cond: bool, rule: str, message: str) -> None:
    if not cond:
        raise RuleViolation(rule, message)


def answer_reaches(owner: str, p: Proposal, what: str) -> None:
    """An answer reaches the agency whose clock it stops (R8), or that agency sent it."""
    require(
        owner in (p.sender, *p.recipients),
        "LIFECYCLE",
        f"address {owner}, which is waiting for {what}, so its clock stops",
    )


T = TypeVar("T")


def known(items: Mapping[str, T], key: str, what: str) -> T:
    """The case's `what` named `key` (a referral, a review...), or LIFECYCLE: none."""
    item = items.get(key)
    require(item is not None, "LIFECYCLE", f"no {what} {key} in this case")
    assert item is not None
    return item
