"""The envelope every case event travels in: CloudEvents 1.0 attributes plus the bus's own.

The envelope is the unit that is signed, stored append-only, routed over Kafka and hashed
into the verifiable log. Its clear part (attributes, `flags`, `operational`) is all that
routers, rules and oversight read; personal fields live only in `sealed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from contracts.canonical import canonical_json_pair
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
        mine, theirs = self.__dict__, other.__dict__
        union = {k: mine[k] or theirs[k] for k in mine}
        # Both were validated, and so is any union of their flags: no need to again.
        return self if union == mine else CaseFlags.model_construct(**union)


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
    #: (signing bytes, canonical bytes), computed once: the envelope is frozen, and a copy
    #: with changes (`model_copy(update=...)`) starts without them.
    _canonical: tuple[bytes, bytes] | None = PrivateAttr(default=None)

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

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (the remembered encodings do not count)."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def unsigned(self) -> Envelope:
        return self.model_copy(update={"signature": None})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._private()["_canonical"] = None
        return copy

    def _private(self) -> dict[str, Any]:
        # Straight to pydantic's store of private attributes: its attribute hook costs
        # more than the encoding it would save.
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        return private

    def _canonical_pair(self) -> tuple[bytes, bytes]:
        private = self._private()
        pair: tuple[bytes, bytes] | None = private.get("_canonical")
        if pair is None:
            pair = canonical_json_pair(self.model_dump(mode="json"), "signature")
            private["_canonical"] = pair
        return pair

    def known_canonical(self, signing: bytes, canonical: bytes) -> None:
        """Remember the bytes whoever built this envelope already encoded (sealing does):
        they are not encoded again."""
        self._private()["_canonical"] = (signing, canonical)

    def signing_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of everything but the signature: what is signed."""
        return self._canonical_pair()[0]

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the whole envelope: what the verifiable log hashes."""
        return self._canonical_pair()[1]

    @classmethod
    def from_canonical(cls, data: bytes) -> Envelope:
        return cls.model_validate_json(data)


def source_for(country: str, agency_id: str) -> str:
    return f"nrm://{country}/{agency_id}"
