"""One country's bus as a process per piece: what `nrm up --processes` runs.

The registry, each agency's node, the notifier and (when the country federates) the
gateway each run as their own OS process (`nrm registry serve`, `nrm node serve`,
`nrm notifier serve`, `nrm gateway serve`), started and watched by `nrm.supervisor`,
each with its own store (a SQLite file, or a PostgreSQL database and role of its own)
and only its own secrets in its environment, talking to the others over HTTPS and Apache
Kafka only. Kafka is the secured one (`nrm.broker.SecuredKafka`): each node connects with
its agency's certificate (its principal), and the operator's provisioning (topics and
ACLs from the signed directory, `nrm kafka provision`) is applied before any node
starts, then followed by a process of its own (`--watch`). The registry, the nodes, the
notifier and the gateways serve HTTPS with certificates of the country's CA (the one the
brokers trust); the gateways' border doors are mutual TLS, pinned. This process acts as
the country's operator: it makes the keystores, registers the agencies with the
registry, provisions the broker, and offers the demos and tests the same calls as the
embedded bus (`CountryAccess`).

Data layout under the data folder::

    <country>/processes.json       the supervisor's state: what `nrm status` reads
    <country>/anchor.json          the registry's trust anchor, pinned by every process
    <country>/secrets/             keystores, passphrases, master keys (0600; demo only),
                                   the notifier's public keys (what nodes and registry get)
    <country>/registry/            registry.db, registry.log
    <country>/nodes/<agency>/      store.db, case-keys.db, audit.db, forwardings.db, node.log
    <country>/notifier/            notifier.db, notifier.log, domain-clock (demos, drills)
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts import endpoints
from contracts.keystore import AgencyKeys
from nrm.agency_cli import public_part
from nrm.broker import SecuredKafka
from nrm.embedded import (
    DEMO_AGENCIES,
    OPERATOR_ID,
    REGISTRY_SIGNING,
    AgencySpec,
    CountryAccess,
    Keychain,
    Served,
    free_port,
    serve_app,
)
from nrm.federation_demo import DESTINATION, GATEWAY, ORIGIN, FederatedBuses
from nrm.pki import LOCAL_NAMES, OPERATOR, agency, service
from nrm.serving import verify_context
from nrm.supervisor import ProcessSpec, Supervisor

log = logging.getLogger("nrm.topology")

STATE_FILE = "processes.json"


def nrm_command(*args: str) -> tuple[str, ...]:
    """The `nrm` command line run by this very interpreter (same installation)."""
    return (sys.executable, "-m", "nrm.cli", *args)


#: Telemetry settings every process takes from ours (`nrm up --processes` with
#: `NRM_OTEL_EXPORTER=otlp` traces every node); see referral_router.telemetry.
_TELEMETRY = (
    "NRM_OTEL_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_METRIC_EXPORT_INTERVAL",
)


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A process's whole environment: what any process needs to run, nothing secret
    from ours, and its own settings."""
    import os

    keep = (
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "HOME",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "NRM_EVENT_LOOP",
        *_TELEMETRY,
    )
    return {
        **{k: os.environ[k] for k in keep if k in os.environ},
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass
class CountryProcesses(CountryAccess):
    """One country's registry, nodes, notifier (and gateway) as supervised processes,
    on the secured Apache Kafka `kafka`, whose CA also certifies every HTTPS server."""

    country: str
    data_dir: Path
    kafka: SecuredKafka
    agencies: Sequence[AgencySpec] = DEMO_AGENCIES
    port: int = 0
    #: (the gateway agency, the peer country): that agency runs as `nrm gateway serve`.
    gateway: tuple[str, str] | None = None
    #: deploy/postgres.py's handle: each process then gets a database and role of its own.
    postgres: Any = None
    #: Extra settings for every node (e.g. faster group timers in drills).
    node_env: dict[str, str] = field(default_factory=dict)
    checkpoint_interval: float = 60.0
    urls: dict[str, str] = field(default_factory=dict)
    #: Peer countries' CAs, for the nodes and the gateway asking those registries (and
    #: the gateway posting to the peer's door) over HTTPS.
    peer_cas: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = self.data_dir / self.country
        self.keychain = Keychain(self.root / "secrets")
        self.agency_keys: dict[str, AgencyKeys] = {}
        self.anchor_file = self.root / endpoints.ANCHOR_FILE
        self.ca = self.kafka.pki
        self.verify = verify_context(self.ca.ca_file)
        self.supervisor = Supervisor(
            self.root / STATE_FILE,
            meta={
                "country": self.country,
                "kafka": self.kafka.bootstrap,
                "ca_file": str(self.ca.ca_file),
            },
            verify=self.verify,
        )
        self._clock_file = self.root / "notifier" / "domain-clock"
        self._clock_offset = timedelta(0)
        self._served: list[Served] = []
        self.gateway_url: str | None = None  # the border door (mutual TLS, pinned)
        self.gateway_admin_url: str | None = None  # crossings, for itself and oversight
        self._gateway_ports: tuple[int, int] | None = None

    # --- the pieces ------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, ProcessSpec]:
        """Each agency's process (its node, or the gateway that is its node)."""
        return {
            c.spec.agency: c.spec
            for c in self.supervisor.children.values()
            if c.spec.kind in ("node", "gateway")
        }

    def _port(self) -> int:
        if self.port == 0:
            return free_port()
        self.port += 1
        return self.port - 1

    def _store(self, name: str, sqlite: Path) -> dict[str, str]:
        """The event store settings of one process: its own SQLite file, or its own
        PostgreSQL database and role."""
        if self.postgres is None:
            return {"NRM_STORE": f"sqlite:{sqlite}"}
        db = f"{self.country.lower()}_{name.replace('-', '_')}"
        return {"NRM_STORE": "postgres", **self.postgres.create_database(db)}

    async def start(self) -> None:
        await self.start_registry()
        await self.start_pieces()

    async def start_registry(self) -> None:
        """The registry, the agencies registered, the broker provisioned for them (topics
        and ACLs), and a provisioner following the directory from then on."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.operator_keys = self.keychain.keys(OPERATOR_ID)
        self.notifier_keys = self.keychain.keys(f"notifier-{self.country.lower()}")
        self.notifier_public = self.keychain.folder / "notifier.public.json"
        self.notifier_public.write_text(
            public_part(self.keychain.path(self.notifier_keys.agency_id))
        )
        if self.gateway is not None:
            self._gateway_ports = (self._port(), self._port())
            self.gateway_url = f"https://127.0.0.1:{self._gateway_ports[0]}"
            self.gateway_admin_url = f"https://127.0.0.1:{self._gateway_ports[1]}"
        await self.supervisor.start([self._registry()])
        await self._register_agencies()
        self.anchor_file.write_text(self.anchor().model_dump_json(indent=2) + "\n")
        await self._provision()
        await self.supervisor.start([self._provisioner()])

    async def start_pieces(self) -> None:
        """Each agency's node (or gateway), then the notifier."""
        pieces = [self._node(spec) for spec in self.agencies]
        await self.supervisor.start(pieces)
        await self.supervisor.start([self._notifier()])
        self.write_endpoints()

    @property
    def trust_file(self) -> str:
        """The CA file a client of this country's services trusts (`NRM_CA_FILE`)."""
        return str(self.ca.ca_file)

    def _trusted_cas(self) -> Path:
        """The CA file a node trusts for HTTPS: its country's CA, and the peers' when
        federated (a bundle; what a peer registry serves is still checked against the
        anchor the operator imported)."""
        if not self.peer_cas:
            return self.ca.ca_file
        bundle = self.root / "trusted-cas.pem"
        pems = [self.ca.ca_file.read_text(), *(p.read_text() for p in self.peer_cas)]
        bundle.write_text("".join(pems))
        return bundle

    def gateway_tls(self) -> Path:
        """The gateway agency's key and certificate: its broker principal, its HTTPS
        identity and what the peer's federation agreement pins."""
        assert self.gateway is not None
        return self.ca.ensure(agency(self.gateway[0], self.country))

    async def _provision(self) -> None:
        """The operator's provisioning, once, before any node connects."""
        from referral_router.transport.kafka_access import provision

        operator = self.kafka.transport(OPERATOR)
        try:
            directory = await asyncio.to_thread(self.directory_client().refresh)
            await provision(operator, directory)
        finally:
            await operator.close()

    def _provisioner(self) -> ProcessSpec:
        """`nrm kafka provision --watch`: the ACLs follow the directory (a suspended
        agency loses its access within seconds). It serves no HTTP: ready when running."""
        folder = self.root / "provisioner"
        return ProcessSpec(
            name="provisioner",
            kind="provisioner",
            argv=nrm_command(
                "kafka",
                "provision",
                "--bootstrap",
                self.kafka.bootstrap,
                "--ca-file",
                str(self.ca.ca_file),
                "--cert",
                str(self.ca.ensure(OPERATOR, names=())),
                "--registry",
                self.registry_url,
                "--anchor",
                str(self.anchor_file),
                "--watch",
                "2",
            ),
            env=base_env({"NRM_CA_FILE": str(self.ca.ca_file)}),
            url="",
            log=folder / "provisioner.log",
        )

    def _registry(self) -> ProcessSpec:
        port = self._port()
        self.registry_url = f"https://127.0.0.1:{port}"
        folder = self.root / "registry"
        self.keychain.keys(REGISTRY_SIGNING)  # made before the registry opens it
        store: dict[str, str] = {}
        args = ["--db", str(folder / "registry.db")]
        if self.postgres is not None:
            store = self._store("registry", folder / "registry.db")
            store = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **store}
            store.pop("NRM_STORE")
            args = []
        return ProcessSpec(
            name="registry",
            kind="registry",
            argv=nrm_command(
                "registry",
                "serve",
                "--country",
                self.country,
                "--port",
                str(port),
                "--keystore",
                str(self.keychain.folder / f"{REGISTRY_SIGNING}.keystore"),
                "--operator-keystore",
                str(self.keychain.folder / f"{OPERATOR_ID}.keystore"),
                "--notifier-keys",
                str(self.notifier_public),
                "--tls-cert",
                str(self.ca.ensure(service("registry"), names=LOCAL_NAMES)),
                *args,
            ),
            env=base_env({"NRM_REGISTRY_PASSPHRASE": self.keychain.passphrase, **store}),
            url=self.registry_url,
            log=folder / "registry.log",
        )

    def _node(self, spec: AgencySpec) -> ProcessSpec:
        port = self._port()
        folder = self.root / "nodes" / spec.id
        url = f"https://127.0.0.1:{port}"
        self.urls[spec.id] = url
        self.keychain.master_key(spec.id)
        tls = self.kafka.tls_for(spec.id, self.country)  # its principal, and its HTTPS
        env = {
            "NRM_AGENCY_ID": spec.id,
            "NRM_COUNTRY": self.country,
            "NRM_TRANSPORT": self.kafka.url,
            "NRM_KAFKA_CA_FILE": str(tls.ca_file),
            "NRM_KAFKA_CERT_FILE": str(tls.cert_file),
            "NRM_TLS_CERT_FILE": str(tls.cert_file),
            "NRM_CA_FILE": str(self._trusted_cas()),
            "NRM_NOTIFIER_KEYS": str(self.notifier_public),
            "NRM_REGISTRY_URL": self.registry_url,
            "NRM_TRUST_ANCHOR": str(self.anchor_file),
            "NRM_KEYSTORE": str(self.keychain.folder / f"{spec.id}.keystore"),
            "NRM_KEYSTORE_PASSPHRASE": self.keychain.passphrase,
            "NRM_MASTER_KEY_FILE": str(self.keychain.folder / f"{spec.id}.master-key"),
            "NRM_DATA_DIR": str(folder),
            "NRM_PORT": str(port),
            "NRM_CHECKPOINT_INTERVAL": str(self.checkpoint_interval),
            "NRM_LOG_LEVEL": "WARNING",
            **self._store(spec.id, folder / "store.db"),
            **self.node_env,
        }
        kind, command = "node", ("node", "serve")
        if self.gateway is not None and self.gateway[0] == spec.id:
            assert self._gateway_ports is not None
            door, admin = self._gateway_ports
            env |= {
                "NRM_GATEWAY_PEER": self.gateway[1],
                "NRM_GATEWAY_PORT": str(door),
                "NRM_GATEWAY_ADMIN_PORT": str(admin),
                "NRM_GATEWAY_TLS_FILE": str(tls.cert_file),
            }
            kind, command = "gateway", ("gateway", "serve")
        return ProcessSpec(
            name=f"{kind}/{spec.id}",
            kind=kind,
            argv=nrm_command(*command),
            env=base_env(env),
            url=url,
            log=folder / f"{kind}.log",
            agency=spec.id,
        )

    def _notifier(self) -> ProcessSpec:
        port = self._port()
        folder = self.root / "notifier"
        self.notifier_url = f"https://127.0.0.1:{port}"
        served = [f"{a}@{url}" for a, url in self.urls.items()]
        return ProcessSpec(
            name="notifier",
            kind="notifier",
            argv=nrm_command(
                "notifier",
                "serve",
                "--port",
                str(port),
                "--registry",
                self.registry_url,
                "--anchor",
                str(self.anchor_file),
                "--db",
                str(folder / "notifier.db"),
                "--operator-keystore",
                str(self.keychain.folder / f"{OPERATOR_ID}.keystore"),
                "--identity",
                str(self.keychain.path(self.notifier_keys.agency_id)),
                "--ca-file",
                str(self.ca.ca_file),
                "--tls-cert",
                str(self.ca.ensure(service("notifier"), names=LOCAL_NAMES)),
                "--audience",
                f"nrm-notifier:{self.country}",
                "--domain-clock-file",
                str(self._clock_file),
                "--subscription-refresh",
                "1",
                *(arg for spec in served for arg in ("--agency", spec)),
            ),
            env=base_env({"NRM_NOTIFIER_PASSPHRASE": self.keychain.passphrase}),
            url=self.notifier_url,
            log=folder / "notifier.log",
        )

    # --- the demos' and tests' calls (as on the embedded bus) ------------------------

    @property
    def clock_offset(self) -> timedelta:
        """The notifier's domain clock shift (a demo shows a deadline passing)."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, offset: timedelta) -> None:
        self._clock_offset = offset
        self._clock_file.parent.mkdir(parents=True, exist_ok=True)
        self._clock_file.write_text(f"{offset.total_seconds()}\n")

    async def serve(self, app: Any) -> str:
        """Serve an ASGI app in this process (e.g. the agencies' webhook receiver)."""
        served = await serve_app(app, free_port())
        self._served.append(served)
        return served.url

    async def lags(self) -> dict[str, dict[str, int] | None]:
        """Each agency's process: its relay and inbox lag (None: not answering)."""
        async with httpx.AsyncClient(timeout=5, verify=self.verify) as client:

            async def lag(url: str) -> dict[str, int] | None:
                try:
                    resp = await client.get(f"{url}/readyz")
                except httpx.HTTPError:
                    return None
                return dict(resp.json()["lag"]) if resp.status_code == 200 else None

            found = await asyncio.gather(*(lag(u) for u in self.urls.values()))
        return dict(zip(self.urls, found, strict=True))

    async def settle(self, timeout: float = 20.0) -> None:
        """Until every node has published what it stored and applied what is on its
        inbox, twice in a row."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline:
            lags = await self.lags()
            idle = all(v is not None and not any(v.values()) for v in lags.values())
            quiet = quiet + 1 if idle else 0
            if quiet >= 2:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the bus did not settle: {await self.lags()}")

    async def stop(self) -> None:
        self.forget_endpoints()
        for served in self._served:
            await served.stop()
        await self.supervisor.stop()


@dataclass
class FederatedProcesses(FederatedBuses):
    """Two countries, each its own registry, CA, secured Kafka and processes, federated
    through their registries; the gateways (`nrm gateway serve`) talk mutual TLS to each
    other, each pinning the certificate its agreement names, and each delivers into its
    own country's bus only."""

    brokers: dict[str, SecuredKafka] = field(default_factory=dict)
    postgres: Any = None
    node_env: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        specs = {DESTINATION: self.xa_agencies, ORIGIN: self.xb_agencies}
        countries = {
            country: CountryProcesses(
                country,
                self.data_dir,
                self.brokers[country],
                agencies,
                gateway=(GATEWAY[country], self.peer_of(country)),
                postgres=self.postgres,
                node_env=self.node_env,
            )
            for country, agencies in specs.items()
        }
        self.buses.update(countries)  # type: ignore[arg-type]  # the same calls, as processes
        try:
            await asyncio.gather(*(c.start_registry() for c in countries.values()))
            for country, processes in countries.items():
                assert processes.gateway_url and processes.gateway_admin_url
                self.gateway_urls[country] = processes.gateway_url
                self.admin_urls[country] = processes.gateway_admin_url
                self.gateway_tls[country] = processes.gateway_tls()
            for country in countries:  # before the gateways start: they pin the peer's
                await self.federate(country)
                countries[country].peer_cas = [countries[self.peer_of(country)].ca.ca_file]
            await asyncio.gather(*(c.start_pieces() for c in countries.values()))
        except BaseException:
            await asyncio.gather(*(c.stop() for c in countries.values()))
            raise

    async def gateways_pending(self) -> int:
        pending = 0
        for country, url in self.admin_urls.items():
            verify = self.buses[country].verify
            async with httpx.AsyncClient(timeout=5, verify=verify) as client:
                answer = await client.get(f"{url}/readyz")
            pending += int(answer.json()["pending"]) if answer.status_code == 200 else 1
        return pending

    async def stop(self) -> None:
        await asyncio.gather(*(bus.stop() for bus in self.buses.values()))
