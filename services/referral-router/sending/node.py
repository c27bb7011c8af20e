"""An agency's router node: accepts its own systems' commands, applies the rules, seals,
signs and appends; answers reads with only what this agency may open.

Order of work for a new event: contracts check (done by the HTTP layer) -> a directory
fresh enough to act on -> known parties (R6) -> rules (authority, R1-R4, R9, lifecycle)
-> what each recipient may open (R5, R4, and R9's consent for every event) -> seal and
sign -> append to the store, which is the outbox. Nothing is appended unless every step
passed. Receivers check the same authority table and R4 addressing on their own.

The work is split in two so that many requests can share one transaction: `decide` does
everything but the append (CPU only, on a case file in memory), `commit` appends any
number of decisions in one transaction (new case keys first, durably, in one more).
`submit` is the two in a row; `sending.intake` runs them for concurrent HTTP requests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import EventPayload, split_by_category
from contracts.need_to_know import CaseContext, origin_side
from contracts.policy import CountryPolicy
from contracts.restrictions import set_by
from contracts.vocabulary import DataCategory
from referral_router import telemetry
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    UnknownCase,
    check_send,
    derive_deadlines,
    derive_restrictions,
)
from referral_router.rules.roster import Roster
from referral_router.rules.sharing import capped, consent_caps
from referral_router.store.case_store import (
    RECEIVED,
    SENT,
    CaseFile,
    CaseStore,
    IdempotentRequest,
    LoggedEnvelope,
    proposal_of,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Sealer(Protocol):
    """What the node needs from need-to-know sealing (see sealing_at_node)."""

    def seal(
        self,
        envelope: Envelope,
        payload: EventPayload,
        entitlements: Mapping[str, frozenset[DataCategory]],
    ) -> Envelope: ...

    def open(self, envelope: Envelope) -> dict[str, Any]: ...

    def passed_on_by(self, envelope: Envelope) -> str | None:
        """The agency that passed this event on to this node (R10), if one did."""
        ...

    def erase(self, case: str) -> int: ...

    def keep_new_keys(self) -> None:
        """Durably keep every case key made since the last call (before any envelope
        sealed under one is appended)."""
        ...


class InvalidSubmission(ValueError):
    """A well-formed request the node cannot carry out as asked (answered 422)."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


@dataclass(frozen=True)
class Submission:
    """A validated command from the agency's own systems."""

    event_type: str
    payload: EventPayload
    recipients: tuple[str, ...]
    case: str | None = None  # None: a new case (case.screened)


@dataclass(frozen=True)
class Receipt:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """A checked, sealed event ready to append: the case file holding it (pending), the
    idempotent answer to keep with it, and the receipt to give once it is appended."""

    case: CaseFile
    envelope: Envelope
    receipt: Receipt
    answer: IdempotentRequest | None = None
    #: An erasure order: the case whose keys are destroyed before it is appended.
    erase: str | None = None
    #: The trace of the request that asked for it (the append may run elsewhere).
    traceparent: str | None = None

    @property
    def aggregates(self) -> list[Aggregate]:
        return [self.case] if self.answer is None else [self.case, self.answer]


def request_fingerprint(sub: Submission) -> str:
    data = {
        "type": sub.event_type,
        "case": sub.case,
        "recipients": list(sub.recipients),
        "payload": sub.payload.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def new_case_pseudonym() -> str:
    """Random, so the pseudonym says nothing about the person."""
    return "case-" + secrets.token_hex(10)


@dataclass(eq=False)
class AgencyNode:
    """One agency's node: its identity, store, view of the directory, and policy."""

    agency_id: str
    country: str
    store: CaseStore
    roster: Roster
    sealer: Sealer
    policy: CountryPolicy
    clock: Clock = utc_now

    # --- commands ------------------------------------------------------------------

    def submit(self, sub: Submission, idempotency_key: str | None = None) -> Receipt:
        """Validate, rule-check, seal and append one event; retries with the same
        Idempotency-Key get the first answer and append nothing. An append that meets a
        concurrent one on the same case is decided again once, on the newer state."""
        fingerprint = request_fingerprint(sub) if idempotency_key is not None else None
        for attempt in (1, 2):
            earlier = self.earlier_answer(idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
            case = self.store.case_file(sub.case) if sub.case else None
            self.roster.fresh()  # this caller may block: refresh here, not in `decide`
            decision = self.decide(sub, case, idempotency_key, fingerprint)
            (failure,) = self.commit([decision])
            if failure is None:
                return decision.receipt
            if attempt == 2 or not isinstance(failure, IntegrityError):
                raise failure
        raise AssertionError("unreachable")

    def decide(
        self,
        sub: Submission,
        case: CaseFile | None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Decision:
        """Everything but the append, on `case` as the store holds it (None: no such
        case here). Raises what refuses the event; appends nothing. Runs on the event
        loop, so it judges the directory held and never fetches one: callers refresh it
        first where it is due (`Roster.fresh` on a worker)."""
        self.roster.held_fresh()
        for r in sub.recipients:
            self.roster.active(r)
        if self.agency_id in sub.recipients:
            raise InvalidSubmission("an agency does not send events to itself")

        pseudonym = sub.case or new_case_pseudonym()
        if case is None:
            if sub.event_type != "case.screened":
                raise UnknownCase(pseudonym)
            case = CaseFile.open(pseudonym)
        if sub.event_type == "case.erasure-ordered":
            sub = self._to_every_party(case, sub)

        envelope = self._clear_envelope(case.state, sub, pseudonym)
        roles = self.roster.roles((self.agency_id, *sub.recipients))
        proposal = proposal_of(envelope, roles)
        check_send(
            case.state,
            proposal,
            self.policy,
            self.roster.origin_contacts(),
            earlier_case=self._earlier_case(proposal),
        )
        envelope = envelope.model_copy(
            update={
                "restrictions": derive_restrictions(case.state, proposal),
                "deadlines": derive_deadlines(case.state, proposal, self.policy),
            }
        )
        entitlements = self._entitlements(case.state, proposal, envelope, sub)
        sealed = self.sealer.seal(envelope, sub.payload, entitlements)
        case.record(sealed, SENT, roles)
        body = _receipt_body(sealed, entitlements)
        answer = None
        if idempotency_key is not None:
            answer = IdempotentRequest(
                self.agency_id,
                idempotency_key,
                fingerprint or request_fingerprint(sub),
                201,
                body,
            )
        erase = pseudonym if sub.event_type == "case.erasure-ordered" else None
        trace = telemetry.current_traceparent()
        return Decision(case, sealed, Receipt(201, body), answer, erase, trace)

    def commit(self, decisions: Sequence[Decision]) -> list[Exception | None]:
        """Append decisions in one transaction (group commit); per decision None, or why
        it was not appended (a concurrent write to its case: IntegrityError). Decisions
        on one case file (a batch's events of one case) stand or fall together. New case
        keys are kept first, in one durable transaction of their own."""
        failures: dict[int, Exception] = {}
        for i, d in enumerate(decisions):
            if d.erase is not None:
                # Keys go first: if the append then fails, a retry records the order; the
                # data is unreadable either way, which is what the order asked for.
                try:
                    self.sealer.erase(d.erase)
                except Exception as exc:
                    failures[i] = exc
        self.sealer.keep_new_keys()
        groups: dict[int, list[Aggregate]] = {}
        for i, d in enumerate(decisions):
            if i not in failures:
                groups.setdefault(id(d.case), [d.case])
                if d.answer is not None:
                    groups[id(d.case)].append(d.answer)
        for i, d in enumerate(decisions):
            if i not in failures:
                telemetry.event_to_append(d.envelope, d.traceparent)
        conflicts = dict(zip(groups, self.store.save_groups(list(groups.values())), strict=True))
        for i, d in enumerate(decisions):
            if i in failures:
                continue
            conflict = conflicts[id(d.case)]
            if conflict is not None:
                failures[i] = conflict
            else:
                telemetry.event_appended(self.agency_id, d.envelope)
        return [failures.get(i) for i in range(len(decisions))]

    def earlier_answer(self, key: str | None, fingerprint: str | None) -> Receipt | None:
        """The first answer to a request retried with the same Idempotency-Key; a key
        used for a different request is refused. `fingerprint`: the request's, given
        whenever `key` is."""
        if key is None:
            return None
        earlier = self.store.idempotent_answer(self.agency_id, key)
        if earlier is None:
            return None
        if earlier.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request"
            )
        return Receipt(earlier.status_code, earlier.body)

    def _earlier_case(self, p: Proposal) -> CaseState | None:
        """For a link to an earlier case (re-trafficking): that case as this node holds
        it, only read, never reopened."""
        if p.event_type != "case.linked":
            return None
        earlier = self.store.case_file(str(p.operational["earlier_case"]))
        return earlier.state if earlier is not None else None

    def _to_every_party(self, case: CaseFile, sub: Submission) -> Submission:
        """An erasure order reaches every agency this node knows took part in the case, and
        every one it passed the case on to (except the country of origin's side, barred
        by R4), so every node destroys its keys."""
        parties: dict[str, None] = dict.fromkeys(sub.recipients)
        parties.update(dict.fromkeys(sorted(case.parties)))
        parties.update(dict.fromkeys(sorted(case.state.forwarded_to)))
        parties.pop(self.agency_id, None)
        barred = case.state.restrictions.no_origin_contact
        directory = self.roster.directory
        keep = [
            a
            for a in parties
            if directory.agency(a) is not None
            and not (barred and origin_side(self.roster.roles_of(a, directory)))
        ]
        return Submission(sub.event_type, sub.payload, tuple(keep), sub.case)

    def _clear_envelope(self, state: CaseState, sub: Submission, pseudonym: str) -> Envelope:
        clear = split_by_category(sub.payload).get(DataCategory.OPERATIONAL, {})
        return Envelope(
            id=uuid4(),
            source=source_for(self.country, self.agency_id),
            type=sub.event_type,
            subject=pseudonym,
            time=self.clock(),
            dataschema=dataschema_for(sub.event_type),
            sender=self.agency_id,
            recipients=sub.recipients,
            # what the event's own facts set (sealed ones too: this node holds the payload)
            restrictions=state.restrictions.merged(set_by(sub.payload)),
            operational=clear,
        )

    def _entitlements(
        self, state: CaseState, p: Proposal, envelope: Envelope, sub: Submission
    ) -> dict[str, frozenset[DataCategory]]:
        """Per recipient, the categories it may open: the agreement's (R5, R4 for the
        origin's side), narrowed by the person's consent where a role needs it (R9)."""
        providers = set(state.service_providers)
        if p.event_type == "referral.requested":
            providers.add(str(p.operational["to_agency"]))
        ctx = CaseContext(
            event_type=p.event_type,
            case_originator=state.originator or self.agency_id,
            service_providers=frozenset(providers),
            no_origin_contact=envelope.restrictions.no_origin_contact,
        )
        entitled = {r: self.roster.entitled(r, ctx) for r in sub.recipients}
        return capped(entitled, consent_caps(state, p))

    # --- reads ---------------------------------------------------------------------

    def case_view(self, pseudonym: str) -> dict[str, Any]:
        """The case as this agency may see it: opened fields, and the rest withheld."""
        case = self.store.case_file(pseudonym)
        if case is None:
            raise UnknownCase(pseudonym)
        s = case.state
        events = []
        for direction, env in self.store.envelopes(pseudonym):
            events.append(
                {
                    "event_id": str(env.id),
                    "type": env.type,
                    "time": env.time,
                    "sender": env.sender,
                    "recipients": list(env.recipients),
                    "direction": direction,
                    "operational": env.operational,
                    "deadlines": env.deadlines,
                    "fields": self.sealer.open(env),
                    "forwarded_by": self.sealer.passed_on_by(env)
                    if direction == RECEIVED
                    else None,
                }
            )
        return {
            "case": pseudonym,
            "restrictions": s.restrictions,
            "identification": s.identification,
            "reflection_ends": s.reflection.ends if s.reflection else None,
            "return_stage": s.return_stage,
            "closed": s.closed,
            "erased": s.erased,
            "referrals": [
                {
                    "referral_id": r.referral_id,
                    "from_agency": r.from_agency,
                    "to_agency": r.to_agency,
                    "service": r.service,
                    "status": r.status,
                    "answer_due": r.answer_due,
                }
                for r in s.referrals.values()
            ],
            "events": events,
            "forwarded": [
                {
                    "forwarding_id": fw["id"],
                    "to": fw["recipient"],
                    "event_id": fw["original"]["id"],
                    "type": fw["original"]["type"],
                    "time": fw["time"],
                    "shared": sorted(fw["wraps"].get(fw["recipient"], {}).get("keys", {})),
                }
                for fw in case.forwardings
            ],
        }

    def inbox(self, after: int, limit: int, direction: str | None = RECEIVED) -> dict[str, Any]:
        """Events this node recorded after a cursor, oldest first: received ones by
        default (the inbox), or sent ones, or both (None). Clear parts only."""
        batch = self.store.log(after=after, limit=limit)
        next_after = batch[-1].position if len(batch) == limit else None
        return {"items": self._log_items(batch, direction), "next_after": next_after}

    def log_items(
        self, after: int, limit: int, direction: str | None = RECEIVED
    ) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` envelopes of the log after `after` (those of `direction`), and
        the position read to: the last envelope's when the page is full, else the log's
        end when it was read (a follower resumes there and misses nothing)."""
        end = self.store.max_position()
        batch = self.store.log(after=after, limit=limit, upto=end)
        read_to = batch[-1].position if len(batch) == limit else max(end, after)
        return self._log_items(batch, direction), read_to

    def _log_items(
        self, batch: list[LoggedEnvelope], direction: str | None
    ) -> list[dict[str, Any]]:
        return [
            {**_inbox_item(e), "traceparent": telemetry.trace_of(self.agency_id, *_ids(e))}
            for e in batch
            if direction is None or e.direction == direction
        ]


def _receipt_body(env: Envelope, shared: Mapping[str, frozenset[DataCategory]]) -> dict[str, Any]:
    """What was recorded, and which personal categories each recipient can open."""
    return {
        "case": env.subject,
        "event_id": str(env.id),
        "type": env.type,
        "time": env.time.isoformat(),
        "recipients": list(env.recipients),
        "deadlines": {k: v.isoformat() for k, v in env.deadlines.items()},
        "restrictions": env.restrictions.model_dump(),
        "shared": {r: sorted(shared.get(r, ())) for r in env.recipients},
    }


def _ids(e: LoggedEnvelope) -> tuple[str, str]:
    return str(e.envelope.id), e.direction


def _inbox_item(e: LoggedEnvelope) -> dict[str, Any]:
    env = e.envelope
    return {
        "position": e.position,
        "direction": e.direction,
        "event_id": str(env.id),
        "type": env.type,
        "case": env.subject,
        "time": env.time,
        "sender": env.sender,
        "recipients": list(env.recipients),
        "operational": env.operational,
        "deadlines": env.deadlines,
    }


__all__ = [
    "AgencyNode",
    "Decision",
    "IdempotencyConflict",
    "InvalidSubmission",
    "Receipt",
    "Submission",
]
