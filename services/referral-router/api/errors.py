"""The node's error table: every exception a request can raise, and the 4xx it becomes.

400 malformed JSON, 401/403 authentication, 404 unknown case, 409 a rule or a concurrent
write (with the rule id), 422 schema violations (with the field path), unknown agencies
(R6) and reused idempotency keys. Bad input never gets a 500.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from referral_router.api.bodies import Problem
from referral_router.rules.lifecycle import RuleViolation, UnknownCase
from referral_router.rules.roster import UnknownAgency
from referral_router.sending.node import IdempotencyConflict, InvalidSubmission

#: The error responses every route may document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422)
}


def problem(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    body = Problem(error=error, detail=detail, **extra).model_dump(exclude_none=True)
    return JSONResponse(status_code=status, content=body)


class NotAuthenticated(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "malformed-json", "the body is not valid JSON", errors=errors)
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "body"
        return problem(
            422, "schema-violation", f"{where}: {errors[0]['msg'] if errors else ''}", errors=errors
        )

    @app.exception_handler(NotAuthenticated)
    async def _auth(request: Request, exc: NotAuthenticated) -> JSONResponse:
        code = "unauthenticated" if exc.status == 401 else "forbidden"
        resp = problem(exc.status, code, exc.reason)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RuleViolation)
    async def _rule(request: Request, exc: RuleViolation) -> JSONResponse:
        return problem(409, "rule-violation", exc.message, rule=exc.rule)

    @app.exception_handler(UnknownCase)
    async def _unknown_case(request: Request, exc: UnknownCase) -> JSONResponse:
        return problem(404, "unknown-case", f"no case {exc} at this node")

    @app.exception_handler(UnknownAgency)
    async def _unknown_agency(request: Request, exc: UnknownAgency) -> JSONResponse:
        return problem(422, "unknown-agency", exc.message, rule="R6")

    @app.exception_handler(IdempotencyConflict)
    async def _idem(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return problem(422, "idempotency-key-reused", str(exc))

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        return problem(
            409,
            "concurrent-write",
            "another event was appended to this case at the same time; read it and retry",
            rule="CONCURRENCY",
        )

    @app.exception_handler(InvalidSubmission)
    async def _invalid_submission(request: Request, exc: InvalidSubmission) -> JSONResponse:
        return problem(422, "invalid-request", str(exc))
