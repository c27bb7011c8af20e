"""The one error body, as pure functions: the table, the translations, the OpenAPI fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contracts.agency_token import CHALLENGE, AuthError
from contracts.problems import (
    CODES,
    MEDIA_TYPE,
    TYPE_PREFIX,
    Problem,
    ProblemError,
    framework_problem,
    handled,
    problem,
    problem_media_type,
    problem_of,
    validation_problem,
)


def test_each_code_has_an_error_status_a_title_and_a_next_step() -> None:
    assert len({k.title for k in CODES.values()}) == len(CODES)
    for code, kind in CODES.items():
        assert 400 <= kind.status < 600, code
        assert kind.title and kind.next_step and code == code.lower(), code


def test_a_problem_says_what_went_wrong_then_what_to_do() -> None:
    found = problem("rule-violation", "asylum is lodged.", rule="R4")
    assert found.body() == {
        "type": TYPE_PREFIX + "rule-violation",
        "title": CODES["rule-violation"].title,
        "status": 409,
        "detail": "asylum is lodged. Read the case, then send first what the rule requires.",
        "error": "rule-violation",
        "rule": "R4",
    }
    assert problem("not-found", "", next_step="ask again").detail == "No such resource. Ask again."
    with pytest.raises(KeyError):
        problem("no-such-code", "x")


def test_only_a_401_names_the_scheme() -> None:
    assert problem("unauthenticated", "x").headers() == {"WWW-Authenticate": CHALLENGE}
    assert CHALLENGE == 'DPoP algs="Ed25519 ES256", Bearer'
    assert problem("forbidden", "x").headers() == {}


def test_schema_violations_list_every_field_and_never_echo_the_input() -> None:
    raw = [
        {"loc": ("body", "payload", 0), "msg": "bad", "type": "t1", "input": "SECRET-1"},
        {"loc": ("query", "limit"), "msg": "too small", "type": "t2", "input": "SECRET-2"},
    ]
    found = validation_problem(raw)
    assert (found.error, found.status) == ("schema-violation", 422)
    assert found.detail.startswith("body.payload.0: bad (and 1 more). ")
    assert [e.loc for e in found.errors or []] == [["body", "payload", 0], ["query", "limit"]]
    assert "SECRET" not in found.model_dump_json()


def test_invalid_json_is_malformed_json() -> None:
    found = validation_problem(
        [{"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"}]
    )
    assert (found.error, found.status) == ("malformed-json", 400)


@pytest.mark.parametrize(
    ("status", "cause", "error"),
    [
        (400, UnicodeDecodeError("utf-8", b"\xc3", 0, 1, "invalid"), "malformed-json"),
        (400, ValueError("other"), "bad-request"),
        (401, None, "unauthenticated"),
        (404, None, "not-found"),
        (405, None, "method-not-allowed"),
        (418, None, "bad-request"),
        (502, None, "internal-error"),
    ],
)
def test_framework_errors_map_by_status(
    status: int, cause: BaseException | None, error: str
) -> None:
    assert framework_problem(status, "said", cause).error == error


class _Base(Exception):
    pass


class _Derived(_Base):
    pass


def test_the_nearest_translation_wins_and_anything_else_is_internal() -> None:
    table = {
        _Base: lambda e: problem("conflict", "base"),
        _Derived: lambda e: problem("unknown-case", "derived"),
    }
    assert problem_of(_Derived(), table).error == "unknown-case"
    assert problem_of(_Base(), table).error == "conflict"
    secret = problem_of(RuntimeError("/srv/keys/master"), table)
    assert secret.error == "internal-error" and "srv" not in secret.detail
    assert problem_of(AuthError(403, "suspended"), {}).error == "forbidden"
    assert problem_of(AuthError(401, "expired"), {}).error == "unauthenticated"
    own = problem("not-ready", "store down")
    assert problem_of(ProblemError(own), {}) is own
    assert handled(table) == (ProblemError, AuthError, _Base, _Derived, Exception)


def _document() -> dict[str, Any]:
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        "paths": {
            "/x": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {}}}},
                        "404": {"content": {"application/json": ref}},
                        "409": {"content": {"text/plain": ref}},
                        "422": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    }
                }
            }
        }
    }


def test_error_responses_are_documented_as_problem_json() -> None:
    document = problem_media_type(_document())
    responses = document["paths"]["/x"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["application/json"]
    assert list(responses["404"]["content"]) == [MEDIA_TYPE]
    assert list(responses["409"]["content"]) == [MEDIA_TYPE]
    assert list(responses["422"]["content"]) == ["application/json"]  # not a Problem: left
    assert problem_media_type(copy.deepcopy(document)) == document  # idempotent


def test_unknown_members_are_refused_by_the_model() -> None:
    body = {**problem("conflict", "x").body(), "stack": "trace"}
    with pytest.raises(ValueError, match="stack"):
        Problem.model_validate(body)
