"""Reception trusting nothing but signatures, the directory and its own view: the time a
record reached the transport, replays under a known id, its own country's deadlines,
and the origin side's memory of a refused asylum case (kept across restarts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.kafka_binding import ENVELOPE_CONTENT_TYPE, encode
from contracts.policy import load_policy
from contracts.restrictions import Restrictions
from contracts.vocabulary import Role
from referral_router.receiving.provenance import Domestic
from referral_router.receiving.reception import Outcome, Reception
from referral_router.store.case_store import CaseStore
from referral_router.transport.base import Record
from tests.agencies import new_case
from tests.router.test_reception import (
    ME,
    TOPIC,
    FakeParties,
    FakeSealing,
    FakeSignatures,
    envelope,
    logged,
    record,
)

XA = load_policy("XA")


def node(store: CaseStore, roles: frozenset[Role], policy: bool = False) -> Reception:
    domestic = Domestic(ME, FakeParties(), FakeSignatures())
    return Reception(
        ME,
        store,
        FakeSealing(store),
        {ENVELOPE_CONTENT_TYPE: domestic},
        roles=lambda: roles,
        policy=XA if policy else None,
    )


def open_store(path: Path, kind: type[CaseStore] = CaseStore) -> CaseStore:
    return kind(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})


def test_a_record_without_the_transports_arrival_stamp_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    env = envelope(new_case())
    key, value, headers = encode(env, b"grant")
    producer_time = int(datetime.now(UTC).timestamp() * 1000)
    got = node(store, frozenset({Role.SERVICE_PROVIDER})).apply(
        Record(TOPIC, 0, 0, key, value, headers, producer_time, appended_at=False)
    )
    assert got.letter is not None and got.letter.rule == "TIME"
    assert "LogAppendTime" in got.letter.reason
    assert logged(store) == []
    store.close()


def test_an_envelope_from_the_future_is_refused_and_one_from_the_past_is_not(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "s.db")
    reception = node(store, frozenset({Role.SERVICE_PROVIDER}))
    later = envelope(new_case(), time=datetime.now(UTC) + timedelta(hours=1))
    got = reception.apply(record(later, 0))
    assert got.letter is not None and got.letter.rule == "TIME"
    earlier = envelope(new_case(), time=datetime.now(UTC) - timedelta(days=2))
    assert reception.apply(record(earlier, 1)).outcome is Outcome.APPLIED
    store.close()


def test_a_known_id_with_other_content_is_a_replay(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    reception = node(store, frozenset({Role.SERVICE_PROVIDER}))
    env = envelope(new_case())
    assert reception.apply(record(env, 0)).outcome is Outcome.APPLIED
    assert reception.apply(record(env, 1)).outcome is Outcome.DUPLICATE  # the same bytes
    other = env.model_copy(update={"operational": {**env.operational, "age_status": "child"}})
    got = reception.apply(record(other, 2))
    assert got.letter is not None and got.letter.rule == "REPLAY"
    assert [e for _, e in logged(store)] == [str(env.id)]
    store.close()


def test_deadlines_of_its_own_country_are_recomputed(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    reception = node(store, frozenset({Role.SERVICE_PROVIDER}), policy=True)
    case = new_case()
    screening = envelope(case)
    honest = {
        "reasonable-grounds": screening.time + timedelta(days=XA.reasonable_grounds_target_days)
    }
    assert (
        reception.apply(record(screening.model_copy(update={"deadlines": honest}), 0)).letter
        is None
    )
    other = envelope(new_case())
    pushed = {"reasonable-grounds": other.time + timedelta(days=90)}
    got = reception.apply(record(other.model_copy(update={"deadlines": pushed}), 1))
    assert got.letter is not None and got.letter.rule == "R8"
    foreign = envelope(new_case(), source="nrm://XB/police")
    got = reception.apply(record(foreign.model_copy(update={"deadlines": pushed}), 2))
    assert got.outcome is Outcome.APPLIED  # XB's deadlines are XB's policy's, not ours
    store.close()


def test_the_origin_side_remembers_a_refused_asylum_case_across_a_restart(
    tmp_path: Path,
) -> None:
    """A consulate's node refuses the flagged envelope, and then, restarted, an unflagged
    one of the same case; another case is unaffected."""
    consulate = frozenset({Role.CONSULATE})
    case = new_case()
    store = open_store(tmp_path / "s.db")
    flagged = envelope(
        case,
        "risk.assessed",
        sender="authority",
        operational={"assessed_by_officer": "ca-1"},
        restrictions=Restrictions(no_origin_contact=True),
    )
    got = node(store, consulate).apply(record(flagged, 0))
    assert got.letter is not None and got.letter.rule == "R4"
    assert store.origin_barred(case)
    store.close()
    store = open_store(tmp_path / "s.db")
    unflagged = flagged.model_copy(update={"id": envelope(case).id, "restrictions": Restrictions()})
    got = node(store, consulate).apply(record(unflagged, 1))
    assert got.letter is not None and got.letter.rule == "R4"
    assert "takes nothing more" in got.letter.reason
    elsewhere = flagged.model_copy(update={"subject": new_case(), "restrictions": Restrictions()})
    assert node(store, consulate).apply(record(elsewhere, 2)).outcome is Outcome.APPLIED
    assert logged(store) == [("received", str(elsewhere.id))]
    store.close()


class _CountingStore(CaseStore):
    """A real store that counts the R4 marker's lookups."""

    asked = 0

    def origin_barred(self, pseudonym: str) -> bool:
        self.asked += 1
        return super().origin_barred(pseudonym)


def test_only_the_origin_side_looks_up_the_r4_marker(tmp_path: Path) -> None:
    """The marker matters on the country of origin's side only: elsewhere its lookup (a
    store read per delivery that finds nothing) is not made."""
    store = open_store(tmp_path / "s.db", _CountingStore)
    assert isinstance(store, _CountingStore)
    responder = node(store, frozenset({Role.FIRST_RESPONDER}))
    assert responder.apply(record(envelope(new_case()), 0)).outcome is Outcome.APPLIED
    assert store.asked == 0
    consulate = node(store, frozenset({Role.CONSULATE}))
    assert consulate.apply(record(envelope(new_case()), 1)).outcome is Outcome.APPLIED
    assert store.asked == 1
    store.close()
