"""Checks HTTP answers against the bus's one error shape (`contracts.problems`), and the
web framework's errors every service must answer in it."""

from __future__ import annotations

from typing import Any, NamedTuple

import httpx

from contracts.problems import CODES, MEDIA_TYPE, TYPE_PREFIX, Problem

JSON = {"Content-Type": "application/json"}
NOT_UTF8 = b'{"recipients": "\xc3\x28"}'


def assert_problem(response: Any, error: str, *, rule: str | None = None) -> Problem:
    """`response` (httpx or TestClient) is the problem `error`, whole and consistent:
    problem+json, every member valid and none unknown, status and title from the table."""
    assert response.headers["content-type"] == MEDIA_TYPE, (response.headers, response.text)
    found = Problem.model_validate_json(response.content)
    assert (found.error, response.status_code) == (error, CODES[error].status), response.text
    assert found.status == response.status_code
    assert found.type == TYPE_PREFIX + error and found.title == CODES[error].title
    assert found.detail.strip(), response.text
    assert found.rule == rule, response.text
    if found.status == 401:  # the schemes a caller may use (or which proof failed)
        assert response.headers["www-authenticate"].startswith("DPoP")
    return found


class BadRequest(NamedTuple):
    """A request a service's web framework refuses, and how it must answer."""

    method: str
    path: str
    options: dict[str, Any]
    error: str
    said: str  # words the detail must hold

    def send(
        self, base_url: str, headers: dict[str, str] | None = None, verify: Any = True
    ) -> httpx.Response:
        """`verify`: httpx's, e.g. a context with a client certificate (mutual TLS)."""
        options = {
            **self.options,
            "headers": {**(headers or {}), **self.options.get("headers", {})},
        }
        url = f"{base_url}{self.path}"
        return httpx.request(self.method, url, timeout=30, verify=verify, **options)

    def __str__(self) -> str:
        return f"{self.method} {self.error} {self.said}"


def framework_errors(post: str | None, get: str, bad_query: dict[str, Any]) -> list[BadRequest]:
    """What every service's framework refuses: a body that is not JSON, not UTF-8, not the
    schema (on the JSON route `post`, if it has one); a query off the schema (`get`); a
    method the route does not take; a route that does not exist."""
    bodies = [
        BadRequest("POST", post, {"content": b"{", "headers": JSON}, "malformed-json", "JSON"),
        BadRequest("POST", post, {"content": NOT_UTF8, "headers": JSON}, "malformed-json", "UTF-8"),
        BadRequest("POST", post, {"json": [1, 2]}, "schema-violation", "body"),
    ]
    return [
        *(bodies if post else []),
        BadRequest("GET", get, {"params": bad_query}, "schema-violation", "query"),
        BadRequest("PATCH", get, {}, "method-not-allowed", "Allow"),
        BadRequest("GET", "/v1/no-such-route", {}, "not-found", "/docs"),
    ]


def assert_refused(response: Any, bad: BadRequest) -> None:
    found = assert_problem(response, bad.error)
    assert bad.said in found.detail, response.text
    if bad.error == "schema-violation":
        assert found.errors and found.errors[0].loc[0] == bad.said, response.text
    if bad.error == "method-not-allowed":
        assert bad.method not in response.headers["allow"], response.headers


def assert_openapi_problems(document: dict[str, Any]) -> int:
    """Every error response the OpenAPI document lists is a Problem as problem+json (and
    nothing is left of the framework's own error body). Returns how many it checked."""
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] not in "45":
                    continue
                content = response.get("content", {})
                where = f"{method.upper()} {path} {status}"
                assert list(content) == [MEDIA_TYPE], (where, content)
                assert content[MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
                checked += 1
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
    return checked
