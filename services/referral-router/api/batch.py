"""A batch request's events as the intake takes them: each checked on its own, so one
malformed event is refused alone (422) and the rest of the batch goes on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contracts.events import CATALOGUE
from contracts.node_api import BatchEvent
from contracts.problems import ProblemError, problem, validation_problem
from referral_router.sending.intake import BatchItem
from referral_router.sending.node import Submission


def batch_item(raw: dict[str, Any]) -> BatchItem | ProblemError:
    """A batch's event as the intake takes it, or the problem that refuses it alone."""
    try:
        event = BatchEvent.model_validate(raw)
        model = CATALOGUE.get(event.type)
        if model is None:
            return ProblemError(problem("schema-violation", f"unknown event type {event.type!r}"))
        payload = model.model_validate(event.payload)
    except ValidationError as exc:
        return ProblemError(validation_problem(exc.errors()))
    opens = event.type == "case.screened"
    if opens and (event.case is not None or event.case_of is not None):
        return ProblemError(
            problem("invalid-request", "case.screened opens a new case: no case or case_of")
        )
    if not opens and (event.case is None) == (event.case_of is None):
        return ProblemError(
            problem("invalid-request", f"{event.type} needs exactly one of case and case_of")
        )
    sub = Submission(event.type, payload, tuple(event.recipients), event.case)
    return BatchItem(sub, event.idempotency_key, event.case_of)
