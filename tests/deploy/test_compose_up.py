"""docker-compose.yml brought up for real under podman, the demo story played through it.

The images are the ones deploy/images.py builds offline (built here if missing or older
than their sources); the stack is the users' compose file with an override for host
networking (tests/deploy/host_network.py: free ports on 127.0.0.1, the services' names
resolving there) and the test's own random secrets. deploy/compose.py brings it up in
`depends_on` order, as a user would. Then:

- the police screen a case and refer it to the identification authority, which accepts:
  each agency's system runs inside its own node's container (tests/deploy/
  agency_system.py), with that container's keystore and secret, over the node's HTTPS
  API, and the events travel between the nodes over the stack's Kafka (TLS, ACLs that
  the provisioning service set from the signed directory);
- each node's audit log verifies (`nrm audit verify` as the node's own agency);
- every long-running service passes its health check, the notifier's included;
- each running container holds only its own secrets: the compose secrets in
  /run/secrets, the private keys in its key volumes, and no secret in its environment.

The stack, its volumes and its network are removed at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import host_network

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
AGENCY_SYSTEM = Path(__file__).with_name("agency_system.py")
sys.path.insert(0, str(DEPLOY))

from compose import Compose  # noqa: E402  (deploy/ holds scripts, not a package)
from images import build  # noqa: E402

pytestmark = pytest.mark.slow

#: What each long-running service may hold: its compose secrets (in /run/secrets) and its
#: private files (keystores, TLS keys) in its volumes. Written out here, not read from the
#: compose file, so that a service given more in the file fails too.
OWN: dict[str, tuple[set[str], set[str]]] = {
    "kafka": (set(), {"/tls/broker.pem"}),
    "postgres": ({"pg_superuser", "pg_registry", "pg_police", "pg_authority"}, set()),
    "registry": (
        {"registry_passphrase", "pg_registry"},
        {"/keys/registry.keystore", "/tls/service-registry.pem"},
    ),
    "provision": (set(), {"/tls/operator.pem"}),
    "node-police": (
        {"police_passphrase", "pg_police"},
        {"/keys/xa-police.keystore", "/tls/agency-xa-police.pem"},
    ),
    "node-authority": (
        {"authority_passphrase", "pg_authority"},
        {"/keys/xa-authority.keystore", "/tls/agency-xa-authority.pem"},
    ),
    "notifier": (
        {"notifier_passphrase"},
        {"/keys/notifier.keystore", "/tls/service-notifier.pem"},
    ),
}


@dataclass
class Stack:
    compose: Compose
    ports: dict[str, dict[int, int]]
    secrets: Path

    def exec(self, service: str, *argv: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["podman", "exec", *(["-i"] if stdin else []), self.compose.container(service),
             *argv],
            env=self.compose.env, input=stdin, text=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{service} {argv}: {result.stderr[-2000:]}"
        return result.stdout

    def agency(self, service: str, *argv: str) -> dict[str, Any]:
        out = self.exec(service, "python", "-", *argv, stdin=AGENCY_SYSTEM.read_text())
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def url(self, service: str) -> str:
        return f"https://{service}:{next(iter(self.ports[service].values()))}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    build()
    here = tmp_path_factory.mktemp("compose")
    secrets = here / "secrets"
    subprocess.run(["bash", str(DEPLOY / "compose-secrets.sh"), str(secrets)], check=True,
                   capture_output=True)  # fmt: skip
    ports = host_network.port_map()
    document = host_network.override(COMPOSE, ports)
    declared = yaml.safe_load(COMPOSE.read_text())["secrets"]
    document["secrets"] = {name: {"file": str(secrets / name)} for name in declared}
    override = here / "host-network.yml"
    override.write_text(yaml.dump(document, Dumper=host_network.Dumper, sort_keys=False))
    compose = Compose([COMPOSE, override], project=f"nrmtest{os.getpid()}")
    try:
        compose.up(timeout=180)
        yield Stack(compose, ports, secrets)
    finally:
        compose.down()


def test_police_refer_a_case_and_the_authority_accepts_it(stack: Stack) -> None:
    case = stack.agency("node-police", "refer")["case"]
    at_authority = stack.agency("node-authority", "accept", case, "ref-1")
    assert at_authority["agency"] == "xa-authority"
    referral = next(r for r in at_authority["referrals"] if r["referral_id"] == "ref-1")
    assert referral == {**referral, "from_agency": "xa-police", "to_agency": "xa-authority",
                        "service": "identification", "status": "accepted"}  # fmt: skip
    received = {e["type"] for e in at_authority["events"] if e["direction"] == "received"}
    assert received == {"case.screened", "consent.recorded", "referral.requested"}
    at_police = stack.agency("node-police", "referral", case, "ref-1", "accepted")
    answer = next(e for e in at_police["events"] if e["type"] == "referral.accepted")
    assert answer["direction"] == "received" and answer["sender"] == "xa-authority"
    # what the police may not read stays sealed on their node (R5)
    assert answer["fields"]["placement"] == {"withheld": "service", "reason": "not-entitled"}


NODES = [("node-police", "xa-police"), ("node-authority", "xa-authority")]


@pytest.mark.parametrize(("service", "agency"), NODES)
def test_each_node_audit_log_verifies(stack: Stack, service: str, agency: str) -> None:
    stack.agency("node-police", "refer")  # at least one event on each node's log
    out = stack.exec(
        service, "sh", "-c",
        f"nrm audit verify --quiet --node {agency}={stack.url(service)} "
        f"--anchor /trust/anchor.json --registry {stack.url('registry')} "
        f"--keystore /keys/{agency}.keystore --passphrase-env NRM_KEYSTORE_PASSPHRASE "
        "--state /tmp/audit-state.json --fresh --json /tmp/verdict.json >/dev/null"
        " && cat /tmp/verdict.json",
    )  # fmt: skip
    verdict = json.loads(out)
    assert verdict["ok"] is True and verdict["findings"] == []
    [log] = verdict["logs"]
    assert log["agency"] == agency and log["ok"] and log["size"] >= 1


@pytest.mark.parametrize("service", OWN)
def test_every_long_running_service_is_healthy(stack: Stack, service: str) -> None:
    if "healthcheck" in stack.compose.services[service]:
        stack.compose.wait_healthy(service, timeout=90)
    state = stack.compose.podman(
        "inspect", stack.compose.container(service), "--format", "{{.State.Status}}"
    )
    assert state.stdout.strip() == "running"


@pytest.mark.parametrize("service", OWN)
def test_each_container_holds_only_its_own_secrets(stack: Stack, service: str) -> None:
    secrets, private_files = OWN[service]
    listed = stack.exec(service, "sh", "-c", "ls /run/secrets 2>/dev/null || true").split()
    assert set(listed) == secrets
    private = stack.exec(
        service, "sh", "-c", "find /keys /tls /pki /out -type f 2>/dev/null || true"
    ).split()
    assert set(private) == private_files
    public = stack.exec(service, "sh", "-c", "find /trust -type f 2>/dev/null || true").split()
    assert all(p == "/trust/ca.pem" or p.endswith(".json") for p in public), public
    inspected = stack.compose.podman(
        "inspect", stack.compose.container(service), "--format", "{{json .Config.Env}}"
    )
    environment = inspected.stdout
    for secret in stack.secrets.iterdir():
        assert secret.read_text().strip() not in environment, f"{secret.name} in {service}'s env"


def test_every_long_running_service_of_the_file_is_checked(stack: Stack) -> None:
    long_running = {n for n, s in stack.compose.services.items() if s.get("restart") != "no"}
    assert long_running == set(OWN)
