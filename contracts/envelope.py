"""The envelope every case event travels in: CloudEvents 1.0 attributes plus the bus's own.

The envelope is the unit that is signed, stored append-only, routed over Kafka and hashed
into the verifiable log. Its clear part (attributes, `flags`, `operational`) is all that
routers, rules and oversight read; personal fields live only in `sealed`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.canonical import canonical_json
from contracts.events import CATALOGUE, OLDER_VERSIONS, latest_version
from contracts.timestamps import UtcDateTime

AGENCY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
CASE_PSEUDONYM_PATTERN = r"^case-[a-z0-9]{8,64}$"


def dataschema_for(event_type: str, version: int | None = None) -> str:
    """The schema URI of an event type's version: names a file under contracts/schemas/."""
    v = latest_version(event_type) if version is None else version
    return f"urn:nrm:schema:{event_type}:v{v}"


def parse_dataschema(uri: str) -> tuple[str, int]:
    prefix = "urn:nrm:schema:"
    if not uri.startswith(prefix) or ":v" not in uri[len(prefix) :]:
        raise ValueError(f"not an NRM schema URI: {uri!r}")
    event_type, _, v = uri[len(prefix) :].rpartition(":v")
    if not v.isdigit():
        raise ValueError(f"bad schema version in {uri!r}")
    return event_type, int(v)


class CaseFlags(BaseModel):
    """Clear, rule-relevant facts about the case, carried so that every node can enforce
    R2-R4 without reading a personal field. Flags only ever turn on.

    The child safeguards (R2) apply to a presumed child until child protection's age
    assessment finds an adult (`age_assessed_adult`, relaxing: only from child
    protection), and for good once an assessment finds a child (`age_assessed_child`,
    protective: from anyone), whatever was said before or after."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    presumed_child: bool = False
    asylum_lodged: bool = False
    guardian_appointed: bool = False
    best_interests_determined: bool = False
    age_assessed_adult: bool = False
    age_assessed_child: bool = False

    @property
    def child_safeguards(self) -> bool:
        """Whether R2 applies to the case."""
        return self.age_assessed_child or (self.presumed_child and not self.age_assessed_adult)

    def merged(self, other: CaseFlags) -> CaseFlags:
        return CaseFlags(
            **{k: getattr(self, k) or getattr(other, k) for k in type(self).model_fields}
        )


class Envelope(BaseModel):
    """A case event as it is signed, stored and routed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str = Field(pattern=r"^nrm://[A-Z]{2}/[a-z0-9][a-z0-9-]{1,62}$")
    type: str
    subject: str = Field(pattern=CASE_PSEUDONYM_PATTERN, description="The case pseudonym.")
    time: UtcDateTime
    dataschema: str
    datacontenttype: Literal["application/json"] = "application/json"
    sender: str = Field(pattern=AGENCY_ID_PATTERN)
    recipients: tuple[str, ...] = Field(min_length=1)
    flags: CaseFlags = CaseFlags()
    operational: dict[str, Any] = Field(
        default_factory=dict, description="The event's clear (operational) fields."
    )
    deadlines: dict[str, datetime] = Field(
        default_factory=dict,
        description="Due dates the sender's router computed from its country policy "
        "(e.g. referral-answer, reflection-ends): clear, so every node and notifier agrees.",
    )
    sealed: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-category ciphertexts and key wraps (contracts.sealing).",
    )
    signature: dict[str, Any] | None = Field(
        default=None, description="The sender's signature over the canonical form of the rest."
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in CATALOGUE:
            raise ValueError(f"unknown event type {v!r}")
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("recipients must be distinct")
        import re

        for r in v:
            if not re.match(AGENCY_ID_PATTERN, r):
                raise ValueError(f"bad agency id {r!r}")
        return v

    @field_validator("dataschema")
    @classmethod
    def _schema(cls, v: str) -> str:
        event_type, version = parse_dataschema(v)
        if event_type not in CATALOGUE:
            raise ValueError(f"dataschema names an unknown event type {event_type!r}")
        if version != latest_version(event_type) and (event_type, version) not in OLDER_VERSIONS:
            raise ValueError(f"unsupported schema version {v!r}")
        return v

    @property
    def country(self) -> str:
        return self.source.split("/")[2]

    def unsigned(self) -> Envelope:
        return self.model_copy(update={"signature": None})

    def signing_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of everything but the signature: what is signed."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}))

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the whole envelope: what the verifiable log hashes."""
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_canonical(cls, data: bytes) -> Envelope:
        return cls.model_validate_json(data)


def source_for(country: str, agency_id: str) -> str:
    return f"nrm://{country}/{agency_id}"
