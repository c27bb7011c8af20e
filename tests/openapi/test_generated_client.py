"""A client generated from a node's OpenAPI document by a standard generator
(openapi-python-client, offline) screens a case against the running node and reads it
back: the document is complete enough for a developer who never reads this repository.
The generated code's own auth parameter is not used: an httpx hook adds the token and a
fresh DPoP proof per request, as any DPoP library would."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from contracts.examples import EXAMPLES
from nrm_client import Credentials
from tests.bus.running import RunningBus, running_bus
from tests.quickstart.running_up import BIN, user_env


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    with running_bus(tmp_path_factory.mktemp("generated-client")) as b:
        yield b


def generate(document_url: str, folder: Path, package: str) -> ModuleType:
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(document_url, timeout=30).content)
    done = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document),
         "--output-path", str(folder / package), "--meta", "none"],
        env=user_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(folder))


def test_a_generated_client_screens_a_case(bus: RunningBus, tmp_path: Path) -> None:
    url = bus.bus.urls["border-police"]
    generated = generate(f"{url}/openapi.json", tmp_path, "router_client")
    screen = importlib.import_module("router_client.api.cases.screen_case_v1_cases_post")
    read = importlib.import_module("router_client.api.cases.read_case_v1_cases_case_get")
    models = importlib.import_module("router_client.models")
    credentials = Credentials(bus.bus.agency_keys["border-police"])

    def sign(request: httpx.Request) -> None:
        request.headers.update(
            credentials.headers(request.method, str(request.url), "nrm-router:border-police")
        )

    client = generated.Client(base_url=url, httpx_args={"event_hooks": {"request": [sign]}})
    recipients, payload = EXAMPLES["case.screened"]
    body = models.ScreenCase.from_dict({"recipients": recipients, "payload": payload})
    answer = screen.sync_detailed(client=client, body=body, idempotency_key="generated-1")
    assert answer.status_code == 201, answer.content
    receipt = answer.parsed
    assert isinstance(receipt, models.EventReceipt) and receipt.type_ == "case.screened"
    case = read.sync_detailed(receipt.case, client=client)
    assert case.status_code == 200 and case.parsed.case == receipt.case
    refused = read.sync_detailed("case-0000000000", client=client)
    assert refused.status_code == 404 and isinstance(refused.parsed, models.Problem)
    assert refused.parsed.error == "unknown-case"
