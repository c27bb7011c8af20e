"""Harness for fault drills: a country's registry in this process, nodes as OS processes.

Each drill registers fresh agencies (unique ids, so unique topics and consumer groups on
the session's shared broker) with a real registry, has the operator provision the
secured broker from the registry's directory (topics, one principal and its ACLs per
agency), then runs nodes with `nrm node serve` in child processes configured only by
environment, exactly as a deployment would (each with its own certificate), so a node can
be killed with SIGKILL and started again on the same store.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.vocabulary import Role
from nrm.broker import SecuredKafka
from nrm.embedded import AgencySpec, CountryBus, free_port
from nrm.pki import OPERATOR, LocalCA
from referral_router.transport.kafka_access import provision
from tests.bus.running import RunningBus

ROOT = Path(__file__).resolve().parents[2]

# Short group timers: a killed member's partitions move within a few seconds.
KAFKA_ENV = {"NRM_KAFKA_SESSION_TIMEOUT_MS": "6000", "NRM_KAFKA_HEARTBEAT_MS": "500"}

ADULT = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "adult",
    "screened_by_officer": "bp-1",
    "full_name": "Test Person",
    "nationality": "XB",
    "found_at": "a farm",
    "indicators": [{"form": "forced-labour", "strength": "medium", "observation": "no pay"}],
}


def fresh_agencies() -> tuple[AgencySpec, AgencySpec]:
    """A sending first responder and a receiving competent authority, unique per drill."""
    tag = secrets.token_hex(3)
    return (
        AgencySpec(f"police-{tag}", "Police", (Role.FIRST_RESPONDER,)),
        AgencySpec(f"authority-{tag}", "Authority", (Role.COMPETENT_AUTHORITY,)),
    )


class RegistryOnly(RunningBus):
    """A CountryBus that runs the registry (over HTTPS with `https`, the CA node processes
    trust) and registers its agencies, but no nodes."""

    def __init__(
        self, data_dir: Path, agencies: tuple[AgencySpec, ...], https: LocalCA | None = None
    ) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bus = CountryBus("XA", data_dir, agencies=agencies, https=https)
        self.bus.root.mkdir(parents=True, exist_ok=True)
        self.run(self.bus._start_registry(), timeout=60)
        self.run(self.bus._register_agencies(), timeout=60)
        self.anchor = self.bus.root / "anchor.json"
        self.anchor.write_text(self.bus.registry_config.anchor().model_dump_json())

    def stop(self) -> None:
        async def close() -> None:
            for served in self.bus._served:
                served.server.should_exit = True
                await served.task
            self.bus.registry.close()

        try:
            self.run(close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@dataclass
class NodeProcess:
    """One `nrm node serve` child process, serving HTTPS."""

    agency: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.env["NRM_CA_FILE"])

    def start(self, timeout: float = 60.0, **extra_env: str) -> NodeProcess:
        env = {**self.env, **extra_env}
        self.url = f"https://127.0.0.1:{env['NRM_PORT']}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nrm.node_cli", "node", "serve"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.agency} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2, verify=self.verify)
                if ready.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.agency} not ready in {timeout}s:\n{self.tail()}")

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, like a power cut."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


@dataclass
class Country:
    """A registry with fresh agencies, and node processes started on demand."""

    registry: RegistryOnly
    kafka: SecuredKafka
    folder: Path
    nodes: list[NodeProcess] = field(default_factory=list)

    def provision(self) -> None:
        """The operator's provisioning from the registry's signed directory."""

        async def run() -> None:
            operator = self.kafka.transport(OPERATOR)
            try:
                directory = await asyncio.to_thread(self.bus.directory_client().refresh)
                await provision(operator, directory)
            finally:
                await operator.close()

        self.registry.run(run(), timeout=60)

    @property
    def bus(self) -> CountryBus:
        return self.registry.bus

    def node(
        self, agency: str, name: str | None = None, store: dict[str, str] | None = None
    ) -> NodeProcess:
        """A node process for `agency` (not started); replicas share `store` settings."""
        keychain = self.bus.keychain
        keychain.master_key(agency)
        tls = self.kafka.tls_for(agency)
        home = self.folder / (name or agency)
        home.mkdir(parents=True, exist_ok=True)
        shared = self.folder / agency
        shared.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NRM_")},
            **KAFKA_ENV,
            "NRM_AGENCY_ID": agency,
            "NRM_COUNTRY": "XA",
            "NRM_TRANSPORT": self.kafka.url,
            "NRM_KAFKA_CA_FILE": str(tls.ca_file),
            "NRM_KAFKA_CERT_FILE": str(tls.cert_file),
            "NRM_TLS_CERT_FILE": str(tls.cert_file),  # the same identity serves HTTPS
            "NRM_CA_FILE": str(tls.ca_file),
            "NRM_REGISTRY_URL": self.bus.registry_url,
            "NRM_TRUST_ANCHOR": str(self.registry.anchor),
            "NRM_KEYSTORE": str(keychain.folder / f"{agency}.keystore"),
            "NRM_KEYSTORE_PASSPHRASE": keychain.passphrase,
            "NRM_MASTER_KEY_FILE": str(keychain.folder / f"{agency}.master-key"),
            "NRM_DATA_DIR": str(home),
            "NRM_STORE": f"sqlite:{shared / 'store.db'}",
            "NRM_CASE_KEYS": str(shared / "case-keys.db"),
            "NRM_PORT": str(free_port()),
            "NRM_LOG_LEVEL": "WARNING",
            **(store or {}),
        }
        node = NodeProcess(agency, env, home / "node.log")
        self.nodes.append(node)
        return node

    def client(self, node: NodeProcess) -> httpx.Client:
        bus = self.bus

        def auth(request: httpx.Request) -> None:
            request.headers["Authorization"] = f"Bearer {bus.token(node.agency)}"

        return httpx.Client(
            base_url=node.url, timeout=30, verify=node.verify, event_hooks={"request": [auth]}
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.terminate()
        self.registry.stop()


@pytest.fixture
def kafka_country(
    kafka_broker: Any, tmp_path: Path
) -> Iterator[tuple[Country, AgencySpec, AgencySpec]]:
    sender, receiver = fresh_agencies()
    registry = RegistryOnly(tmp_path / "country", (sender, receiver), kafka_broker.pki)
    country = Country(registry, kafka_broker, tmp_path / "nodes")
    try:
        country.provision()
        yield country, sender, receiver
    finally:
        country.stop()


def screen(client: httpx.Client, to: str) -> dict[str, Any]:
    """Open a case sent to `to`; returns the receipt (case, event_id)."""
    r = client.post("/v1/cases", json={"recipients": [to], "payload": ADULT})
    assert r.status_code == 201, r.text
    return dict(r.json())


def received_ids(client: httpx.Client) -> list[str]:
    """Every event id in the node's log of received events, with repeats if any."""
    out: list[str] = []
    after = 0
    while True:
        page = client.get("/v1/log", params={"after": after, "limit": 500, "direction": "received"})
        page.raise_for_status()
        body = page.json()
        out.extend(item["event_id"] for item in body["items"])
        if body["next_after"] is None:
            return out
        after = body["next_after"]


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
