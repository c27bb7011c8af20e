"""One error shape on every service of a running bus: a router node, the registry and the
notifier answer their own refusals and their web framework's errors as problems
(`contracts.problems`), with the status and title of the table, and document them so.
The gateway's are checked beside the federation (tests/federation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys
from notifier.api import create_app as create_notifier_app
from notifier.api import install_error_handlers as notifier_errors
from nrm.embedded import OPERATOR_ID
from referral_router.api.errors import install_error_handlers as router_errors
from referral_router.api.health import health
from registry.errors import install_error_handlers as registry_errors
from tests.bus.running import RunningBus, running_bus
from tests.problems import (
    BadRequest,
    assert_openapi_problems,
    assert_problem,
    assert_refused,
    framework_errors,
)

#: service -> (its JSON route, a GET route, a query off that route's schema)
ROUTES: dict[str, tuple[str | None, str, dict[str, object]]] = {
    "router": ("/v1/cases", "/v1/inbox", {"limit": 0}),
    "registry": ("/v1/agencies", "/v1/history", {"after": -1}),
    "notifier": (None, "/v1/deadlines", {"agency": "NOT AN ID"}),
}
CASES = [(service, bad) for service, args in ROUTES.items() for bad in framework_errors(*args)]


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    with running_bus(tmp_path_factory.mktemp("bus")) as b:
        yield b


def _token(keys: AgencyKeys, agency_id: str, audience: str) -> dict[str, str]:
    pair = keys.current(KeyUse.SIGNING)
    token = issue_token(agency_id, pair.key_id, pair.ed25519(), audience, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def _url_and_auth(bus: RunningBus, service: str) -> tuple[str, Callable[[], dict[str, str]]]:
    """The service's base URL, and fresh tokens (one a request) the service accepts."""
    b = bus.bus
    if service == "router":
        return b.urls["border-police"], lambda: {
            "Authorization": f"Bearer {b.token('border-police')}"
        }
    if service == "registry":
        audience = b.registry_config.token_audience
        return b.registry_url, lambda: _token(b.operator_keys, OPERATOR_ID, audience)
    audience = f"nrm-notifier:{b.country}"
    keys = b.agency_keys["safe-house"]
    return b.notifier_url, lambda: _token(keys, "safe-house", audience)


@pytest.mark.parametrize(("service", "bad"), CASES, ids=[f"{s}-{b}" for s, b in CASES])
def test_framework_errors_are_problems(bus: RunningBus, service: str, bad: BadRequest) -> None:
    url, auth = _url_and_auth(bus, service)
    assert_refused(bad.send(url, auth()), bad)


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_authentication_errors_are_problems(bus: RunningBus, service: str) -> None:
    url, auth = _url_and_auth(bus, service)
    path = ROUTES[service][1]
    assert "missing" in assert_problem(httpx.get(f"{url}{path}"), "unauthenticated").detail
    junk = {"Authorization": "Bearer not-a-token"}
    assert_problem(httpx.get(f"{url}{path}", headers=junk), "unauthenticated")
    headers = auth()
    assert httpx.get(f"{url}{path}", headers=headers).status_code == 200
    replayed = httpx.get(f"{url}{path}", headers=headers)
    assert "replay" in assert_problem(replayed, "unauthenticated").detail


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_every_documented_error_is_a_problem(bus: RunningBus, service: str) -> None:
    url, _ = _url_and_auth(bus, service)
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert assert_openapi_problems(document) >= 5


def test_the_notifiers_own_refusals_are_problems(bus: RunningBus) -> None:
    url, auth = _url_and_auth(bus, "notifier")
    police = _token(bus.bus.agency_keys["border-police"], "border-police", "x")
    assert_problem(httpx.get(f"{url}/v1/deadlines", headers=police), "unauthenticated")
    r = httpx.get(f"{url}/v1/subscriptions/sub-0000/deliveries", headers=auth())
    assert "no subscription sub-0000" in assert_problem(r, "not-found").detail
    r = httpx.get(f"{url}/v1/deadlines", params={"agency": "border-police"}, headers=auth())
    assert "not your agency" in assert_problem(r, "forbidden").detail
    stream = f"{url}/v1/notifications/stream"
    r = httpx.get(stream, headers={**auth(), "Last-Event-ID": "soon"})
    assert "Last-Event-ID" in assert_problem(r, "bad-request").detail


def test_the_registrys_own_refusals_are_problems(bus: RunningBus) -> None:
    url, auth = _url_and_auth(bus, "registry")
    r = httpx.get(f"{url}/v1/agencies/no-such-agency", headers=auth())
    assert "no-such-agency" in assert_problem(r, "not-found").detail
    shelter = bus.bus.agency_keys["safe-house"]
    audience = bus.bus.registry_config.token_audience
    r = httpx.put(
        f"{url}/v1/agreement",
        json={"name": "x", "grants": {}},
        headers=_token(shelter, "safe-house", audience),
    )
    assert "operator" in assert_problem(r, "forbidden").detail


@pytest.mark.parametrize("install", [router_errors, registry_errors, notifier_errors])
def test_an_unforeseen_failure_is_a_500_problem_that_tells_nothing(
    install: Callable[[FastAPI], None],
) -> None:
    app = FastAPI()

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("secret path /srv/keys")

    install(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/fails")
    assert_problem(r, "internal-error")
    assert "secret" not in r.text and "RuntimeError" not in r.text


class _FailingStore:
    def max_position(self) -> int:
        raise OSError("disk gone")

    def ping(self) -> int:
        return 1

    def known(self, agency: str) -> bool:
        return False


def test_readiness_failures_are_503_problems() -> None:
    """A node whose store fails, a notifier still waiting for subscriptions: `not-ready`."""
    node = FastAPI()
    node.include_router(health)
    node.state.node = SimpleNamespace(store=_FailingStore())
    router_errors(node)
    with TestClient(node) as client:
        assert "disk gone" in assert_problem(client.get("/readyz"), "not-ready").detail

    waiting = SimpleNamespace(
        store=_FailingStore(), agencies={"xa-shelter": None}, errors={"xa-shelter": "down"}
    )
    notifier = create_notifier_app(waiting, verifier=None)  # type: ignore[arg-type]
    with TestClient(notifier) as client:
        found = assert_problem(client.get("/readyz"), "not-ready")
    assert "xa-shelter" in found.detail and "down" in found.detail
