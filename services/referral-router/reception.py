"""Receiving an envelope at a node: verify, check, then append with its transport position.

Every received record ends in exactly one of three outcomes, recorded atomically with the
record's (topic:partition, offset) so that a redelivery is recognised and never applied
twice: applied, duplicate (same event id seen before), or dead-lettered with its reason.
A record that can never be applied never blocks its partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from eventsourcing.persistence import Tracking
from pydantic import ValidationError

from contracts.envelope import Envelope, parse_dataschema
from contracts.kafka_binding import MalformedMessage, decode
from contracts.versions import clear_part_model
from referral_router.case_store import CaseStore, DeadLetter, proposal_of
from referral_router.lifecycle import CaseState, RuleViolation, check_receive
from referral_router.roster import Roster, UnknownAgency
from referral_router.transport.base import Record


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"


class Verifier(Protocol):
    """What reception needs from sealing: check the sender's signature, take the grant."""

    def verify(self, envelope: Envelope) -> None: ...

    def accept_grant(self, envelope: Envelope, grant: bytes) -> None: ...

    def erase(self, case: str) -> int: ...


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    source: str
    offset: int
    envelope: Envelope | None = None
    letter: DeadLetter | None = None


class Refused(Exception):
    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


class Reception:
    """Applies records from this node's inbox topic to its store."""

    def __init__(
        self, agency_id: str, store: CaseStore, roster: Roster, verifier: Verifier
    ) -> None:
        self.agency_id = agency_id
        self.store = store
        self.roster = roster
        self.verifier = verifier

    def apply(self, record: Record) -> Received:
        source = f"{record.topic}:{record.partition}"
        if self.store.already_applied(source, record.offset):
            return Received(Outcome.DUPLICATE, source, record.offset)
        envelope: Envelope | None = None
        try:
            message = decode(record.key, record.value, record.headers)
            envelope = message.envelope
            self._check(envelope)
            case = self.store.case_file(envelope.subject)
            if case is not None and str(envelope.id) in case.state.event_ids:
                self.store.recorder.insert_tracking(Tracking(source, record.offset + 1))  # type: ignore[attr-defined]
                return Received(Outcome.DUPLICATE, source, record.offset, envelope)
            roles = self.roster.roles((envelope.sender, *envelope.recipients))
            proposal = proposal_of(envelope, roles)
            try:
                state = case.state if case else CaseState(pseudonym=envelope.subject)
                check_receive(state, proposal, self.agency_id)
            except RuleViolation as v:
                raise Refused(v.rule, v.message) from None
            if message.grant is not None:
                try:
                    self.verifier.accept_grant(envelope, message.grant)
                except Exception as exc:
                    raise Refused("SEALING", f"case key grant refused: {exc}") from None
        except MalformedMessage as exc:
            return self._dead_letter(source, record, envelope, "CONTRACT", exc.reason)
        except Refused as exc:
            return self._dead_letter(source, record, envelope, exc.rule, exc.reason)
        if envelope.type == "case.erasure-ordered":
            self.verifier.erase(envelope.subject)  # keys first, then the order is recorded
        applied = self.store.record_received(envelope, roles, source, record.offset)
        return Received(
            Outcome.APPLIED if applied else Outcome.DUPLICATE, source, record.offset, envelope
        )

    def _check(self, envelope: Envelope) -> None:
        """R6, signature, then the clear part's schema: before anything is kept."""
        try:
            self.roster.active(envelope.sender)
        except UnknownAgency as exc:
            raise Refused("R6", exc.message) from None
        try:
            self.verifier.verify(envelope)
        except Exception as exc:
            raise Refused("SIGNATURE", f"{type(exc).__name__}: {exc}") from None
        event_type, version = parse_dataschema(envelope.dataschema)
        if event_type != envelope.type:
            raise Refused("CONTRACT", f"dataschema names {event_type}, type is {envelope.type}")
        try:
            clear_part_model(event_type, version).model_validate(envelope.operational)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Refused("CONTRACT", f"operational.{where}: {first['msg']}") from None

    def _dead_letter(
        self, source: str, record: Record, envelope: Envelope | None, rule: str, reason: str
    ) -> Received:
        letter = DeadLetter.record(
            source=source,
            position=record.offset,
            reason=reason,
            rule=rule,
            event_id=str(envelope.id) if envelope else "",
            event_type=envelope.type if envelope else "",
            sender=envelope.sender if envelope else "",
        )
        self.store.record_dead_letter(letter)
        return Received(Outcome.DEAD_LETTERED, source, record.offset, envelope, letter)
