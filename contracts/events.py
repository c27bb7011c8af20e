"""The event catalogue: one typed payload per lifecycle event of docs/domain.md.

Every field carries its data category (rule R5). Fields in the `operational` category
travel in clear in the envelope and are all that routing and rules ever read; every other
field is sealed per category and opened only by entitled recipients.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from contracts.vocabulary import DataCategory, ServiceKind

CATEGORY_KEY = "x-category"


def tagged(category: DataCategory, *, description: str, **kwargs: Any) -> Any:
    """A pydantic Field that records its data category in the JSON Schema."""
    return Field(description=description, json_schema_extra={CATEGORY_KEY: str(category)}, **kwargs)


def clear(*, description: str, **kwargs: Any) -> Any:
    return tagged(DataCategory.OPERATIONAL, description=description, **kwargs)


def personal(category: DataCategory, *, description: str, **kwargs: Any) -> Any:
    """A sealed field: only recipients entitled to `category` can open it."""
    if category is DataCategory.OPERATIONAL:
        raise ValueError("use clear() for operational fields")
    return tagged(category, description=description, **kwargs)


OFFICER_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


def officer(
    *, description: str = "The officer who did it (R7: accountability).", **kwargs: Any
) -> Any:
    """An officer's id (badge number, not a name): operational, so oversight sees who decided."""
    return clear(
        min_length=1, max_length=64, pattern=OFFICER_ID_PATTERN, description=description, **kwargs
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
        min_length=1, description="Forms of exploitation indicated (for statistics)."
    )
    age_status: AgeStatus = clear(description="Unknown or disputed age means a presumed child.")
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
    """R9: sharing without consent needs a recorded legal basis; the override is audited."""

    model_config = ConfigDict(extra="forbid")
    legal_basis: str = Field(min_length=3, max_length=500)
    authorised_by_officer: str = Field(min_length=1, max_length=64)


class ReferralRequested(EventPayload):
    referral_id: str = clear(min_length=1, max_length=64, description="Unique per case.")
    to_agency: str = clear(min_length=1, max_length=64, description="The agency asked.")
    service: ServiceKind = clear(description="What is asked for.")
    urgent: bool = clear(default=False, description="Needs an answer within the urgent SLA.")
    consent_id: str | None = clear(default=None, description="R9: the consent relied on.")
    consent_override: ConsentOverride | None = clear(
        default=None, description="R9: legal basis when sharing without consent."
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


class ReferralAccepted(EventPayload):
    referral_id: str = clear(min_length=1, max_length=64, description="The referral answered.")
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


class ReferralDeclined(EventPayload):
    """Version 2: `reason_code` is a closed list so declines can be counted and re-routed."""

    version: ClassVar[int] = 2
    referral_id: str = clear(min_length=1, max_length=64, description="The referral answered.")
    reason_code: DeclineReason = clear(description="Why, from a closed list (v2).")
    answered_by_officer: str | None = officer(
        default=None, description="The officer who declined (R7); optional for systems."
    )
    reason: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="Free-text explanation."
    )


class ReferralDeclinedV1(EventPayload):
    """Version 1 had only free text; upcast to v2 with reason_code 'other'."""

    referral_id: str = clear(min_length=1, max_length=64, description="The referral answered.")
    reason: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="Free-text explanation."
    )


class ConsentRecorded(EventPayload):
    consent_id: str = clear(min_length=1, max_length=64, description="Referenced by referrals.")
    recipients: list[str] = clear(
        min_length=1, description="Agencies the person agreed to share with."
    )
    categories: list[DataCategory] = clear(min_length=1, description="What may be shared.")
    voluntary_return: bool = clear(default=False, description="The person asks to return (R3).")
    recorded_by_officer: str = officer()
    statement: str = personal(
        DataCategory.IDENTITY, default="", max_length=5000, description="The consent as worded."
    )


class ConsentWithdrawn(EventPayload):
    consent_id: str = clear(min_length=1, max_length=64, description="The consent withdrawn.")


class IdentificationStage(StrEnum):
    REASONABLE_GROUNDS = "reasonable-grounds"
    CONCLUSIVE = "conclusive"


class Outcome(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


class IdentificationDecided(EventPayload):
    stage: IdentificationStage = clear(description="Reasonable grounds first, then conclusive.")
    decided_by_officer: str = officer()
    outcome: Outcome = personal(DataCategory.DECISION, description="Positive or negative.")
    reasoning: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="Why."
    )


class ReflectionStarted(EventPayload):
    """The length comes from the country's policy file, never from the caller."""

    decided_by_officer: str = officer()


class ReflectionExtended(EventPayload):
    extra_days: int = clear(ge=1, le=365, description="Bounded by the policy maximum.")
    decided_by_officer: str = officer()
    reason: str = personal(DataCategory.DECISION, default="", max_length=2000, description="Why.")


class ReflectionEnded(EventPayload):
    reason_code: Literal["expired", "cooperation-decided", "voluntary-return", "other"] = clear(
        description="Why the period ended."
    )


class ResidenceGranted(EventPayload):
    decided_by_officer: str = officer()
    permit_type: str = personal(
        DataCategory.LEGAL_STATUS, max_length=200, description="Kind of permit."
    )
    valid_until: date = personal(DataCategory.LEGAL_STATUS, description="End of validity.")


class AsylumLodged(EventPayload):
    """From here on nothing of the case reaches the consulate (R4)."""

    refugee: bool = clear(default=False, description="Refugee status already recognised.")
    claim_reference: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=100, description="Asylum file number."
    )


class GuardianAppointed(EventPayload):
    guardian_agency: str = clear(min_length=1, max_length=64, description="Responsible agency.")
    decided_by_officer: str = officer()
    guardian_name: str = personal(
        DataCategory.IDENTITY, max_length=200, description="The appointed guardian."
    )


class BestInterestsDetermined(EventPayload):
    decided_by_officer: str = officer()
    return_in_best_interests: bool = clear(description="Whether return serves the child (R2).")
    summary: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The determination."
    )


class RiskAssessed(EventPayload):
    serious_risk: bool = clear(description="Serious risk of harm on return (R4).")
    assessed_by_officer: str = officer()
    findings: str = personal(
        DataCategory.DECISION, default="", max_length=20000, description="The assessment."
    )


class ServicesDelivered(EventPayload):
    referral_id: str = clear(min_length=1, max_length=64, description="Which referral.")
    service: ServiceKind = clear(description="What was delivered.")
    details: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What was done."
    )
    medical_notes: str = personal(
        DataCategory.HEALTH, default="", max_length=5000, description="Clinical notes."
    )


class ReturnPlanningStarted(EventPayload):
    destination_country: str = clear(pattern=r"^[A-Z]{2}$", description="Country of return.")
    counterpart_agency: str = clear(min_length=1, max_length=64, description="Who receives.")
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
    voluntary: bool = clear(description="The person asked to return (R3).")
    consent_id: str | None = clear(default=None, description="R3: the recorded request.")
    travel_details: str = personal(
        DataCategory.SERVICE, default="", max_length=2000, description="How and when."
    )


class ReintegrationMonitored(EventPayload):
    visit_number: int = clear(ge=1, description="Monitoring visit count.")
    retaliation_risk: bool = clear(description="Signs of retaliation or re-trafficking.")
    notes: str = personal(
        DataCategory.SERVICE, default="", max_length=5000, description="What was found."
    )


class CompensationClaimed(EventPayload):
    forum: Literal["criminal", "civil", "state-fund", "labour"] = clear(description="Where.")
    amount_claimed: str = personal(
        DataCategory.LEGAL_STATUS, default="", max_length=50, description="Amount and currency."
    )


class CaseClosed(EventPayload):
    reason_code: Literal["returned", "integrated", "lost-contact", "not-a-victim", "other"] = clear(
        description="Why the case closed."
    )


class ErasureOrdered(EventPayload):
    """Every node destroys the case's keys; envelopes and the log stay intact."""

    legal_basis: str = clear(min_length=3, max_length=500, description="Lawful ground.")
    ordered_by_officer: str = officer()


class CaseEscalated(EventPayload):
    """R8: a deadline passed; raised by a node's notifier, audited like every event."""

    deadline: Literal[
        "referral-answer", "reasonable-grounds", "reflection-ending", "post-return-monitoring"
    ] = clear(description="Which deadline.")
    about_event_id: str = clear(min_length=1, max_length=64, description="The event that set it.")
    due: str = clear(description="When it was due (RFC 3339).")


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
