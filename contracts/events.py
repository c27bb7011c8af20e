"""The event catalogue: one typed payload per lifecycle event of docs/domain.md.

Every field carries its data category (rule R5). Fields in the `operational` category
travel in clear in the envelope and are all that routing and rules ever read; every other
field is sealed per category and opened only by entitled recipients.

Clear is the exception: a clear field says why it is clear (`why=`: who needs it in
clear to decide what, `contracts.justification`) and is never free text. Facts the
who-reads-what table denies some recipients (legal status, decisions, nationality) are
sealed even when rules depend on them: what travels in clear instead is the routing
restriction they set (`contracts.restrictions`), never the fact behind it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from contracts.justification import justified
from contracts.legal_basis import ErasureBasis, OverrideBasis
from contracts.vocabulary import DataCategory, ServiceKind

CATEGORY_KEY = "x-category"

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
    FORCED_LABOUR = "forced-labour"
    SEXUAL_EXPLOITATION = "sexual-exploitation"
    DOMESTIC_SERVITUDE = "domestic-servitude"
    FORCED_MARRIAGE = "forced-marriage"
    ORGAN_REMOVAL = "organ-removal"
    FORCED_BEGGING_OR_CRIME = "forced-begging-or-crime"


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


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form: ExploitationForm
    strength: Strength
    observation: str = Field(max_length=2000, description="What was observed.")


class EventPayload(BaseModel):
    """Base of every payload: strict, so an unknown field is a schema violation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[int] = 1


class CaseScreened(EventPayload):
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
    """Version 2: the override's legal basis is a code, its explanation sealed."""

    version: ClassVar[int] = 2
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


class ReferralDeclined(EventPayload):
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


class IdentificationDecided(EventPayload):
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


class ReflectionEnded(EventPayload):
    reason_code: Literal["expired", "cooperation-decided", "voluntary-return", "other"] = clear(
        description="Why the period ended.",
        why="R3: nodes and the notifier close the reflection deadline; oversight counts "
        "how periods end",
    )


class ResidenceGranted(EventPayload):
    decided_by_officer: str = officer()
    permit_type: str = personal(
        DataCategory.LEGAL_STATUS, max_length=200, description="Kind of permit."
    )
    valid_until: date = personal(DataCategory.LEGAL_STATUS, description="End of validity.")


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


class BestInterestsDetermined(EventPayload):
    """Version 2: the finding is a decision, sealed; a finding against return sets the
    clear restriction `no_return` (R2)."""

    version: ClassVar[int] = 2
    decided_by_officer: str = officer()
    return_in_best_interests: bool = personal(
        DataCategory.DECISION, description="Whether return serves the child (R2)."
    )
    summary: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The determination."
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


class ReturnCompleted(EventPayload):
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


class ReintegrationMonitored(EventPayload):
    visit_number: int = clear(
        ge=1,
        description="Monitoring visit count.",
        why="the notifier sets the next monitoring deadline (R8)",
    )
    retaliation_risk: bool = clear(
        description="Signs of retaliation or re-trafficking.",
        why="oversight counts returns where retaliation or re-trafficking was found",
    )
    notes: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What was found."
    )


class CompensationClaimed(EventPayload):
    forum: Literal["criminal", "civil", "state-fund", "labour"] = clear(
        description="Where.", why="oversight counts compensation claims by forum"
    )
    amount_claimed: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=50, description="Amount and currency."
    )


class CloseReason(StrEnum):
    """Why a case closed: also which retention period applies (the country's policy)."""

    RETURNED = "returned"
    INTEGRATED = "integrated"
    LOST_CONTACT = "lost-contact"
    NOT_A_VICTIM = "not-a-victim"
    OTHER = "other"


class CaseClosed(EventPayload):
    reason_code: CloseReason = clear(
        description="Why the case closed.",
        why="every node computes from it, with its policy, when the case's personal data "
        "must be erased (retention); oversight counts closures",
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


class CaseEscalated(EventPayload):
    """R8: a deadline passed; raised by a node's notifier, audited like every event."""

    deadline: Literal[
        "referral-answer", "reasonable-grounds", "reflection-ending", "post-return-monitoring"
    ] = clear(
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
    "reflection.started": ReflectionStarted,
    "reflection.extended": ReflectionExtended,
    "reflection.ended": ReflectionEnded,
    "residence.granted": ResidenceGranted,
    "asylum.lodged": AsylumLodged,
    "guardian.appointed": GuardianAppointed,
    "best-interests.determined": BestInterestsDetermined,
    "risk.assessed": RiskAssessed,
    "services.delivered": ServicesDelivered,
    "return.planning-started": ReturnPlanningStarted,
    "return.plan-agreed": ReturnPlanAgreed,
    "return.completed": ReturnCompleted,
    "reintegration.monitored": ReintegrationMonitored,
    "compensation.claimed": CompensationClaimed,
    "case.closed": CaseClosed,
    "case.erasure-ordered": ErasureOrdered,
    "case.escalated": CaseEscalated,
}

#: (type, version) of every older version still accepted, with its model.
OLDER_VERSIONS: dict[tuple[str, int], type[EventPayload]] = {
    ("referral.declined", 1): ReferralDeclinedV1,
}


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
