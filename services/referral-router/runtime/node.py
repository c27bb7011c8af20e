"""One running router node: store, directory, sealing, HTTP app, relay and inbox loop.

The same runtime serves the embedded bus (SQLite, in-process transport) and a production
node (PostgreSQL, Kafka): only the store environment and the transport differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from contracts.agency_token import (
    FixedParties,
    FixedParty,
    ReplayCache,
    TokenVerifier,
    issue_token,
)
from contracts.directory import KeyUse
from contracts.kafka_binding import ENVELOPE_CONTENT_TYPE, FORWARDING_CONTENT_TYPE
from contracts.keystore import AgencyKeys
from contracts.policy import load_policy
from referral_router import telemetry
from referral_router.api.app import create_app
from referral_router.audit.log import AuditLog
from referral_router.audit.witnessing import witnessing_for
from referral_router.console.app import Console
from referral_router.console.settings import PREFIX as CONSOLE_PREFIX
from referral_router.console.settings import ConsoleSettings
from referral_router.federation.inbound import CrossBorder
from referral_router.federation.seal import FederatedSeal
from referral_router.federation.trust import PeerTrust
from referral_router.receiving.inbox import InboxLoop
from referral_router.receiving.passed_on import PassedOn
from referral_router.receiving.provenance import Domestic
from referral_router.receiving.reception import Reception
from referral_router.rules.roster import DirectorySource, Roster
from referral_router.runtime.peer_parts import PeerParts
from referral_router.sealing.case_keys import SqliteCaseKeyStore
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.sealing.node_seal import NodeSeal
from referral_router.sending.intake import Intake
from referral_router.sending.node import AgencyNode
from referral_router.sending.relay import OutboxRelay
from referral_router.store.case_store import CaseStore
from referral_router.store.feed import LogFeed
from referral_router.store.thread import StoreThread
from referral_router.transport.base import Transport
from referral_router.transport.topics import consumer_group, inbox_topic

log = logging.getLogger("nrm.node")


def sqlite_store_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


@dataclass
class NodeSettings:
    agency_id: str
    country: str
    store_env: Mapping[str, str]
    case_keys_path: Path
    master_key: bytes
    audience: str
    audit_path: Path | None = None
    checkpoint_interval: float = 60.0
    log_origin_domain: str = "nrm.example"
    witness_url: str | None = None  # the registry, witnessing checkpoints; None: off
    witness_audience: str | None = None  # default nrm-registry:<country>
    witness_verify: ssl.SSLContext | bool = True  # the witness's TLS: local CA or system
    #: Longest wait for inbox records in one poll (it returns as soon as any arrive).
    poll_interval: float = 1.0
    #: Events in work at once; more are refused with 503 and Retry-After.
    max_in_flight: int = 256
    console: ConsoleSettings | None = None  # the web console under /console; None: off
    public_url: str | None = None  # the base URL clients call, behind a proxy (DPoP htu)
    #: agency -> its router's base URL, to ask for its part of a disclosure record;
    #: None: the router URLs of the directory.
    peers: Callable[[], Mapping[str, str]] | None = None
    #: Where the forwardings this node received are kept (default: beside the case keys):
    #: its own country's (R10), and a peer's once federated.
    forwardings_path: Path | None = None
    #: The notifier's identity: its tokens may read the log and append escalations.
    notifier: FixedParty | None = None
    extra: dict[str, str] = field(default_factory=dict)


class NodeRuntime:
    """Builds a node from its settings, keys, directory and transport; runs its loops.

    With `peer_trust` (what this country's registry says of its federations), the node
    also takes forwardings from a peer country's gateway off its inbox and opens them."""

    def __init__(
        self,
        settings: NodeSettings,
        keys: AgencyKeys,
        directory: DirectorySource,
        transport: Transport,
        peer_trust: PeerTrust | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.store = CaseStore(env=dict(settings.store_env))
        self.thread = StoreThread(settings.agency_id)
        self.feed = LogFeed(self.store)
        self.roster = Roster(directory)
        self.case_keys = SqliteCaseKeyStore(settings.case_keys_path, settings.master_key)
        #: Forwardings this node received (R10, and across a border once federated).
        self.forwardings = ForwardingStore(
            settings.forwardings_path or settings.case_keys_path.parent / "forwardings.db"
        )
        self.seal = NodeSeal(
            settings.agency_id, keys, self.roster, self.case_keys, self.forwardings
        )
        policy = load_policy(settings.country)
        self.node = AgencyNode(
            settings.agency_id, settings.country, self.store, self.roster, self.seal, policy
        )
        domestic = Domestic(settings.agency_id, self.roster, self.seal)
        self.passed_on = PassedOn(
            settings.agency_id, settings.country, self.roster, self.seal, self.forwardings
        )
        self.reception = Reception(
            settings.agency_id,
            self.store,
            self.seal,
            {ENVELOPE_CONTENT_TYPE: domestic, FORWARDING_CONTENT_TYPE: self.passed_on},
            roles=lambda: self.roster.roles_of(settings.agency_id),
            policy=policy,
        )
        if peer_trust is not None:
            self.passed_on.foreign = CrossBorder(settings.agency_id, peer_trust, self.forwardings)
            self.node.sealer = FederatedSeal(self.seal, self.forwardings, peer_trust)
        self.relay = OutboxRelay(
            self.store, transport, self._country_of, self.seal, feed=self.feed, thread=self.thread
        )
        self.intake = Intake(self.node, self.thread, max_in_flight=settings.max_in_flight)
        # Tokens are checked on the event loop: against the directory as cached (the
        # inbox loop and the intake refresh it, off the loop, when a refresh is due).
        self.verifier = TokenVerifier(
            directory.cached, settings.audience, replay_cache=ReplayCache()
        )
        self.audit = (
            AuditLog(
                self.store,
                settings.audit_path,
                f"{settings.log_origin_domain}/{settings.country}/{settings.agency_id}",
                keys.current(KeyUse.SIGNING).ed25519(),
            )
            if settings.audit_path is not None
            else None
        )
        if self.audit is not None:
            self.audit.follow()
        self.witnessing = witnessing_for(
            self.audit,
            keys,
            settings.witness_url,
            settings.witness_audience,
            settings.witness_verify,
        )
        notifier = None
        if settings.notifier is not None:
            parties = FixedParties(settings.notifier)
            notifier = (
                settings.notifier.id,
                TokenVerifier(lambda: parties, settings.audience, replay_cache=ReplayCache()),
            )
        self.app: FastAPI = create_app(
            self.node,
            self.verifier,
            self.audit,
            public_url=settings.public_url,
            intake=self.intake,
            feed=self.feed,
            notifier=notifier,
            forwarder=self.seal,
            peer_parts=PeerParts(settings.agency_id, keys, settings.peers or self._directory_urls),
        )
        self._keys = keys
        self.console = (
            Console(self.node, settings.console, settings.master_key, self._peer_token)
            if settings.console is not None
            else None
        )
        if self.console is not None:
            self.app.mount(CONSOLE_PREFIX, self.console.app)
        telemetry.instrument_app(self.app, settings.agency_id)
        telemetry.watch_relay(settings.agency_id, self.relay.pending)
        self._consumer = transport.consumer(
            consumer_group(settings.agency_id), [inbox_topic(settings.country, settings.agency_id)]
        )
        self.inbox = InboxLoop(
            self.reception,
            transport,
            self._consumer,
            settings.country,
            fresh=self.roster.fresh,
            due=self.roster.refresh_due,
            thread=self.thread,
        )
        self._stopping = asyncio.Event()
        self.app.state.lags = self.lags

    async def lags(self) -> dict[str, int]:
        """What `/readyz` and `nrm status` show: events stored but not yet published
        (relay) and records on the inbox topic not yet applied and committed (inbox)."""
        relay = await asyncio.to_thread(self.relay.pending)
        return {"relay": relay, "inbox": await self._consumer.lag()}

    def _peer_token(self, agency_id: str) -> str:
        """A one-time token for this node's agency calling `agency_id`'s node (the
        oversight console reads other nodes' audit logs)."""
        assert self.settings.console is not None
        pair = self._keys.current(KeyUse.SIGNING)
        audience = self.settings.console.peer_audience.format(agency=agency_id)
        return issue_token(self.settings.agency_id, pair.key_id, pair.ed25519(), audience)

    def _directory_urls(self) -> dict[str, str]:
        """Every agency's router URL as the directory lists it."""
        return {a.id: a.endpoints.router_url for a in self.roster.directory.agencies}

    def _country_of(self, agency_id: str) -> str:
        record = self.roster.directory.agency(agency_id)
        return record.country if record else self.settings.country

    async def start(self) -> None:
        topic = inbox_topic(self.settings.country, self.settings.agency_id)
        await self.transport.ensure_topics([topic], partitions=4)
        await self._consumer.start()
        log.debug("node %s consuming %s", self.settings.agency_id, topic)

    async def run(self) -> None:
        """Relay and inbox (and periodic log checkpoints), until stop(): each sleeps until
        there is work (a commit, a record); a failure is logged and retried, never fatal."""
        self._running = asyncio.current_task()
        tasks = [
            asyncio.create_task(self.relay.run(self._stopping)),
            asyncio.create_task(
                self.inbox.run(self._stopping, int(self.settings.poll_interval * 1000))
            ),
        ]
        if self.audit is not None:
            periodic = self.witnessing.run if self.witnessing is not None else self.audit.run
            self._checkpoints = asyncio.create_task(
                periodic(self.settings.checkpoint_interval, self._stopping)
            )
        if self.console is not None:
            self._console = asyncio.create_task(self.console.run(self._stopping))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def stop(self) -> None:
        self._stopping.set()
        self.feed.close()  # long polls answer and log streams end now: no server waits
        running = getattr(self, "_running", None)
        if running is not None and running is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(running, timeout=5)
        for name in ("_checkpoints", "_console"):
            task = getattr(self, name, None)
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=5)
        if self.console is not None:
            self.console.close()
        await self._consumer.stop()
        if self.witnessing is not None:
            self.witnessing.close()
        self.thread.close()
        if self.audit is not None:
            self.audit.close()
        self.case_keys.close()
        self.forwardings.close()
        self.store.close()
        log.debug("node %s stopped: stores closed", self.settings.agency_id)
