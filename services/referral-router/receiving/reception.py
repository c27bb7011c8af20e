"""Receiving an envelope at a node: verify, check, then append with its transport position.

Every received record ends in exactly one of three outcomes, recorded atomically with the
record's (topic:partition, offset) so that a redelivery is recognised and never applied
twice: applied, duplicate (same event id seen before), or dead-lettered with its reason.
A record that can never be applied never blocks its partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError

from contracts.envelope import Envelope, parse_dataschema
from contracts.kafka_binding import MalformedMessage, decode
from contracts.versions import clear_part_model
from referral_router.rules.lifecycle import RuleViolation, check_receive
from referral_router.rules.roster import Roster, UnknownAgency
from referral_router.store.case_store import RECEIVED, CaseFile, CaseStore, DeadLetter, proposal_of
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
        return self.apply_batch([record])[0]

    def apply_batch(self, records: Sequence[Record]) -> list[Received]:
        """Apply a poll's records. Per partition, every outcome of the batch and the
        partition's new position commit in one transaction (group commit); if a concurrent
        writer (a replica) touched one of its cases, the batch is redone record by record."""
        by_partition: dict[tuple[str, int], list[Record]] = {}
        for rec in records:
            by_partition.setdefault((rec.topic, rec.partition), []).append(rec)
        outcomes: dict[tuple[str, int, int], Received] = {}
        for (topic, partition), recs in by_partition.items():
            try:
                done = self._apply_partition(f"{topic}:{partition}", recs)
            except IntegrityError:
                done = [
                    r for rec in recs for r in self._apply_partition(f"{topic}:{partition}", [rec])
                ]
            for rec, received in zip(recs, done, strict=True):
                outcomes[(rec.topic, rec.partition, rec.offset)] = received
        return [outcomes[(r.topic, r.partition, r.offset)] for r in records]

    def _apply_partition(self, source: str, records: Sequence[Record]) -> list[Received]:
        cases: dict[str, CaseFile] = {}
        letters: list[DeadLetter] = []
        results: list[Received] = []
        last: int | None = None
        applied_before = self.store.applied_up_to(source) or 0  # next offset to apply
        for rec in records:
            if rec.offset + 1 <= applied_before:
                results.append(Received(Outcome.DUPLICATE, source, rec.offset))
                continue
            last = rec.offset
            received = self._decide(source, rec, cases)
            if received.letter is not None:
                letters.append(received.letter)
            results.append(received)
        if last is not None:
            self.store.save_tracked(source, last, *cases.values(), *letters)
        return results

    def _decide(self, source: str, record: Record, cases: dict[str, CaseFile]) -> Received:
        """One record's outcome; an applied envelope is recorded in its (cached) case file."""
        envelope: Envelope | None = None
        try:
            message = decode(record.key, record.value, record.headers)
            envelope = message.envelope
            self._check(envelope)
            case = cases.get(envelope.subject) or self.store.case_file_or_new(envelope.subject)
            if str(envelope.id) in case.state.event_ids:
                return Received(Outcome.DUPLICATE, source, record.offset, envelope)
            roles = self.roster.roles((envelope.sender, *envelope.recipients))
            try:
                check_receive(case.state, proposal_of(envelope, roles), self.agency_id)
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
        case.record(envelope, RECEIVED, roles)
        cases[envelope.subject] = case
        return Received(Outcome.APPLIED, source, record.offset, envelope)

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
        return Received(Outcome.DEAD_LETTERED, source, record.offset, envelope, letter)
