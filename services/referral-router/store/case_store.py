"""The node's append-only event store: one case file per case, built with eventsourcing.

A case file is the sequence of signed envelopes this node sent or received for one case,
and the forwardings it made of them (R10: passing the case on); its state is the pure
`lifecycle.CaseState`. The store's notification log (every recorded envelope in commit
order) is at once the outbox the relay publishes from, the inbox the agency's systems
page through, and the leaf order of the node's verifiable log; the forwardings are in
the same append-only log, under their own topic (the relay publishes them too).

What the store just wrote it never reads back. Case files stay in memory once saved
(eventsourcing's cache without fast-forwarding: this process is the case file's writer;
a replica that wrote it meanwhile makes the next save conflict, and the stale copy is
forgotten), and every transaction tells its listeners what it committed (`Committed`),
so the relay, the audit log and the log API take new envelopes and forwardings from
memory instead of decoding them from the store again.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording, Tracking

from contracts.envelope import Envelope
from contracts.restrictions import Restrictions
from contracts.sealing import Forwarding
from contracts.vocabulary import Role
from referral_router.rules.forwarding import forwarded
from referral_router.rules.lifecycle import CaseState, Proposal, evolve

log = logging.getLogger("nrm.store")

_NS = uuid5(NAMESPACE_URL, "urn:nrm:referral-router")

SENT = "sent"
RECEIVED = "received"


#: The working set's cases, not every case ever seen: 65,536 entries held ~25 MB once
#: full, a share of the growth bench's rise to 650,000 events (a uuid5 costs ~2 µs).
@functools.lru_cache(maxsize=4096)
def case_file_id(pseudonym: str) -> UUID:
    return uuid5(_NS, f"case:{pseudonym}")


def idempotency_id(agency_id: str, key: str) -> UUID:
    return uuid5(_NS, f"idempotency:{agency_id}:{key}")


def dead_letter_id(source: str, position: int) -> UUID:
    return uuid5(_NS, f"dead-letter:{source}:{position}")


#: The roles of each agency of an envelope, as the directory listed them when it was
#: recorded (an agency may hold several).
RoleMap = Mapping[str, frozenset[Role]]


@functools.lru_cache(maxsize=256)
def _restrictions(**restrictions: bool) -> Restrictions:
    """A stored envelope's restrictions (a handful of combinations, each validated once)."""
    return Restrictions(**restrictions)


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
        restrictions=_restrictions(**data.get("restrictions", {})),
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


@functools.lru_cache(maxsize=1024)
def _roles_of(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split())


class CaseFile(Aggregate):
    """This node's file of one case: the state its envelopes add up to, and who took part.

    The envelopes themselves stay in the store (`CaseStore.envelopes`): a file in memory
    costs the same whether its case has five events or five thousand."""

    class Opened(Aggregate.Created):
        pseudonym: str

    class EnvelopeRecorded(Aggregate.Event):
        envelope: dict[str, Any]
        direction: str
        roles: dict[str, str]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, CaseFile)
            aggregate._record(self.envelope, self.roles)

    class ForwardingRecorded(Aggregate.Event):
        """This node passed one of the case's events on (R10): the signed forwarding."""

        forwarding: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, CaseFile)
            aggregate._forwarded(self.forwarding)

    def __init__(self, pseudonym: str) -> None:
        self.pseudonym = pseudonym
        self.state = CaseState(pseudonym=pseudonym)
        #: Every agency that sent or received an event of the case (an erasure order
        #: goes to all of them).
        self.parties: frozenset[str] = frozenset()
        self._canonical: dict[str, bytes] = {}
        #: The forwardings this node made of the case's events (R10), as stored: a tuple,
        #: never changed in place, so a copy of the file shares it.
        self.forwardings: tuple[dict[str, Any], ...] = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> CaseFile:
        """The repository copies cached case files on every read. The state, the parties
        and the forwardings are never changed in place, so a copy shares them: only the
        pending events are new."""
        clone = copy.copy(self)
        clone._pending_events = list(self._pending_events)
        clone._canonical = dict(self._canonical)
        return clone

    def take_canonical(self) -> dict[str, bytes]:
        """The canonical bytes of the envelopes recorded since the last call, by event
        id: handed to the log's readers with the commit, so none encodes them again."""
        out, self._canonical = self._canonical, {}
        return out

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
        # Already encoded by sealing (sent) or verification (received): no new work.
        self._canonical[str(envelope.id)] = envelope.canonical_bytes()

    def record_forwarding(self, forwarding: Forwarding) -> None:
        self.trigger_event(self.ForwardingRecorded, forwarding=forwarding.model_dump(mode="json"))

    def _forwarded(self, forwarding: dict[str, Any]) -> None:
        self.state = forwarded(self.state, str(forwarding["recipient"]))
        self.forwardings = (*self.forwardings, forwarding)

    def _record(self, envelope: dict[str, Any], roles: dict[str, str]) -> None:
        proposal = _stored_proposal(envelope, {k: _roles_of(v) for k, v in roles.items()})
        deadlines = {k: _utc(v) for k, v in envelope.get("deadlines", {}).items()}
        self.state = evolve(self.state, proposal, proposal.restrictions, deadlines)
        self.parties = self.parties.union((proposal.sender, *proposal.recipients))

    def pending(self, event_id: str) -> dict[str, Any] | None:
        """The JSON of an envelope recorded here and not saved yet, by event id."""
        for e in self._pending_events:
            if isinstance(e, CaseFile.EnvelopeRecorded) and e.envelope["id"] == event_id:
                return e.envelope
        return None


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


@dataclass(frozen=True)
class CommittedEnvelope:
    """An envelope as one transaction just wrote it: its position, direction and the
    envelope's JSON form (`Envelope.model_dump(mode="json")`, what the store holds)."""

    position: int
    direction: str
    data: Mapping[str, Any]
    #: Its RFC 8785 bytes, when the writer had them already (None: encode `data`).
    canonical: bytes | None = None


@dataclass(frozen=True)
class CommittedForwarding:
    """A forwarding (R10) as one transaction just wrote it: its position and its JSON
    form (`Forwarding.model_dump(mode="json")`, what the store holds)."""

    position: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Committed:
    """What one transaction of the store wrote: the log positions `first`..`last` (every
    record, envelopes or not) and the envelopes and forwardings among them, each in log
    order. A listener that has seen everything up to `first - 1` can follow the log from
    memory alone."""

    first: int
    last: int
    envelopes: tuple[CommittedEnvelope, ...]
    forwardings: tuple[CommittedForwarding, ...] = ()


#: Told of every transaction the store commits, on the committing thread.
CommitListener = Callable[[Committed], None]


class CaseStore(Application[UUID]):
    """The node's event store. Configure persistence with eventsourcing's environment
    variables (SQLite by default here, PostgreSQL via `eventsourcing.postgres`)."""

    name = "ReferralRouter"

    #: Case files stay in memory between requests (at most this many, least recently
    #: used first out), so a busy case is not replayed from its first event for every
    #: new one. What this process saved is trusted without reading it back; see `forget`.
    #: The bound is the node's memory: a case file of 20 events holds about 20 KB, so
    #: 1,000 cases in work at once cost ~20 MB however large the store grows (5,000
    #: grew a node by ~100 MB before it levelled off).
    DEFAULT_CACHE_SIZE = "1000"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        settings = dict(env or {})
        settings.setdefault("AGGREGATE_CACHE_MAXSIZE", self.DEFAULT_CACHE_SIZE)
        settings.setdefault("AGGREGATE_CACHE_FASTFORWARD", "n")
        super().__init__(env=settings)
        self._listeners: list[CommitListener] = []
        self._listeners_lock = threading.Lock()

    def on_commit(self, listener: CommitListener) -> None:
        """Tell `listener` of every transaction from now on (on the committing thread;
        it must be quick and must not raise)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        recordings = super()._record(processing_event)
        canonical: dict[str, bytes] = {}
        for agg in processing_event.aggregates.values():
            if isinstance(agg, CaseFile):
                canonical.update(agg.take_canonical())
        if recordings and self._listeners:
            committed = _committed(recordings, canonical)
            for listener in list(self._listeners):
                try:
                    listener(committed)
                except Exception:  # what committed stays committed: the listener catches up
                    log.exception("a commit listener failed")
        return recordings

    def forget(self, *aggregate_ids: UUID) -> None:
        """Drop cached copies: the next read replays them from the store. Called when a
        save conflicted (another writer, such as a replica, moved the aggregate on)."""
        for aggregate_id in aggregate_ids:
            with contextlib.suppress(KeyError):
                self.repository.cache.get(aggregate_id, evict=True)

    def construct_recorder(self) -> Any:
        # A process recorder can store tracking records atomically with events; taught
        # to store several (one per partition of a poll) in the same transaction.
        recorder = self.factory.process_recorder()
        recorder.__class__ = _tracking_many(type(recorder))
        return recorder

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

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save aggregates in one transaction; on a conflict their cached copies are
        forgotten (so a retry starts from what the store holds) and it re-raises."""
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError:
            self.forget(*(o.id for o in objs if isinstance(o, Aggregate)))
            raise

    def save_groups(self, groups: Sequence[Sequence[Aggregate]]) -> list[IntegrityError | None]:
        """Group commit: every group's aggregates in one transaction; if that conflicts
        (two groups on one case, or another writer), each group in a transaction of its
        own, so one conflict fails only its own group. Per group: None, or its conflict.
        Unsaved events stay pending until their group is saved or fails."""
        if not groups:
            return []
        everything = [a for g in groups for a in g]
        try:
            self._save_pending(everything)
            return [None] * len(groups)
        except IntegrityError as exc:
            if len(groups) == 1:
                self._discard(everything)
                return [exc]
        out: list[IntegrityError | None] = []
        for group in groups:
            try:
                self._save_pending(group)
                out.append(None)
            except IntegrityError as exc:
                self._discard(group)
                out.append(exc)
        return out

    def _save_pending(self, objs: Sequence[Aggregate], tracking: Tracking | None = None) -> None:
        """Like `save`, but pending events are cleared only once the transaction
        committed: a failed batch can be saved again group by group."""
        pe = _processing(tracking, objs, keep_pending=True)
        self._record(pe)
        for obj in objs:
            obj._pending_events.clear()

    def _discard(self, objs: Iterable[Aggregate]) -> None:
        for obj in objs:
            obj._pending_events.clear()
        self.forget(*(o.id for o in objs))

    def record_dead_letter(self, letter: DeadLetter) -> bool:
        """Keep a letter once: its source's cursor moves past it in the same transaction."""
        return self.cursor(letter.source).advance(letter.position + 1, letter)

    def cursor(self, stream: str) -> Cursor:
        return Cursor(self, stream)

    def save_tracked(self, stream: str, to: int, *objs: Aggregate) -> bool:
        """Save aggregates and `stream`'s new position in one transaction; False, saving
        nothing, when the stream was at `to` already (a redelivery). Use a `Cursor`."""
        pe = _processing(Tracking(stream, to), objs)
        try:
            self._record(pe)
        except IntegrityError:
            self.forget(*(o.id for o in objs))
            if self.recorder.has_tracking_id(stream, to):  # type: ignore[attr-defined]
                return False
            raise
        return True

    def save_positions(self, positions: Sequence[tuple[str, int]], *objs: Aggregate) -> bool:
        """`save_tracked` for several streams at once: the aggregates and every stream's
        new position in one transaction. With one stream, False (saving nothing) when it
        was there already; with more, any conflict raises IntegrityError (retry them one
        by one)."""
        if len(positions) == 1:
            ((stream, to),) = positions
            return self.save_tracked(stream, to, *objs)
        pe = _processing(None, objs)
        pe.saved_kwargs[_TRACKINGS] = [Tracking(stream, to) for stream, to in positions]
        try:
            self._record(pe)
        except IntegrityError:
            self.forget(*(o.id for o in objs))
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

    def cached_case_file(self, pseudonym: str) -> CaseFile | None:
        """The case file if it is in memory (a copy), else None: no I/O, so an event
        loop may call it; on None, read it with `case_file` on the store's thread."""
        try:
            agg = self.repository.cache.get(case_file_id(pseudonym))
        except KeyError:
            return None
        assert isinstance(agg, CaseFile)
        return copy.deepcopy(agg)

    def envelopes(self, pseudonym: str) -> list[tuple[str, Envelope]]:
        """The case's envelopes, oldest first, with their direction (from the store)."""
        return [(direction, env) for direction, env, _ in self.history(pseudonym)]

    def history(self, pseudonym: str) -> list[tuple[str, Envelope, RoleMap]]:
        """The case's envelopes, oldest first, each with its direction and the roles its
        agencies held when it was recorded (from the store)."""
        return [
            (
                e.direction,
                Envelope.model_validate(e.envelope),
                {k: _roles_of(v) for k, v in e.roles.items()},
            )
            for e in self.events.get(case_file_id(pseudonym))
            if isinstance(e, CaseFile.EnvelopeRecorded)
        ]

    def replay(self, page: int = 5000) -> dict[UUID, CaseFile]:
        """Every case file rebuilt from the whole log in one pass (what a node restored
        from a backup does to its case views); nothing is read twice. The envelopes'
        JSON is decoded as plain JSON (what a case file's state needs is plain), the
        aggregates' version checks kept."""
        opened, recorded = _topic(CaseFile.Opened), _topic(CaseFile.EnvelopeRecorded)
        forwarding = _topic(CaseFile.ForwardingRecorded)
        files: dict[UUID, CaseFile] = {}
        start = 1
        while True:
            notes = self.recorder.select_notifications(
                start=start, limit=page, topics=[opened, recorded, forwarding]
            )
            if not notes:
                return files
            for n in notes:
                if n.topic == opened:
                    event = self.mapper.to_domain_event(n)
                    folded = event.mutate(None)
                    assert isinstance(folded, CaseFile)
                    files[folded.id] = folded
                    continue
                oid = n.originator_id
                oid = oid if isinstance(oid, UUID) else UUID(oid)
                case = files.get(oid)
                if case is None or n.originator_version != case.version + 1:
                    raise IntegrityError(f"case file {oid} breaks off at {n.originator_version}")
                state = self._plain_state(n.state)
                if n.topic == forwarding:
                    case._forwarded(state["forwarding"])
                else:
                    case._record(state["envelope"], state["roles"])
                case.version = n.originator_version
            start = notes[-1].id + 1

    def recorded(self, case: CaseFile, event_id: str) -> dict[str, Any] | None:
        """The JSON of one of the case's envelopes as recorded here, by event id: one
        recorded but not yet saved, else as the store holds it (a read of the case's
        events: asked only when an event id arrives again)."""
        pending = case.pending(event_id)
        if pending is not None:
            return pending
        for e in self.events.get(case.id):
            if isinstance(e, CaseFile.EnvelopeRecorded) and e.envelope["id"] == event_id:
                return e.envelope
        return None

    def _plain_state(self, stored: bytes) -> dict[str, Any]:
        """A stored event's state as plain JSON (decrypted and decompressed first if the
        store is configured so): its custom-typed values stay in their encoded form."""
        if self.mapper.cipher:
            stored = self.mapper.cipher.decrypt(stored)
        if self.mapper.compressor:
            stored = self.mapper.compressor.decompress(stored)
        state: dict[str, Any] = json.loads(stored)
        return state

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


_TRACKINGS = "nrm_trackings"


def _processing(
    tracking: Tracking | None, objs: Sequence[Aggregate], keep_pending: bool = False
) -> ProcessingEvent[UUID]:
    """`ProcessingEvent.collect_events` for our aggregates, without its runtime protocol
    checks (costly per call); pending events stay with the aggregates if `keep_pending`."""
    pe: ProcessingEvent[UUID] = ProcessingEvent(tracking)
    for obj in objs:
        pe.events.extend(obj._pending_events)
        pe.aggregates[obj.id] = obj
        if not keep_pending:
            obj._pending_events = []
    return pe


@functools.cache
def _tracking_many(recorder_class: type) -> type:
    """`recorder_class` (eventsourcing's SQLite or PostgreSQL process recorder) that also
    inserts the tracking records passed as `nrm_trackings`, in the same transaction."""

    def _insert_events(self: Any, c: Any, stored_events: Any, **kwargs: Any) -> Any:
        returning = super(cls, self)._insert_events(c, stored_events, **kwargs)
        for tracking in kwargs.get(_TRACKINGS, ()):
            self._insert_tracking(c, tracking)
        return returning

    cls = type(f"Tracking{recorder_class.__name__}", (recorder_class,), {})
    cls._insert_events = _insert_events  # type: ignore[attr-defined]
    return cls


def _topic(cls: type) -> str:
    from eventsourcing.utils import get_topic

    return get_topic(cls)


def _committed(recordings: Sequence[Recording[UUID]], canonical: Mapping[str, bytes]) -> Committed:
    ids = [r.notification.id for r in recordings]
    envelopes = tuple(
        CommittedEnvelope(
            r.notification.id, e.direction, e.envelope, canonical.get(str(e.envelope["id"]))
        )
        for r in recordings
        if isinstance(e := r.domain_event, CaseFile.EnvelopeRecorded)
    )
    forwardings = tuple(
        CommittedForwarding(r.notification.id, f.forwarding)
        for r in recordings
        if isinstance(f := r.domain_event, CaseFile.ForwardingRecorded)
    )
    return Committed(min(ids), max(ids), envelopes, forwardings)


__all__: Sequence[str] = [
    "RECEIVED",
    "SENT",
    "CaseFile",
    "CaseStore",
    "CommitListener",
    "Committed",
    "CommittedEnvelope",
    "CommittedForwarding",
    "Cursor",
    "DeadLetter",
    "IdempotentRequest",
    "LogPage",
    "LoggedEnvelope",
    "LoggedForwarding",
    "OriginBarred",
    "OutboxPage",
]
