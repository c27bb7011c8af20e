"""The embedded default: a whole country's bus in one process.

The registry, one router node per agency and the notifier, each a real HTTP server on
127.0.0.1, sharing a durable in-process transport (Kafka's semantics in one SQLite file)
or a secured Kafka (`nrm.broker.SecuredKafka`): then each node connects with its own
certificate (its own principal), and the operator's provisioning keeps the broker's
topics and ACLs following the directory. Agencies are registered through the registry's
API with keys generated into local keystores; nodes trust only the registry's signed
directory.

Data layout under the data folder (one folder per country)::

    <country>/registry.db            the registry's event store
    <country>/bus.db                 the in-process transport (when not on Kafka)
    <country>/secrets/               keystores and master keys (0600; demo only)
    <country>/nodes/<agency>/        store.db, case-keys.db, audit.db, console.db
    <country>/anchor.json            the registry's trust anchor (public)
    <country>/endpoints.json         URLs and token audiences while `nrm up` runs
    <country>/clients/               DPoP keys `nrm token` made for curl (0600)

Each node serves its web console under /console, with one demo officer (`demo_officer`),
whose generated password is kept beside the keystores (demo only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from contracts import endpoints
from contracts.agency_token import FixedParty, issue_token
from contracts.directory import KeyUse, TrustAnchor
from contracts.directory_client import DirectoryClient
from contracts.endpoints import router_audience
from contracts.keystore import AgencyKeys, generate_agency_keys, open_keystore, seal_keystore
from contracts.vocabulary import Role, ServiceKind
from notifier.runtime import NotifierRuntime, NotifierSettings, ServedAgency
from nrm import serving
from nrm.broker import SecuredKafka, keep_provisioned
from nrm.pki import LOCAL_NAMES, OPERATOR, LocalCA, agency, service
from nrm.ports import free_port
from nrm.serving import ServerTls, verify_context
from referral_router.console.officers import OfficerBook
from referral_router.console.settings import ConsoleSettings
from referral_router.federation.trust import PeerTrust
from referral_router.runtime.directory_memory import SerialMemory
from referral_router.runtime.node import NodeRuntime, NodeSettings, sqlite_store_env
from referral_router.runtime.registries import RegistryFetch
from referral_router.transport.base import Transport
from referral_router.transport.factory import open_transport
from registry.api import create_app as create_registry_app
from registry.application import Registry, RegistryConfig

log = logging.getLogger("nrm.embedded")

OPERATOR_ID = "registry-operator"
REGISTRY_SIGNING = "registry-signing"  # the keystore of the registry's directory key


@dataclass(frozen=True)
class AgencySpec:
    id: str
    name: str
    roles: tuple[Role, ...]
    services: tuple[ServiceKind, ...] = ()


DEMO_AGENCIES: tuple[AgencySpec, ...] = (
    AgencySpec("border-police", "Border Police, airport unit", (Role.FIRST_RESPONDER,)),
    AgencySpec(
        "child-protection",
        "Child Protection Service",
        (Role.CHILD_PROTECTION,),
        (ServiceKind.GUARDIANSHIP,),
    ),
    AgencySpec(
        "safe-house",
        "Safe House (NGO shelter)",
        (Role.SERVICE_PROVIDER,),
        (ServiceKind.SHELTER, ServiceKind.PSYCHOLOGICAL),
    ),
    AgencySpec("nrm-authority", "National Identification Authority", (Role.COMPETENT_AUTHORITY,)),
    AgencySpec("immigration", "Immigration Service", (Role.IMMIGRATION,)),
    AgencySpec("asylum-office", "Asylum Office", (Role.ASYLUM,)),
    AgencySpec("consulate-xb", "Consulate of country XB", (Role.CONSULATE,)),
    AgencySpec("rapporteur", "National Rapporteur", (Role.OVERSIGHT,)),
)


async def register_agencies(
    registry_url: str,
    country: str,
    agencies: Sequence[AgencySpec],
    keychain: Keychain,
    operator_token: Callable[[], str],
    verify: ssl.SSLContext | bool = True,
) -> dict[str, AgencyKeys]:
    """Register each agency with its keystore's public keys, as the operator; one
    registered on an earlier run is kept as the registry has it. Returns their keys."""
    keys: dict[str, AgencyKeys] = {}
    async with httpx.AsyncClient(base_url=registry_url, timeout=30, verify=verify) as client:
        for spec in agencies:
            keys[spec.id] = own = keychain.keys(spec.id)
            body = {
                "id": spec.id,
                "name": spec.name,
                "country": country,
                "roles": [str(r) for r in spec.roles],
                "services": [str(s) for s in spec.services],
                "endpoints": {
                    "router_url": f"http://127.0.0.1/{spec.id}",
                    "webhook_url": f"http://127.0.0.1/{spec.id}/webhook",
                },
                "keys": [
                    {
                        "key_id": p.key_id,
                        "use": str(p.use),
                        "alg": str(p.alg),
                        "public_key": p.public_record().public_key,
                    }
                    for p in (own.current(KeyUse.SIGNING), own.current(KeyUse.ENCRYPTION))
                ],
            }
            headers = {"Authorization": f"Bearer {operator_token()}"}
            resp = await client.post("/v1/agencies", json=body, headers=headers)
            if resp.status_code == 409 and "already" in resp.text:
                continue  # registered on an earlier run: the registry keeps it
            if resp.status_code != 201:
                raise RuntimeError(f"registering {spec.id}: {resp.status_code} {resp.text}")
    return keys


def demo_officer(agency_id: str) -> str:
    """The demo officer of an agency: its initials and a badge number (sh-0001)."""
    return "-".join(("".join(part[0] for part in agency_id.split("-")), "0001"))


def _secret_file(path: Path, make: bytes) -> bytes:
    """Read a demo secret, or create it with mode 0600."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(make)
    return make


class Keychain:
    """The demo's keystores: passphrase-encrypted files, one per agency (0600)."""

    def __init__(self, folder: Path, passphrase: str | None = None) -> None:
        self.folder = folder
        passphrase = passphrase or os.environ.get("NRM_KEYSTORE_PASSPHRASE")
        self.passphrase = (
            passphrase
            or _secret_file(folder / "passphrase", secrets.token_urlsafe(24).encode()).decode()
        )

    @classmethod
    def existing(cls, folder: Path) -> Keychain:
        """The keychain a bus made earlier; never creates a passphrase or a key. Its
        passphrase file, when there is one, is the truth for that bus."""
        kept = folder / "passphrase"
        if kept.exists():
            return cls(folder, kept.read_text())
        if "NRM_KEYSTORE_PASSPHRASE" not in os.environ:
            raise FileNotFoundError(f"no keystores under {folder}: has `nrm up` run here?")
        return cls(folder)

    def path(self, agency_id: str) -> Path:
        return self.folder / f"{agency_id}.keystore"

    def keys(self, agency_id: str) -> AgencyKeys:
        path = self.path(agency_id)
        if path.exists():
            return open_keystore(path.read_bytes(), self.passphrase)
        keys = generate_agency_keys(agency_id)
        _secret_file(path, seal_keystore(keys, self.passphrase, log2_n=14))
        return keys

    def existing_keys(self, agency_id: str) -> AgencyKeys:
        path = self.path(agency_id)
        if not path.exists():
            raise FileNotFoundError(f"no keystore for {agency_id!r} in {self.folder}")
        return open_keystore(path.read_bytes(), self.passphrase)

    def master_key(self, agency_id: str) -> bytes:
        return _secret_file(self.folder / f"{agency_id}.master-key", secrets.token_bytes(32))


@dataclass
class Served:
    """A running uvicorn server and its base URL."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def serve_app(app: Any, port: int, tls: ServerTls | None = None) -> Served:
    """Serve an ASGI app on 127.0.0.1:`port` in this process's loop, among others: the
    caller, not each server, owns SIGINT and SIGTERM (`nrm.serving`); returns once it
    listens (or raises its error, e.g. port in use)."""
    server = serving.server(app, "127.0.0.1", port, tls)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return Served(f"{serving.scheme(tls)}://127.0.0.1:{port}", server, task)


class CountryAccess:
    """What callers of a running country's bus use, whether its pieces run in this
    process (`CountryBus`) or each as its own (`nrm.topology.CountryProcesses`): the
    operator's and the agencies' tokens, clients of the nodes' APIs, subscriptions, and
    the registry's verified directory. A subclass sets the attributes below."""

    country: str
    root: Path  # the country folder
    agencies: Sequence[AgencySpec]
    registry_url: str
    urls: dict[str, str]
    keychain: Keychain
    agency_keys: dict[str, AgencyKeys]
    operator_keys: AgencyKeys
    #: How often a node asks the registry for a newer directory (a suspension, a rotated
    #: or compromised key reaches every node within it).
    directory_refresh: timedelta = timedelta(seconds=5)
    #: The agencies whose nodes run (what a node is depends on the topology).
    nodes: Mapping[str, Any]
    #: Shifts the notifier's domain clock (deadlines), so a demo can show an escalation.
    clock_offset: timedelta
    #: What a client of the registry (and of HTTPS nodes) trusts: the local CA, or the
    #: system's CAs (True).
    verify: ssl.SSLContext | bool = True
    #: The notifier's own keys (never an agency's): the nodes accept its scoped tokens.
    notifier_keys: AgencyKeys

    async def settle(self, timeout: float = 30.0) -> None:
        """Until every node has published what it stored and applied its inbox."""
        raise NotImplementedError

    async def serve(self, app: Any) -> str:
        """Serve an ASGI app beside the bus (e.g. the agencies' webhook receiver)."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def anchor(self) -> TrustAnchor:
        """The registry's trust anchor: the public half of its directory-signing key."""
        signing = self.keychain.keys(REGISTRY_SIGNING).current(KeyUse.SIGNING)
        return TrustAnchor.for_key(self.country, signing.key_id, signing.ed25519().public_key())

    @property
    def registry_audience(self) -> str:
        return f"nrm-registry:{self.country}"

    def operator_token(self) -> str:
        pair = self.operator_keys.current(KeyUse.SIGNING)
        return issue_token(OPERATOR_ID, pair.key_id, pair.ed25519(), self.registry_audience)

    def endpoints(self) -> endpoints.Endpoints:
        """Where this bus listens, for `nrm token`, `nrm url`, `nrm audit` and clients."""
        notifier_url: str | None = getattr(self, "notifier_url", None)
        notifier = (
            endpoints.Service(url=notifier_url, audience=endpoints.notifier_audience(self.country))
            if notifier_url is not None
            else None
        )
        return endpoints.Endpoints(
            country=self.country,
            pid=os.getpid(),
            registry=endpoints.Service(url=self.registry_url, audience=self.registry_audience),
            notifier=notifier,
            nodes={
                spec.id: endpoints.Node(
                    url=self.urls[spec.id],
                    audience=router_audience(spec.id),
                    roles=tuple(str(r) for r in spec.roles),
                )
                for spec in self.agencies
                if spec.id in self.urls
            },
        )

    def write_endpoints(self) -> Path:
        """The trust anchor and the address book, in the country folder; the address
        book goes when the bus stops."""
        (self.root / endpoints.ANCHOR_FILE).write_text(
            self.anchor().model_dump_json(indent=2) + "\n"
        )
        path = self.root / endpoints.FILE_NAME
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.endpoints().dumps())
        os.replace(tmp, path)
        self._endpoints_file = path
        return path

    def forget_endpoints(self) -> None:
        """The address book goes with the bus (the anchor stays: it is public)."""
        endpoints_file: Path | None = getattr(self, "_endpoints_file", None)
        if endpoints_file is not None:
            endpoints_file.unlink(missing_ok=True)

    async def _register_agencies(self) -> None:
        """This country's agencies registered by the operator (kept from an earlier run)."""
        self.agency_keys.update(
            await register_agencies(
                self.registry_url,
                self.country,
                self.agencies,
                self.keychain,
                self.operator_token,
                self.verify,
            )
        )

    @property
    def notifier_party(self) -> FixedParty:
        """The notifier as the registry and the nodes know it: its id and public keys."""
        keys = self.notifier_keys
        return FixedParty(keys.agency_id, tuple(p.public_record() for p in keys.pairs))

    def keystore(self, agency_id: str) -> tuple[Path, str]:
        """An agency's keystore file and its passphrase (the oversight tools open it)."""
        return self.keychain.path(agency_id), self.keychain.passphrase

    async def subscribe(
        self, agency_id: str, webhook_url: str, event_types: Sequence[str]
    ) -> dict[str, Any]:
        """Register a webhook subscription in the registry (as the operator); returns it
        with its secret, which the registry shows this once."""
        async with httpx.AsyncClient(
            base_url=self.registry_url, timeout=30, verify=self.verify
        ) as client:
            resp = await client.post(
                f"/v1/agencies/{agency_id}/subscriptions",
                json={"webhook_url": webhook_url, "event_types": list(event_types)},
                headers={"Authorization": f"Bearer {self.operator_token()}"},
            )
        if resp.status_code != 201:
            raise RuntimeError(f"subscribing {agency_id}: {resp.status_code} {resp.text}")
        result: dict[str, Any] = resp.json()
        return result

    def directory_client(self, memory: SerialMemory | None = None) -> DirectoryClient:
        """A client of the registry's directory; with `memory`, a node's, which never
        takes a directory older than the last one it accepted, restarts included."""
        url = f"{self.registry_url}/v1/directory"

        def fetch() -> bytes:
            resp = httpx.get(url, timeout=10, verify=self.verify)
            resp.raise_for_status()
            return resp.content

        return DirectoryClient(
            fetch,
            self.anchor(),
            refresh_every=self.directory_refresh,
            last_seen=memory.load() if memory else None,
            remember=memory.remember if memory else None,
        )

    def token(self, agency_id: str, node: str | None = None) -> str:
        """A short-lived token for `agency_id` calling `node`'s router (its own by
        default; an oversight body calls other nodes' audit APIs)."""
        pair = self.agency_keys[agency_id].current(KeyUse.SIGNING)
        return issue_token(
            agency_id,
            pair.key_id,
            pair.ed25519(),
            router_audience(node or agency_id),
            now=datetime.now(UTC),
        )

    def client(self, agency_id: str) -> httpx.AsyncClient:
        """An HTTP client of `agency_id`'s router that signs a fresh token per request."""

        async def auth(request: httpx.Request) -> None:
            request.headers["Authorization"] = f"Bearer {self.token(agency_id)}"

        return httpx.AsyncClient(
            base_url=self.urls[agency_id],
            timeout=30,
            verify=self.verify,
            event_hooks={"request": [auth]},
        )


@dataclass
class CountryBus(CountryAccess):
    """One country's registry, nodes and transport, running in this process."""

    country: str
    data_dir: Path
    agencies: Sequence[AgencySpec] = DEMO_AGENCIES
    transport_url: str | None = None  # memory: or sqlite:<path>; Kafka comes as `kafka`
    port: int = 0
    console: bool = True  # each node serves its web console, with a demo officer
    #: How often each node asks the registry for a newer directory (a suspension, a
    #: rotated or compromised key reaches every node within it).
    directory_refresh: timedelta = timedelta(seconds=5)
    #: Nodes take forwardings from peer countries this registry federates with.
    federated: bool = False
    kafka: SecuredKafka | None = None
    #: Serve the registry over HTTPS with a certificate of this CA (other processes,
    #: `nrm node serve` above all, reach it); the in-process parts stay on HTTP.
    https: LocalCA | None = None
    nodes: dict[str, NodeRuntime] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    _served: list[Served] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        #: Shifts the notifier's clock (deadlines), so a demo can show an escalation.
        self.clock_offset = timedelta(0)
        self.notifier: NotifierRuntime | None = None
        self.root = self.data_dir / self.country
        self.keychain = Keychain(self.root / "secrets")
        self.agency_keys: dict[str, AgencyKeys] = {}
        self.transport: Transport | None = None
        #: agency -> (officer id, password) of its demo officer, when consoles are on.
        self.officers: dict[str, tuple[str, str]] = {}
        self.transports: dict[str, Transport] = {}  # per node on Kafka (own principal)
        self.verify = verify_context(self.https.ca_file) if self.https else True
        if (self.transport_url or "").startswith("kafka://"):
            raise ValueError("Kafka needs TLS and a principal per node: pass kafka=SecuredKafka")

    def _next_port(self) -> int:
        if self.port == 0:
            return free_port()
        self.port += 1
        return self.port - 1

    # --- start ---------------------------------------------------------------------

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        await self._start_registry()
        await self._register_agencies()
        if self.kafka is not None:
            await self._provision_broker()
        else:
            url = self.transport_url or f"sqlite:{self.root / 'bus.db'}"
            self.transport = open_transport(url)
        for spec in self.agencies:
            await self._start_node(spec)
        await self._start_notifier()

    async def _provision_broker(self, interval: float = 1.0) -> None:
        """The operator's provisioning: topics and ACLs for the registered agencies now,
        then following the directory (a suspended agency loses its ACLs within
        `interval`)."""
        from referral_router.transport.kafka_access import provision

        assert self.kafka is not None
        self.transport = self.kafka.transport(OPERATOR)
        client = self.directory_client()
        await provision(self.transport, await asyncio.to_thread(client.refresh))
        self._keeper_stop = asyncio.Event()
        keeper = keep_provisioned(self.transport, client.refresh, self._keeper_stop, interval)
        self._tasks.append(asyncio.create_task(keeper, name="broker-access"))

    def _node_transport(self, agency_id: str) -> Transport:
        if self.kafka is None:
            assert self.transport is not None
            return self.transport
        transport = self.kafka.transport(agency(agency_id, self.country))
        self.transports[agency_id] = transport
        return transport

    def domain_time(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    async def _start_notifier(self) -> None:
        """One notifier for the country's agencies: it follows each node's log, delivers
        signed webhooks to the agencies' subscriptions and escalates missed deadlines."""
        settings = NotifierSettings(
            db_path=self.root / "notifier.db",
            audience=endpoints.notifier_audience(self.country),
            registry_url=self.registry_url,
            registry_audience=self.registry_config.token_audience,
            operator_id=OPERATOR_ID,
            operator_keys=tuple(p.public_record() for p in self.operator_keys.pairs),
            subscription_refresh_seconds=1.0,
            verify=self.verify,
        )
        served = [
            ServedAgency(spec.id, self.urls[spec.id], router_audience=router_audience(spec.id))
            for spec in self.agencies
        ]
        client = self.directory_client()
        await asyncio.to_thread(client.refresh)
        self.notifier_audience = settings.audience
        self.notifier = NotifierRuntime(
            settings, served, client.current, self.notifier_keys, clock=self.domain_time
        )
        self.notifier_url = (await self._serve(self.notifier.app)).url
        self._tasks.append(asyncio.create_task(self.notifier.run(), name="notifier"))

    async def _start_registry(self) -> None:
        reg_keys = self.keychain.keys(REGISTRY_SIGNING)
        op_keys = self.keychain.keys(OPERATOR_ID)
        self.operator_keys = op_keys
        self.notifier_keys = self.keychain.keys(f"notifier-{self.country.lower()}")
        signing = reg_keys.current(KeyUse.SIGNING)
        self.registry_config = RegistryConfig(
            country=self.country,
            signing_key=signing.ed25519(),
            signing_key_id=signing.key_id,
            operator_id=OPERATOR_ID,
            operator_keys=tuple(p.public_record() for p in op_keys.pairs),
            notifier=self.notifier_party,
        )
        env = sqlite_store_env(self.root / "registry.db")
        self.registry = Registry(self.registry_config, env=env)
        tls = None
        if self.https is not None:
            tls = ServerTls(self.https.ensure(service("registry"), names=LOCAL_NAMES))
        served = await self._serve(create_registry_app(self.registry), tls)
        self.registry_url = served.url

    async def _start_node(self, spec: AgencySpec) -> None:
        folder = self.root / "nodes" / spec.id
        folder.mkdir(parents=True, exist_ok=True)
        settings = NodeSettings(
            agency_id=spec.id,
            country=self.country,
            store_env=sqlite_store_env(folder / "store.db"),
            case_keys_path=folder / "case-keys.db",
            master_key=self.keychain.master_key(spec.id),
            audience=router_audience(spec.id),
            audit_path=folder / "audit.db",
            witness_url=self.registry_url,  # the registry witnesses every node's log
            witness_audience=self.registry_config.token_audience,
            console=self._console_settings(folder) if self.console else None,
            peers=lambda: dict(self.urls),  # the directory's router URLs are placeholders here
            witness_verify=self.verify,
            notifier=self.notifier_party,
        )
        client = self.directory_client(SerialMemory(folder / "directory-serial.json"))
        await asyncio.to_thread(client.refresh)
        peers = None
        if self.federated:  # each node its own beliefs, as when it runs as its own process
            fetch = RegistryFetch(verify=self.verify)
            self._closers.append(fetch.close)
            anchor = self.registry_config.anchor()
            peers = PeerTrust(self.country, anchor, self.registry_url, fetch)
        keys = self.agency_keys[spec.id]
        transport = self._node_transport(spec.id)
        runtime = NodeRuntime(settings, keys, client, transport, peers)
        await runtime.start()
        self.nodes[spec.id] = runtime
        if runtime.console is not None:
            self.officers[spec.id] = await asyncio.to_thread(
                self._ensure_demo_officer, spec, runtime.console.book
            )
        served = await self._serve(runtime.app)
        self.urls[spec.id] = served.url
        self._tasks.append(asyncio.create_task(runtime.run(), name=f"node-{spec.id}"))

    def _console_settings(self, folder: Path) -> ConsoleSettings:
        """An oversight node watches every node of the bus (their URLs are known only
        once they serve, so the mapping is read at each verification)."""
        return ConsoleSettings(
            book_path=folder / "console.db",
            peers=lambda: dict(self.urls),
            registry_url=self.registry_url,
            anchor=self.registry_config.anchor(),
        )

    def _ensure_demo_officer(self, spec: AgencySpec, book: OfficerBook) -> tuple[str, str]:
        officer = demo_officer(spec.id)
        password = _secret_file(
            self.keychain.folder / f"{spec.id}.officer", secrets.token_urlsafe(12).encode()
        ).decode()
        if book.officer(officer) is None:
            book.add(officer, f"Demo officer of {spec.name}", password)
        return officer, password

    def console_url(self, agency_id: str) -> str:
        return f"{self.urls[agency_id]}/console/"

    async def serve(self, app: Any, tls: ServerTls | None = None, port: int | None = None) -> str:
        """Serve another ASGI app beside the bus (a demo webhook receiver, a gateway)."""
        return (await self._serve(app, tls, port)).url

    async def _serve(
        self, app: Any, tls: ServerTls | None = None, port: int | None = None
    ) -> Served:
        served = await serve_app(app, port or self._next_port(), tls)
        self._served.append(served)
        return served

    # --- use -----------------------------------------------------------------------

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every node has published what it sent and drained its inbox."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = -1
        while loop.time() < deadline:
            handled = sum(n.inbox.handled for n in self.nodes.values())
            idle = all(n.relay.pending() == 0 for n in self.nodes.values())
            if idle and handled == last:
                return
            last = handled if idle else -1
            await asyncio.sleep(0.25)
        raise TimeoutError("the bus did not settle")

    # --- stop ----------------------------------------------------------------------

    async def stop(self) -> None:
        self.forget_endpoints()
        if self.notifier is not None:
            await self.notifier.stop()
        for runtime in self.nodes.values():
            await runtime.stop()
        if hasattr(self, "_keeper_stop"):
            self._keeper_stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for served in self._served:  # all at once: each takes a tick of its loop to see it
            served.server.should_exit = True
        for served in reversed(self._served):
            await served.stop()
        for transport in self.transports.values():
            await transport.close()
        if self.transport is not None:
            await self.transport.close()
        for close in self._closers:
            close()
        self.registry.close()
