"""The node's event store, the same tests on SQLite and on PostgreSQL.

PostgreSQL is the production store, chosen by configuration alone (eventsourcing's
`PERSISTENCE_MODULE=eventsourcing.postgres` and `POSTGRES_*`); CaseStore has no
backend-specific code, so these tests are what shows both backends keep its promises:
append with tracking in one transaction, redeliveries recognised, dead letters kept,
the log paged in commit order. Each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import Envelope
from contracts.vocabulary import Role
from referral_router.sending.relay import RELAY_TRACKING
from referral_router.store.case_store import RECEIVED, SENT, CaseFile, CaseStore, DeadLetter
from tests.agencies import clear_envelope

ROLES = {
    "police": frozenset({Role.FIRST_RESPONDER}),
    "shelter": frozenset({Role.SERVICE_PROVIDER}),
}


def postgres_env(server: Any, schema: str) -> dict[str, str]:
    """Store settings for a fresh schema of the session's PostgreSQL server."""
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        **server.env(),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "2",
    }


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        return postgres_env(server, f"t_{secrets.token_hex(6)}")
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}


@pytest.fixture
def store(store_env: dict[str, str]) -> Iterator[CaseStore]:
    s = CaseStore(env=store_env)
    yield s
    s.close()


def envelope(
    case: str, event_type: str = "case.screened", sender: str = "police", **op: Any
) -> Envelope:
    to = ("shelter",) if sender == "police" else ("police",)
    return clear_envelope(sender, to, case, event_type, op)


def new_case() -> str:
    return "case-" + secrets.token_hex(8)


def test_record_sent_appends_to_the_case_file_and_the_log(store: CaseStore) -> None:
    case = new_case()
    env = envelope(case)
    store.record_sent(store.case_file_or_new(case), env, ROLES)
    got = store.case_file(case)
    assert got is not None and got.state.screened
    assert [(d, e.id) for d, e in store.envelopes(case)] == [(SENT, env.id)]
    (entry,) = store.log()
    assert (entry.direction, entry.envelope) == (SENT, env)
    assert store.max_position() == entry.position
    assert store.case_file(new_case()) is None


def receive(store: CaseStore, env: Envelope, source: str, offset: int) -> bool:
    """As reception records one applied record: the envelope and the partition's cursor."""
    case = store.case_file_or_new(env.subject)
    case.record(env, RECEIVED, ROLES)
    return store.cursor(source).advance(offset + 1, case)


def test_a_cursor_moves_with_what_was_received_and_recognises_a_redelivery(
    store: CaseStore,
) -> None:
    case = new_case()
    env = envelope(case, sender="shelter")
    source = "nrm.XA.inbox.police:2"
    assert store.cursor(source).position == 0
    assert receive(store, env, source, 7) is True
    assert store.cursor(source).position == 8
    # The same record again (a redelivery after a crash before the offset commit).
    assert receive(store, env, source, 7) is False
    got = store.case_file(case)
    assert got is not None
    assert [(d, e.id) for d, e in store.envelopes(case)] == [(RECEIVED, env.id)]
    assert len(store.log()) == 1
    # A later position of the same partition is applied; other partitions are separate.
    second = envelope(
        case, "consent.recorded", sender="shelter", consent_id="c1", recipients=["police"]
    )
    assert receive(store, second, source, 8) is True
    assert receive(store, envelope(new_case()), "nrm.XA.inbox.police:0", 0)
    assert store.cursor(source).position == 9
    assert store.cursor("nrm.XA.inbox.police:0").position == 1
    # A position behind the cursor is refused as a redelivery too, and saves nothing.
    assert receive(store, envelope(new_case()), source, 3) is False
    assert len(store.log()) == 3


def test_dead_letters_are_kept_once_with_their_reason(store: CaseStore) -> None:
    source = "nrm.XA.inbox.police:1"
    env = envelope(new_case())

    def letter(position: int) -> DeadLetter:
        return DeadLetter.record(source, position, "SIGNATURE", "bad signature", env)

    assert store.record_dead_letter(letter(3)) is True
    assert store.record_dead_letter(letter(3)) is False  # redelivered poison: kept once
    assert store.record_dead_letter(DeadLetter.record(source, 4, "CONTRACT", "not json")) is True
    got = store.dead_letters()
    assert [(d.position, d.rule, d.reason, d.event_id, d.sender) for _, d in got] == [
        (3, "SIGNATURE", "bad signature", str(env.id), "police"),
        (4, "CONTRACT", "not json", "", ""),
    ]
    assert store.cursor(source).position == 5
    assert store.log() == []  # dead letters are not envelopes


def test_log_pages_in_commit_order_and_skips_other_records(store: CaseStore) -> None:
    sent: list[Envelope] = []
    for i in range(7):
        case = new_case()
        env = envelope(case)
        store.record_sent(store.case_file_or_new(case), env, ROLES)
        sent.append(env)
        if i == 3:  # a non-envelope record in the middle of the log
            store.record_dead_letter(DeadLetter.record("nrm.XA.inbox.police:0", i, "CONTRACT", "x"))
    seen: list[Envelope] = []
    after = 0
    while page := store.log(after, limit=3):
        seen.extend(e.envelope for e in page)
        positions = [e.position for e in page]
        assert positions == sorted(positions) and positions[0] > after
        after = positions[-1]
    assert seen == sent
    everything = store.log()
    assert store.log(everything[1].position, 10, upto=everything[3].position) == everything[2:4]


def test_relay_position_is_durable_tracking(store_env: dict[str, str]) -> None:
    first = CaseStore(env=store_env)
    case = new_case()
    first.record_sent(first.case_file_or_new(case), envelope(case), ROLES)
    assert first.cursor(RELAY_TRACKING).position == 0
    page = first.log_page(0, 100)
    assert page is not None and page.end == first.max_position()
    assert first.cursor(RELAY_TRACKING).advance(page.end)  # a cursor moves on its own too
    assert first.log_page(page.end, 100) is None
    first.close()
    again = CaseStore(env=store_env)  # a restarted node reads the same store
    try:
        assert again.cursor(RELAY_TRACKING).position == again.max_position() >= 1
        assert [e.envelope.subject for e in again.log()] == [case]
    finally:
        again.close()


def test_a_log_page_skips_past_records_that_are_not_envelopes(store: CaseStore) -> None:
    case = new_case()
    store.record_sent(store.case_file_or_new(case), envelope(case), ROLES)
    store.record_dead_letter(DeadLetter.record("nrm.XA.inbox.police:0", 0, "CONTRACT", "x"))
    page = store.log_page(0, 1)
    assert page is not None and [e.envelope.subject for e in page.entries] == [case]
    assert page.end == page.entries[0].position  # a full page: continue after its last
    rest = store.log_page(page.end, 1)
    assert rest is not None and rest.entries == []
    assert rest.end == store.max_position() > page.end  # past the dead letter


def test_concurrent_append_to_one_case_is_refused(store: CaseStore) -> None:
    from eventsourcing.persistence import IntegrityError

    case = new_case()
    store.record_sent(store.case_file_or_new(case), envelope(case), ROLES)
    a, b = store.case_file(case), store.case_file(case)
    assert a is not None and b is not None
    store.record_sent(
        a, envelope(case, "consent.recorded", consent_id="c1", recipients=["police"]), ROLES
    )
    with pytest.raises(IntegrityError):
        store.record_sent(
            b, envelope(case, "consent.recorded", consent_id="c2", recipients=["police"]), ROLES
        )
    got = store.case_file(case)
    assert got is not None and isinstance(got, CaseFile) and len(got.state.event_ids) == 2
    assert len(store.envelopes(case)) == 2


def test_several_stream_positions_commit_in_one_transaction(store: CaseStore) -> None:
    """A poll of several partitions keeps every partition's position with what it wrote,
    all or nothing (on both backends: the recorder is taught to store several)."""
    from eventsourcing.persistence import IntegrityError

    case = new_case()
    file = store.case_file_or_new(case)
    file.record(envelope(case, sender="shelter"), RECEIVED, ROLES)
    assert store.save_positions([("inbox:0", 3), ("inbox:1", 7)], file)
    assert (store.tracked("inbox:0"), store.tracked("inbox:1")) == (3, 7)
    before = store.max_position()
    again = store.case_file_or_new(new_case())
    again.record(envelope(again.pseudonym, sender="shelter"), RECEIVED, ROLES)
    with pytest.raises(IntegrityError):  # inbox:1 is at 7 already: a redelivery
        store.save_positions([("inbox:0", 9), ("inbox:1", 7)], again)
    assert store.max_position() == before and store.tracked("inbox:0") == 3
