"""What each refusal of `AgencyNode.submit` becomes in the bus's one error shape
(`contracts.problems`): the API answers it as problem+json and the web console shows the
very same title, detail and rule, so both doors refuse in the same words."""

from __future__ import annotations

from eventsourcing.persistence import IntegrityError

from contracts.problems import Translations, problem
from referral_router.rules.lifecycle import RuleViolation, UnknownCase
from referral_router.rules.roster import UnknownAgency
from referral_router.sending.intake import Overloaded
from referral_router.sending.node import IdempotencyConflict, InvalidSubmission

SUBMISSION_PROBLEMS: Translations = {
    RuleViolation: lambda e: problem("rule-violation", e.message, rule=e.rule),
    UnknownCase: lambda e: problem("unknown-case", f"no case {e} at this node"),
    UnknownAgency: lambda e: problem("unknown-agency", e.message, rule=e.rule),
    IdempotencyConflict: lambda e: problem("idempotency-key-reused", str(e)),
    IntegrityError: lambda _: problem(
        "concurrent-write", "another event was appended to this case at the same time"
    ),
    InvalidSubmission: lambda e: problem("invalid-request", str(e)),
    Overloaded: lambda e: problem("overloaded", str(e)),
}
