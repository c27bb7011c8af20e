"""The one error body of every HTTP API of the bus: a problem detail (RFC 9457).

Router nodes, gateways, the registry and the notifier answer every error, their own and
their web framework's, with a `Problem` whose `error` is a code from `CODES`. A client
switches on `error` (or on `type`, the same code as a URI), shows `detail` to a person
(what went wrong and what to do next), and reads `rule` when a rule of the bus refused
the request (`docs/domain.md`) and `errors` for the fields at fault. The media type is
`application/problem+json`. The table is documented in `docs/errors.md`.

Free of I/O and of any web framework: each service names its exceptions' problems
(`Translations`) and its framework's JSON response (`Respond`), and `install` puts the
answers on its app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contracts.agency_token import CHALLENGE, AuthError

MEDIA_TYPE = "application/problem+json"
#: A problem type is this prefix and the code: a tag URI (RFC 4151), named but not served.
TYPE_PREFIX = "tag:nrm.example,2026:problem:"


@dataclass(frozen=True)
class ProblemKind:
    """One row of the table: the HTTP status a code always has, its title, and the next
    step a client should take when the occurrence does not say a better one."""

    status: int
    title: str
    next_step: str


CODES: dict[str, ProblemKind] = {
    "bad-request": ProblemKind(
        400, "The request cannot be processed", "correct the request as the detail says"
    ),
    "malformed-json": ProblemKind(
        400,
        "The body is not JSON in UTF-8",
        "send a UTF-8 JSON body with Content-Type: application/json",
    ),
    "malformed-forwarding": ProblemKind(
        400,
        "The body is not a forwarding",
        "send the canonical forwarding and its grant, base64-encoded",
    ),
    "checkpoint-refused": ProblemKind(
        400,
        "The witness refused the checkpoint; nothing was recorded",
        "submit a checkpoint signed with the agency's current key",
    ),
    "unauthenticated": ProblemKind(
        401,
        "No valid token",
        "send a fresh token for this service's audience, signed with the current key",
    ),
    "forbidden": ProblemKind(
        403, "Not allowed for this caller", "call with the agency or role the detail names"
    ),
    "delivery-refused": ProblemKind(
        403,
        "The delivery is stale, replayed or not stamped by the peer's gateway",
        "send the forwarding again with a fresh stamp; a delivery is accepted once",
    ),
    "border-refused": ProblemKind(
        403,
        "The border refused the event",
        "do not resend: the rule named refuses it; the refusal is on record",
    ),
    "not-found": ProblemKind(
        404, "No such resource", "check the path and identifiers; the routes are at /docs"
    ),
    "unknown-case": ProblemKind(
        404,
        "This node holds no such case",
        "check the case pseudonym; a node knows only the cases it took part in",
    ),
    "method-not-allowed": ProblemKind(
        405, "Method not allowed here", "use a method the Allow header lists"
    ),
    "payload-too-large": ProblemKind(
        413,
        "The request body is over the service's limit",
        "send a smaller body; nothing was read or recorded",
    ),
    "rule-violation": ProblemKind(
        409,
        "A rule of the bus refuses this now",
        "read the case, then send first what the rule requires",
    ),
    "concurrent-write": ProblemKind(
        409,
        "Another change was written at the same time",
        "read the current state and retry",
    ),
    "conflict": ProblemKind(
        409,
        "The change conflicts with the current state",
        "read the current state; send only a change it allows",
    ),
    "stale-size": ProblemKind(
        409,
        "The proof starts from a size the witness no longer holds",
        "fetch the witnessed size and prove consistency from it",
    ),
    "checkpoint-flagged": ProblemKind(
        409,
        "The checkpoint contradicts what the witness cosigned; it is flagged",
        "stop and investigate: the flag is on record for oversight",
    ),
    "schema-violation": ProblemKind(
        422,
        "The request does not match the API's schema",
        "correct the fields listed in errors (the schema is at /docs)",
    ),
    "invalid-request": ProblemKind(
        422,
        "The request is well-formed but cannot be accepted",
        "correct the request as the detail says",
    ),
    "unknown-agency": ProblemKind(
        422,
        "An agency is not registered and active",
        "address only agencies the registry's directory lists as active",
    ),
    "idempotency-key-reused": ProblemKind(
        422,
        "The Idempotency-Key was used for another request",
        "use a new key for a new request; resend the same body to replay",
    ),
    "out-of-range": ProblemKind(
        422, "Outside the log", "ask within the log's size (see its latest checkpoint)"
    ),
    "malformed-checkpoint": ProblemKind(
        422,
        "The checkpoint or its proof is malformed",
        "send a C2SP signed note and base64 hashes of 32 bytes",
    ),
    "internal-error": ProblemKind(
        500,
        "The service failed",
        "retry later; if it persists, tell the operator (the failure is logged)",
    ),
    "not-ready": ProblemKind(503, "Not ready", "wait and retry; the detail says what it waits for"),
    "directory-too-old": ProblemKind(
        503,
        "The node's directory is too old to act on",
        "retry once the node has reached its registry again (its /readyz says when): a "
        "suspension or key compromise it has not heard of may be in force",
    ),
    "unavailable": ProblemKind(
        503,
        "A service this one depends on did not answer",
        "retry later: nothing was recorded",
    ),
    "overloaded": ProblemKind(
        503,
        "The service has as much work in hand as it takes, or runs too far behind to read "
        "more in time",
        "retry after the seconds the Retry-After header gives: nothing was recorded",
    ),
}

#: Framework errors by HTTP status; any other status maps to bad-request or internal-error.
_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
}


class FieldError(BaseModel):
    """One field at fault: where, what is wrong, and pydantic's error type."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(description="Path to the field, e.g. ['body', 'payload', 'age'].")
    msg: str
    type: str


class Problem(BaseModel):
    """An error answer (RFC 9457 members, plus `error`, `rule` and `errors`)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description=f"The code as a URI: {TYPE_PREFIX}<error>.")
    title: str = Field(description="The code's fixed summary.")
    status: int = Field(description="The HTTP status, repeated.")
    detail: str = Field(description="What went wrong this time, and what to do next.")
    error: str = Field(description="The stable code (docs/errors.md).")
    rule: str | None = Field(
        default=None,
        description="The rule that refused it (R1-R10, or a check such as SIGNATURE).",
    )
    errors: list[FieldError] | None = Field(
        default=None, description="The fields at fault (schema violations)."
    )

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def headers(self) -> dict[str, str]:
        """Headers the status calls for (RFC 9110: a 401 names the scheme)."""
        return {"WWW-Authenticate": CHALLENGE} if self.status == 401 else {}


class ProblemError(Exception):
    """Raise it anywhere in a request to answer with its `problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def problem(
    error: str,
    detail: str,
    *,
    rule: str | None = None,
    errors: list[FieldError] | None = None,
    next_step: str | None = None,
) -> Problem:
    """The problem `error` (a code of `CODES`): `detail` says what went wrong, and the
    next step (the code's own unless given) is added so the reader knows what to do."""
    kind = CODES[error]
    said = detail.strip().rstrip(".") or kind.title
    step = next_step or kind.next_step
    return Problem(
        type=TYPE_PREFIX + error,
        title=kind.title,
        status=kind.status,
        detail=f"{said}. {step[0].upper()}{step[1:]}.",
        error=error,
        rule=rule,
        errors=errors,
    )


def validation_problem(raw: Iterable[Mapping[str, Any]]) -> Problem:
    """Pydantic's errors for a request: malformed JSON (400) or schema violations (422).
    Only where, what and the error type go back: never the offending input itself."""
    errors = [
        FieldError(
            loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in raw
    ]
    if any(e.type == "json_invalid" for e in errors):
        return problem("malformed-json", "the body is not valid JSON", errors=errors)
    if not errors:
        return problem("schema-violation", "the request does not match the schema")
    first = errors[0]
    where = ".".join(str(p) for p in first.loc) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem("schema-violation", f"{where}: {first.msg}{more}", errors=errors)


def framework_problem(status: int, detail: str, cause: BaseException | None = None) -> Problem:
    """An HTTP error the web framework raised itself (unknown route, wrong method, a
    body it could not parse). A body that is not UTF-8 is malformed JSON."""
    if status == 400 and isinstance(cause, UnicodeDecodeError):
        return problem("malformed-json", "the body is not UTF-8")
    code = _BY_STATUS.get(status, "bad-request" if status < 500 else "internal-error")
    return problem(code, detail)


def auth_problem(exc: AuthError) -> Problem:
    """401: who are you? 403: we know you; you may not."""
    return problem("unauthenticated" if exc.status == 401 else "forbidden", exc.reason)


def internal_problem() -> Problem:
    """An unexpected failure: nothing of it is told to the caller; the service logs it."""
    return problem("internal-error", "the service failed while answering")


#: How a service reads its exceptions: exception class -> its Problem.
Translations = Mapping[type[BaseException], Callable[[Any], Problem]]


def framework_translations(validation_error: type, http_error: type) -> Translations:
    """The web framework's own errors: its request validation error (pydantic's errors,
    from `errors()`) and its HTTP error (`status_code`, `detail`, raised `from` the cause)."""
    return {
        validation_error: lambda e: validation_problem(e.errors()),
        http_error: lambda e: framework_problem(e.status_code, str(e.detail), e.__cause__),
    }


def problem_of(exc: BaseException, translations: Translations) -> Problem:
    """The Problem of the nearest class of `exc` that `translations` knows; anything
    unforeseen is an internal error, told to nobody but the service's log. Every service
    knows `ProblemError` and the token checks' `AuthError`."""
    if isinstance(exc, ProblemError):
        return exc.problem
    if isinstance(exc, AuthError):
        return auth_problem(exc)
    for cls in type(exc).__mro__:
        translate = translations.get(cls)
        if translate is not None:
            return translate(exc)
    return internal_problem()


def handled(translations: Translations) -> tuple[type[BaseException], ...]:
    """Every exception class a service registers a handler for: the shared ones, its own
    table, and `Exception` last (an unforeseen failure is still answered as a problem)."""
    return (ProblemError, AuthError, *translations, Exception)


def answer(exc: BaseException, translations: Translations) -> tuple[Problem, dict[str, str]]:
    """The Problem for `exc` and the headers to send with it (the status's own, and
    those the exception carries, such as Allow on a 405)."""
    found = problem_of(exc, translations)
    carried = getattr(exc, "headers", None) or {}
    return found, {**found.headers(), **carried}


#: The web framework's JSON response: (content, status_code, headers, media_type=...).
Respond = Callable[..., Any]


class ProblemApp(Protocol):
    """What `install` needs of a web app (a FastAPI app is one)."""

    def add_exception_handler(self, exc_class_or_status_code: Any, handler: Any) -> None: ...

    def openapi(self) -> dict[str, Any]: ...


def install(app: ProblemApp, translations: Translations, respond: Respond) -> None:
    """Every error of `app` answered as a problem (its own through `translations`, the
    shared ones, and anything unforeseen) sent with `respond`, and its OpenAPI document
    saying so."""

    async def _answer(request: Any, exc: BaseException) -> Any:
        found, headers = answer(exc, translations)
        return respond(found.body(), found.status, headers, media_type=MEDIA_TYPE)

    for kind in handled(translations):
        app.add_exception_handler(kind, _answer)
    openapi = app.openapi
    app.openapi = lambda: problem_media_type(openapi())  # type: ignore[method-assign]


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for routes that may answer these statuses with a `Problem`."""
    return {s: {"model": Problem} for s in statuses}


def problem_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every error response served as problem+json (the web
    framework files a response model under the route's own media type). In place;
    idempotent."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                for media in [m for m, c in content.items() if _is_problem(status, c)]:
                    content[MEDIA_TYPE] = content.pop(media)
    return document


def _is_problem(status: str, content: Mapping[str, Any]) -> bool:
    ref = str(content.get("schema", {}).get("$ref", ""))
    return status[:1] in "45" and ref.rpartition("/")[2] == Problem.__name__
