"""Session fixture ``kafka_broker``: one real, secured Apache Kafka broker for the run.

The broker is started on first use (about 3 s with a warm classpath cache) and stopped at
the end of the session. It is the production configuration (deploy/kafka.py): TLS on
every listener, client certificates from a local CA made for the session (`nrm pki`), one
principal per agency, StandardAuthorizer, no access where no ACL allows it. Tests connect
as the operator (`operator_tls`, a super user) or as an agency (`tls_for`). If the broker
cannot start, every test that needs it FAILS: a skipped Kafka test would hide exactly the
behaviour the suite exists to prove.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def load_deploy_module(name: str) -> ModuleType:
    """Import deploy/<name>.py by path: deploy/ is scripts, not a package."""
    qualified = f"nrm_deploy_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, DEPLOY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running `nrm.broker.SecuredKafka`: ``.bootstrap``, ``.url``, ``.operator_tls``,
    ``.tls_for(agency)``, ``.pki``, ``.restart(pause_seconds)``, ``.stop()``."""
    with secured_kafka(tmp_path_factory.mktemp("kafka-broker")) as broker:
        yield broker


@pytest.fixture
def fresh_kafka_broker(tmp_path: Path) -> Iterator[Any]:
    """A secured broker of this test's own, under its tmp_path: topics and consumer groups
    no other test touched (a bus of processes names its topics by country and agency
    alone, and its log segments are files a test may scan)."""
    with secured_kafka(tmp_path / "kafka") as broker:
        yield broker


@contextlib.contextmanager
def secured_kafka(root: Path, country: str = "XA", brokers: int = 1) -> Iterator[Any]:
    """`nrm.broker.start_local` for one test (its CA under `root/pki`), stopped after it;
    a failure to start fails the test (never a skip)."""
    from nrm.broker import start_local

    try:
        broker = start_local(root, country, brokers)
    except Exception as e:  # any cause must fail the test loudly
        pytest.fail(f"Kafka broker could not start: {e}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def deploy_service(module: str, start: str, *args: object) -> Iterator[Any]:
    """`deploy/<module>.py`'s `start(*args)` for one test, stopped after it; a failure to
    start fails the test (never a skip)."""
    try:
        handle = getattr(load_deploy_module(module), start)(*args)
    except Exception as e:
        pytest.fail(f"{module} could not start: {e}", pytrace=False)
    try:
        yield handle
    finally:
        handle.stop()
