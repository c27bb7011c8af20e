"""Every error a node, the registry or the notifier answers, as an exception to catch.

Each service answers an error with a problem body (`error`: a stable code, `detail`:
what went wrong and what to do next, `rule` when a rule of the bus refused, `errors`:
the fields at fault). The class says what kind of mistake it was; `detail` is the text
to show a person.
"""

from __future__ import annotations

from typing import Any

import httpx


class NrmError(Exception):
    """An error answer (or no answer at all) from the bus."""

    status: int | None = None

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error: str = "",
        rule: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {error}: {detail}" if status else detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.rule = rule
        self.errors = errors or []
        self.body = body


class BadRequest(NrmError):
    """400: the body could not be read (not JSON, not UTF-8)."""


class Unauthenticated(NrmError):
    """401: no valid token or proof; `detail` says which check failed."""


class Forbidden(NrmError):
    """403: known, but not allowed (another agency's node, a suspended agency)."""


class NotFound(NrmError):
    """404: no such case at this node (or no such resource)."""


class RuleViolation(NrmError):
    """409: a rule of the bus refused the event; `rule` names it (R1-R10, LIFECYCLE)."""


class ConcurrentWrite(RuleViolation):
    """409: another event was appended to the case at the same moment: read, then retry."""


class InvalidRequest(NrmError):
    """422: the request is well-formed but cannot be carried out as asked."""


class SchemaViolation(InvalidRequest):
    """422: a field is missing or wrong; `errors` holds each field's path and message."""


class UnknownAgency(InvalidRequest):
    """422: a recipient is not a registered, active agency (R6)."""


class IdempotencyKeyReused(InvalidRequest):
    """422: this Idempotency-Key was used before for a different request."""


class Unavailable(NrmError):
    """The service did not answer, or kept answering 429/5xx until the retries ran out."""


_BY_CODE: dict[str, type[NrmError]] = {
    "concurrent-write": ConcurrentWrite,
    "schema-violation": SchemaViolation,
    "unknown-agency": UnknownAgency,
    "idempotency-key-reused": IdempotencyKeyReused,
}
_BY_STATUS: dict[int, type[NrmError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: RuleViolation,
    422: InvalidRequest,
    429: Unavailable,
}


def error_from(response: httpx.Response) -> NrmError:
    """The exception for an error response, read from its problem body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    problem = body if isinstance(body, dict) else {}
    code = str(problem.get("error") or "")
    detail = problem.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase
    status = response.status_code
    cls = (
        _BY_CODE.get(code) or _BY_STATUS.get(status) or (Unavailable if status >= 500 else NrmError)
    )
    errors = problem.get("errors")
    return cls(
        detail,
        status=status,
        error=code,
        rule=problem.get("rule") if isinstance(problem.get("rule"), str) else None,
        errors=errors if isinstance(errors, list) else None,
        body=body,
    )
