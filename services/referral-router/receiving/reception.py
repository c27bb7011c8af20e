"""Receiving at a node: believe an arrival by its provenance, then one path for all.

Every record ends in exactly one of three outcomes, recorded atomically with the record's
(stream, position) so that a redelivery is recognised and never applied twice: applied,
duplicate (same event id seen before), or dead-lettered with its rule and reason. A
record that can never be applied never blocks its partition.

What is verified depends on where the record came from (`provenance`: a domestic
envelope, or a forwarding from a peer country); what follows does not: the clear part's
contract, the envelope's time against its arrival, the duplicate check (the same id with
other content is a replay, refused), the receive rules (`rules.admission`: authority,
parties, R4, deadlines by this node's own policy), then the case-key grant, in that
order, so that nothing (no key, no forwarding, no change to the view of the case) is
kept of a record that is not applied.

An erasure order, once applied (its keys destroyed first), is passed on without a key
to every agency this node knows holds the case and the order did not name: those it
passed the case on to (R10) and the parties it knows; each of them does the same, so
the order reaches every holder, known to the authority or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError

from contracts.envelope import Envelope, parse_dataschema
from contracts.kafka_binding import MalformedMessage, content_type
from contracts.need_to_know import origin_side
from contracts.policy import CountryPolicy
from contracts.sealing import Forwarding, PublicKeyLookup
from contracts.versions import clear_part_model
from contracts.vocabulary import Role
from referral_router.receiving.provenance import Admitted, Provenance, Refused
from referral_router.rules.admission import DEFAULT_SKEW, Receiver, check_arrival, check_receive
from referral_router.rules.lifecycle import RuleViolation
from referral_router.store.case_store import (
    RECEIVED,
    CaseFile,
    CaseStore,
    DeadLetter,
    OriginBarred,
    proposal_of,
)
from referral_router.transport.base import Record


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead-lettered"


class Sealing(Protocol):
    """What reception needs from the node's sealing: take a grant in, erase a case."""

    def accept_grant(
        self, grant: bytes, case: str, sender: str, signing_keys: PublicKeyLookup | None = None
    ) -> None: ...

    def erase(self, case: str) -> int: ...

    def keep_new_keys(self) -> None:
        """Durably keep the keys of the grants taken so far (one transaction)."""
        ...

    def pass_on_order(
        self, order: Envelope | Forwarding, holders: Iterable[str]
    ) -> list[Forwarding]: ...


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    source: str
    offset: int
    envelope: Envelope | None = None
    letter: DeadLetter | None = None


def stream_of(topic: str, partition: int) -> str:
    """The store cursor a partition's records are tracked under."""
    return f"{topic}:{partition}"


@dataclass(eq=False)
class Reception:
    """Applies records from this node's inbox to its store."""

    agency_id: str
    store: CaseStore
    sealing: Sealing
    #: How each kind of record (by content type) is believed; a kind not listed is
    #: dead-lettered. A node's own country's envelopes are `ENVELOPE_CONTENT_TYPE`.
    provenances: dict[str, Provenance]
    #: This node's roles, as the directory lists them now.
    roles: Callable[[], frozenset[Role]] = frozenset
    #: This node's country's policy: the deadlines it recomputes for its own country's
    #: senders. None: deadlines are taken as sent (a node without a country policy).
    policy: CountryPolicy | None = None
    skew: timedelta = DEFAULT_SKEW

    def believe(self, content_type: str, provenance: Provenance) -> None:
        """Take records of another kind too (a federated node: forwardings)."""
        self.provenances[content_type] = provenance

    def apply(self, record: Record) -> Received:
        return self.apply_batch([record])[0]

    def apply_batch(self, records: Sequence[Record]) -> list[Received]:
        """Apply a poll's records: every outcome and every partition's new position in
        one transaction (group commit). If that conflicts (a replica touched a case, or
        got to a partition first), each partition is redone alone, and a partition that
        still conflicts record by record."""
        by_partition: dict[str, list[Record]] = {}
        for rec in records:
            by_partition.setdefault(stream_of(rec.topic, rec.partition), []).append(rec)
        try:
            outcomes = self._apply(by_partition)
        except IntegrityError:
            outcomes = {}
            for stream, recs in by_partition.items():
                try:
                    outcomes.update(self._apply({stream: recs}))
                except IntegrityError:
                    for rec in recs:
                        outcomes.update(self._apply({stream: [rec]}))
        return [outcomes[(stream_of(r.topic, r.partition), r.offset)] for r in records]

    def _apply(self, partitions: dict[str, list[Record]]) -> dict[tuple[str, int], Received]:
        cases: dict[str, CaseFile] = {}
        letters: list[DeadLetter] = []
        results: dict[tuple[str, int], Received] = {}
        positions: list[tuple[str, int]] = []
        barred: dict[str, OriginBarred] = {}
        for stream, records in partitions.items():
            next_offset = self.store.cursor(stream).position
            last: int | None = None
            for rec in records:
                if rec.offset < next_offset:
                    results[(stream, rec.offset)] = Received(Outcome.DUPLICATE, stream, rec.offset)
                    continue
                last = rec.offset
                received = self._decide(stream, rec, cases, barred)
                if received.letter is not None:
                    letters.append(received.letter)
                results[(stream, rec.offset)] = received
            if last is not None:
                positions.append((stream, last + 1))
        if positions:
            self.sealing.keep_new_keys()  # the grants taken, before what they open
            self.store.save_positions(positions, *cases.values(), *letters, *barred.values())
        return results

    def _decide(
        self,
        stream: str,
        record: Record,
        cases: dict[str, CaseFile],
        barred: dict[str, OriginBarred],
    ) -> Received:
        """One record's outcome; an applied envelope is recorded in its (cached) case file."""
        envelope: Envelope | None = None
        try:
            provenance = self._provenance(record)
            admitted = provenance.admit(record)
            envelope = admitted.envelope
            check_contract(envelope)
            case = cases.get(envelope.subject) or self.store.case_file_or_new(envelope.subject)
            if str(envelope.id) in case.state.event_ids:
                check_same(self.store.recorded(case, str(envelope.id)), envelope)
                return Received(Outcome.DUPLICATE, stream, record.offset, envelope)
            self._admit(case, admitted, barred)
            self._take_grant(admitted)
        except MalformedMessage as exc:
            return self._dead_letter(stream, record, "CONTRACT", exc.reason, envelope)
        except Refused as exc:
            return self._dead_letter(stream, record, exc.rule, exc.reason, exc.envelope or envelope)
        provenance.keep(admitted)
        if envelope.type == "case.erasure-ordered":
            # keys first, then whatever lies beside the envelopes; then the order is recorded
            self.sealing.erase(envelope.subject)
            for kind in self.provenances.values():
                kind.forget(envelope.subject)
        case.record(envelope, RECEIVED, admitted.roles)
        if envelope.type == "case.erasure-ordered":
            holders = case.state.forwarded_to | case.state.parties
            for fw in self.sealing.pass_on_order(admitted.forwarding or envelope, holders):
                case.record_forwarding(fw)
        cases[envelope.subject] = case
        return Received(Outcome.APPLIED, stream, record.offset, envelope)

    def _admit(self, case: CaseFile, admitted: Admitted, barred: dict[str, OriginBarred]) -> None:
        """The receive rules, from this node's own view (the envelope is recorded as
        signed: its deadlines are this node's own, or it is refused)."""
        envelope = admitted.envelope
        roles = self.roles()
        # deadlines of this country's events are recomputed here; those of a peer's, and
        # of an event passed on (set for others, checked by the forwarder), are the sender's
        own = (
            self.policy is not None
            and self.policy.country == envelope.country
            and admitted.forwarding is None
        )
        me = Receiver(self.agency_id, roles, self.policy if own else None)
        subject = envelope.subject
        # the R4 marker matters on the country of origin's side only (`check_receive`):
        # elsewhere its lookup in the store (~60 µs, a read that finds nothing) is skipped
        barred_here = subject in barred or (
            origin_side(roles) and self.store.origin_barred(subject)
        )
        try:
            check_arrival(envelope.time, admitted.arrived, self.skew)
            check_receive(
                case.state,
                proposal_of(envelope, admitted.roles),
                me,
                envelope.deadlines,
                received_by=admitted.received_by,
                origin_barred=barred_here,
            )
        except RuleViolation as v:
            if v.rule == "R4" and origin_side(roles) and envelope.restrictions.no_origin_contact:
                barred.setdefault(subject, OriginBarred(case=subject, event_id=str(envelope.id)))
            raise Refused(v.rule, v.message) from None

    def _provenance(self, record: Record) -> Provenance:
        kind = content_type(record.headers)
        provenance = self.provenances.get(kind)
        if provenance is None:
            raise Refused("CONTRACT", f"this node takes no records of type {kind}")
        return provenance

    def _take_grant(self, admitted: Admitted) -> None:
        offer = admitted.grant
        if offer is None:
            return
        try:
            self.sealing.accept_grant(
                offer.grant, admitted.envelope.subject, offer.sender, offer.signing_keys
            )
        except Exception as exc:
            raise Refused("SEALING", f"case key grant refused: {exc}") from None

    def _dead_letter(
        self, stream: str, record: Record, rule: str, reason: str, envelope: Envelope | None
    ) -> Received:
        letter = DeadLetter.record(stream, record.offset, rule, reason, envelope)
        return Received(Outcome.DEAD_LETTERED, stream, record.offset, envelope, letter)


def check_same(recorded: Mapping[str, Any] | None, envelope: Envelope) -> None:
    """A known event id again: a redelivery if the bytes are the ones `recorded`, a replay
    under a reused id (refused) if anything differs."""
    if recorded != envelope.model_dump(mode="json"):
        raise Refused(
            "REPLAY",
            f"event {envelope.id} is recorded here with other content: an event id is never reused",
        )


def check_contract(envelope: Envelope) -> None:
    """The clear part against its event type's schema, whoever vouched for the sender."""
    event_type, version = parse_dataschema(envelope.dataschema)
    if event_type != envelope.type:
        raise Refused("CONTRACT", f"dataschema names {event_type}, type is {envelope.type}")
    try:
        clear_part_model(event_type, version).model_validate(envelope.operational)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Refused("CONTRACT", f"operational.{where}: {first['msg']}") from None
