"""Reception alone: a real store, fakes at its Protocols (the parties, the signature check,
the sealing, a second provenance). Every record ends applied, duplicate or dead-lettered
with its rule, with the partition's position in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import Envelope, dataschema_for
from contracts.kafka_binding import ENVELOPE_CONTENT_TYPE, decode, encode
from contracts.restrictions import Restrictions
from contracts.sealing import Forwarding, GrantInvalid, PublicKeyLookup, SignatureInvalid
from contracts.vocabulary import Role
from referral_router.receiving.provenance import Admitted, Domestic, Refused
from referral_router.receiving.reception import Outcome, Reception
from referral_router.rules.roster import UnknownAgency
from referral_router.store.case_store import RECEIVED, CaseStore
from referral_router.transport.base import Record
from tests.agencies import clear_envelope, new_case

ME = "shelter"
ROLES = {
    "police": Role.FIRST_RESPONDER,
    "authority": Role.COMPETENT_AUTHORITY,
    "shelter": Role.SERVICE_PROVIDER,
    "asylum": Role.ASYLUM,
    "consulate": Role.CONSULATE,
    "suspended": Role.FIRST_RESPONDER,
}
GENUINE = {"alg": "Ed25519", "kid": "test-key", "sig": "genuine"}
TOPIC = "nrm.XA.inbox.shelter"
SCREENED = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "adult",
    "screened_by_officer": "p-17",
}


@dataclass
class FakeParties:
    """The roster: known roles, and agencies that are registered but suspended."""

    suspended: frozenset[str] = frozenset({"suspended"})

    def active(self, agency_id: str) -> object:
        if agency_id not in ROLES:
            raise UnknownAgency(f"agency {agency_id!r} is not in the registry's directory")
        if agency_id in self.suspended:
            raise UnknownAgency(f"agency {agency_id!r} is suspended")
        return agency_id

    def roles(self, agency_ids: Iterable[str]) -> dict[str, frozenset[Role]]:
        return {a: frozenset({ROLES[a]}) if a in ROLES else frozenset() for a in agency_ids}


class FakeSignatures:
    """The signature check: only the genuine signature verifies."""

    def verify(self, envelope: Envelope, arrived: datetime) -> None:
        if envelope.signature != GENUINE:
            raise SignatureInvalid("signature does not verify")

    def signing_keys_at(self, arrived: datetime) -> PublicKeyLookup:
        def lookup(agency: str, kid: str, at: datetime) -> Any:
            raise AssertionError("the fake sealing checks no grant signature")

        return lookup


@dataclass
class FakeSealing:
    """Keeps what reception hands it; a grant reading b"forged" is refused."""

    store: CaseStore
    accepted: list[tuple[bytes, str, str]] = field(default_factory=list)
    erased: list[tuple[str, list[str]]] = field(default_factory=list)
    #: How many of the accepted grants were kept durably before the last commit.
    kept: int = 0
    passed_on: list[tuple[str, list[str]]] = field(default_factory=list)

    def accept_grant(
        self, grant: bytes, case: str, sender: str, signing_keys: PublicKeyLookup | None = None
    ) -> None:
        if grant == b"forged":
            raise GrantInvalid("grant signature does not verify")
        self.accepted.append((grant, case, sender))

    def erase(self, case: str) -> int:
        file = self.store.case_file(case)
        recorded = [e.type for _, e in self.store.envelopes(case)] if file else []
        self.erased.append((case, recorded))
        return 1

    def keep_new_keys(self) -> None:
        self.kept = len(self.accepted)

    def pass_on_order(self, order: Envelope, holders: Iterable[str]) -> list[Forwarding]:
        self.passed_on.append((order.subject, sorted(holders)))
        return []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    s = CaseStore(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    )
    yield s
    s.close()


@pytest.fixture
def sealing(store: CaseStore) -> FakeSealing:
    return FakeSealing(store)


@pytest.fixture
def reception(store: CaseStore, sealing: FakeSealing) -> Reception:
    domestic = Domestic(ME, FakeParties(), FakeSignatures())
    return Reception(ME, store, sealing, {ENVELOPE_CONTENT_TYPE: domestic})


def envelope(
    case: str,
    event_type: str = "case.screened",
    sender: str = "police",
    recipients: tuple[str, ...] = (ME,),
    operational: dict[str, Any] | None = None,
    **changes: Any,
) -> Envelope:
    clear = SCREENED if operational is None else operational
    env = clear_envelope(sender, recipients, case, event_type, clear, signature=GENUINE)
    return env.model_copy(update=changes) if changes else env


def record(
    env: Envelope, offset: int, grant: bytes | None = b"grant", partition: int = 0
) -> Record:
    key, value, headers = encode(env, grant)
    now = int(datetime.now(UTC).timestamp() * 1000)
    return Record(TOPIC, partition, offset, key, value, headers, now, appended_at=True)


def logged(store: CaseStore) -> list[tuple[str, str]]:
    return [(e.direction, str(e.envelope.id)) for e in store.log(0, 1000)]


def test_an_applied_envelope_is_recorded_with_its_position(
    reception: Reception, store: CaseStore, sealing: FakeSealing
) -> None:
    env = envelope(new_case())
    got = reception.apply(record(env, 4))
    assert (got.outcome, got.source, got.offset, got.envelope) == (
        Outcome.APPLIED,
        f"{TOPIC}:0",
        4,
        env,
    )
    assert logged(store) == [(RECEIVED, str(env.id))]
    assert store.cursor(f"{TOPIC}:0").position == 5
    assert sealing.accepted == [(b"grant", env.subject, "police")]
    case = store.case_file(env.subject)
    assert case is not None and case.state.screened and case.state.originator == "police"


def test_a_redelivery_and_a_repeat_are_duplicates_and_a_repeat_grant_is_not_taken(
    reception: Reception, store: CaseStore, sealing: FakeSealing
) -> None:
    env = envelope(new_case())
    assert reception.apply(record(env, 0)).outcome is Outcome.APPLIED
    # The same record again (its offset was applied already): nothing is decided again.
    assert reception.apply(record(env, 0, grant=b"again")).outcome is Outcome.DUPLICATE
    # The same event at a new offset (a sender's republish): the event id tells.
    repeat = reception.apply(record(env, 1, grant=b"repeat"))
    assert (repeat.outcome, repeat.envelope) == (Outcome.DUPLICATE, env)
    assert [g for g, _, _ in sealing.accepted] == [b"grant"]
    assert logged(store) == [(RECEIVED, str(env.id))]
    assert store.cursor(f"{TOPIC}:0").position == 2
    assert store.dead_letters() == []


def _screened_before(case: str) -> list[Envelope]:
    return [envelope(case)]


def _asylum_before(case: str) -> list[Envelope]:
    return [
        envelope(case, recipients=(ME, "asylum")),
        envelope(
            case,
            "asylum.lodged",
            sender="asylum",
            operational={},
            restrictions=Restrictions(no_origin_contact=True),
        ),
    ]


# (case -> envelope at the test's offset, what is applied before it, rule, part of reason)
DEAD_LETTER_CASES: list[tuple[str, Any, Any, str, str]] = [
    ("unknown sender", lambda c: envelope(c, sender="nobody"), None, "R6", "'nobody'"),
    ("suspended sender", lambda c: envelope(c, sender="suspended"), None, "R6", "suspended"),
    (
        "forged signature",
        lambda c: envelope(c, signature={**GENUINE, "sig": "forged"}),
        None,
        "SIGNATURE",
        "SignatureInvalid",
    ),
    (
        "clear part off its schema",
        lambda c: envelope(c, operational={**SCREENED, "age_status": "ancient"}),
        None,
        "CONTRACT",
        "operational.age_status",
    ),
    (
        "schema naming another type",
        lambda c: envelope(c, dataschema=dataschema_for("consent.recorded")),
        None,
        "CONTRACT",
        "dataschema names consent.recorded",
    ),
    (
        "not addressed to this node",
        lambda c: envelope(c, recipients=("authority",)),
        None,
        "R6",
        "shelter is not a recipient",
    ),
    ("screened twice", envelope, _screened_before, "LIFECYCLE", "already screened"),
    (
        "decision from a first responder",
        lambda c: envelope(
            c,
            "identification.decided",
            operational={"stage": "reasonable-grounds", "decided_by_officer": "x"},
        ),
        _screened_before,
        "ROLE",
        "competent-authority",
    ),
    (
        "a consulate in an asylum case",
        lambda c: envelope(
            c,
            "case.closed",
            sender="authority",
            recipients=(ME, "consulate"),
            operational={"reason_code": "other", "decided_by_officer": "ca-1"},
        ),
        _asylum_before,
        "R4",
        "no contact with the country of origin",
    ),
]


@pytest.mark.parametrize(
    ("event", "before", "rule", "reason"),
    [pytest.param(*c[1:], id=c[0]) for c in DEAD_LETTER_CASES],
)
def test_a_refused_envelope_is_dead_lettered_with_its_rule_and_keeps_nothing(
    reception: Reception,
    store: CaseStore,
    sealing: FakeSealing,
    event: Any,
    before: Any,
    rule: str,
    reason: str,
) -> None:
    case = new_case()
    earlier = before(case) if before else []
    for i, env in enumerate(earlier):  # what the node received before, on another partition
        assert reception.apply(record(env, i, grant=None, partition=1)).outcome is Outcome.APPLIED
    entries = logged(store)
    env = event(case)
    got = reception.apply(record(env, 7))
    assert got.outcome is Outcome.DEAD_LETTERED and got.letter is not None
    assert (got.letter.rule, got.letter.position, got.letter.event_id) == (rule, 7, str(env.id))
    assert reason in got.letter.reason
    assert [(d.rule, d.reason, d.sender) for _, d in store.dead_letters()] == [
        (rule, got.letter.reason, env.sender)
    ]
    assert logged(store) == entries  # nothing appended
    assert sealing.accepted == []  # the grant that came with it was not kept
    assert store.cursor(f"{TOPIC}:0").position == 8  # never blocks the partition


def test_a_record_that_is_no_envelope_or_of_an_unknown_kind_is_dead_lettered(
    reception: Reception, store: CaseStore
) -> None:
    case = new_case()
    garbage = Record(TOPIC, 0, 0, case.encode(), b"not json", ())
    key, value, headers = encode(envelope(case))
    kind = tuple((n, b"application/x-other" if n == "content-type" else v) for n, v in headers)
    other = Record(TOPIC, 0, 1, key, value, kind)
    letters = [reception.apply(r).letter for r in (garbage, other)]
    assert [(d.rule, d.event_id) for d in letters if d] == [("CONTRACT", ""), ("CONTRACT", "")]
    assert letters[0] is not None and "CloudEvents header" in letters[0].reason
    assert letters[1] is not None and "application/x-other" in letters[1].reason
    assert store.log() == []


def test_a_refused_grant_dead_letters_its_envelope(reception: Reception, store: CaseStore) -> None:
    env = envelope(new_case())
    got = reception.apply(record(env, 0, grant=b"forged"))
    assert got.letter is not None and got.letter.rule == "SEALING"
    assert "grant signature does not verify" in got.letter.reason
    assert store.log() == []


def test_a_batch_commits_once_and_a_poison_record_blocks_nothing(
    reception: Reception, store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[tuple[list[tuple[str, int]], int]] = []
    original = store.save_positions

    def counted(positions: list[tuple[str, int]], *objs: Any) -> bool:
        commits.append((sorted(positions), len(objs)))
        return original(positions, *objs)

    monkeypatch.setattr(store, "save_positions", counted)
    a, b, c = (envelope(new_case()) for _ in range(3))
    poison = Record(TOPIC, 0, 11, b"case-00000000", b"{}", ())
    batch = [record(a, 10), poison, record(b, 12), record(c, 5, partition=3)]
    outcomes = [r.outcome for r in reception.apply_batch(batch)]
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    # One transaction for the poll: every case file and letter, each partition's position.
    assert commits == [([(f"{TOPIC}:0", 13), (f"{TOPIC}:3", 6)], 4)]
    assert store.tracked(f"{TOPIC}:0") == 13 and store.tracked(f"{TOPIC}:3") == 6
    assert {i for _, i in logged(store)} == {str(e.id) for e in (a, b, c)}


def test_a_batch_meeting_a_replica_is_redone_record_by_record(
    reception: Reception, store: CaseStore, sealing: FakeSealing, tmp_path: Path
) -> None:
    """A replica of the node (another process on the same store) applies the partition's
    first record while this one holds the batch: nothing is lost or applied twice."""
    case = new_case()
    first = envelope(case)
    second = envelope(
        case,
        "consent.recorded",
        operational={
            "consent_id": "c1",
            "recipients": [ME],
            "categories": ["identity"],
            "recorded_by_officer": "p-17",
        },
    )
    replica_store = CaseStore(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    )
    replica = Reception(ME, replica_store, FakeSealing(replica_store), reception.provenances)
    original = store.save_tracked
    raced: list[bool] = []

    def replica_first(stream: str, to: int, *objs: Any) -> bool:
        if not raced:
            raced.append(True)
            assert replica.apply(record(first, 0)).outcome is Outcome.APPLIED
        return original(stream, to, *objs)

    store.save_tracked = replica_first  # type: ignore[method-assign]
    try:
        outcomes = [r.outcome for r in reception.apply_batch([record(first, 0), record(second, 1)])]
    finally:
        replica_store.close()
    assert outcomes == [Outcome.DUPLICATE, Outcome.APPLIED]
    assert logged(store) == [(RECEIVED, str(first.id)), (RECEIVED, str(second.id))]
    assert store.cursor(f"{TOPIC}:0").position == 2


def test_an_erasure_order_destroys_the_keys_before_it_is_recorded(
    reception: Reception, store: CaseStore, sealing: FakeSealing
) -> None:
    case = new_case()
    reception.apply(record(envelope(case), 0))
    order = envelope(
        case,
        "case.erasure-ordered",
        sender="authority",
        operational={"legal_basis": "erasure-request", "ordered_by_officer": "ca-1"},
    )
    assert reception.apply(record(order, 1, grant=None)).outcome is Outcome.APPLIED
    assert sealing.erased == [(case, ["case.screened"])]  # the order was not recorded yet
    file = store.case_file(case)
    assert file is not None and file.state.erased


@dataclass
class Tagged:
    """A second provenance: envelopes under another content type, with something to keep."""

    kept: list[str] = field(default_factory=list)

    def admit(self, record: Record) -> Admitted:
        headers = tuple(h for h in record.headers if h[0] != "content-type")
        env = decode(record.key, record.value, headers).envelope
        if env.signature != GENUINE:
            raise Refused("SIGNATURE", "not believed", env)
        roles = FakeParties().roles((env.sender, *env.recipients))
        return Admitted(env, roles, "gateway", datetime.now(UTC))

    def keep(self, admitted: Admitted) -> None:
        self.kept.append(str(admitted.envelope.id))

    def forget(self, case: str) -> None:
        self.kept.clear()


def test_another_provenance_takes_the_same_path_after_verification(
    reception: Reception, store: CaseStore
) -> None:
    """What is believed differs by provenance; duplicates, rules and dead letters do not.
    What it keeps beside an envelope is kept only for an applied one."""
    tagged = Tagged()
    reception.believe("application/x-tagged", tagged)

    def tagged_record(env: Envelope, offset: int) -> Record:
        key, value, headers = encode(env)
        kind = (("content-type", b"application/x-tagged"),)
        ce = tuple(h for h in headers if h[0] != "content-type")
        return Record("federation:XB", 0, offset, key, value, ce + kind)

    case = new_case()
    relayed = envelope(case, recipients=("gateway",))  # addressed to whom it reached here
    rules_refuse = envelope(case, recipients=("gateway",))  # a second screening
    forged = envelope(new_case(), recipients=("gateway",), signature={**GENUINE, "sig": "x"})
    outcomes = [
        reception.apply(tagged_record(e, i))
        for i, e in enumerate([relayed, relayed, rules_refuse, forged])
    ]
    assert [o.outcome for o in outcomes] == [
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.DEAD_LETTERED,
        Outcome.DEAD_LETTERED,
    ]
    assert [o.letter.rule for o in outcomes if o.letter] == ["LIFECYCLE", "SIGNATURE"]
    assert tagged.kept == [str(relayed.id)]
    assert logged(store) == [(RECEIVED, str(relayed.id))]
    assert store.cursor("federation:XB:0").position == 4


def test_a_traceparent_that_is_not_text_does_not_block_the_partition(
    reception: Reception, store: CaseStore
) -> None:
    """Trace context is a hint beside the envelope: bytes that are not UTF-8 there must not
    stop the record (it used to raise out of reception, so the inbox retried it forever)."""
    env = envelope(new_case())
    key, value, headers = encode(env)
    now = int(datetime.now(UTC).timestamp() * 1000)
    odd = (*headers, ("traceparent", b"\xff"))
    got = reception.apply(Record(TOPIC, 0, 0, key, value, odd, now, appended_at=True))
    assert got.outcome is Outcome.APPLIED
    assert logged(store) == [(RECEIVED, str(env.id))]
