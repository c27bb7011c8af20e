"""The secured Kafka as the rest of `nrm` sees it: where it is, which CA it trusts, who connects.

`start_local` runs deploy/kafka.py's broker (or a three-broker cluster) with a PKI folder
made by `nrm pki` (created on first use); `SecuredKafka` hands each party its own TLS
identity (the operator's for provisioning, one per agency node) and keeps the broker's
topics and ACLs following the signed directory (`keep_provisioned`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from contracts.directory import Directory
from nrm.pki import BROKER, LOCAL_NAMES, OPERATOR, Identity, LocalCA, agency
from referral_router.transport.kafka import KafkaTls, KafkaTransport

log = logging.getLogger("nrm.broker")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def deploy_module(script: str) -> ModuleType:
    """deploy/<script>.py, loaded by path: deploy/ holds scripts, not a package."""
    name = f"nrm_deploy_{script}"
    if name in sys.modules:
        return sys.modules[name]
    path = DEPLOY / f"{script}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.exists():
        raise RuntimeError(f"this needs {path} (a source checkout)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def deploy_kafka() -> ModuleType:
    return deploy_module("kafka")


@dataclass
class SecuredKafka:
    """A TLS-only Kafka and the local CA its brokers trust."""

    bootstrap: str
    pki: LocalCA
    handle: Any = None  # deploy/kafka.py's BrokerHandle or ClusterHandle, when we run it

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def port(self) -> int:
        return int(self.bootstrap.split(",")[0].rpartition(":")[2])

    def tls(self, identity: Identity) -> KafkaTls:
        """`identity`'s TLS files, its certificate issued on first use (valid for its
        node's HTTPS server on this host too)."""
        return KafkaTls(self.pki.ca_file, self.pki.ensure(identity))

    @property
    def operator_tls(self) -> KafkaTls:
        return self.tls(OPERATOR)

    def tls_for(self, agency_id: str, country: str = "XA") -> KafkaTls:
        return self.tls(agency(agency_id, country))

    def transport(self, identity: Identity, **settings: Any) -> KafkaTransport:
        return KafkaTransport(self.bootstrap, tls=self.tls(identity), **settings)

    def client_options(self, identity: Identity = OPERATOR) -> dict[str, Any]:
        """Keyword arguments for a plain aiokafka client connecting as `identity`."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SSL",
            "ssl_context": self.tls(identity).context(),
        }

    # -- the broker we started (fault drills) -------------------------------------------

    def is_running(self) -> bool:
        return self.handle is not None and bool(self.handle.is_running())

    def restart(self, pause_seconds: float = 10.0) -> None:
        self.handle.restart(pause_seconds)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()


def local_pki(folder: Path, country: str) -> LocalCA:
    """A CA under `folder` (made once) with the brokers' and the operator's certificates."""
    ca = LocalCA.open_or_init(folder, country)
    ca.ensure(BROKER, names=LOCAL_NAMES)
    ca.ensure(OPERATOR, names=())
    return ca


def start_local(data: Path, country: str = "XA", brokers: int = 1) -> SecuredKafka:
    """A secured broker (or a cluster of 3) under `data`, its CA in `data/pki`."""
    kafka = deploy_kafka()
    ca = local_pki(data / "pki", country)
    tls = kafka.BrokerTls.from_pki(ca.folder)
    if brokers == 1:
        handle = kafka.start_broker(data / "broker", tls)
    else:
        handle = kafka.start_cluster(data / "cluster", tls, brokers)
    return SecuredKafka(str(handle.bootstrap), ca, handle)


async def keep_provisioned(
    operator: KafkaTransport,
    directory: Callable[[], Directory],
    stop: asyncio.Event,
    interval: float = 5.0,
) -> None:
    """Follow the directory (`directory` fetches and verifies it afresh): whenever its
    serial changes (an agency registered, suspended, revoked, reactivated), make the
    broker's topics and ACLs match it."""
    from referral_router.transport.kafka_access import provision

    applied: int | None = None
    while not stop.is_set():
        try:
            current = await asyncio.to_thread(directory)
            if current.serial != applied:
                await provision(operator, current)
                applied = current.serial
        except Exception as exc:  # the next round retries; nodes keep their last ACLs
            log.warning("provisioning the broker failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
