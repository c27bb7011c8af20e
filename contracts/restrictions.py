"""Routing restrictions: what the clear part of an envelope says about a case, instead of
the facts behind it.

Every recipient of an event reads its clear part, so a fact there (asylum lodged,
refugee status, a serious risk found, a best-interests finding) would reach agencies the
who-reads-what table denies it to. What a node needs in order to route an event and to
refuse one is narrower: whether it may go to the country of origin at all, whether a
return may be planned, whether child safeguards apply and are met. Those are the
restrictions below; the facts that set them travel sealed in their categories, and the
competent authority and the others entitled still open them.

Two kinds, with the provenance rules of the trust model (docs/domain.md):

* protective restrictions add a protection and count whoever sets them (fail safe):
  a node that believes a case needs protecting is never overruled by one that does not;
* relaxing ones lift part of a protection and count only from a sender whose roles may
  establish them (`contracts.authority`): child protection, for the child safeguards.

None ever turns off: a node merges what it believes into its view of the case.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.events import (
    AgeAssessed,
    AgeAssessmentOutcome,
    AgeStatus,
    AsylumLodged,
    BestInterestsDetermined,
    CaseScreened,
    EventPayload,
    GuardianAppointed,
    RiskAssessed,
)
from contracts.justification import justified

PRESUMED_CHILD_AGES = frozenset({AgeStatus.CHILD, AgeStatus.UNKNOWN, AgeStatus.DISPUTED})


def _restriction(why: str) -> bool:
    return Field(default=False, json_schema_extra=justified(why))  # type: ignore[no-any-return]


class Restrictions(BaseModel):
    """The routing restrictions of a case, as the sender of an envelope believes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    presumed_child: bool = _restriction(
        "R2, protective: a presumed child (age child, unknown or disputed); every node "
        "keeps return planning back until a guardian and a best-interests determination, "
        "unless an age assessment lifted the child safeguards"
    )
    child_safeguards_confirmed: bool = _restriction(
        "R2, protective: an age assessment found a child; the child safeguards hold for "
        "good, whatever any other assessment says"
    )
    no_origin_contact: bool = _restriction(
        "R4, protective: nothing of the case may reach a consulate, counterpart or gateway "
        "of the country of origin, and no return is planned (an asylum claim, refugee "
        "status or a serious risk of harm on return: which one stays sealed); the origin's "
        "side refuses such an envelope on its own"
    )
    no_return: bool = _restriction(
        "R2, protective: a best-interests determination found return against the child's "
        "interests; no node or gateway lets return planning through"
    )
    guardian_appointed: bool = _restriction(
        "R2, relaxing (child protection only): a guardian is appointed, so return "
        "planning for a presumed child may start once the determination is made too"
    )
    best_interests_determined: bool = _restriction(
        "R2, relaxing (child protection only): a best-interests determination is made"
    )
    child_safeguards_lifted: bool = _restriction(
        "R2, relaxing (child protection only): an age assessment found an adult, which "
        "ends the presumption of minority (not a confirmed child)"
    )

    @property
    def child_safeguards(self) -> bool:
        """Whether R2's child safeguards apply: a child confirmed by an assessment, or
        presumed and not found an adult."""
        return self.child_safeguards_confirmed or (
            self.presumed_child and not self.child_safeguards_lifted
        )

    def merged(self, other: Restrictions) -> Restrictions:
        mine, theirs = self.__dict__, other.__dict__
        union = {k: mine[k] or theirs[k] for k in mine}
        # Both were validated, and so is any union of their restrictions: no need to again.
        return self if union == mine else Restrictions.model_construct(**union)

    def names(self) -> frozenset[str]:
        """The restrictions in force."""
        return frozenset(k for k in type(self).model_fields if getattr(self, k))


#: Restrictions that add a protection: they count whoever sets them (fail safe).
PROTECTIVE: tuple[str, ...] = (
    "presumed_child",
    "child_safeguards_confirmed",
    "no_origin_contact",
    "no_return",
)
#: Restrictions that relax one: they count only from a sender that may establish them.
RELAXING: tuple[str, ...] = (
    "guardian_appointed",
    "best_interests_determined",
    "child_safeguards_lifted",
)


def presumed_child(age_status: object) -> bool:
    """R2: an age that is child, unknown or disputed, or not stated at all (fail safe)."""
    try:
        return AgeStatus(age_status) in PRESUMED_CHILD_AGES
    except ValueError:
        return True


def age_assessed(outcome: object) -> Restrictions:
    """What an age assessment sets: a child found confirms the safeguards (protective);
    an adult found lifts them (relaxing: counted only from child protection)."""
    if outcome == AgeAssessmentOutcome.CHILD:
        return Restrictions(child_safeguards_confirmed=True)
    return Restrictions(child_safeguards_lifted=outcome == AgeAssessmentOutcome.ADULT)


def set_by(payload: EventPayload) -> Restrictions:
    """The restrictions an event sets from its own facts, sealed ones included: what its
    sender's node writes into the clear part (it holds the payload; receivers do not)."""
    match payload:
        case CaseScreened():
            return Restrictions(presumed_child=presumed_child(payload.age_status))
        case AgeAssessed():
            return age_assessed(payload.outcome)
        case AsylumLodged():
            return Restrictions(no_origin_contact=True)
        case RiskAssessed(serious_risk=True):
            return Restrictions(no_origin_contact=True)
        case BestInterestsDetermined():
            return Restrictions(
                best_interests_determined=True, no_return=not payload.return_in_best_interests
            )
        case GuardianAppointed():
            return Restrictions(guardian_appointed=True)
    return Restrictions()
