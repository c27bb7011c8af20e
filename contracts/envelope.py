"""The envelope every case event travels in: CloudEvents 1.0 attributes plus the bus's own.

The envelope is the unit that is signed, stored append-only, routed over Kafka and hashed
into the verifiable log. Its clear part (attributes, `restrictions`, `operational`,
`deadlines`) is all that routers, rules and oversight read; personal fields live only in
`sealed`. Every clear attribute says why it is clear (`x-why` in its JSON Schema,
`contracts.justification`): the clear part is read by every recipient and operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from contracts.canonical import canonical_json_pair
from contracts.events import CATALOGUE, OLDER_VERSIONS, latest_version
from contracts.justification import justified
from contracts.restrictions import Restrictions
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


class Envelope(BaseModel):
    """A case event as it is signed, stored and routed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = Field(
        default="1.0", json_schema_extra=justified("CloudEvents: any consumer reads the version")
    )
    id: UUID = Field(
        json_schema_extra=justified(
            "every node detects duplicates and replays by it; proofs and escalations name it"
        )
    )
    source: str = Field(
        pattern=r"^nrm://[A-Z]{2}/[a-z0-9][a-z0-9-]{1,62}$",
        json_schema_extra=justified("receivers tell their own country's events from a peer's"),
    )
    type: str = Field(
        json_schema_extra=justified(
            "every receiver checks the sender may emit it (ROLE) and the lifecycle's order"
        )
    )
    subject: str = Field(
        pattern=CASE_PSEUDONYM_PATTERN,
        description="The case pseudonym.",
        json_schema_extra=justified(
            "the transport partitions by case (order per case); each node files the event "
            "under its case: a random pseudonym, never derived from the person"
        ),
    )
    time: UtcDateTime = Field(
        json_schema_extra=justified("deadlines (R3, R8) are computed from it by every node")
    )
    dataschema: str = Field(
        json_schema_extra=justified("receivers validate the clear part against its version")
    )
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", json_schema_extra=justified("CloudEvents: how to decode")
    )
    sender: str = Field(
        pattern=AGENCY_ID_PATTERN,
        json_schema_extra=justified(
            "R6 and R7: receivers verify its signature and authority; oversight sees who sent"
        ),
    )
    recipients: tuple[str, ...] = Field(
        min_length=1,
        json_schema_extra=justified(
            "the relay routes to each recipient's inbox; R4's addressing is checked on it"
        ),
    )
    restrictions: Restrictions = Field(
        default_factory=Restrictions,
        description="The case's routing restrictions as the sender believes them "
        "(contracts.restrictions): never the facts that set them.",
        json_schema_extra=justified(
            "R2 and R4 at every node and gateway, whoever sent the event: a node that never "
            "opened the facts behind a protection still routes and refuses by it"
        ),
    )
    operational: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's clear (operational) fields.",
        json_schema_extra=justified(
            "the rules read them; each field says why it is clear in its event's schema"
        ),
    )
    deadlines: dict[str, datetime] = Field(
        default_factory=dict,
        description="Due dates the sender's router computed from its country policy "
        "(e.g. referral-answer, reflection-ends): clear, so every node and notifier agrees.",
        json_schema_extra=justified(
            "R3, R8 and retention: every node recomputes them; notifiers chase them"
        ),
    )
    sealed: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-category ciphertexts and key wraps (contracts.sealing).",
    )
    signature: dict[str, Any] | None = Field(
        default=None,
        description="The sender's signature over the canonical form of the rest.",
        json_schema_extra=justified("R6: every receiver and auditor verifies the sender"),
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
