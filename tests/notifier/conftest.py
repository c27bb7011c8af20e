"""Real HTTP all the way: a registry, a router test double, receivers and the notifier
each served by uvicorn on 127.0.0.1 (random ports), with real keys and tokens.

The router double (`RouterDouble`) is a small FastAPI app that implements the parts of
the router's HTTP contract the notifier uses — `GET /v1/log` and `GET /v1/log/stream`
(same paging, cursor and item shape as services/referral-router/api/) and
`POST /v1/cases/{case}/events` (Idempotency-Key replays the first answer, refusals as
problems) — and records what it gets. Like a node, it accepts the notifier's own
identity with the scope each route needs (`log:read`, `escalate`), never an agency key
the notifier would have to hold. It stands in for a full node so these tests need no
bus.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp

from contracts.agency_token import (
    AuthError,
    FixedParties,
    FixedParty,
    ReplayCache,
    TokenVerifier,
    issue_token,
)
from contracts.directory import Directory, KeyUse
from contracts.events import CaseEscalated
from contracts.keystore import AgencyKeys, generate_agency_keys
from contracts.problems import MEDIA_TYPE, auth_problem, problem
from contracts.webhook_signature import SignatureError, verify
from notifier import NotifierRuntime, NotifierSettings, RetryPolicy, ServedAgency
from registry import Registry, RegistryConfig
from registry import create_app as registry_app

COUNTRY = "XA"
REGISTRY_AUDIENCE = f"nrm-registry:{COUNTRY}"
NOTIFIER_AUDIENCE = "http://notifier.test"
CANARY = "CANARY-Zq81"


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """A real uvicorn server on 127.0.0.1 and a free port, in this event loop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class MovableClock:
    """Real time plus an offset the test moves (deadlines days ahead, tokens still valid)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def token(keys: AgencyKeys, audience: str) -> dict[str, str]:
    pair = keys.current(KeyUse.SIGNING)
    jwt = issue_token(keys.agency_id, pair.key_id, pair.ed25519(), audience)
    return {"Authorization": f"Bearer {jwt}"}


# --- the router double ------------------------------------------------------------------


@dataclass
class RouterDouble:
    agency_id: str
    directory: Callable[[], Directory]
    notifier: FixedParty
    items: list[dict[str, Any]] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    #: how many times the log was read (paged), and how many streams of it were opened
    reads: int = 0
    streams: int = 0
    #: how long a stream of the log stays open (a node's ends with the reader's token)
    stream_seconds: float = 5.0
    #: False: a node from before the stream (it answers 404)
    streaming: bool = True

    def add(
        self,
        event_type: str,
        case: str,
        *,
        direction: str = "received",
        sender: str = "xa-police",
        recipients: list[str] | None = None,
        operational: dict[str, Any] | None = None,
        deadlines: dict[str, datetime] | None = None,
        time: datetime | None = None,
    ) -> dict[str, Any]:
        item = {
            "position": len(self.items) + 1,
            "direction": direction,
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "case": case,
            "time": (time or datetime.now(UTC)).isoformat(),
            "sender": sender,
            "recipients": recipients or [self.agency_id],
            "operational": operational or {},
            "deadlines": {k: v.isoformat() for k, v in (deadlines or {}).items()},
        }
        self.items.append(item)
        return item

    async def _lines(self, after: int) -> AsyncIterator[bytes]:
        """What is there after `after`, then each new entry as it comes (as a node
        streams its log), until `stream_seconds` have passed (as its token would)."""
        ends = time.monotonic() + self.stream_seconds
        while time.monotonic() < ends:
            batch = [i for i in self.items if i["position"] > after]
            if batch:
                yield b"".join(json.dumps(i).encode() + b"\n" for i in batch)
                after = batch[-1]["position"]
            await asyncio.sleep(0.01)

    def escalations(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["type"] == "case.escalated"]

    def app(self) -> FastAPI:
        app = FastAPI()
        replay = ReplayCache()

        parties = FixedParties(self.notifier)

        def check(authorization: str | None, scope: str) -> JSONResponse | None:
            verifier = TokenVerifier(lambda: parties, self.url, replay_cache=replay)
            try:
                verified = verifier.authenticate(authorization)
            except AuthError as exc:
                refused = auth_problem(exc)
            else:
                if scope in verified.scope:
                    return None
                refused = problem("forbidden", f"needs {scope}")
            return JSONResponse(refused.body(), refused.status, media_type=MEDIA_TYPE)

        @app.get("/v1/log")
        async def log(
            after: int = Query(0, ge=0),
            limit: int = Query(100, ge=1, le=500),
            wait: float = Query(0, ge=0, le=30),
            authorization: str | None = Header(None),
        ) -> Any:
            if (refused := check(authorization, "log:read")) is not None:
                return refused
            self.reads += 1
            waited = 0.0  # a long poll, as a node answers one: as soon as an entry is there
            while waited < wait and not any(i["position"] > after for i in self.items):
                await asyncio.sleep(0.01)
                waited += 0.01
            batch = [i for i in self.items if i["position"] > after][:limit]
            return {
                "items": batch,
                "next_after": batch[-1]["position"] if len(batch) == limit else None,
            }

        @app.get("/v1/log/stream")
        async def log_stream(
            after: int = Query(0, ge=0), authorization: str | None = Header(None)
        ) -> Any:
            if not self.streaming:
                return JSONResponse({"detail": "Not Found"}, 404)
            if (refused := check(authorization, "log:read")) is not None:
                return refused
            self.streams += 1
            return StreamingResponse(self._lines(after), media_type="application/x-ndjson")

        @app.post("/v1/cases/{case}/events", status_code=201)
        async def append(
            case: str,
            request: Request,
            authorization: str | None = Header(None),
            idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
        ) -> Any:
            if (refused := check(authorization, "escalate")) is not None:
                return refused
            body = await request.json()
            self.posted.append({"case": case, "key": idempotency_key, "body": body})
            if idempotency_key in self.answers:
                return JSONResponse(self.answers[idempotency_key], 200)
            CaseEscalated.model_validate(body["payload"])  # the contract's payload
            item = self.add(
                body["type"],
                case,
                direction="sent",
                sender=self.agency_id,
                recipients=body["recipients"],
                operational=body["payload"],
            )
            answer = {"case": case, "event_id": item["event_id"], "type": item["type"]}
            if idempotency_key:
                self.answers[idempotency_key] = answer
            return JSONResponse(answer, 201)

        return app


# --- the receiver -----------------------------------------------------------------------


@dataclass
class Receiver:
    """An agency system's webhook endpoint that misbehaves on request."""

    secrets: dict[str, str] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def hook(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def got(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["name"] == name]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> Any:
            body = await request.body()
            try:
                verify(self.secrets[name], body, request.headers.get("Nrm-Signature"))
                verified = True
            except (SignatureError, KeyError):
                verified = False
            record = {
                "name": name,
                "at": time.monotonic(),
                "body": body,
                "verified": verified,
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "attempt": request.headers.get("Nrm-Delivery-Attempt"),
            }
            self.received.append(record)
            if self.delay.get(name):
                await asyncio.sleep(self.delay[name])
            if name in self.gone:
                return JSONResponse({"detail": "gone"}, 410)
            if self.fail_first.get(name, 0) > 0:
                self.fail_first[name] -= 1
                return JSONResponse({"detail": "try later"}, 503)
            if not verified:
                return JSONResponse({"detail": "bad signature"}, 401)
            return {"ok": True}

        return app


# --- the world --------------------------------------------------------------------------


@dataclass
class World:
    tmp: Path
    registry: Registry
    registry_url: str
    operator: AgencyKeys
    agencies: dict[str, AgencyKeys]
    notifier_keys: AgencyKeys
    router: RouterDouble
    receiver: Receiver
    clock: MovableClock
    http: httpx.AsyncClient

    @property
    def shelter(self) -> AgencyKeys:
        return self.agencies["xa-shelter"]

    async def subscribe(
        self, name: str, event_types: list[str], agency: str = "xa-shelter"
    ) -> dict[str, Any]:
        r = await self.http.post(
            f"{self.registry_url}/v1/agencies/{agency}/subscriptions",
            json={"webhook_url": self.receiver.hook(name), "event_types": event_types},
            headers=token(self.operator, REGISTRY_AUDIENCE),
        )
        assert r.status_code == 201, r.text
        created = r.json()
        self.receiver.secrets[name] = created["secret"]
        return created

    def notifier(
        self,
        *,
        retry: RetryPolicy | None = None,
        db: str = "notifier.sqlite",
        follow_linger: float = 0.0,
        also_serves: Sequence[str] = (),
        registry_transport: httpx.AsyncBaseTransport | None = None,
    ) -> NotifierRuntime:
        """A notifier for the router double's agency (and `also_serves`, whose nodes it
        is never asked to follow here)."""
        settings = NotifierSettings(
            db_path=self.tmp / db,
            audience=NOTIFIER_AUDIENCE,
            registry_url=self.registry_url,
            registry_audience=REGISTRY_AUDIENCE,
            operator_id=self.operator.agency_id,
            operator_keys=tuple(p.public_record() for p in self.operator.pairs),
            retry=retry
            or RetryPolicy(max_attempts=4, base_seconds=0.05, cap_seconds=0.2, timeout_seconds=2),
            poll_interval=0.05,
            escalation_retry_seconds=0.05,
            sse_poll_seconds=0.05,
            follow_linger=follow_linger,
            registry_transport=registry_transport,
        )
        served = [
            ServedAgency(agency, self.router.url)
            for agency in (self.router.agency_id, *also_serves)
        ]
        return NotifierRuntime(
            settings, served, self.registry.directory, self.notifier_keys, clock=self.clock
        )


ROLES = {
    "xa-shelter": ["service-provider"],
    "xa-police": ["first-responder"],
    "xa-authority": ["competent-authority"],
    "xa-cp": ["child-protection"],
    "xa-rapporteur": ["oversight"],
}


def _registration(keys: AgencyKeys, roles: list[str]) -> dict[str, Any]:
    def key(use: KeyUse) -> dict[str, str]:
        rec = keys.current(use).public_record()
        return {"key_id": rec.key_id, "use": rec.use, "alg": rec.alg, "public_key": rec.public_key}

    return {
        "id": keys.agency_id,
        "name": f"Agency {keys.agency_id}",
        "country": COUNTRY,
        "roles": roles,
        "services": ["shelter"] if "service-provider" in roles else [],
        "endpoints": {
            "router_url": f"https://{keys.agency_id}.example/router",
            "webhook_url": f"https://{keys.agency_id}.example/hooks",
        },
        "keys": [key(u) for u in KeyUse],
    }


@asynccontextmanager
async def world(tmp: Path, node_agency: str = "xa-shelter") -> AsyncIterator[World]:
    registry_keys = generate_agency_keys("xa-registry")
    operator = generate_agency_keys("xa-coordinator")
    notifier_keys = generate_agency_keys("xa-notifier")
    notifier = FixedParty(
        notifier_keys.agency_id, tuple(p.public_record() for p in notifier_keys.pairs)
    )
    signing = registry_keys.current(KeyUse.SIGNING)
    config = RegistryConfig(
        country=COUNTRY,
        signing_key=signing.ed25519(),
        signing_key_id=signing.key_id,
        operator_id=operator.agency_id,
        operator_keys=tuple(p.public_record() for p in operator.pairs),
        notifier=notifier,
    )
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp / "registry.sqlite"),
    }
    registry = Registry(config, env=env)
    agencies = {a: generate_agency_keys(a) for a in ROLES}
    router = RouterDouble(node_agency, registry.directory, notifier)
    receiver = Receiver()
    async with (
        serve(registry_app(registry)) as registry_url,
        serve(router.app()) as router_url,
        serve(receiver.app()) as receiver_url,
        httpx.AsyncClient(timeout=10) as http,
    ):
        router.url, receiver.url = router_url, receiver_url
        for agency_id, keys in agencies.items():
            r = await http.post(
                f"{registry_url}/v1/agencies",
                json=_registration(keys, ROLES[agency_id]),
                headers=token(operator, REGISTRY_AUDIENCE),
            )
            assert r.status_code == 201, r.text
        yield World(
            tmp,
            registry,
            registry_url,
            operator,
            agencies,
            notifier_keys,
            router,
            receiver,
            MovableClock(),
            http,
        )


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
