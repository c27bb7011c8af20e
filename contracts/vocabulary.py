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
    """What a referral asks for, and what a service provider offers.

    From the seeds: the OSCE/ODIHR handbook's referral system (seed 001: shelter, medical,
    social and psychological support, legal services, identification documents,
    voluntary repatriation or resettlement) and the Bali Process guide (seed 003,
    "Initial protection and direct assistance": accommodation, food and clothing,
    counselling and advice, interpreters, family tracing; "Asylum seekers and refugees":
    referral to the asylum procedure; "Children": education; "Return and
    Reintegration": documents for return, reintegration support; "Protection through
    the criminal justice system": accompaniment before, during and after proceedings).
    The list grows in place: a node that does not know a new code refuses it (CONTRACT),
    so nodes are upgraded before agencies use it.
    """

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
    COUNSELLING = "counselling"
    MATERIAL_ASSISTANCE = "material-assistance"  # food, clothing, subsistence
    EDUCATION = "education"
    FAMILY_TRACING = "family-tracing"
    ASYLUM_REFERRAL = "asylum-referral"  # help to lodge an asylum claim
    TRAVEL_DOCUMENTS = "travel-documents"  # identity and travel documents for return
    COURT_ACCOMPANIMENT = "court-accompaniment"  # before, during and after proceedings
    REINTEGRATION_SUPPORT = "reintegration-support"  # livelihood, skills, small loans
