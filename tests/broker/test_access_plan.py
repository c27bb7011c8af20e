"""The broker's desired state from the directory, and the reconciliation: pure, no broker."""

from __future__ import annotations

from contracts.directory import AgencyStatus
from referral_router.transport.access import (
    AclBinding,
    Operation,
    ResourceType,
    agency_principal,
    changes,
    managed,
    plan,
)
from referral_router.transport.topics import consumer_group, dead_letter_topic, inbox_topic

from .directories import agency, directory

T, G = ResourceType.TOPIC, ResourceType.GROUP
R, W, D, DEL = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.DELETE


def _grants(access: object, principal: str) -> set[tuple[str, str, str]]:
    return {(a.resource_type, a.resource_name, a.operation) for a in access.acls_of(principal)}  # type: ignore[attr-defined]


def test_each_agency_gets_exactly_its_least_privilege() -> None:
    access = plan(directory([agency("police"), agency("shelter"), agency("authority")]))
    police = agency_principal("XA", "police")
    assert police == "User:agency.XA.police"
    assert _grants(access, police) == {
        # its own inbox: read, and delete what it stored and committed
        (T, inbox_topic("XA", "police"), R),
        (T, inbox_topic("XA", "police"), D),
        (T, inbox_topic("XA", "police"), DEL),
        # its own consumer group only
        (G, consumer_group("police"), R),
        (G, consumer_group("police"), D),
        # its own dead letters: it writes them, only it reads them
        (T, dead_letter_topic("XA", "police"), W),
        (T, dead_letter_topic("XA", "police"), R),
        (T, dead_letter_topic("XA", "police"), D),
        # the inboxes of those it may address: write, never read or delete
        (T, inbox_topic("XA", "shelter"), W),
        (T, inbox_topic("XA", "shelter"), D),
        (T, inbox_topic("XA", "authority"), W),
        (T, inbox_topic("XA", "authority"), D),
    }


def test_no_agency_may_read_or_delete_anything_but_its_own() -> None:
    agencies = ["police", "shelter", "authority", "consulate"]
    access = plan(directory([agency(a) for a in agencies]))
    for acl in access.acls:
        owner = acl.principal.rsplit(".", 1)[1]
        if acl.operation in (R, DEL):
            assert acl.resource_name in {
                inbox_topic("XA", owner),
                dead_letter_topic("XA", owner),
                consumer_group(owner),
            }, acl
        assert acl.operation in (R, W, D, DEL)  # never CREATE, ALTER, ALL, CLUSTER_ACTION


def test_suspended_revoked_and_foreign_agencies_get_nothing_and_cannot_be_written_to() -> None:
    access = plan(
        directory(
            [
                agency("police"),
                agency("shelter", status=AgencyStatus.SUSPENDED),
                agency("gone", status=AgencyStatus.REVOKED),
                agency("xb-police", country="XB"),
            ]
        )
    )
    for name in ("shelter", "gone"):
        assert not access.acls_of(agency_principal("XA", name))
    assert not access.acls_of(agency_principal("XB", "xb-police"))
    written = {a.resource_name for a in access.acls if a.operation is W}
    assert inbox_topic("XA", "shelter") not in written
    assert {t.name for t in access.topics} == {
        inbox_topic("XA", "police"),
        dead_letter_topic("XA", "police"),
    }


def test_topics_inboxes_keep_broker_time_and_are_partitioned() -> None:
    access = plan(directory([agency("police")]))
    inbox = next(t for t in access.topics if t.name == inbox_topic("XA", "police"))
    assert inbox.partitions == 4
    assert ("message.timestamp.type", "LogAppendTime") in inbox.configs


def test_reconciliation_adds_missing_and_withdraws_a_suspended_agencys_acls() -> None:
    before = plan(directory([agency("police"), agency("shelter")]))
    after = plan(
        directory([agency("police"), agency("shelter", status=AgencyStatus.SUSPENDED)], serial=2)
    )
    shelter = agency_principal("XA", "shelter")
    delta = changes(after, before.acls, [t.name for t in before.topics])
    assert not delta.create and not delta.topics
    withdrawn = set(delta.delete)
    assert before.acls_of(shelter) <= withdrawn  # every one of its own
    assert AclBinding(T, inbox_topic("XA", "shelter"), agency_principal("XA", "police"), W) in (
        withdrawn
    )
    assert not changes(after, after.acls, [t.name for t in after.topics])


def test_reconciliation_leaves_acls_it_does_not_own_alone() -> None:
    desired = plan(directory([agency("police")]))
    foreign = [
        AclBinding(T, "audit-export", "User:operator", R),
        AclBinding(T, inbox_topic("XB", "x"), agency_principal("XB", "x"), R),
        AclBinding(T, "other", "User:agency.XAB.x", R),
    ]
    delta = changes(desired, [*desired.acls, *foreign], [t.name for t in desired.topics])
    assert not delta
    assert managed(agency_principal("XA", "x"), "XA")
    assert not managed(agency_principal("XB", "x"), "XA")
    assert not managed("User:agency.XAB.x", "XA")


def test_a_new_agency_gets_its_topics_created() -> None:
    desired = plan(directory([agency("police"), agency("newcomer")]))
    old = plan(directory([agency("police")]))
    delta = changes(desired, old.acls, [t.name for t in old.topics])
    assert {t.name for t in delta.topics} == {
        inbox_topic("XA", "newcomer"),
        dead_letter_topic("XA", "newcomer"),
    }
    assert {a.principal for a in delta.create} == {
        agency_principal("XA", "newcomer"),
        agency_principal("XA", "police"),  # may now write to the newcomer
    }
