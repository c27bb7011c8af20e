"""The inbox loop: the receiving half of the node's conversation with the transport.

It polls this node's inbox topic, hands each poll to `Reception` (one transaction per
partition), sends dead letters to this node's own dead-letter topic, commits the offsets,
and deletes what was stored and committed from the bus (grants go with it). While the
node's directory is older than its maximum age it polls nothing: records wait on the bus
until the node can check them against a directory the registry confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.directory import DirectoryError
from referral_router import telemetry
from referral_router.receiving.reception import Outcome, Reception
from referral_router.store.thread import StoreThread
from referral_router.transport.base import CommitFailedError, Consumer, Message, Transport
from referral_router.transport.topics import dead_letter_topic

log = logging.getLogger("nrm.inbox")


@dataclass(eq=False)
class InboxLoop:
    """Consumes this node's inbox topic: apply each record, then commit its offset."""

    reception: Reception
    transport: Transport
    consumer: Consumer
    country: str
    on_outcome: Callable[[Outcome], None] | None = None
    delete_interval: float = 1.0
    #: Raises (a `DirectoryError`) while the directory is too old to act on.
    fresh: Callable[[], object] | None = None
    #: Whether `fresh` would do I/O now (then it runs in a worker thread).
    due: Callable[[], bool] | None = None
    #: Why the inbox is paused, None while it is not.
    paused: str | None = field(init=False, default=None)
    #: Offsets go to the transport at most this often while records keep coming (and
    #: whenever the inbox falls idle). The store's tracking records are what makes a
    #: record applied once; the group's offset only says where to resume, so resuming a
    #: little early costs a re-read that reception recognises, never a second apply.
    commit_interval: float = 0.5
    #: The store thread the batches are applied on (None: any worker thread).
    thread: StoreThread | None = None
    #: Records handled since start: lets a caller see the inbox settle.
    handled: int = field(init=False, default=0)
    _delivered: dict[tuple[str, int], int] = field(init=False, default_factory=dict)
    _uncommitted: dict[tuple[str, int], int] = field(init=False, default_factory=dict)
    _last_commit: float = field(init=False, default=0.0)
    _last_delete: float = field(init=False, default=0.0)

    async def poll_once(self, timeout_ms: int = 200) -> int:
        if not await self._fresh(timeout_ms):
            return 0
        records = await self.consumer.poll(max_records=500, timeout_ms=timeout_ms)
        if not records:
            await self.flush()
            return 0
        offsets: dict[tuple[str, int], int] = {}
        dead: list[Message] = []
        agency = self.reception.agency_id
        # One transaction per partition for the whole batch (group commit); each record
        # still gets its own span, continuing the sender's trace, once its outcome is known.
        spans = telemetry.ApplyBatch(agency, records)
        try:
            if self.thread is not None:
                outcomes = await self.thread.run(self.reception.apply_batch, records)
            else:
                outcomes = await asyncio.to_thread(self.reception.apply_batch, records)
        except BaseException:
            spans.abandon()
            raise
        for index, (rec, received) in enumerate(zip(records, outcomes, strict=True)):
            spans.done(index, received.outcome, received.envelope)
            if received.outcome is Outcome.DEAD_LETTERED and received.letter is not None:
                letter = received.letter
                dead.append(
                    Message(
                        dead_letter_topic(self.country, agency),
                        rec.key,
                        rec.value,
                        (
                            *rec.headers,
                            ("nrm_dead_letter_rule", letter.rule.encode()),
                            ("nrm_dead_letter_reason", letter.reason.encode()),
                            ("nrm_dead_letter_source", f"{received.source}@{rec.offset}".encode()),
                        ),
                    )
                )
                log.warning(
                    "dead-lettered %s@%d rule=%s reason=%s",
                    received.source,
                    rec.offset,
                    letter.rule,
                    letter.reason,
                )
            if self.on_outcome:
                self.on_outcome(received.outcome)
            offsets[(rec.topic, rec.partition)] = rec.offset + 1
            self.handled += 1
        if dead:
            await self.transport.ensure_topics({m.topic for m in dead}, partitions=1)
            await self.transport.publish_many(dead)
        self._uncommitted.update(offsets)
        if asyncio.get_running_loop().time() - self._last_commit >= self.commit_interval:
            await self._commit()
        await self._delete_delivered()
        return len(records)

    async def flush(self) -> None:
        """Commit what was applied and delete what was committed (the inbox is idle)."""
        await self._commit()
        await self._delete_delivered(force=True)

    async def _commit(self) -> None:
        offsets, self._uncommitted = self._uncommitted, {}
        self._last_commit = asyncio.get_running_loop().time()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            raise  # partitions moved to another member: it resumes from the last commit
        except BaseException:
            for tp, o in offsets.items():  # keep them for the next try (a newer one wins)
                self._uncommitted.setdefault(tp, o)
            raise
        self._delivered.update(offsets)

    async def _fresh(self, timeout_ms: int) -> bool:
        if self.fresh is None:
            return True
        try:
            if self.due is not None and not self.due():
                self.fresh()  # no refresh due: no I/O, no thread hop
            else:
                await asyncio.to_thread(self.fresh)
        except DirectoryError as exc:
            if self.paused is None:
                log.warning("inbox of %s paused: %s", self.reception.agency_id, exc)
            self.paused = str(exc)
            await asyncio.sleep(timeout_ms / 1000)
            return False
        if self.paused is not None:
            log.warning("inbox of %s resumed: the directory is fresh", self.reception.agency_id)
            self.paused = None
        return True

    async def run(self, stop: asyncio.Event, wait_ms: int = 1000) -> None:
        """Poll until `stop`: each poll returns as soon as records arrive, or after
        `wait_ms` with none (so an idle inbox costs a wake-up a second, not a spin). A
        failure is logged and retried after a pause, never fatal."""
        while not stop.is_set():
            try:
                await self.poll_once(timeout_ms=wait_ms)
            except Exception:
                log.exception("inbox of %s failed; retrying", self.reception.agency_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        with contextlib.suppress(Exception):  # what was applied need not be read again
            await self._commit()

    async def _delete_delivered(self, force: bool = False) -> None:
        """Stored and committed records leave the bus (grants with them), at most once
        per `delete_interval` while busy, and whenever the inbox falls idle."""
        now = asyncio.get_running_loop().time()
        if not self._delivered or (not force and now - self._last_delete < self.delete_interval):
            return
        delivered, self._delivered = self._delivered, {}
        self._last_delete = now
        await self.transport.delete_before(delivered)
