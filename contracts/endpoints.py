"""Where a running bus listens: the address book `nrm up` writes beside its data.

`nrm token`, `nrm url`, `nrm audit` and the client library's `LocalBus` read it, so a
developer never copies a port or an audience by hand. It holds URLs, token audiences and
file locations (relative to the country folder), never a secret. Pure: text in, text out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "nrm-endpoints/1"
FILE_NAME = "endpoints.json"
ANCHOR_FILE = "anchor.json"


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    audience: str = Field(description="What a token for this service names as `aud`.")


class Node(Service):
    roles: tuple[str, ...] = ()


class Endpoints(BaseModel):
    """One country's running bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str = FORMAT
    country: str
    pid: int = Field(description="The `nrm up` process serving these URLs.")
    registry: Service
    notifier: Service | None = None
    nodes: dict[str, Node]
    anchor: str = Field(default=ANCHOR_FILE, description="Trust anchor file, in this folder.")
    secrets: str = Field(
        default="secrets", description="Demo keystores and their passphrase, in this folder."
    )

    def node(self, agency_id: str) -> Node:
        try:
            return self.nodes[agency_id]
        except KeyError:
            known = ", ".join(sorted(self.nodes))
            raise KeyError(f"no node for {agency_id!r} on this bus (nodes: {known})") from None

    def with_role(self, role: str) -> list[str]:
        return sorted(a for a, n in self.nodes.items() if role in n.roles)

    def dumps(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def router_audience(agency_id: str) -> str:
    """What a token for an agency's own router names as its audience."""
    return f"nrm-router:{agency_id}"


def notifier_audience(country: str) -> str:
    return f"nrm-notifier:{country}"


def loads(text: str | bytes) -> Endpoints:
    endpoints = Endpoints.model_validate_json(text)
    if endpoints.format != FORMAT:
        raise ValueError(f"endpoints format is {endpoints.format!r}, not {FORMAT!r}")
    return endpoints
