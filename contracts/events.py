"""The event catalogue: one typed payload per lifecycle event of docs/domain.md.

Every field carries its data category (rule R5). Fields in the `operational` category
travel in clear in the envelope and are all that routing and rules ever read; every other
field is sealed per category and opened only by entitled recipients.

Clear is the exception: a clear field says why it is clear (`why=`: who needs it in
clear to decide what, `contracts.justification`) and is never free text. Facts the
who-reads-what table denies some recipients (legal status, decisions, nationality) are
sealed even when rules depend on them: what travels in clear instead is the routing
restriction they set (`contracts.restrictions`), never the fact behind it.

Versions: a payload that gains a field, or whose field becomes required or changes
category, is a new version; older versions stay readable (`OLDER_VERSIONS`, upcast in
`contracts.versions`), except those that carried in clear a fact or free text that no
longer may be (the versions before the restrictions: they are refused, see
docs/domain.md). Closed lists of codes grow in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from contracts.indicators import CURRENT_INDICATOR_LIST, INDICATOR_LISTS
from contracts.justification import justified
from contracts.legal_basis import ErasureBasis, OverrideBasis
from contracts.vocabulary import DataCategory, ServiceKind

CATEGORY_KEY = "x-category"
#: Why a field travels in clear: who needs it, without opening anything, to decide what.
WHY_KEY = "x-why"

#: Identifiers typed by agency systems (referral and consent ids): never free text.
LOCAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
#: An agency id, as the directory spells it (contracts.envelope.AGENCY_ID_PATTERN).
AGENCY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
AgencyId = Annotated[str, Field(pattern=AGENCY_PATTERN)]
EVENT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def tagged(
    category: DataCategory, *, description: str, why: str | None = None, **kwargs: Any
) -> Any:
    """A pydantic Field that records its data category (and, if clear, why) in the JSON
    Schema."""
    extra: dict[str, Any] = {CATEGORY_KEY: str(category)}
    if why is not None:
        extra = justified(why, extra)
    return Field(description=description, json_schema_extra=extra, **kwargs)


def clear(*, description: str, why: str, **kwargs: Any) -> Any:
    """A clear (operational) field: `why` says who needs it in clear to decide what."""
    return tagged(DataCategory.OPERATIONAL, description=description, why=why, **kwargs)


def personal(category: DataCategory, *, description: str, **kwargs: Any) -> Any:
    """A sealed field: only recipients entitled to `category` can open it."""
    if category is DataCategory.OPERATIONAL:
        raise ValueError("use clear() for operational fields")
    return tagged(category, description=description, **kwargs)


OFFICER_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
OFFICER_WHY = "R7: every receiver and oversight see who decided without opening anything."
#: What an upcast fills into a field a later version requires, for records made before
#: it was asked for (an officer, how a child was heard): it says so rather than invent.
UNRECORDED = "unrecorded"


R7_WHY = (
    "R7: oversight bodies and every recipient see which officer decided, without "
    "opening anything (a badge number, never a name)"
)


def officer(
    *,
    description: str = "The officer who did it (R7: accountability).",
    why: str = R7_WHY,
    **kwargs: Any,
) -> Any:
    """An officer's id (badge number, not a name): operational, so oversight sees who decided."""
    return clear(
        min_length=1,
        max_length=64,
        pattern=OFFICER_ID_PATTERN,
        description=description,
        why=why,
        **kwargs,
    )


class ExploitationForm(StrEnum):
    """Forms of exploitation, as the Bali Process guide (seed 003, "Types of
    exploitation") lists them beyond the Protocol's minimum: forced labour or services,
    slavery, servitude (serfdom, and children sold into exploitation), debt bondage,
    sexual exploitation, domestic servitude, forced or servile marriage, removal of
    organs, forced begging or crime, and other forms met in practice."""

    FORCED_LABOUR = "forced-labour"
    SEXUAL_EXPLOITATION = "sexual-exploitation"
    DOMESTIC_SERVITUDE = "domestic-servitude"
    FORCED_MARRIAGE = "forced-marriage"
    ORGAN_REMOVAL = "organ-removal"
    FORCED_BEGGING_OR_CRIME = "forced-begging-or-crime"
    SLAVERY = "slavery"
    SERVITUDE = "servitude"
    DEBT_BONDAGE = "debt-bondage"
    OTHER = "other"


class Strength(StrEnum):
    STRONG = "strong"
    MEDIUM = "medium"
    WEAK = "weak"


class AgeStatus(StrEnum):
    """An unknown or disputed age means a presumed child (R2)."""

    ADULT = "adult"
    CHILD = "child"
    UNKNOWN = "unknown"
    DISPUTED = "disputed"


class Sex(StrEnum):
    """For disaggregated statistics: anyone can be a victim "regardless of their age,
    sex, gender" (Bali Process guide, seed 003, "Defining a victim of trafficking"), and
    the under-identification of male victims is one of the trends statistics must show.
    `not-stated` when the person was not asked or chose not to say."""

    FEMALE = "female"
    MALE = "male"
    ANOTHER = "another"
    NOT_STATED = "not-stated"


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form: ExploitationForm
    strength: Strength
    observation: str = Field(max_length=2000, description="What was observed.")
    code: str | None = Field(
        default=None,
        max_length=100,
        description="The indicator's code on the screening's indicator list "
        "(contracts/indicators.py), if it is one of the list's.",
    )


class EventPayload(BaseModel):
    """Base of every payload: strict, so an unknown field is a schema violation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[int] = 1


class CaseScreenedV1(EventPayload):
    """First contact: the person is a presumed victim from here on (R1)."""

    forms_of_exploitation: list[ExploitationForm] = clear(
        min_length=1,
        description="Forms of exploitation indicated (for statistics).",
        why="oversight counts screenings by form of exploitation in its published "
        "statistics (small counts suppressed) without opening any case",
    )
    age_status: AgeStatus = clear(
        description="Unknown or disputed age means a presumed child.",
        why="R2: the screening's receivers derive child safeguards from it (a presumed "
        "child goes at once to child protection) without opening identity",
    )
    screened_by_officer: str = officer()
    full_name: str = personal(
        DataCategory.IDENTITY, min_length=1, max_length=200, description="Name as given."
    )
    date_of_birth: date | None = personal(
        DataCategory.IDENTITY, default=None, description="If known."
    )
    nationality: str = personal(
        DataCategory.IDENTITY,
        min_length=2,
        max_length=2,
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2.",
    )
    languages: list[str] = personal(
        DataCategory.IDENTITY, default_factory=list, description="Languages spoken."
    )
    found_at: str = personal(
        DataCategory.LOCATION, max_length=500, description="Where the person was met."
    )
    indicators: list[Indicator] = personal(
        DataCategory.EXPLOITATION_ACCOUNT, min_length=1, description="Indicators, weighed."
    )
    account: str = personal(
        DataCategory.EXPLOITATION_ACCOUNT,
        default="",
        max_length=20000,
        description="The person's own account.",
    )
    migration_status: str = personal(
        DataCategory.LEGAL_STATUS, default="unknown", max_length=200, description="As declared."
    )
    immediate_needs: str = personal(
        DataCategory.HEALTH, default="", max_length=2000, description="Urgent medical needs."
    )


class CaseScreened(CaseScreenedV1):
    """First contact: the person is a presumed victim from here on (R1).

    Version 2 adds the person's sex and the indicator list the indicators are coded
    against (contracts/indicators.py), both sealed: the competent authority opens them
    for the statistics it publishes (contracts/statistics.py)."""

    version: ClassVar[int] = 2
    sex: Sex = personal(
        DataCategory.IDENTITY, default=Sex.NOT_STATED, description="For disaggregated statistics."
    )
    indicator_list: str = personal(
        DataCategory.EXPLOITATION_ACCOUNT,
        default=CURRENT_INDICATOR_LIST,
        max_length=50,
        description="The version of the indicator list the indicators' codes come from.",
    )

    @model_validator(mode="after")
    def _codes_on_the_list(self) -> CaseScreened:
        listed = INDICATOR_LISTS.get(self.indicator_list)
        if listed is None:
            raise ValueError(
                f"unknown indicator list {self.indicator_list!r}; known: "
                + ", ".join(sorted(INDICATOR_LISTS))
            )
        for i, ind in enumerate(self.indicators):
            if ind.code is not None and not listed.fits(ind.code, ind.form):
                raise ValueError(
                    f"indicators.{i}.code {ind.code!r} is not an indicator of {ind.form} "
                    f"on list {self.indicator_list}"
                )
        return self


class ConsentOverride(BaseModel):
    """R9: sharing without consent needs a recorded legal basis; the override is audited.

    The basis is a code from a closed list (`contracts.legal_basis`), never free text: it
    travels in clear to every recipient and oversight body. An explanation, if one is
    needed, is the referral's sealed `override_explanation`."""

    model_config = ConfigDict(extra="forbid")
    legal_basis: OverrideBasis
    authorised_by_officer: str = Field(min_length=1, max_length=64, pattern=OFFICER_ID_PATTERN)


REFERRAL_ID_WHY = (
    "the referring agency, the referred one and the notifier match answers, deadlines "
    "(R8) and escalations to the referral"
)


class ReferralRequested(EventPayload):
    """Version 3: the override's legal basis is a code, its explanation sealed (version 2
    could name the declined referral it re-routes, R8: no dead ends). Versions 1 and 2
    carried the override's free-text legal basis in clear: refused."""

    version: ClassVar[int] = 3
    referral_id: str = clear(
        pattern=LOCAL_ID_PATTERN, description="Unique per case.", why=REFERRAL_ID_WHY
    )
    to_agency: str = clear(
        pattern=AGENCY_PATTERN,
        description="The agency asked.",
        why="every receiver admits the referred agency as a party of the case (R6) and "
        "the sender's node checks consent for it (R9)",
    )
    service: ServiceKind = clear(
        description="What is asked for.",
        why="the referred agency's node and oversight see which service is asked (own "
        "service in the agreement, R5; referral statistics)",
    )
    urgent: bool = clear(
        default=False,
        description="Needs an answer within the urgent SLA.",
        why="every node recomputes the answer deadline from its policy (R8)",
    )
    consent_id: str | None = clear(
        default=None,
        pattern=LOCAL_ID_PATTERN,
        description="R9: the consent relied on.",
        why="R9: the sender's node caps what the referred agency opens to that consent; "
        "the disclosure record names it",
    )
    replaces_referral_id: str | None = clear(
        default=None,
        pattern=LOCAL_ID_PATTERN,
        description="The declined referral of this case that this one re-routes.",
        why="R8: stops the declined referral's re-referral clock at every node holding it.",
    )
    consent_override: ConsentOverride | None = clear(
        default=None,
        description="R9: legal basis when sharing without consent.",
        why="R9: an override is audited: every receiver and oversight see its legal-basis "
        "code and the officer who authorised it",
    )
    override_explanation: str = personal(
        DataCategory.DECISION,
        default="",
        max_length=2000,
        description="Why the override was needed, beyond its legal-basis code.",
    )
    full_name: str | None = personal(
        DataCategory.IDENTITY, default=None, max_length=200, description="Shared identity."
    )
    needs: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What the person needs."
    )
    medical_notes: str = personal(
        DataCategory.HEALTH, default="", max_length=5000, description="For medical services."
    )
    pickup_location: str = personal(
        DataCategory.LOCATION, default="", max_length=500, description="Where to meet."
    )


ANSWERED_WHY = "the referring agency's node and notifier close the answer deadline (R8)"


class ReferralAccepted(EventPayload):
    referral_id: str = clear(
        pattern=LOCAL_ID_PATTERN, description="The referral answered.", why=ANSWERED_WHY
    )
    answered_by_officer: str | None = officer(
        default=None, description="The officer who accepted (R7); optional for systems."
    )
    shelter_address: str = personal(
        DataCategory.LOCATION, default="", max_length=500, description="The most dangerous field."
    )
    placement: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="Arrangements made."
    )


class DeclineReason(StrEnum):
    CAPACITY = "capacity"
    NOT_ELIGIBLE = "not-eligible"
    NO_CONSENT = "no-consent"
    MIGRATION_STATUS = "migration-status"
    NO_COOPERATION = "no-cooperation"
    OTHER = "other"


DECLINE_WHY = (
    "R1: every receiver refuses a decline for migration status or non-co-operation; "
    "the referring agency re-routes by it; oversight counts declines by reason"
)


class ReferralDeclinedV2(EventPayload):
    """Version 2: `reason_code` is a closed list so declines can be counted and re-routed."""

    version: ClassVar[int] = 2
    referral_id: str = clear(
        pattern=LOCAL_ID_PATTERN, description="The referral answered.", why=ANSWERED_WHY
    )
    reason_code: DeclineReason = clear(description="Why, from a closed list (v2).", why=DECLINE_WHY)
    answered_by_officer: str | None = officer(
        default=None, description="The officer who declined (R7); optional for systems."
    )
    reason: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="Free-text explanation."
    )


class ReferralDeclined(ReferralDeclinedV2):
    """Version 3: a decline is a decision, so it always names the officer who made it (R7);
    it opens the re-referral deadline (R8)."""

    version: ClassVar[int] = 3
    answered_by_officer: str = officer(description="The officer who declined (R7).")  # type: ignore[assignment]


class ReferralDeclinedV1(EventPayload):
    """Version 1 had only free text; upcast to v2 with reason_code 'other'."""

    referral_id: str = clear(
        min_length=1, max_length=64, description="The referral answered.", why=ANSWERED_WHY
    )
    reason: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="Free-text explanation."
    )


class ConsentRecorded(EventPayload):
    consent_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="Referenced by referrals.",
        why="R9: referrals and forwardings name the consent they rely on",
    )
    recipients: list[AgencyId] = clear(
        min_length=1,
        description="Agencies the person agreed to share with.",
        why="R9: the sender's node shares personal data with a consent-bound agency only "
        "as far as a consent names it",
    )
    categories: list[DataCategory] = clear(
        min_length=1,
        description="What may be shared.",
        why="R9: the sender's node caps each consent-bound recipient to these categories",
    )
    voluntary_return: bool = clear(
        default=False,
        description="The person asks to return (R3).",
        why="R3: a return during the reflection period needs the person's recorded request",
    )
    recorded_by_officer: str = officer()
    statement: str = personal(
        DataCategory.IDENTITY, default="", max_length=5000, description="The consent as worded."
    )


class ConsentWithdrawn(EventPayload):
    consent_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="The consent withdrawn.",
        why="R9: every node holding the consent stops sharing under it",
    )


class IdentificationStage(StrEnum):
    REASONABLE_GROUNDS = "reasonable-grounds"
    CONCLUSIVE = "conclusive"


class Outcome(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


class IdentificationDecidedV1(EventPayload):
    stage: IdentificationStage = clear(
        description="Reasonable grounds first, then conclusive.",
        why="the order of decisions (lifecycle) and the reasonable-grounds deadline (R8) "
        "are checked by every node; oversight times decisions from screening",
    )
    decided_by_officer: str = officer()
    outcome: Outcome = personal(DataCategory.DECISION, description="Positive or negative.")
    reasoning: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="Why."
    )


class IdentificationDecided(IdentificationDecidedV1):
    """Version 2: a second decision at a stage already decided is a review, and names the
    review request it answers (no other way to decide a stage twice)."""

    version: ClassVar[int] = 2
    review_id: str | None = clear(
        default=None,
        pattern=LOCAL_ID_PATTERN,
        description="The review request this decision answers.",
        why="A stage is decided twice only on review: every node checks a review is open.",
    )


class ReviewRequested(EventPayload):
    """A review of an identification decision, asked for by or for the person.

    Liu (seed 000, 3.4 "Systems"): no regulation of who is accountable for conclusive
    decisions and no external supervision are the faults reviews keep finding; a person
    refused victim status needs a way to have the decision looked at again. The
    competent authority answers with a new decision at the same stage, naming this
    review, within the country's policy deadline (R8), or the delay is escalated to the
    oversight body.
    """

    review_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="Unique per case.",
        why="The decision answering it names it, which stops the review clock (R8).",
    )
    decision_event_id: str = clear(
        pattern=EVENT_ID_PATTERN,
        description="The identification decision to review (its event id).",
        why="Every node checks it is the case's latest identification decision.",
    )
    requested_by_officer: str = officer(description="Who lodged the request (R7).")
    grounds: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="Why review."
    )


class ReflectionStarted(EventPayload):
    """The length comes from the country's policy file, never from the caller."""

    decided_by_officer: str = officer()


class ReflectionExtended(EventPayload):
    extra_days: int = clear(
        ge=1,
        le=365,
        description="Bounded by the policy maximum.",
        why="R3: every node recomputes the end of the reflection period from its policy",
    )
    decided_by_officer: str = officer()
    reason: str = personal(DataCategory.DECISION, default="", max_length=2000, description="Why.")


class ReflectionEndReason(StrEnum):
    EXPIRED = "expired"
    COOPERATION_DECIDED = "cooperation-decided"
    VOLUNTARY_RETURN = "voluntary-return"
    OTHER = "other"


class ReflectionEndedV1(EventPayload):
    reason_code: Literal["expired", "cooperation-decided", "voluntary-return", "other"] = clear(
        description="Why the period ended.",
        why="R3: nodes and the notifier close the reflection deadline; oversight counts "
        "how periods end",
    )


class ReflectionEnded(EventPayload):
    """Version 2: ending a reflection period early is a decision, so it names the officer
    (R7)."""

    version: ClassVar[int] = 2
    reason_code: ReflectionEndReason = clear(
        description="Why the period ended.",
        why="Oversight counts how reflection periods end without opening a case.",
    )
    decided_by_officer: str = officer()


class ResidenceGrantedV1(EventPayload):
    decided_by_officer: str = officer()
    permit_type: str = personal(
        DataCategory.LEGAL_STATUS, max_length=200, description="Kind of permit."
    )
    valid_until: date = personal(DataCategory.LEGAL_STATUS, description="End of validity.")


class ResidenceGranted(EventPayload):
    """Version 2: the end of validity travels in clear, since it sets the renewal
    deadline every node of the country recomputes (R8): a permit must not lapse unseen
    while the person still needs it (Bali Process guide, seed 003, "Residence status")."""

    version: ClassVar[int] = 2
    decided_by_officer: str = officer()
    valid_until: date = clear(
        description="End of validity.",
        why="Sets the renewal deadline each node recomputes from its policy (R8).",
    )
    permit_type: str = personal(
        DataCategory.LEGAL_STATUS, max_length=200, description="Kind of permit."
    )


class ResidenceRenewed(EventPayload):
    """A permit renewed until a new date: the renewal deadline moves with it."""

    decided_by_officer: str = officer()
    valid_until: date = clear(
        description="New end of validity.",
        why="Moves the renewal deadline each node recomputes from its policy (R8).",
    )
    permit_type: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=200, description="Kind of permit."
    )


class ResidenceEndReason(StrEnum):
    EXPIRED = "expired"
    RENEWAL_REFUSED = "renewal-refused"
    REVOKED = "revoked"
    LEFT_THE_COUNTRY = "left-the-country"
    OTHER = "other"


class ResidenceEnded(EventPayload):
    """A permit's end: expiry, a refused renewal, revocation. It ends the renewal clock."""

    reason_code: ResidenceEndReason = clear(
        description="How the permit ended.",
        why="Oversight counts how permits end (a refused renewal vs an expiry) unopened.",
    )
    decided_by_officer: str = officer()
    reasoning: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="Why."
    )


class AsylumLodged(EventPayload):
    """From here on nothing of the case reaches the country of origin (R4).

    Version 2: whether refugee status is recognised is legal status, sealed; the event
    sets the clear restriction `no_origin_contact` instead."""

    version: ClassVar[int] = 2
    refugee: bool = personal(
        DataCategory.LEGAL_STATUS, default=False, description="Refugee status already recognised."
    )
    claim_reference: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=100, description="Asylum file number."
    )


class GuardianAppointed(EventPayload):
    guardian_agency: str = clear(
        pattern=AGENCY_PATTERN,
        description="Responsible agency.",
        why="every receiver admits the guardian agency as a party of the case (R6)",
    )
    decided_by_officer: str = officer()
    guardian_name: str = personal(
        DataCategory.IDENTITY, max_length=200, description="The appointed guardian."
    )


class AgeAssessmentOutcome(StrEnum):
    CHILD = "child"
    ADULT = "adult"
    INCONCLUSIVE = "inconclusive"


class AgeAssessed(EventPayload):
    """Child protection's age assessment: the one fact that can end the presumption of
    minority (R2), which holds until then.

    Bali Process guide (seed 003), "Children": presumed child victims are referred at once
    to child protection authorities "to conduct age assessments, appoint legal guardians
    and conduct best-interest determinations"; "First contact": identification affords
    "the presumption of minority". An inconclusive assessment keeps the presumption; an
    assessment that finds a child keeps the child safeguards for good, whatever a later
    one says (fail safe).
    """

    outcome: AgeAssessmentOutcome = clear(
        description="Child, adult, or inconclusive (the presumption of minority holds).",
        why="Lifts or confirms the child safeguards (R2) that every node enforces unopened.",
    )
    assessed_by_officer: str = officer()
    estimated_age: int | None = personal(
        DataCategory.IDENTITY, default=None, ge=0, le=120, description="Estimated age in years."
    )
    method: str = personal(
        DataCategory.DECISION, default="", max_length=2000, description="How it was assessed."
    )
    reasoning: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="Why."
    )


class ChildHeard(StrEnum):
    """How the child's views were sought (Convention on the Rights of the Child, art. 12)."""

    IN_PERSON = "in-person"
    THROUGH_REPRESENTATIVE = "through-representative"
    NOT_HEARD_AGE_OR_MATURITY = "not-heard-age-or-maturity"
    DECLINED_TO_BE_HEARD = "declined-to-be-heard"
    UNRECORDED = UNRECORDED  # determinations recorded before version 2 did not say


class BestInterestsDetermined(EventPayload):
    """Version 3: the finding is a decision, sealed; a finding against return sets the
    clear restriction `no_return` (R2). Version 2 recorded the child's own views with the
    determination. Versions 1 and 2 carried the finding in clear: refused.

    Bali Process guide (seed 003), "Children": "Children should be consulted in
    determining what is in their best interests ... the views of the child should be
    given due weight, in accordance with the age and maturity of the child" (CRC art. 12).
    """

    version: ClassVar[int] = 3
    decided_by_officer: str = officer()
    return_in_best_interests: bool = personal(
        DataCategory.DECISION, description="Whether return serves the child (R2)."
    )
    summary: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The determination."
    )
    child_heard: ChildHeard = personal(
        DataCategory.DECISION, description="Whether and how the child's views were sought."
    )
    child_views: str = personal(
        DataCategory.DECISION,
        default="",
        max_length=20000,
        description="The child's views, as the child gave them, and the weight given.",
    )


class RiskAssessed(EventPayload):
    """Version 2: the finding is a decision, sealed; a serious risk sets the clear
    restriction `no_origin_contact` (R4)."""

    version: ClassVar[int] = 2
    assessed_by_officer: str = officer()
    serious_risk: bool = personal(
        DataCategory.DECISION, description="Serious risk of harm on return (R4)."
    )
    findings: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The assessment."
    )


class ServicesDelivered(EventPayload):
    referral_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="Which referral.",
        why="the referring agency's node links the service to its referral; oversight "
        "counts services delivered",
    )
    service: ServiceKind = clear(
        description="What was delivered.",
        why="oversight counts services delivered by kind (statistics)",
    )
    details: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What was done."
    )
    medical_notes: str = personal(
        DataCategory.HEALTH, default="", max_length=5000, description="Clinical notes."
    )


class ComplicityCheck(StrEnum):
    """Whether the family traced was complicit in the trafficking."""

    FAMILY_CLEARED = "family-cleared"
    FAMILY_COMPLICIT = "family-complicit"
    INCONCLUSIVE = "inconclusive"
    NO_FAMILY_FOUND = "no-family-found"


class TracingOutcome(StrEnum):
    FAMILY_FOUND = "family-found"
    NOT_FOUND = "not-found"
    DECLINED_BY_PERSON = "declined-by-person"


class FamilyTraced(EventPayload):
    """Family tracing, with the check that the family was not complicit.

    Bali Process guide (seed 003), "Family tracing and reunification": "it is important
    to ensure that family members were not complicit in the trafficking of the victim.
    This is especially essential in the case of children and unaccompanied minors, to
    prevent children from going back to situations where they could face abuse, neglect,
    or possibly being re-trafficked." No return plan is agreed for a child before the
    family was checked (R2); for an adult the check is recorded when done. A return
    event: it may cross a border to or from the counterpart that traced the family.
    """

    complicity: ComplicityCheck = clear(
        description="The finding on the family's complicity.",
        why="R2: a child's return plan needs a family check; every node decides unopened.",
    )
    traced_by_officer: str = officer()
    outcome: TracingOutcome = personal(DataCategory.DECISION, description="Whether found.")
    family_details: str = personal(
        DataCategory.IDENTITY, default="", max_length=5000, description="Who was found."
    )
    findings: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The check's findings."
    )


class ReturnPlanningStarted(EventPayload):
    """Version 2: the country of return reveals nationality, so it is identity, sealed;
    the named counterpart routes the event."""

    version: ClassVar[int] = 2
    counterpart_agency: str = clear(
        pattern=AGENCY_PATTERN,
        description="Who receives.",
        why="the border gateway routes the plan to this counterpart, and every receiver "
        "admits it as a party of the case (R6)",
    )
    destination_country: str = personal(
        DataCategory.IDENTITY, pattern=r"^[A-Z]{2}$", description="Country of return."
    )
    full_name: str = personal(
        DataCategory.IDENTITY, max_length=200, description="For travel documents."
    )
    date_of_birth: date | None = personal(
        DataCategory.IDENTITY, default=None, description="For travel documents."
    )
    reception_needs: str = personal(
        DataCategory.HEALTH, default="", max_length=5000, description="Care on arrival."
    )


class ReturnPlanAgreed(EventPayload):
    agreed_by_officer: str = officer()
    plan: str = personal(
        DataCategory.SERVICE,
        default="",
        max_length=20000,
        description="Reception and reintegration.",
    )


class ReturnCompletedV1(EventPayload):
    voluntary: bool = clear(
        description="The person asked to return (R3).",
        why="R3: a return during the reflection period is checked against the person's "
        "request by the sender; oversight counts voluntary returns",
    )
    consent_id: str | None = clear(
        default=None,
        pattern=LOCAL_ID_PATTERN,
        description="R3: the recorded request.",
        why="R3: names the voluntary-return consent the sender's node checks",
    )
    travel_details: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="How and when."
    )


class ReturnCompleted(ReturnCompletedV1):
    """Version 2: the officer who confirms the return is on record (R7)."""

    version: ClassVar[int] = 2
    confirmed_by_officer: str = officer()


class ReintegrationMonitored(EventPayload):
    visit_number: int = clear(
        ge=1,
        description="Monitoring visit count.",
        why="the notifier sets the next monitoring deadline (R8)",
    )
    retaliation_risk: bool = clear(
        description="Signs of retaliation or re-trafficking.",
        why="A finding escalates at once (R8): the sender's notifier sees it unopened.",
    )
    notes: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What was found."
    )


class CooperationDecision(StrEnum):
    WILL_COOPERATE = "will-cooperate"
    DECLINES = "declines"
    UNDECIDED = "undecided"


class CooperationDecided(EventPayload):
    """The person's own decision whether to co-operate with criminal proceedings.

    Bali Process guide (seed 003), "Reflection and recovery period": the period lets the
    person "make a decision about whether or not to assist with an investigation or
    prosecution"; assistance never depends on it (R1). A justice event: never routed to
    the country of origin's side (R4); its substance is sealed as legal status.
    """

    recorded_by_officer: str = officer()
    decision: CooperationDecision = personal(
        DataCategory.LEGAL_STATUS, description="What the person decided."
    )
    conditions: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="On what terms."
    )


class WitnessProtectionDecision(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    ENDED = "ended"


class WitnessProtectionDecided(EventPayload):
    """Witness protection granted, refused or ended.

    Liu (seed 000), 3.4 (k) and recommendation (i): "Victims of human trafficking serving
    as witnesses shall receive full protection"; Bali Process guide (seed 003),
    "Post-trial": consider ongoing witness protection after a prosecution. A justice
    event: never to the country of origin's side (R4), sealed as legal status.
    """

    decided_by_officer: str = officer()
    decision: WitnessProtectionDecision = personal(
        DataCategory.LEGAL_STATUS, description="Granted, refused or ended."
    )
    measures: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="Which measures."
    )


class ProceedingsKind(StrEnum):
    CRIMINAL = "criminal"
    CIVIL = "civil"
    LABOUR = "labour"
    ADMINISTRATIVE = "administrative"


class ProceedingsOpened(EventPayload):
    """Proceedings against the traffickers in which the person is a victim or witness.

    Bali Process guide (seed 003), "Operationalizing political commitments": presumed
    victims are "informed orally and in writing, in a language they understand, of the
    future course of legal proceedings"; Liu (seed 000), 5 (j): they are accompanied to
    hearings. A justice event: never to the country of origin's side (R4).
    """

    proceedings_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="Unique per case.",
        why="Its conclusion and the person being told of it name it (R8 clock).",
    )
    recorded_by_officer: str = officer()
    kind: ProceedingsKind = personal(DataCategory.LEGAL_STATUS, description="What kind.")
    reference: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=200, description="Court or file."
    )
    charges: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="Charges brought."
    )
    next_steps: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="The course ahead."
    )


class ProceedingsOutcome(StrEnum):
    CONVICTED = "convicted"
    ACQUITTED = "acquitted"
    DISCONTINUED = "discontinued"
    OTHER = "other"


class ProceedingsConcluded(EventPayload):
    """The outcome of proceedings, which the person is owed.

    Bali Process guide (seed 003), "Post-trial": "Immediately following the trial ...
    provide victims with information about the outcome of the trial and its
    implications, including the sentence imposed on the trafficker, its duration and the
    trafficker's proposed release date, as well as any appeal possibilities." So the
    outcome opens a deadline by which `rights.explained` must record that the person was
    told (R8). A justice event: never to the country of origin's side (R4).
    """

    proceedings_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="The proceedings concluded.",
        why="Opens the clock to tell the person, closed by rights.explained naming it (R8).",
    )
    recorded_by_officer: str = officer()
    outcome: ProceedingsOutcome = personal(DataCategory.LEGAL_STATUS, description="Outcome.")
    sentence: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=2000, description="Sentence imposed."
    )
    release_date: date | None = personal(
        DataCategory.LEGAL_STATUS, default=None, description="The offender's proposed release."
    )
    appeal_possible: bool = personal(
        DataCategory.LEGAL_STATUS, default=False, description="Whether an appeal may follow."
    )


class NonPunishmentDecision(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


class NonPunishmentDecided(EventPayload):
    """Non-punishment for offences the person was compelled to commit.

    Liu (seed 000), 5 (k): "Commutation or exemption shall be granted for the legal
    consequences victims of human trafficking may face due to their illegal activities";
    Bali Process guide (seed 003): presumed victims are treated as victims "regardless of
    ... their involvement in criminal acts that are a consequence of their trafficking".
    A justice event: never to the country of origin's side (R4).
    """

    decided_by_officer: str = officer()
    decision: NonPunishmentDecision = personal(
        DataCategory.LEGAL_STATUS, description="Applied or refused."
    )
    offences: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=5000, description="Which offences."
    )


class InformationTopic(StrEnum):
    RIGHTS_AND_ASSISTANCE = "rights-and-assistance"
    REFLECTION_PERIOD = "reflection-period"
    IDENTIFICATION_DECISION = "identification-decision"
    LEGAL_PROCEEDINGS = "legal-proceedings"
    PROCEEDINGS_OUTCOME = "proceedings-outcome"
    COMPENSATION = "compensation"
    RETURN_OPTIONS = "return-options"
    COMPLAINTS_PROCEDURE = "complaints-procedure"


class ExplanationMode(StrEnum):
    ORALLY = "orally"
    IN_WRITING = "in-writing"
    ORALLY_AND_IN_WRITING = "orally-and-in-writing"


class RightsExplained(EventPayload):
    """What the person was told, when, in which language, how and by whom.

    Bali Process guide (seed 003), "Counselling and advice" (Protocol art. 6(3)(b)):
    victims "should be given detailed information about their rights", with interpreters
    where needed; "Operationalizing political commitments": informed "orally and in
    writing, in a language they understand". The OSCE/ODIHR handbook (seed 001) asks for
    guidance that gives trafficked persons "power over decisions that affect their lives".
    """

    topic: InformationTopic = clear(
        description="What was explained.",
        why="Closes the deadline to tell the person of a trial's outcome (R8); counted.",
    )
    proceedings_id: str | None = clear(
        default=None,
        pattern=LOCAL_ID_PATTERN,
        description="For the outcome of proceedings: which proceedings.",
        why="Names the proceedings whose information clock this stops (R8).",
    )
    explained_by_officer: str = officer(description="Who explained it (R7).")
    language: str = personal(
        DataCategory.SERVICE, min_length=2, max_length=35, description="BCP 47 language tag."
    )
    mode: ExplanationMode = personal(DataCategory.SERVICE, description="Orally, in writing.")
    interpreter: bool = personal(
        DataCategory.SERVICE, default=False, description="Whether an interpreter took part."
    )
    notes: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="Questions asked."
    )


class FeedbackKind(StrEnum):
    COMPLAINT = "complaint"
    FEEDBACK = "feedback"


class ComplaintLodged(EventPayload):
    """A complaint, or feedback, from the person about the assistance they receive.

    OSCE/ODIHR handbook (seed 002): an NRM "can be continually improved through
    monitoring and suggestions from all participants, including, of course, the victims
    themselves"; seed 001: "Internal monitoring, evaluation, and feedback should be a
    continuing part of NRM activities". A complaint gets an answer by the country's
    deadline, or it is escalated to the oversight body (R8).
    """

    complaint_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="Unique per case.",
        why="The answer names it, which stops the complaint clock (R8).",
    )
    kind: FeedbackKind = clear(
        description="A complaint (answered by a deadline) or feedback.",
        why="Only a complaint opens the answer deadline every node recomputes (R8).",
    )
    about_agency: str | None = clear(
        default=None,
        pattern=AGENCY_PATTERN,
        description="The agency complained about (none: the mechanism as a whole).",
        why="That agency must receive it and answer it; oversight counts complaints by it.",
    )
    recorded_by_officer: str = officer()
    statement: str = personal(
        DataCategory.SERVICE, max_length=20000, description="The complaint, as the person put it."
    )


class ComplaintOutcome(StrEnum):
    UPHELD = "upheld"
    PARTLY_UPHELD = "partly-upheld"
    NOT_UPHELD = "not-upheld"
    NOTED = "noted"


class ComplaintAnswered(EventPayload):
    """The answer to a complaint, by the agency complained about (or the competent
    authority): its outcome is a decision, readable by the oversight body."""

    complaint_id: str = clear(
        pattern=LOCAL_ID_PATTERN,
        description="The complaint answered.",
        why="Stops the complaint clock at the node that recorded it (R8).",
    )
    answered_by_officer: str = officer()
    outcome: ComplaintOutcome = personal(DataCategory.DECISION, description="The outcome.")
    answer: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The answer given."
    )


class CompensationForum(StrEnum):
    CRIMINAL = "criminal"
    CIVIL = "civil"
    STATE_FUND = "state-fund"
    LABOUR = "labour"


class CompensationClaimed(EventPayload):
    forum: CompensationForum = clear(
        description="Where.", why="oversight counts compensation claims by forum"
    )
    amount_claimed: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=50, description="Amount and currency."
    )


class CompensationOutcome(StrEnum):
    AWARDED = "awarded"
    PARTLY_AWARDED = "partly-awarded"
    REFUSED = "refused"


class CompensationDecided(EventPayload):
    """The decision on a compensation claim, as the forum gave it.

    Bali Process guide (seed 003), "Compensation": compensation "may include unpaid
    wages, legal fees, medical expenses, lost opportunities and compensation for pain
    and suffering"; Liu (seed 000), 3.2: general compensation laws "could potentially
    result in a denial of the request": the outcome is on record, not only the claim.
    """

    forum: CompensationForum = clear(
        description="The forum of the claim decided.",
        why="Every node checks a claim is open in that forum; oversight counts outcomes.",
    )
    recorded_by_officer: str = officer()
    outcome: CompensationOutcome = personal(
        DataCategory.LEGAL_STATUS, description="Awarded, partly or refused."
    )
    amount_awarded: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=50, description="Amount and currency."
    )
    reasoning: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=20000, description="Why."
    )


class CompensationPaid(EventPayload):
    """A payment (or instalment) of compensation decided in a forum."""

    forum: CompensationForum = clear(
        description="The forum whose decision is paid.",
        why="Every node checks the claim in that forum was decided.",
    )
    recorded_by_officer: str = officer()
    amount_paid: str = personal(
        DataCategory.LEGAL_STATUS, max_length=50, description="Amount and currency."
    )
    payer: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=200, description="Who paid."
    )


class ClosureReason(StrEnum):
    RETURNED = "returned"
    INTEGRATED = "integrated"
    LOST_CONTACT = "lost-contact"
    NOT_A_VICTIM = "not-a-victim"
    OTHER = "other"


class CaseClosedV1(EventPayload):
    reason_code: Literal["returned", "integrated", "lost-contact", "not-a-victim", "other"] = clear(
        description="Why the case closed.",
        why="every node computes from it, with its policy, when the case's personal data "
        "must be erased (retention); oversight counts closures",
    )


class CaseClosed(EventPayload):
    """Version 2: closing a case (above all as "not a victim") is a decision, signed by
    the officer who made it (R7)."""

    version: ClassVar[int] = 2
    reason_code: ClosureReason = clear(
        description="Why the case closed.",
        why="every node computes from it, with its policy, when the case's personal data "
        "must be erased (retention); not-a-victim needs a conclusive decision and no open "
        "review: nodes check it; oversight counts closures",
    )
    decided_by_officer: str = officer()


class CaseLinked(EventPayload):
    """This case is the same person as an earlier, closed case: re-trafficking.

    Bali Process guide (seed 003), "Return and Reintegration": returned victims "should
    be monitored to ensure that they do not face any retaliation from traffickers or
    being re-trafficked". A person re-trafficked after their case closed gets a new case
    (the old one stays closed, and erased if it was); the competent authority links the
    two on a recorded legal basis, so the history can be seen and counted without
    reopening or restoring anything.
    """

    earlier_case: str = clear(
        pattern=r"^case-[a-z0-9]{8,64}$",
        description="The pseudonym of the earlier, closed case.",
        why="The authority's node checks it holds that case, closed; oversight audits links.",
    )
    linked_by_officer: str = officer()
    legal_basis: str = personal(
        DataCategory.DECISION,
        min_length=3,
        max_length=2000,
        description="The lawful ground for linking the two records.",
    )


class ErasureOrdered(EventPayload):
    """Every node destroys the case's keys; envelopes and the log stay intact.

    Version 2: the legal basis is a code. There is no explanation field: whatever an
    order said in a sealed field would be erased with the case; the code, the officer
    and the order's time are the record."""

    version: ClassVar[int] = 2
    legal_basis: ErasureBasis = clear(
        description="Lawful ground, from a closed list.",
        why="oversight and every node see on what ground the case's data was destroyed "
        "(listed among executed erasures and in the disclosure record)",
    )
    ordered_by_officer: str = officer(
        description="The officer who ordered it (R7); for an order issued when the "
        "retention period ran out, the node's own system id."
    )


class EscalationKind(StrEnum):
    """Every deadline that escalates when it passes unanswered (R8), by name. The list
    grows in place: a node that does not know a kind refuses it (CONTRACT)."""

    REFERRAL_ANSWER = "referral-answer"
    RE_REFERRAL = "re-referral"
    REASONABLE_GROUNDS = "reasonable-grounds"
    REFLECTION_ENDING = "reflection-ending"
    POST_RETURN_MONITORING = "post-return-monitoring"
    GUARDIAN_APPOINTMENT = "guardian-appointment"
    DECISION_REVIEW = "decision-review"
    COMPLAINT_ANSWER = "complaint-answer"
    RESIDENCE_RENEWAL = "residence-renewal"
    OUTCOME_INFORMATION = "outcome-information"
    RETALIATION_FOUND = "retaliation-found"


class CaseEscalated(EventPayload):
    """R8: a deadline passed; raised by a node's notifier, audited like every event."""

    deadline: EscalationKind = clear(
        description="Which deadline.",
        why="R8: the competent authority sees which deadline passed; oversight counts "
        "escalations by kind",
    )
    about_event_id: str = clear(
        pattern=EVENT_ID_PATTERN,
        description="The event that set it.",
        why="R8: the escalation names the event whose deadline passed, once per deadline",
    )
    due: datetime = clear(
        description="When it was due (RFC 3339).",
        why="R8: the competent authority sees how late the answer is",
    )


#: type -> the payload model of its latest version.
CATALOGUE: dict[str, type[EventPayload]] = {
    "case.screened": CaseScreened,
    "referral.requested": ReferralRequested,
    "referral.accepted": ReferralAccepted,
    "referral.declined": ReferralDeclined,
    "consent.recorded": ConsentRecorded,
    "consent.withdrawn": ConsentWithdrawn,
    "identification.decided": IdentificationDecided,
    "identification.review-requested": ReviewRequested,
    "reflection.started": ReflectionStarted,
    "reflection.extended": ReflectionExtended,
    "reflection.ended": ReflectionEnded,
    "residence.granted": ResidenceGranted,
    "residence.renewed": ResidenceRenewed,
    "residence.ended": ResidenceEnded,
    "asylum.lodged": AsylumLodged,
    "guardian.appointed": GuardianAppointed,
    "age.assessed": AgeAssessed,
    "best-interests.determined": BestInterestsDetermined,
    "risk.assessed": RiskAssessed,
    "services.delivered": ServicesDelivered,
    "family.traced": FamilyTraced,
    "return.planning-started": ReturnPlanningStarted,
    "return.plan-agreed": ReturnPlanAgreed,
    "return.completed": ReturnCompleted,
    "reintegration.monitored": ReintegrationMonitored,
    "cooperation.decided": CooperationDecided,
    "witness-protection.decided": WitnessProtectionDecided,
    "proceedings.opened": ProceedingsOpened,
    "proceedings.concluded": ProceedingsConcluded,
    "non-punishment.decided": NonPunishmentDecided,
    "rights.explained": RightsExplained,
    "complaint.lodged": ComplaintLodged,
    "complaint.answered": ComplaintAnswered,
    "compensation.claimed": CompensationClaimed,
    "compensation.decided": CompensationDecided,
    "compensation.paid": CompensationPaid,
    "case.closed": CaseClosed,
    "case.linked": CaseLinked,
    "case.erasure-ordered": ErasureOrdered,
    "case.escalated": CaseEscalated,
}

#: (type, version) of every older version still accepted, with its model.
OLDER_VERSIONS: dict[tuple[str, int], type[EventPayload]] = {
    ("case.screened", 1): CaseScreenedV1,
    ("referral.declined", 1): ReferralDeclinedV1,
    ("referral.declined", 2): ReferralDeclinedV2,
    ("identification.decided", 1): IdentificationDecidedV1,
    ("reflection.ended", 1): ReflectionEndedV1,
    ("residence.granted", 1): ResidenceGrantedV1,
    ("return.completed", 1): ReturnCompletedV1,
    ("case.closed", 1): CaseClosedV1,
}

#: R7: every decision event type and the clear field naming the officer who made it.
#: Where the latest version requires the field, a receiving node refuses an event of an
#: older version that names no officer.
DECISION_OFFICERS: Mapping[str, str] = {
    "referral.accepted": "answered_by_officer",
    "referral.declined": "answered_by_officer",
    "identification.decided": "decided_by_officer",
    "reflection.started": "decided_by_officer",
    "reflection.extended": "decided_by_officer",
    "reflection.ended": "decided_by_officer",
    "residence.granted": "decided_by_officer",
    "residence.renewed": "decided_by_officer",
    "residence.ended": "decided_by_officer",
    "guardian.appointed": "decided_by_officer",
    "age.assessed": "assessed_by_officer",
    "best-interests.determined": "decided_by_officer",
    "risk.assessed": "assessed_by_officer",
    "family.traced": "traced_by_officer",
    "return.plan-agreed": "agreed_by_officer",
    "return.completed": "confirmed_by_officer",
    "cooperation.decided": "recorded_by_officer",
    "witness-protection.decided": "decided_by_officer",
    "proceedings.concluded": "recorded_by_officer",
    "non-punishment.decided": "decided_by_officer",
    "complaint.answered": "answered_by_officer",
    "compensation.decided": "recorded_by_officer",
    "case.closed": "decided_by_officer",
    "case.linked": "linked_by_officer",
    "case.erasure-ordered": "ordered_by_officer",
}


def officer_required(event_type: str) -> str | None:
    """The officer field a decision of `event_type` must fill (R7), if its latest
    version requires one."""
    name = DECISION_OFFICERS.get(event_type)
    if name is None or not CATALOGUE[event_type].model_fields[name].is_required():
        return None
    return name


def latest_version(event_type: str) -> int:
    return CATALOGUE[event_type].version


def categories_of(model: type[BaseModel]) -> dict[str, DataCategory]:
    """field name -> data category, read from the field's tag."""
    out: dict[str, DataCategory] = {}
    for name, info in model.model_fields.items():
        out[name] = _category(info)
    return out


def _category(info: FieldInfo) -> DataCategory:
    extra = info.json_schema_extra
    if not isinstance(extra, dict) or CATEGORY_KEY not in extra:
        raise TypeError("every payload field must carry a data category")
    return DataCategory(str(extra[CATEGORY_KEY]))


def split_by_category(payload: EventPayload) -> dict[DataCategory, dict[str, Any]]:
    """The payload's JSON-ready values grouped by data category (absent defaults kept)."""
    data = payload.model_dump(mode="json")
    grouped: dict[DataCategory, dict[str, Any]] = {}
    for name, cat in categories_of(type(payload)).items():
        grouped.setdefault(cat, {})[name] = data[name]
    return grouped
