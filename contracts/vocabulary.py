"""The words of the domain (docs/domain.md): agency roles, data categories, countries."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What part an agency plays in the referral mechanism."""

    FIRST_RESPONDER = "first-responder"
    COMPETENT_AUTHORITY = "competent-authority"
    SERVICE_PROVIDER = "service-provider"
    CHILD_PROTECTION = "child-protection"
    IMMIGRATION = "immigration"
    ASYLUM = "asylum"
    LAW_ENFORCEMENT = "law-enforcement"
    CONSULATE = "consulate"
    COUNTERPART = "counterpart"
    OVERSIGHT = "oversight"
    NATIONAL_COORDINATOR = "national-coordinator"


class DataCategory(StrEnum):
    """The need-to-know class of a field (rule R5).

    `operational` travels in clear so that routing and rules never need personal data;
    every other category is sealed and opened only by entitled recipients.
    """

    OPERATIONAL = "operational"
    IDENTITY = "identity"
    LOCATION = "location"
    HEALTH = "health"
    EXPLOITATION_ACCOUNT = "exploitation-account"
    LEGAL_STATUS = "legal-status"
    DECISION = "decision"
    SERVICE = "service"


PERSONAL_CATEGORIES: tuple[DataCategory, ...] = tuple(
    c for c in DataCategory if c is not DataCategory.OPERATIONAL
)


class ServiceKind(StrEnum):
    """What a referral asks for, and what a service provider offers."""

    SHELTER = "shelter"
    MEDICAL = "medical"
    PSYCHOLOGICAL = "psychological"
    LEGAL_AID = "legal-aid"
    INTERPRETATION = "interpretation"
    GUARDIANSHIP = "guardianship"
    IDENTIFICATION = "identification"
    PROTECTION = "protection"
    RETURN_ASSISTANCE = "return-assistance"
    INITIAL_ASSISTANCE = "initial-assistance"
