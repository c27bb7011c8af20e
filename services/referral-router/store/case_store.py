"""The node's append-only event store: one case file per case, built with eventsourcing.

A case file is the sequence of signed envelopes this node sent or received for one case,
and the forwardings it made of them (R10: passing the case on); its state is the pure
`lifecycle.CaseState`. The store's notification log (every recorded envelope in commit
order) is at once the outbox the relay publishes from, the inbox the agency's systems
page through, and the leaf order of the node's verifiable log; the forwardings are in
the same append-only log, under their own topic (the relay publishes them too).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Tracking

from contracts.envelope import Envelope
from contracts.restrictions import Restrictions
from contracts.sealing import Forwarding
from contracts.vocabulary import Role
from referral_router.rules.forwarding import forwarded
from referral_router.rules.lifecycle import CaseState, Proposal, evolve

_NS = uuid5(NAMESPACE_URL, "urn:nrm:referral-router")

SENT = "sent"
RECEIVED = "received"


def case_file_id(pseudonym: str) -> UUID:
    return uuid5(_NS, f"case:{pseudonym}")


def idempotency_id(agency_id: str, key: str) -> UUID:
    return uuid5(_NS, f"idempotency:{agency_id}:{key}")


def dead_letter_id(source: str, position: int) -> UUID:
    return uuid5(_NS, f"dead-letter:{source}:{position}")


#: The roles of each agency of an envelope, as the directory listed them when it was
#: recorded (an agency may hold several).
RoleMap = Mapping[str, frozenset[Role]]


def _stored_proposal(data: Mapping[str, Any], roles: RoleMap) -> Proposal:
    """The clear facts of an envelope already validated when it was stored: read straight
    from its JSON, because a replay must not pay for full validation of every event."""
    return Proposal(
        event_id=str(data["id"]),
        event_type=str(data["type"]),
        sender=str(data["sender"]),
        sender_roles=roles.get(str(data["sender"]), frozenset()),
        recipients={r: roles.get(r, frozenset()) for r in data["recipients"]},
        time=_utc(data["time"]),
        operational=data["operational"],
        restrictions=Restrictions(**data.get("restrictions", {})),
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def proposal_of(envelope: Envelope, roles: RoleMap) -> Proposal:
    """The clear facts of an envelope, as the lifecycle rules read them."""
    return Proposal(
        event_id=str(envelope.id),
        event_type=envelope.type,
        sender=envelope.sender,
        sender_roles=roles.get(envelope.sender, frozenset()),
        recipients={r: roles.get(r, frozenset()) for r in envelope.recipients},
        time=envelope.time,
        operational=envelope.operational,
        restrictions=envelope.restrictions,
    )


def _roles_text(roles: frozenset[Role]) -> str:
    """Stored as one string per agency, roles space-separated (one role: as before)."""
    if isinstance(roles, str):  # a single Role (a str) would be split into letters
        raise TypeError(f"an agency's roles are a set of roles, not {roles!r}")
    return " ".join(sorted(roles))


def _roles_of(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split())


class CaseFile(Aggregate):
    """This node's file of one case: the envelopes, and the state they add up to."""

    class Opened(Aggregate.Created):
        pseudonym: str

    class EnvelopeRecorded(Aggregate.Event):
        envelope: dict[str, Any]
        direction: str
        roles: dict[str, str]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, CaseFile)
            aggregate._record(self.envelope, self.direction, self.roles)

    class ForwardingRecorded(Aggregate.Event):
        """This node passed one of the case's events on (R10): the signed forwarding."""

        forwarding: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, CaseFile)
            aggregate._forwarded(self.forwarding)

    def __init__(self, pseudonym: str) -> None:
        self.pseudonym = pseudonym
        self.state = CaseState(pseudonym=pseudonym)
        self.entries: list[tuple[str, dict[str, Any]]] = []
        #: Per entry, the roles of its agencies as the directory listed them then.
        self.entry_roles: list[RoleMap] = []
        self.forwardings: list[dict[str, Any]] = []

    def __deepcopy__(self, memo: dict[int, Any]) -> CaseFile:
        """The repository copies cached case files on every read. Recorded envelopes and
        the case state are never changed in place, so a copy shares them: only the list of
        entries and the pending events are new (a full deep copy grew with every event)."""
        clone = copy.copy(self)
        clone.entries = list(self.entries)
        clone.entry_roles = list(self.entry_roles)
        clone.forwardings = list(self.forwardings)
        clone._pending_events = list(self._pending_events)
        return clone

    @classmethod
    def open(cls, pseudonym: str) -> CaseFile:
        return cls._create(cls.Opened, id=case_file_id(pseudonym), pseudonym=pseudonym)

    def record(self, envelope: Envelope, direction: str, roles: RoleMap) -> None:
        self.trigger_event(
            self.EnvelopeRecorded,
            envelope=envelope.model_dump(mode="json"),
            direction=direction,
            roles={k: _roles_text(v) for k, v in roles.items()},
        )

    def record_forwarding(self, forwarding: Forwarding) -> None:
        self.trigger_event(self.ForwardingRecorded, forwarding=forwarding.model_dump(mode="json"))

    def _forwarded(self, forwarding: dict[str, Any]) -> None:
        self.state = forwarded(self.state, str(forwarding["recipient"]))
        self.forwardings.append(forwarding)

    def _record(self, envelope: dict[str, Any], direction: str, roles: dict[str, str]) -> None:
        role_map = {k: _roles_of(v) for k, v in roles.items()}
        proposal = _stored_proposal(envelope, role_map)
        deadlines = {k: _utc(v) for k, v in envelope.get("deadlines", {}).items()}
        self.state = evolve(self.state, proposal, proposal.restrictions, deadlines)
        self.entries.append((direction, envelope))
        self.entry_roles.append(role_map)

    def envelopes(self) -> Iterator[tuple[str, Envelope]]:
        for direction, data in self.entries:
            yield direction, Envelope.model_validate(data)

    def history(self) -> Iterator[tuple[str, Envelope, RoleMap]]:
        """Each envelope with its direction and the roles its agencies held then."""
        for (direction, data), roles in zip(self.entries, self.entry_roles, strict=True):
            yield direction, Envelope.model_validate(data), roles

    def recorded(self, event_id: str) -> dict[str, Any] | None:
        """The stored JSON of one of the case's envelopes, by event id."""
        return next((data for _, data in self.entries if data["id"] == event_id), None)


@dataclass
class IdempotentRequest(Aggregate, created_event_name="Answered"):
    """The first answer to a POST with an Idempotency-Key: a retry gets it back."""

    agency_id: str
    key: str
    #: The request's fingerprint: a retry with the same key must be the same request.
    request_hash: str
    status_code: int
    #: The first answer, given again to every retry.
    body: dict[str, Any]

    @staticmethod
    def create_id(agency_id: str, key: str) -> UUID:
        """One answer per agency and key: a second one for the same key conflicts."""
        return idempotency_id(agency_id, key)


@dataclass
class DeadLetter(Aggregate, created_event_name="Recorded"):
    """A received message that can never be applied, kept with its reason (never dropped)."""

    source: str
    position: int
    reason: str
    rule: str
    event_id: str
    event_type: str
    sender: str
    received_at: datetime
    case: str = ""

    @classmethod
    def record(
        cls, source: str, position: int, rule: str, reason: str, envelope: Envelope | None = None
    ) -> DeadLetter:
        """The letter of what arrived at `position` of `source`, refused by `rule`; the
        envelope's clear facts when it could be read at all."""
        facts = (str(envelope.id), envelope.type, envelope.sender) if envelope else ("", "", "")
        case = envelope.subject if envelope else ""
        return cls(source, position, reason, rule, *facts, datetime.now(UTC), case)

    @staticmethod
    def create_id(source: str, position: int) -> UUID:
        """One letter per position of a stream: a redelivered record is kept once."""
        return dead_letter_id(source, position)


def origin_barred_id(pseudonym: str) -> UUID:
    return uuid5(_NS, f"origin-barred:{pseudonym}")


@dataclass
class OriginBarred(Aggregate, created_event_name="Learned"):
    """R4 on the country of origin's side: this node refused an envelope of the case
    because it may not contact the country of origin, and takes nothing more of it,
    whatever arrives later and in whatever order. Kept apart from the case file: a
    refused envelope changes no view."""

    case: str
    event_id: str

    @staticmethod
    def create_id(case: str) -> UUID:
        """One per case: the first refusal is all it takes."""
        return origin_barred_id(case)


@dataclass(frozen=True)
class LoggedForwarding:
    """One forwarding this node made (R10), at its position in the log."""

    position: int
    forwarding: Forwarding


@dataclass(frozen=True)
class LogPage:
    """Envelopes of the log after a reader's position, and where the reader continues
    once it has handled them all."""

    entries: list[LoggedEnvelope]
    end: int


@dataclass(frozen=True)
class OutboxPage:
    """What this node has to publish after the relay's position: envelopes (sent and
    received: the relay skips the latter) and forwardings, in log order."""

    entries: list[LoggedEnvelope | LoggedForwarding]
    end: int


@dataclass(frozen=True)
class Cursor:
    """How far this node has handled one stream it reads: its own log (the outbox relay,
    a gateway's pump) or one transport partition (reception).

    The position is kept in the store's tracking table, so it moves in the same
    transaction as whatever handling the stream wrote: a crash never separates the two.
    What a position counts is the reader's: the log position to read after, or the
    partition's next offset."""

    store: CaseStore
    stream: str

    @property
    def position(self) -> int:
        """Where reading continues (0: from the start)."""
        return self.store.tracked(self.stream)

    def advance(self, to: int, *written: Aggregate) -> bool:
        """Move to `to`, saving `written` with it; False, saving nothing, when the stream
        was there already (a redelivery, or a replica got there first)."""
        return self.store.save_tracked(self.stream, to, *written)


@dataclass(frozen=True)
class LoggedEnvelope:
    """One entry of the node's log: its position, direction and envelope."""

    position: int
    direction: str
    envelope: Envelope


class CaseStore(Application[UUID]):
    """The node's event store. Configure persistence with eventsourcing's environment
    variables (SQLite by default here, PostgreSQL via `eventsourcing.postgres`)."""

    name = "ReferralRouter"

    #: Case files stay in memory between requests (fast-forwarded from the store on each
    #: read), so a busy case is not replayed from its first event for every new one.
    DEFAULT_CACHE_SIZE = "5000"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        settings = dict(env or {})
        settings.setdefault("AGGREGATE_CACHE_MAXSIZE", self.DEFAULT_CACHE_SIZE)
        super().__init__(env=settings)

    def construct_recorder(self) -> Any:
        # A process recorder can store tracking records atomically with events.
        return self.factory.process_recorder()

    # --- writes --------------------------------------------------------------------

    def record_sent(
        self,
        case: CaseFile,
        envelope: Envelope,
        roles: RoleMap,
        answer: IdempotentRequest | None = None,
    ) -> None:
        """Append a sent envelope (and the idempotent answer) in one transaction."""
        case.record(envelope, SENT, roles)
        self.save(case, answer)

    def record_forwarded(
        self,
        case: CaseFile,
        forwardings: Sequence[Forwarding],
        answer: IdempotentRequest | None = None,
    ) -> None:
        """Append the forwardings of a case passed on (and the idempotent answer) in one
        transaction: the relay publishes them from here."""
        for fw in forwardings:
            case.record_forwarding(fw)
        self.save(case, answer)

    def record_dead_letter(self, letter: DeadLetter) -> bool:
        """Keep a letter once: its source's cursor moves past it in the same transaction."""
        return self.cursor(letter.source).advance(letter.position + 1, letter)

    def cursor(self, stream: str) -> Cursor:
        return Cursor(self, stream)

    def save_tracked(self, stream: str, to: int, *objs: Aggregate) -> bool:
        """Save aggregates and `stream`'s new position in one transaction; False, saving
        nothing, when the stream was at `to` already (a redelivery). Use a `Cursor`."""
        pe: ProcessingEvent[UUID] = ProcessingEvent(Tracking(stream, to))
        pe.collect_events(*objs)
        try:
            self._record(pe)
        except IntegrityError:
            if self.recorder.has_tracking_id(stream, to):  # type: ignore[attr-defined]
                return False
            raise
        return True

    def tracked(self, stream: str) -> int:
        return int(self.recorder.max_tracking_id(stream) or 0)  # type: ignore[attr-defined]

    # --- reads ---------------------------------------------------------------------

    def case_file(self, pseudonym: str) -> CaseFile | None:
        try:
            agg = self.repository.get(case_file_id(pseudonym))
        except AggregateNotFoundError:
            return None
        assert isinstance(agg, CaseFile)
        return agg

    def case_file_or_new(self, pseudonym: str) -> CaseFile:
        return self.case_file(pseudonym) or CaseFile.open(pseudonym)

    def origin_barred(self, pseudonym: str) -> bool:
        return origin_barred_id(pseudonym) in self.repository

    def idempotent_answer(self, agency_id: str, key: str) -> IdempotentRequest | None:
        aid = idempotency_id(agency_id, key)
        if aid not in self.repository:
            return None
        agg = self.repository.get(aid)
        assert isinstance(agg, IdempotentRequest)
        return agg

    def log(
        self, after: int = 0, limit: int = 100, upto: int | None = None
    ) -> list[LoggedEnvelope]:
        """Recorded envelopes after position `after` (up to `upto`), in commit order."""
        out: list[LoggedEnvelope] = []
        for entry in self._entries(after, limit, upto, forwardings=False):
            assert isinstance(entry, LoggedEnvelope)
            out.append(entry)
        return out

    def _entries(
        self, after: int, limit: int, upto: int | None, *, forwardings: bool
    ) -> list[LoggedEnvelope | LoggedForwarding]:
        topics = [_topic(CaseFile.EnvelopeRecorded)]
        if forwardings:
            topics.append(_topic(CaseFile.ForwardingRecorded))
        out: list[LoggedEnvelope | LoggedForwarding] = []
        notes = self.recorder.select_notifications(
            start=after + 1, limit=limit, stop=upto, topics=topics
        )
        for n in notes:
            event = self.mapper.to_domain_event(n)
            if isinstance(event, CaseFile.ForwardingRecorded):
                out.append(LoggedForwarding(n.id, Forwarding.model_validate(event.forwarding)))
                continue
            assert isinstance(event, CaseFile.EnvelopeRecorded)
            out.append(
                LoggedEnvelope(n.id, event.direction, Envelope.model_validate(event.envelope))
            )
        return out

    def outbox_page(self, after: int, limit: int) -> OutboxPage | None:
        """The next envelopes and forwardings for the relay at `after`; None when nothing
        was recorded since."""
        upto = self.max_position()
        if upto <= after:
            return None
        entries = self._entries(after, limit, upto, forwardings=True)
        end = entries[-1].position if len(entries) == limit else upto
        return OutboxPage(entries, end)

    def log_page(self, after: int, limit: int) -> LogPage | None:
        """The next envelopes for a reader of the log at `after`; None when nothing was
        recorded since."""
        upto = self.max_position()
        if upto <= after:
            return None
        entries = self.log(after, limit, upto)
        # A short page means everything up to `upto` was seen, including records that are
        # not envelopes (idempotency answers, dead letters): the reader skips past them.
        end = entries[-1].position if len(entries) == limit else upto
        return LogPage(entries, end)

    def dead_letters(self, after: int = 0, limit: int = 100) -> list[tuple[int, DeadLetter]]:
        out: list[tuple[int, DeadLetter]] = []
        notes = self.recorder.select_notifications(
            start=after + 1,
            limit=limit,
            topics=[_topic(DeadLetter.Recorded)],  # type: ignore[attr-defined]
        )
        for n in notes:
            agg = self.repository.get(n.originator_id)
            assert isinstance(agg, DeadLetter)
            out.append((n.id, agg))
        return out

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)


def _topic(cls: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(cls)


__all__: Sequence[str] = [
    "RECEIVED",
    "SENT",
    "CaseFile",
    "CaseStore",
    "Cursor",
    "DeadLetter",
    "IdempotentRequest",
    "LogPage",
    "LoggedEnvelope",
    "LoggedForwarding",
    "OriginBarred",
    "OutboxPage",
]
