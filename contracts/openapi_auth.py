"""How every HTTP API of the bus documents its authentication in OpenAPI, in one place.

The services read the `Authorization` header (and the `DPoP` proof) themselves, because a
DPoP proof is checked against the request's method and URL; this turns that header into
what OpenAPI tools understand: two alternative security schemes (a DPoP-bound access
token, RFC 9449, or a one-time bearer token; `contracts.agency_token`) on every
operation that reads it, the `DPoP` header documented beside them, and `security: []`
on the public ones. Free of I/O and of any web framework: document in, document out.
"""

from __future__ import annotations

from typing import Any, Protocol

from contracts.dpop import HEADER as PROOF_HEADER

SCHEMES: dict[str, dict[str, Any]] = {
    "DPoP": {
        "type": "http",
        "scheme": "DPoP",
        "description": "An access token bound to the client's key (RFC 9449), reusable for "
        "up to 15 minutes, signed with the agency's registered Ed25519 key and naming this "
        "service as audience; every request adds a fresh proof in the `DPoP` header. "
        "`nrm token --agency A` prints one, `nrm dpop METHOD URL` makes a proof.",
    },
    "OneTimeBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A one-time token (at most 120 s; each `jti` accepted once), signed "
        "with the agency's registered Ed25519 key: `nrm token --agency A --once`.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SCHEMES]
PROOF_PARAMETER: dict[str, Any] = {
    "name": PROOF_HEADER,
    "in": "header",
    "required": False,
    "description": "The DPoP proof for this request (with `Authorization: DPoP <token>`).",
    "schema": {"type": "string", "maxLength": 4096},
}


def document_token_auth(document: dict[str, Any]) -> dict[str, Any]:
    """Operations that read `Authorization` get the security schemes (and the header
    leaves their parameters); the others are public. In place; idempotent."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = operation.get("parameters", [])
            reads_token = any(_is_header(p, "authorization") for p in params)
            kept = [p for p in params if not _is_header(p, "authorization")]
            if reads_token or operation.get("security"):
                operation["security"] = SECURITY
                if not any(_is_header(p, PROOF_HEADER.lower()) for p in kept):
                    kept.append(PROOF_PARAMETER)
            else:
                operation["security"] = []
            if kept:
                operation["parameters"] = kept
    document.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEMES)
    return document


def _is_header(parameter: Any, name: str) -> bool:
    return (
        isinstance(parameter, dict)
        and parameter.get("in") == "header"
        and str(parameter.get("name", "")).lower() == name
    )


class OpenApiApp(Protocol):
    """What `install` needs of a web app (a FastAPI app is one)."""

    def openapi(self) -> dict[str, Any]: ...


def install(app: OpenApiApp) -> None:
    """The app's OpenAPI document, with its authentication documented."""
    openapi = app.openapi
    app.openapi = lambda: document_token_auth(openapi())  # type: ignore[method-assign]
