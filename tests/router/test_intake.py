"""The intake under concurrency, with a real store, real sealing and a real directory:
concurrent requests share transactions (group commit), a batch is one transaction with
every event judged on its own, what the node cannot take in time is refused at once,
and nothing is appended before the keys it is sealed under are kept."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.directory import Directory
from contracts.events import ConsentRecorded, RiskAssessed
from contracts.policy import load_policy
from contracts.vocabulary import Role
from referral_router.rules.lifecycle import RuleViolation
from referral_router.rules.roster import Roster, UnknownAgency
from referral_router.sending.intake import BatchItem, Intake, Overloaded
from referral_router.sending.node import AgencyNode, Receipt, Submission
from referral_router.store.case_store import SENT, CaseStore, Committed
from referral_router.store.thread import StoreThread
from tests.agencies import NodeParts, country, node_parts
from tests.router.test_node import screening

XA = country(
    "XA",
    {
        "authority": Role.COMPETENT_AUTHORITY,
        "police": Role.FIRST_RESPONDER,
        "child-protection": Role.CHILD_PROTECTION,
    },
)


class Parts:
    def __init__(self, parts: NodeParts, intake: Intake) -> None:
        self.parts, self.intake = parts, intake
        self.store: CaseStore = parts.store
        self.commits: list[Committed] = []
        self.store.on_commit(self.commits.append)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    p = node_parts(tmp_path / "authority", XA, "authority")
    node = AgencyNode("authority", "XA", p.store, XA.roster(), p.seal, load_policy("XA"))
    thread = StoreThread("authority")
    yield Parts(p, Intake(node, thread))
    thread.close()
    p.close()


def opening() -> Submission:
    return Submission("case.screened", screening(), ("police", "child-protection"))


def risk(case: str, serious: bool = False) -> Submission:
    payload = RiskAssessed(serious_risk=serious, assessed_by_officer="ca-1", findings="noted")
    return Submission("risk.assessed", payload, ("police",), case)


def consent(case_of: int, n: int) -> BatchItem:
    payload = ConsentRecorded(
        consent_id=f"c-{n}",
        recipients=["police"],
        categories=["identity"],
        recorded_by_officer="ca-1",
    )
    return BatchItem(Submission("consent.recorded", payload, ("police",)), case_of=case_of)


def sent(store: CaseStore) -> list[str]:
    return [e.envelope.type for e in store.log(0, 10_000) if e.direction == SENT]


async def test_concurrent_requests_share_transactions(parts: Parts) -> None:
    receipts = await asyncio.gather(*(parts.intake.submit(opening()) for _ in range(40)))
    assert all(r.status_code == 201 for r in receipts)
    assert len({r.body["case"] for r in receipts}) == 40
    assert sent(parts.store) == ["case.screened"] * 40
    # Fewer transactions than events: requests that came while one committed went in
    # the next, together.
    assert 1 <= len(parts.commits) < 40
    assert sum(len(c.envelopes) for c in parts.commits) == 40


async def test_two_appends_on_one_case_at_once_are_both_kept(parts: Parts) -> None:
    """Both were decided on the same version; the group commit refuses the second, which
    is decided again on the newer state instead of failing its request."""
    case = (await parts.intake.submit(opening())).body["case"]
    a, b = await asyncio.gather(parts.intake.submit(risk(case)), parts.intake.submit(risk(case)))
    assert a.status_code == b.status_code == 201 and a.body["event_id"] != b.body["event_id"]
    file = parts.store.case_file(case)
    assert file is not None and len(file.state.event_ids) == 3


async def test_a_batch_is_one_transaction_and_each_event_stands_alone(parts: Parts) -> None:
    unknown = Submission("case.screened", screening(), ("nobody-registered",))
    child = Submission("case.screened", screening("child"), ("police",))  # R2: no child prot.
    items = [
        BatchItem(opening()),
        consent(0, 1),
        BatchItem(unknown),
        consent(2, 2),  # continues the refused one: refused too, alone
        BatchItem(child),
        consent(0, 3),
    ]
    before = len(parts.commits)
    outcomes = await parts.intake.submit_batch(items)
    kinds = [type(o) for o in outcomes]
    assert kinds[0] is kinds[1] is kinds[5] is Receipt
    assert isinstance(outcomes[2], UnknownAgency)
    assert isinstance(outcomes[4], RuleViolation) and outcomes[4].rule == "R2"
    assert not isinstance(outcomes[3], Receipt)
    assert len(parts.commits) == before + 1  # one group commit for the whole batch
    assert sent(parts.store) == ["case.screened", "consent.recorded", "consent.recorded"]
    first = outcomes[0]
    assert isinstance(first, Receipt)
    assert {o.body["case"] for o in outcomes if isinstance(o, Receipt)} == {first.body["case"]}


async def test_a_batch_with_a_key_per_event_is_answered_again_not_appended(parts: Parts) -> None:
    items = [BatchItem(opening(), idempotency_key="legacy-1"), consent(0, 1)]
    once = await parts.intake.submit_batch(items)
    again = await parts.intake.submit_batch([BatchItem(opening(), idempotency_key="legacy-1")])
    assert isinstance(once[0], Receipt) and isinstance(again[0], Receipt)
    assert again[0].body == once[0].body
    assert sent(parts.store) == ["case.screened", "consent.recorded"]


async def test_work_beyond_what_fits_is_refused_at_once(parts: Parts) -> None:
    intake = parts.intake
    intake.in_flight = intake.max_in_flight  # as if that many requests were in work
    assert intake.saturated()
    with pytest.raises(Overloaded) as refused:
        await intake.submit(opening())
    assert refused.value.retry_after >= 1
    assert refused.value.headers == {"Retry-After": str(refused.value.retry_after)}
    assert sent(parts.store) == []  # nothing recorded
    intake.in_flight = 0
    assert (await intake.submit(opening())).status_code == 201


async def test_nothing_is_appended_before_its_new_case_keys_are_kept(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new case's keys are kept (fsynced) in the same group commit, before the events
    sealed under them; if that fails, nothing of the batch is appended, and the keys are
    kept by the next commit instead."""
    seal = parts.parts.seal
    original = seal.case_keys.put_many
    calls: list[int] = []

    def failing(keys: Any) -> None:
        calls.append(len(keys))
        raise OSError("disk full")

    monkeypatch.setattr(seal.case_keys, "put_many", failing)
    with pytest.raises(OSError):
        await parts.intake.submit(opening())
    assert calls and sent(parts.store) == []
    monkeypatch.setattr(seal.case_keys, "put_many", original)
    receipt = await parts.intake.submit(opening())
    assert receipt.status_code == 201
    case = receipt.body["case"]
    for stored in (parts.store.envelopes(case)[0][1],):
        wraps = stored.sealed["wraps"]
        assert "authority" in wraps and "child-protection" in wraps
        for reader, wrap in wraps.items():  # every key an envelope is wrapped under is kept
            assert seal.case_keys.get(case, "authority", reader, wrap["kid"]) is not None


class AlwaysDue:
    """A directory source whose refresh is always due; notes the threads that refresh."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.refreshed_on: list[int] = []

    def current(self) -> Directory:
        self.refreshed_on.append(threading.get_ident())
        return self.directory

    def cached(self) -> Directory:
        return self.directory

    def check_fresh(self, refresh: bool = True) -> Directory:
        return self.current() if refresh else self.directory

    def age(self) -> timedelta | None:
        return timedelta(0)

    def refresh_due(self) -> bool:
        return True


async def test_the_directory_is_never_fetched_on_the_event_loop(tmp_path: Path) -> None:
    """A refresh may block on the registry (over the network, or deadlock a node whose
    registry is served on the same loop): deciding a long batch, or a single event,
    refreshes on the store thread only."""
    p = node_parts(tmp_path / "authority", XA, "authority")
    source = AlwaysDue(XA.roster().directory)
    node = AgencyNode("authority", "XA", p.store, Roster(source), p.seal, load_policy("XA"))
    thread = StoreThread("authority")
    try:
        intake = Intake(node, thread)
        loop_thread = threading.get_ident()
        outcomes = await intake.submit_batch([BatchItem(opening()) for _ in range(40)])
        assert all(isinstance(o, Receipt) for o in outcomes)
        assert (await intake.submit(opening())).status_code == 201
        assert len(source.refreshed_on) >= 3  # before the batch, between slices, single
        assert loop_thread not in source.refreshed_on
    finally:
        thread.close()
        p.close()
