"""The operator's provisioning: topics and ACLs on the brokers, as the directory says.

The desired state and the difference come from `access.py` (pure); this module reads the
broker's ACLs and topics and applies the difference, through a `KafkaTransport` whose
certificate is the operator's (a super user: the only client that may create topics and
change ACLs). aiokafka has no ACL methods (aio-libs/aiokafka#955), but it ships the wire
structures of DescribeAcls, CreateAcls and DeleteAcls; version 1 of each is sent here
(Kafka 4 accepts 1-3; aiokafka's version 2 structures are not the flexible encoding).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from contracts.directory import Directory
from referral_router.transport.access import (
    AclBinding,
    AclChanges,
    Operation,
    ResourceType,
    TopicSpec,
    changes,
    plan,
)
from referral_router.transport.base import TransportError
from referral_router.transport.kafka import KafkaTransport

log = logging.getLogger("nrm.kafka.access")

# Kafka's wire codes (org.apache.kafka.common.acl / resource).
_ANY, _LITERAL, _ALLOW = 1, 3, 3
_RESOURCE = {ResourceType.TOPIC: 2, ResourceType.GROUP: 3}
_OPERATION = {Operation.READ: 3, Operation.WRITE: 4, Operation.DELETE: 6, Operation.DESCRIBE: 8}
_RESOURCE_BACK = {v: k for k, v in _RESOURCE.items()}
_OPERATION_BACK = {v: k for k, v in _OPERATION.items()}


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        # every ACL: any resource type and pattern, any principal, host, operation
        return request_struct_class(_ANY, None, _ANY, None, None, _ANY, _ANY)


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([_wire(b) for b in self.bindings])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class([_wire(b) for b in self.bindings])


def _wire(b: AclBinding) -> tuple[Any, ...]:
    return (
        _RESOURCE[b.resource_type],
        b.resource_name,
        _LITERAL,
        b.principal,
        "*",
        _OPERATION[b.operation],
        _ALLOW,
    )


def _check(code: int, message: str | None, what: str) -> None:
    if code:
        raise TransportError(f"{what}: {for_code(code).__name__} {message or ''}".strip())


async def broker_acls(admin: AIOKafkaAdminClient, node_id: int | None = None) -> list[AclBinding]:
    """The ALLOW rules on literal topics and groups that a broker holds, from any host
    (the only kind the provisioning writes; others are left alone)."""
    response = await admin._send_request(_DescribeAcls(), node_id)
    _check(response.error_code, response.error_message, "describing ACLs")
    out: list[AclBinding] = []
    for resource_type, name, pattern, acls in response.resources:
        kind = _RESOURCE_BACK.get(resource_type)
        if kind is None or pattern != _LITERAL:
            continue
        for principal, host, operation, permission in acls:
            op = _OPERATION_BACK.get(operation)
            if op is not None and host == "*" and permission == _ALLOW:
                out.append(AclBinding(kind, name, principal, op))
    return out


async def _create_topics(
    admin: AIOKafkaAdminClient, topics: Sequence[TopicSpec], replicas: int
) -> None:
    response = await admin.create_topics(
        [NewTopic(t.name, t.partitions, replicas, topic_configs=dict(t.configs)) for t in topics]
    )
    for topic, code, message, *_ in response.topic_errors:
        if code and for_code(code) is not TopicAlreadyExistsError:
            _check(code, message, f"creating topic {topic}")


async def apply(transport: KafkaTransport, delta: AclChanges) -> None:
    """Topics first (an ACL on a topic not there yet is harmless, a producer without its
    topic is not), then new ACLs, then withdrawn ones."""
    async with transport.admin() as admin:
        if delta.topics:
            replicas = transport.settings.replication_factor or await transport.replicas(admin)
            await _create_topics(admin, delta.topics, replicas)
        if delta.create:
            response = await admin._send_request(_CreateAcls(delta.create))
            for code, message in response.creation_responses:
                _check(code, message, "creating ACLs")
        if delta.delete:
            response = await admin._send_request(_DeleteAcls(delta.delete))
            for code, message, matching in response.filter_responses:
                _check(code, message, "deleting ACLs")
                for match in matching:
                    _check(match[0], match[1], "deleting an ACL")
        if delta.topics:
            await transport.wait_for_leaders(admin, [t.name for t in delta.topics])
        await _until_every_broker_applies(admin, delta)


async def _until_every_broker_applies(
    admin: AIOKafkaAdminClient, delta: AclChanges, timeout: float = 30.0
) -> None:
    """CreateAcls answers once the controller committed; each broker's authorizer applies
    it from the metadata log a moment later. Wait for all, so that a node started right
    after provisioning (or a suspension) meets the new rules, not the old."""
    wanted, gone = set(delta.create), set(delta.delete)
    deadline = asyncio.get_running_loop().time() + timeout
    metadata = await admin.describe_cluster()
    for broker in metadata["brokers"]:
        while True:
            held = set(await broker_acls(admin, broker["node_id"]))
            if wanted <= held and not gone & held:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TransportError(f"broker {broker['node_id']} did not apply the ACLs")
            await asyncio.sleep(0.05)


async def provision(transport: KafkaTransport, directory: Directory) -> AclChanges:
    """Make the broker match the directory; returns what was changed (empty: nothing)."""
    async with transport.admin() as admin:
        current = await broker_acls(admin)
        topics = await admin.list_topics()
    delta = changes(plan(directory), current, topics)
    if delta:
        await apply(transport, delta)
        log.debug(
            "broker access for %s serial %d: %d topic(s), +%d/-%d ACL(s)",
            directory.country,
            directory.serial,
            len(delta.topics),
            len(delta.create),
            len(delta.delete),
        )
    return delta
