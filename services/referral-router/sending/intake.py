"""The node's door for its agency's commands under load: single events and batches.

A command is decided on the event loop when its case file is in memory (the common case:
no I/O), otherwise on the store thread; the append goes through the group commit, so
concurrent requests share transactions. What the node cannot take in time it refuses at
once (`Overloaded`, answered 503 with Retry-After) instead of queueing without bound: a
bounded amount of work in hand keeps the latency of what is accepted bounded too.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError

from referral_router.sending.node import (
    AgencyNode,
    Decision,
    InvalidSubmission,
    Receipt,
    Submission,
    request_fingerprint,
)
from referral_router.store.case_store import CaseFile
from referral_router.store.thread import GroupCommit, StoreThread

#: Events decided between two turns of the event loop while a batch is being decided.
_DECIDE_SLICE = 16


class Overloaded(Exception):
    """More work in hand than the node will queue: retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, why: str = "the node is at capacity") -> None:
        super().__init__(f"{why}; retry after {retry_after} s")
        self.retry_after = retry_after
        #: Sent with the answer (HTTP 503).
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class BatchItem:
    """One event of a batch: its submission, an optional Idempotency-Key of its own, and
    optionally the index of an earlier item of the batch whose (new) case it continues."""

    submission: Submission
    idempotency_key: str | None = None
    case_of: int | None = None


Outcome = Receipt | Exception
Parcel = tuple[Decision, ...]


@dataclass(eq=False)
class Intake:
    """Decides and appends commands from concurrent HTTP requests."""

    node: AgencyNode
    thread: StoreThread
    #: Events accepted for work and not yet answered, at most (then `Overloaded`).
    max_in_flight: int = 256
    #: How long the work in hand may take at the recent rate: the bound on the queue
    #: that keeps an accepted request's wait under a second however much is offered.
    max_wait_s: float = 0.5
    min_in_flight: int = 16
    max_batch: int = 500
    in_flight: int = field(init=False, default=0)
    commits: GroupCommit[Parcel, list[Exception | None]] = field(init=False)
    _rate: _Rate = field(init=False)

    def __post_init__(self) -> None:
        self.commits = GroupCommit(self.thread, self._commit, size=len, max_size=self.max_batch)
        self._rate = _Rate()

    def _commit(self, parcels: Sequence[Parcel]) -> list[list[Exception | None]]:
        """One transaction for every parcel; each parcel gets its own outcomes back."""
        flat = self.node.commit([d for p in parcels for d in p])
        out, at = [], 0
        for p in parcels:
            out.append(flat[at : at + len(p)])
            at += len(p)
        return out

    def limit(self) -> int:
        """Events in work at once: what the node appends in `max_wait_s` at its recent
        rate (between `min_in_flight` and `max_in_flight`)."""
        if self._rate.per_second <= 0:
            return self.max_in_flight
        fits = int(self._rate.per_second * self.max_wait_s)
        return max(self.min_in_flight, min(self.max_in_flight, fits))

    def retry_after(self) -> int:
        """Seconds until the work in hand is done at the recent rate (at least 1)."""
        return self._rate.retry_after(self.in_flight + 1)

    def saturated(self) -> bool:
        """No room for one more event: a request may be refused before it is read."""
        return self.in_flight >= self.limit()

    def admit(self, events: int = 1) -> None:
        """Take `events` more into work, or refuse at once with `Overloaded`. A request
        alone is always taken (a batch larger than the limit waits for an idle node)."""
        if self.in_flight > 0 and self.in_flight + events > max(self.limit(), events):
            raise Overloaded(self._rate.retry_after(self.in_flight + events))

    # --- one event -------------------------------------------------------------------

    async def submit(self, sub: Submission, idempotency_key: str | None = None) -> Receipt:
        self.admit()
        self.in_flight += 1
        try:
            # Only a request with an Idempotency-Key needs its fingerprint.
            fingerprint = request_fingerprint(sub) if idempotency_key is not None else None
            for attempt in (1, 2):
                if idempotency_key is not None:
                    earlier = await self.thread.run(
                        self.node.earlier_answer, idempotency_key, fingerprint
                    )
                    if earlier is not None:
                        return earlier
                case = await self._case_files([sub.case] if sub.case else [])
                await self._fresh()
                decision = self.node.decide(
                    sub, case.get(sub.case or ""), idempotency_key, fingerprint
                )
                (failure,) = await self.commits.append((decision,))
                if failure is None:
                    self._rate.done(1)
                    return decision.receipt
                if attempt == 2 or not isinstance(failure, IntegrityError):
                    raise failure
            raise AssertionError("unreachable")
        finally:
            self.in_flight -= 1

    # --- a batch ---------------------------------------------------------------------

    async def submit_batch(self, items: Sequence[BatchItem]) -> list[Outcome]:
        """Decide every item in order (later items see the cases earlier ones changed),
        then append all that passed in one transaction. Per item its receipt, or why it
        was not appended; an item is appended whole or not at all."""
        if len(items) > self.max_batch:
            raise InvalidSubmission(f"a batch holds at most {self.max_batch} events")
        self.admit(len(items))
        self.in_flight += len(items)
        try:
            return await self._batch(items)
        finally:
            self.in_flight -= len(items)

    async def _batch(self, items: Sequence[BatchItem]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        fingerprints = [
            request_fingerprint(i.submission) if i.idempotency_key is not None else None
            for i in items
        ]
        keyed = [(n, i) for n, i in enumerate(items) if i.idempotency_key is not None]
        if keyed:
            earlier = await self.thread.run(self._earlier, keyed, fingerprints)
            for n, answer in earlier.items():
                outcomes[n] = answer
        cases = await self._case_files(
            [i.submission.case for i in items if i.submission.case is not None]
        )
        await self._fresh()
        decided: dict[int, Decision] = {}
        for n, item in enumerate(items):
            if n and n % _DECIDE_SLICE == 0:
                await self._fresh()  # a long batch refreshes a due directory off the loop
                await asyncio.sleep(0)  # and lets single requests through between slices
            if outcomes[n] is not None:
                continue
            try:
                sub = self._resolve(item, n, outcomes)
                decision = self.node.decide(
                    sub, cases.get(sub.case or ""), item.idempotency_key, fingerprints[n]
                )
            except Exception as exc:
                outcomes[n] = exc
                continue
            decided[n] = decision
            cases[decision.envelope.subject] = decision.case
            outcomes[n] = decision.receipt
        if decided:
            failures = await self.commits.append(tuple(decided.values()))
            for n, failure in zip(decided, failures, strict=True):
                if failure is not None:
                    outcomes[n] = failure
            self._rate.done(sum(1 for f in failures if f is None))
        return [o if o is not None else AssertionError("undecided") for o in outcomes]

    def _earlier(
        self, keyed: list[tuple[int, BatchItem]], fingerprints: list[str | None]
    ) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        for n, item in keyed:
            try:
                key = item.idempotency_key
                got = self.node.earlier_answer(key, fingerprints[n])
            except Exception as exc:
                out[n] = exc
                continue
            if got is not None:
                out[n] = got
        return out

    @staticmethod
    def _resolve(item: BatchItem, n: int, outcomes: list[Outcome | None]) -> Submission:
        """The item's submission with the case of the earlier item it continues."""
        if item.case_of is None:
            return item.submission
        if not 0 <= item.case_of < n:
            raise InvalidSubmission(f"case_of must name an earlier item of the batch (< {n})")
        earlier = outcomes[item.case_of]
        if not isinstance(earlier, Receipt):
            raise InvalidSubmission(f"item {item.case_of}, whose case this continues, failed")
        sub = item.submission
        return Submission(sub.event_type, sub.payload, sub.recipients, str(earlier.body["case"]))

    async def _fresh(self) -> None:
        """A directory refresh, when one is due, on the store thread: deciding on the
        event loop then finds the directory fresh without asking the registry."""
        if self.node.roster.refresh_due():
            await self.thread.run(self.node.roster.fresh)

    async def _case_files(self, pseudonyms: Sequence[str]) -> dict[str, CaseFile]:
        """The case files, from memory where they are, the rest read on the store thread
        in one go. Absent cases are absent from the result."""
        store = self.node.store
        found: dict[str, CaseFile] = {}
        missing: list[str] = []
        for p in dict.fromkeys(pseudonyms):
            cached = store.cached_case_file(p)
            if cached is None:
                missing.append(p)
            else:
                found[p] = cached
        if missing:

            def read() -> dict[str, CaseFile]:
                return {p: f for p in missing if (f := store.case_file(p)) is not None}

            found.update(await self.thread.run(read))
        return found


@dataclass
class _Rate:
    """Events appended per second, smoothed: turns the work in hand into a wait."""

    per_second: float = 0.0
    _since: float = field(default_factory=time.monotonic)
    _count: int = 0

    def done(self, n: int) -> None:
        self._count += n
        now = time.monotonic()
        elapsed = now - self._since
        if elapsed >= 1.0:
            current = self._count / elapsed
            smoothed = 0.7 * self.per_second + 0.3 * current
            self.per_second = smoothed if self.per_second else current
            self._since, self._count = now, 0

    def retry_after(self, in_hand: int) -> int:
        """Seconds until `in_hand` events would be done at the recent rate (at least 1)."""
        if self.per_second <= 0:
            return 1
        return max(1, min(60, math.ceil(in_hand / self.per_second)))
