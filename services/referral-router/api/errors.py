"""The node's error table: every exception a request can raise, and the problem it becomes.

400 malformed JSON; 401/403 authentication; 404 unknown case or route; 409 a rule or a
concurrent write (with the rule); 422 schema violations (with the fields), unknown
agencies (R6) and reused idempotency keys; 503 while the node's directory is older than
its maximum age (it acts on nothing it cannot check). Bad input never gets a 500. The bodies are
the bus's one error shape, `contracts.problems` (docs/errors.md); the gateway's app
answers through this table too.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from contracts.directory import DirectoryError
from contracts.problems import (
    Problem,
    Translations,
    framework_translations,
    install,
    openapi_responses,
    problem,
    problem_of,
)
from referral_router.audit.log import AuditLogError
from referral_router.sending.problems import SUBMISSION_PROBLEMS

#: The error responses every route may document.
ERROR_RESPONSES = openapi_responses(400, 401, 403, 404, 409, 422, 503)


def _audit_problem(exc: AuditLogError) -> Problem:
    code = {404: "not-found", 422: "out-of-range"}.get(exc.status, "bad-request")
    return problem(code, str(exc))


TRANSLATIONS: Translations = {
    **framework_translations(RequestValidationError, HTTPException),
    **SUBMISSION_PROBLEMS,
    AuditLogError: _audit_problem,
    DirectoryError: lambda e: problem("directory-too-old", str(e), rule="DIRECTORY"),
}


def problem_of_exception(exc: BaseException) -> Problem:
    """The problem a request that raised `exc` is answered with (one of a batch's events)."""
    return problem_of(exc, TRANSLATIONS)


def install_error_handlers(app: FastAPI) -> None:
    """Every error of a node's or a gateway's `app` answered as a problem."""
    install(app, TRANSLATIONS, JSONResponse)
