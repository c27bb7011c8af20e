"""Every POST and PUT of every service refuses a 10 MB body with 413, before any route
runs: nothing is looked up, nothing is written. Asked of real servers (the embedded bus:
registry, a node, the notifier), announced by Content-Length and streamed without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nrm.embedded import DEMO_AGENCIES
from nrm.serving import DEFAULT_MAX_BODY
from tests.bus.running import RunningBus, running_bus
from tests.problems import assert_problem

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    agencies = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", "nrm-authority"))
    with running_bus(tmp_path_factory.mktemp("limits"), agencies=agencies) as rb:
        yield rb


def _writes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every operation in the service's OpenAPI document that takes a
    body, path parameters filled with a plausible value."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method.upper() in ("POST", "PUT", "PATCH"):
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "border-police", path)))
    return out


def _changes(rb: RunningBus) -> list[dict[str, Any]]:
    """The registry's record of changes a request could make (the witness's own
    records of the nodes' checkpoints come in the background and are left out)."""
    prefixes = ("agency.", "agreement.", "subscription.", "federation")
    return [e for e in rb.bus.registry.history(limit=1000) if e["event"].startswith(prefixes)]


def _services(rb: RunningBus) -> dict[str, tuple[str, Any]]:
    bus = rb.bus
    assert bus.notifier is not None
    return {
        "registry": (bus.registry_url, bus._served[0].server.config.app.app),
        "node": (bus.urls["border-police"], bus.nodes["border-police"].app),
        "notifier": (bus.notifier_url, bus.notifier.app),
    }


def _chunks() -> Iterator[bytes]:
    block = b"x" * 65536
    for _ in range(TEN_MB // len(block)):
        yield block


@pytest.mark.parametrize("service", ["registry", "node", "notifier"])
def test_a_ten_megabyte_body_gets_413_on_every_write_route(bus: RunningBus, service: str) -> None:
    url, app = _services(bus)[service]
    routes = _writes(app)
    assert routes, f"{service} has write routes"
    history = _changes(bus)
    token = bus.bus.operator_token() if service == "registry" else bus.bus.token("border-police")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=60) as client:
        for method, path in routes:
            announced = client.request(method, path, content=b"{" + b" " * TEN_MB, headers=headers)
            assert_problem(announced, "payload-too-large")
            streamed = client.request(method, path, content=_chunks(), headers=headers)
            assert streamed.status_code == 413, (service, method, path, "chunked")
    assert _changes(bus) == history  # nothing written


def test_a_body_under_the_limit_still_reaches_the_route(bus: RunningBus) -> None:
    """The limit is a ceiling, not a filter: an ordinary request is answered by its route
    (here 422 for a body that is valid JSON but not a case)."""
    with bus.client("border-police") as client:
        response = client.post("/v1/cases", content=b"[" + b"0," * 1000 + b"0]")
    assert response.status_code == 422
    assert DEFAULT_MAX_BODY >= 1024 * 1024
