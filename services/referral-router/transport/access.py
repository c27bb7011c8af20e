"""Who may do what on the broker: the topics and ACLs that follow from the signed directory.

Pure: a directory in, the broker's desired state out, and the difference to what the
broker holds. The operator's provisioning (`kafka_access.py`, `nrm kafka provision`)
applies it; nothing here talks to Kafka.

Each active agency of the directory's country gets one principal (read by the brokers from
its certificate subject, see deploy/kafka.py) and only this:

- WRITE and DESCRIBE on the inbox topic of every agency it may address (`may_address`);
- READ and DESCRIBE on its own inbox, DELETE on it (Kafka's DeleteRecords: a node removes
  what it stored and committed, so grants leave the bus);
- READ and DESCRIBE on its own consumer group, and no other group, so nobody can commit
  offsets that make another node skip its events;
- WRITE, READ and DESCRIBE on its own dead-letter topic, which no other agency can read.

No CREATE, no ALTER, nothing on the cluster: topics are the operator's to create. A
suspended or revoked agency (or one gone from the directory) has no bindings, so the
reconciliation deletes every ACL its principal held: its certificate stops working at
once, whatever its validity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.directory import AgencyRecord, AgencyStatus, Directory
from referral_router.transport.topics import consumer_group, dead_letter_topic, inbox_topic

INBOX_PARTITIONS = 4
DEAD_LETTER_PARTITIONS = 1
#: The time that counts for a record is when it reached the broker, not its producer's
#: claim (receivers refuse a record without it: rule TIME).
TOPIC_CONFIGS = (("message.timestamp.type", "LogAppendTime"),)
PRINCIPAL_PREFIX = "User:agency."


class ResourceType(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    DESCRIBE = "describe"
    DELETE = "delete"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule on a literal resource name, from any host."""

    resource_type: ResourceType
    resource_name: str
    principal: str
    operation: Operation

    def __str__(self) -> str:
        return (
            f"ALLOW {self.principal} {self.operation} on {self.resource_type} {self.resource_name}"
        )


@dataclass(frozen=True, order=True)
class TopicSpec:
    name: str
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BrokerAccess:
    """The broker's desired state for one country: its topics and its ACLs."""

    country: str
    topics: frozenset[TopicSpec]
    acls: frozenset[AclBinding]

    def acls_of(self, principal: str) -> frozenset[AclBinding]:
        return frozenset(a for a in self.acls if a.principal == principal)


@dataclass(frozen=True)
class AclChanges:
    """What the reconciliation must do; empty when the broker already matches."""

    create: tuple[AclBinding, ...] = ()
    delete: tuple[AclBinding, ...] = ()
    topics: tuple[TopicSpec, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.create or self.delete or self.topics)


def agency_principal(country: str, agency_id: str) -> str:
    """The principal of an agency's node certificate (subject CN=<id>,OU=<country>)."""
    inbox_topic(country, agency_id)  # the same checks on both parts
    return f"{PRINCIPAL_PREFIX}{country}.{agency_id}"


def managed(principal: str, country: str) -> bool:
    """The provisioning of `country` owns every ACL of its agencies' principals, and no
    other (the operator's own, another country's, anything set by hand)."""
    return principal.startswith(f"{PRINCIPAL_PREFIX}{country}.")


def may_address(sender: AgencyRecord, recipient: AgencyRecord) -> bool:
    """Whether `sender`'s node may publish into `recipient`'s inbox at all: both active,
    of the same country, not itself. Finer rules (R4: who may reach a consulate in a given
    case) depend on the case and stay with the routers; the broker bounds the blast
    radius of a node that ignores them to the agencies of its own country."""
    return (
        sender.id != recipient.id
        and sender.country == recipient.country
        and sender.status is AgencyStatus.ACTIVE
        and recipient.status is AgencyStatus.ACTIVE
    )


def _bindings(
    resource: ResourceType, name: str, principal: str, ops: Iterable[Operation]
) -> list[AclBinding]:
    return [AclBinding(resource, name, principal, op) for op in ops]


def plan(directory: Directory) -> BrokerAccess:
    """Topics and ACLs for the active agencies of the directory's country."""
    country = directory.country
    own = [a for a in directory.agencies if a.country == country]
    active = [a for a in own if a.status is AgencyStatus.ACTIVE]
    topics: set[TopicSpec] = set()
    acls: list[AclBinding] = []
    for agency in active:
        me = agency_principal(country, agency.id)
        inbox = inbox_topic(country, agency.id)
        dead = dead_letter_topic(country, agency.id)
        topics.add(TopicSpec(inbox, INBOX_PARTITIONS, TOPIC_CONFIGS))
        topics.add(TopicSpec(dead, DEAD_LETTER_PARTITIONS, TOPIC_CONFIGS))
        topic, group, op = ResourceType.TOPIC, ResourceType.GROUP, Operation
        acls += _bindings(topic, inbox, me, (op.READ, op.DESCRIBE, op.DELETE))
        acls += _bindings(group, consumer_group(agency.id), me, (op.READ, op.DESCRIBE))
        acls += _bindings(topic, dead, me, (op.WRITE, op.READ, op.DESCRIBE))
        for recipient in active:
            if may_address(agency, recipient):
                their_inbox = inbox_topic(country, recipient.id)
                acls += _bindings(topic, their_inbox, me, (op.WRITE, op.DESCRIBE))
    return BrokerAccess(country, frozenset(topics), frozenset(acls))


def changes(
    desired: BrokerAccess, current_acls: Iterable[AclBinding], current_topics: Iterable[str]
) -> AclChanges:
    """Create what is missing, delete what this country's provisioning owns but no longer
    wants (suspended, revoked, removed agencies; a narrowed `may_address`). Topics are
    created, never deleted: a suspended agency's inbox keeps what is waiting for it."""
    current = {a for a in current_acls if managed(a.principal, desired.country)}
    existing = set(current_topics)
    return AclChanges(
        create=tuple(sorted(desired.acls - current)),
        delete=tuple(sorted(current - desired.acls)),
        topics=tuple(sorted(t for t in desired.topics if t.name not in existing)),
    )
