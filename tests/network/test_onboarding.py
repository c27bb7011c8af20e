"""An operator onboards two agencies, as the README says, with nothing but `nrm` commands.

The registry runs as its own process (`nrm registry serve`) over HTTPS with a certificate
of the local CA; `nrm agency register` reaches it over HTTPS (NRM_CA_FILE);
`nrm kafka provision` reads the signed directory from it and gives the secured broker a
principal and ACLs per agency; a suspension withdraws them, a certificate rotation keeps
them (same subject, same principal). Plain HTTP and a client that does not trust the CA
are refused by the registry's TLS listener.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from nrm.embedded import free_port
from nrm.pki import agency, service
from referral_router.transport.topics import inbox_topic

pytestmark = pytest.mark.kafka


@dataclass
class Operator:
    folder: Path
    env: dict[str, str]
    registry: str
    kafka: Any

    def nrm(self, *args: str, ok: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "nrm.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr


@pytest.fixture
def operator(kafka_broker: Any, tmp_path: Path) -> Iterator[Operator]:
    tag = os.urandom(3).hex()
    pki = kafka_broker.pki
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NRM_")},
        "NRM_KEYSTORE_SCRYPT_LOG2_N": "10",
        "NRM_KEYSTORE_PASSPHRASE": f"agency-{tag}",
        "NRM_OPERATOR_PASSPHRASE": f"operator-{tag}",
        "NRM_REGISTRY_PASSPHRASE": f"registry-{tag}",
        "NRM_CA_FILE": str(pki.ca_file),
    }
    port = free_port()
    op = Operator(tmp_path, env, f"https://127.0.0.1:{port}", kafka_broker)
    op.nrm(
        "agency",
        "init",
        "--agency",
        f"registry-{tag}",
        "--keystore",
        str(tmp_path / "registry.keystore"),
        "--passphrase-env",
        "NRM_REGISTRY_PASSPHRASE",
    )
    op.nrm(
        "agency",
        "init",
        "--agency",
        "registry-operator",
        "--keystore",
        str(tmp_path / "operator.keystore"),
        "--passphrase-env",
        "NRM_OPERATOR_PASSPHRASE",
    )
    op.nrm(
        "registry",
        "anchor",
        "--keystore",
        str(tmp_path / "registry.keystore"),
        "--country",
        "XA",
        "--out",
        str(tmp_path / "anchor.json"),
    )
    cert = pki.issue(service("registry"))
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nrm.cli",
            "registry",
            "serve",
            "--country",
            "XA",
            "--keystore",
            str(tmp_path / "registry.keystore"),
            "--operator-keystore",
            str(tmp_path / "operator.keystore"),
            "--db",
            str(tmp_path / "registry.db"),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                trust = ssl.create_default_context(cafile=str(pki.ca_file))
                if httpx.get(f"{op.registry}/readyz", verify=trust).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "registry.log"
            ).read_text()
            time.sleep(0.2)
        yield op
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def _produce(kafka: Any, who: str, topic: str) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(**kafka.client_options(agency(who, "XA")), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"x", key=b"case-1")
        finally:
            await producer.stop()

    asyncio.run(run())


def test_onboard_provision_suspend_and_rotate(operator: Operator) -> None:
    op, tmp = operator, operator.folder
    tag = os.urandom(3).hex()
    police, authority = f"police-{tag}", f"authority-{tag}"
    for name, role in ((police, "first-responder"), (authority, "competent-authority")):
        op.nrm("agency", "init", "--agency", name, "--keystore", str(tmp / f"{name}.keystore"))
        op.nrm(
            "agency",
            "register",
            "--keystore",
            str(tmp / f"{name}.keystore"),
            "--name",
            name,
            "--country",
            "XA",
            "--role",
            role,
            "--router-url",
            f"https://{name}.example",
            "--webhook-url",
            "https://hooks.example",
            "--registry",
            op.registry,
            "--operator-keystore",
            str(tmp / "operator.keystore"),
        )
        out = op.nrm(
            "pki", "issue", "--dir", str(op.kafka.pki.folder), "agency", name, "--country", "XA"
        )
        assert f"principal User:agency.XA.{name}" in out

    provision = [
        "kafka",
        "provision",
        "--bootstrap",
        op.kafka.bootstrap,
        "--pki",
        str(op.kafka.pki.folder),
        "--registry",
        op.registry,
        "--anchor",
        str(tmp / "anchor.json"),
    ]
    plan = op.nrm(*provision, "--dry-run")
    assert f"ALLOW User:agency.XA.{police} write on topic {inbox_topic('XA', authority)}" in plan
    out = op.nrm(*provision)
    assert "4 topic(s) created" in out
    _produce(op.kafka, police, inbox_topic("XA", authority))  # onboarded: it may address

    # rotation: a new key and certificate, the same subject, so the same ACLs apply
    op.nrm("pki", "rotate", "--dir", str(op.kafka.pki.folder), "agency", police, "--country", "XA")
    assert (op.kafka.pki.folder / f"agency-{police}.prev.pem").exists()
    _produce(op.kafka, police, inbox_topic("XA", authority))
    assert "0 topic(s) created, 0 ACL(s) added, 0 withdrawn" in op.nrm(*provision)

    op.nrm(
        "agency",
        "suspend",
        "--agency",
        police,
        "--reason",
        "certificate lost",
        "--registry",
        op.registry,
        "--operator-keystore",
        str(tmp / "operator.keystore"),
    )
    out = op.nrm(*provision)
    assert "withdrawn" in out and " 0 withdrawn" not in out
    with pytest.raises(TopicAuthorizationFailedError):
        _produce(op.kafka, police, inbox_topic("XA", authority))


def test_the_registry_speaks_only_tls_to_clients_that_trust_its_ca(operator: Operator) -> None:
    plain = operator.registry.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/readyz", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{operator.registry}/readyz", timeout=5, verify=ssl.create_default_context())
    out = operator.nrm(
        "directory",
        "show",
        "--anchor",
        str(operator.folder / "anchor.json"),
        "--registry",
        operator.registry,
    )
    assert "verified against anchor" in out
