"""Legal bases as codes: what may be written in clear where the law is invoked.

An override of consent (R9) and an erasure order name their legal ground in clear, so
that every node, oversight body and the person's disclosure record can see on what
ground data moved or was destroyed. Free text there would carry whatever an officer
typed (a name, a diagnosis) to every reader, so the ground is a code from these closed
lists; an explanation, where one is needed, is a sealed field of its event.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class OverrideBasis(StrEnum):
    """R9: why personal data may go to a recipient without the person's consent."""

    CHILD_PROTECTION = "child-protection"
    VITAL_INTERESTS = "vital-interests"
    LEGAL_OBLIGATION = "legal-obligation"
    PUBLIC_TASK = "public-task"
    CRIMINAL_PROCEEDINGS = "criminal-proceedings"


class ErasureBasis(StrEnum):
    """Why a case's personal data is erased (its keys destroyed)."""

    RETENTION_EXPIRED = "retention-expired"
    ERASURE_REQUEST = "erasure-request"
    UNLAWFUL_PROCESSING = "unlawful-processing"
    COURT_ORDER = "court-order"


#: code -> what it means, for the docs and the console.
MEANINGS: Mapping[str, str] = {
    OverrideBasis.CHILD_PROTECTION: "a statutory duty to protect a presumed child",
    OverrideBasis.VITAL_INTERESTS: "the person's life or health is at risk and they cannot "
    "consent (GDPR art. 6(1)(d), 9(2)(c))",
    OverrideBasis.LEGAL_OBLIGATION: "a law obliges the agency to share (GDPR art. 6(1)(c))",
    OverrideBasis.PUBLIC_TASK: "a task the law gives the agency in the referral mechanism "
    "(GDPR art. 6(1)(e))",
    OverrideBasis.CRIMINAL_PROCEEDINGS: "an order of a court or prosecutor in criminal proceedings",
    ErasureBasis.RETENTION_EXPIRED: "the country's retention period after the case closed "
    "has passed (storage limitation, GDPR art. 5(1)(e))",
    ErasureBasis.ERASURE_REQUEST: "the person asked for erasure (GDPR art. 17)",
    ErasureBasis.UNLAWFUL_PROCESSING: "the data was processed unlawfully (GDPR art. 17(1)(d))",
    ErasureBasis.COURT_ORDER: "a court ordered erasure",
}
