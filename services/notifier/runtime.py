"""The notifier for one or several agencies: follows each node's log, delivers webhooks,
watches deadlines and escalates. All I/O lives here and in `api.py`; what to notify, when
to retry and which deadlines are open are decided by the pure modules.

Three loops run until `stop()`: the follower (subscriptions from the registry, the node's
log stream, `GET /v1/log/stream`, from the stored cursor), the deadlines due, and the
deliverer (webhooks due).
The injected `clock` is domain time: deadlines, reminders and the retry schedule. Tokens
and signature timestamps use the system clock, since other parties check them against
theirs.

Tracing: a log item's `traceparent` (the receiving node's span that applied the event)
is remembered in memory per notification, and the webhook delivery is a CLIENT span in
that trace whose context rides in the webhook's `traceparent` header, so one trace runs
from the sender's request into the receiving agency's system. Following the log makes
no spans: an idle notifier exports nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from asyncio import FIRST_COMPLETED
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.agency_token import ReplayCache, TokenVerifier, issue_token, system_clock
from contracts.connections import LOG_STREAM_SILENCE_S
from contracts.directory import AgencyStatus, Directory, KeyUse, PublicKeyRecord
from contracts.keystore import AgencyKeys
from contracts.legal_basis import ErasureBasis
from contracts.policy import RETENTION_OFFICER
from contracts.vocabulary import Role
from contracts.webhook_signature import HEADER, IDEMPOTENCY_HEADER, sign
from notifier.api import create_app
from notifier.callers import Parties
from notifier.deadlines import REMINDS_OF, audience, escalation_key, plan, retention_key
from notifier.notifications import (
    RetryPolicy,
    event_notification,
    outcome,
    reminder_notification,
)
from notifier.store import DueDeadline, DueDelivery, NotifierStore, StoredSubscription
from notifier.subscriptions import SecretUnavailable, StaticSubscription, open_secret

log = logging.getLogger("nrm.notifier")

Clock = Callable[[], datetime]
TRACE_SCOPE = "nrm.notifier"
_MAX_TRACES = 10_000
_propagator = TraceContextTextMapPropagator()


@dataclass
class ServedAgency:
    """One agency whose node this notifier follows. The notifier never holds the
    agency's keys: it calls the node as itself, with scoped tokens."""

    agency_id: str
    router_url: str
    #: None: fetched from the registry; a tuple: fixed (embedded bus without a registry).
    subscriptions: tuple[StaticSubscription, ...] | None = None
    router_audience: str | None = None  # default: the router URL
    router_transport: httpx.AsyncBaseTransport | None = None  # e.g. ASGI, in-process

    @property
    def audience(self) -> str:
        """What the notifier's tokens for this agency's node name as their audience."""
        return self.router_audience or self.router_url


@dataclass
class NotifierSettings:
    db_path: Path
    audience: str  # of this notifier's own API (tokens name it)
    registry_url: str | None = None
    registry_audience: str | None = None
    registry_transport: httpx.AsyncBaseTransport | None = None
    webhook_transport: httpx.AsyncBaseTransport | None = None
    #: Whom the registry and the nodes must prove to be (TLS): the local CA's context,
    #: or True for the system's CAs. Webhook receivers are always checked by the system's.
    verify: ssl.SSLContext | bool = True
    operator_id: str | None = None
    operator_keys: tuple[PublicKeyRecord, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How often due deadlines and deliveries are looked for (new log entries and new
    #: notifications wake the notifier at once; this bounds the wait for the clock).
    poll_interval: float = 0.5
    #: How long the notifier gathers what a node's log stream brings after an entry
    #: before it ingests them: a busy node's entries then take one transaction of the
    #: notifier's store, not one each (its fsync per read was a fifth of a busy bus's CPU).
    #: Notifications are at most this much later; deadlines, hours or days away, do not
    #: notice.
    follow_linger: float = 0.2
    page_size: int = 200
    subscription_refresh_seconds: float = 60.0
    escalation_retry_seconds: float = 30.0
    sse_poll_seconds: float = 0.2
    tracer_provider: Any = None  # None: the global one (NRM_OTEL_EXPORTER)


#: What the notifier's tokens may do: read nodes' logs (clear parts), append escalations,
#: read its agencies' subscriptions. Nothing that opens a case.
LOG_READ, ESCALATE, SUBSCRIPTIONS_READ = "log:read", "escalate", "subscriptions:read"
#: Lets the node accept from its notifier an erasure order on `retention-expired` only.
ERASE_RETENTION = "erase:retention"


class NotifierRuntime:
    """`identity` is the notifier's own keystore: it signs the notifier's scoped tokens
    and opens subscription secrets (the registry seals them to it)."""

    def __init__(
        self,
        settings: NotifierSettings,
        agencies: Sequence[ServedAgency],
        directory: Callable[[], Directory],
        identity: AgencyKeys,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.agencies = {a.agency_id: a for a in agencies}
        self.directory = directory
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.store = NotifierStore(settings.db_path)
        self.errors: dict[str, str] = {}
        self._secrets: dict[str, str] = {}
        #: When each agency's subscriptions were last asked for (loaded or not), the
        #: lists last stored, and each subscription's sealed secret last opened.
        self._subs_asked: dict[str, float] = {}
        self._listed: dict[str, list[dict[str, Any]]] = {}
        self._sealed: dict[str, Any] = {}
        self._refreshing = asyncio.Lock()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._deadline_locks: dict[str, asyncio.Lock] = {}
        self._running: asyncio.Future[Any] | None = None
        self._traces: OrderedDict[str, str] = OrderedDict()  # notification id -> traceparent
        self._tracer = trace.get_tracer(TRACE_SCOPE, tracer_provider=settings.tracer_provider)
        parties = Parties(directory, settings.operator_id, settings.operator_keys)
        verifier = TokenVerifier(lambda: parties, settings.audience, replay_cache=ReplayCache())
        self.app: FastAPI = create_app(self, verifier)

    # -- plumbing -------------------------------------------------------------------------

    @property
    def operator_id(self) -> str | None:
        return self.settings.operator_id

    @property
    def sse_poll_seconds(self) -> float:
        return self.settings.sse_poll_seconds

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def wake(self) -> None:
        """Deliveries became due (new notifications, a replay): do not wait for the poll."""
        self._wake.set()

    def _client(self, name: str, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        client = self._clients.get(name)
        if client is None:
            verify = True if name == "webhooks" else self.settings.verify
            client = httpx.AsyncClient(transport=transport, timeout=10.0, verify=verify)
            self._clients[name] = client
        return client

    def _token(self, audience: str, scope: str) -> dict[str, str]:
        pair = self.identity.current(KeyUse.SIGNING)
        token = issue_token(
            self.identity.agency_id, pair.key_id, pair.ed25519(), audience, scope=scope
        )
        return {"Authorization": f"Bearer {token}"}

    def _router(self, agency: ServedAgency) -> tuple[httpx.AsyncClient, str]:
        client = self._client(f"router:{agency.agency_id}", agency.router_transport)
        return client, agency.router_url.rstrip("/")

    # -- subscriptions ------------------------------------------------------------------

    async def refresh_subscriptions(self) -> None:
        """Every served agency's subscriptions: from configuration, or from the registry
        in one request for all (`GET /v1/subscriptions`); secrets opened with the
        notifier's own key and held in memory only. A failure is recorded per agency,
        not raised; an agency's list is stored only when it changed."""
        asked = time.monotonic()
        from_registry = [a for a, served in self.agencies.items() if served.subscriptions is None]
        listings: dict[str, list[dict[str, Any]]] = {
            a: [s.listing() for s in served.subscriptions]
            for a, served in self.agencies.items()
            if served.subscriptions is not None
        }
        for served in self.agencies.values():
            self._secrets.update({s.id: s.secret for s in served.subscriptions or ()})
        if from_registry:
            try:
                listings.update(await self._registry_subscriptions(from_registry))
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                for agency_id in from_registry:
                    self.errors[f"{agency_id}:subscriptions"] = f"{type(exc).__name__}: {exc}"
        for agency_id, listing in listings.items():
            self._load(agency_id, listing)
            self.errors.pop(f"{agency_id}:subscriptions", None)
        self._subs_asked.update(dict.fromkeys(self.agencies, asked))

    async def _registry_subscriptions(self, agency_ids: list[str]) -> dict[str, list[Any]]:
        """The registry's lists for `agency_ids`, each subscription's secret opened; an
        agency it does not know is recorded as an error. A registry from before
        `GET /v1/subscriptions` (404: upgraded after its notifier) is asked per agency."""
        if not self.settings.registry_url:
            raise RuntimeError("no registry_url and no configured subscriptions")
        client = self._client("registry", self.settings.registry_transport)
        base = self.settings.registry_url.rstrip("/")
        r = await client.get(
            f"{base}/v1/subscriptions",
            params={"agency_id": agency_ids},
            headers=self._registry_token(),
        )
        if r.status_code == 404:  # the route itself: an unknown agency is not a 404 here
            answer = await self._each_agencys_subscriptions(client, base, agency_ids)
        else:
            r.raise_for_status()
            answer = r.json()
        for agency_id in answer["unknown"]:
            self.errors[f"{agency_id}:subscriptions"] = "the registry does not know this agency"
        return {
            agency_id: [self._opened(agency_id, item) for item in items]
            for agency_id, items in answer["agencies"].items()
            if agency_id in self.agencies
        }

    async def _each_agencys_subscriptions(
        self, client: httpx.AsyncClient, base: str, agency_ids: list[str]
    ) -> dict[str, Any]:
        """The answer of `GET /v1/subscriptions`, from an older registry's per-agency
        route (`GET /v1/agencies/{id}/subscriptions`, 404 for an unknown agency)."""
        answer: dict[str, Any] = {"agencies": {}, "unknown": []}
        for agency_id in agency_ids:
            r = await client.get(
                f"{base}/v1/agencies/{agency_id}/subscriptions", headers=self._registry_token()
            )
            if r.status_code == 404:
                answer["unknown"].append(agency_id)
                continue
            r.raise_for_status()
            answer["agencies"][agency_id] = r.json()["items"]
        return answer

    def _registry_token(self) -> dict[str, str]:
        audience = self.settings.registry_audience or self.settings.registry_url or ""
        return self._token(audience, SUBSCRIPTIONS_READ)

    def _opened(self, agency_id: str, item: dict[str, Any]) -> dict[str, Any]:
        """The listing of one subscription, its secret opened once (and again only if
        the registry sealed a new one)."""
        sealed = item["secret_sealed"]
        if item["id"] not in self._sealed or self._sealed[item["id"]] != sealed:
            try:
                self._secrets[item["id"]] = open_secret(
                    sealed, self.identity, agency_id, item["id"]
                )
            except SecretUnavailable as exc:
                log.error("%s", exc)
                self._secrets.pop(item["id"], None)
            self._sealed[item["id"]] = sealed
        if item["id"] not in self._secrets:
            return {**item, "status": "secret-unavailable"}
        return item

    def _load(self, agency_id: str, listing: list[dict[str, Any]]) -> None:
        """Store the agency's list only if it changed since it was last stored: each
        refresh (every second on the process topology) would otherwise write it again."""
        if self._listed.get(agency_id) != listing:
            self.store.replace_subscriptions(agency_id, listing, self.now())
            self._listed[agency_id] = listing

    # -- following the node's log ---------------------------------------------------------

    def _log_of(self, agency_id: str) -> tuple[httpx.AsyncClient, str, str]:
        """The client, base URL and token audience to read the agency's node's log with;
        refused before subscriptions were ever loaded, so no event passes unnotified."""
        if not self.store.known(agency_id):
            raise RuntimeError(f"subscriptions of {agency_id} not loaded yet")
        agency = self.agencies[agency_id]
        client, base = self._router(agency)
        return client, base, agency.audience

    async def follow_once(self, agency_id: str) -> int:
        """Pages the node's log from the stored cursor to its end; returns how many new
        notifications it made. Refuses to move before subscriptions were ever loaded, so
        no event passes unnotified (as `follow_stream`)."""
        client, base, audience = self._log_of(agency_id)
        after, created = self.store.cursor(agency_id), 0
        while True:
            r = await client.get(
                f"{base}/v1/log",
                params={"after": after, "limit": self.settings.page_size},
                headers=self._token(audience, LOG_READ),
            )
            r.raise_for_status()
            page = r.json()
            items: list[dict[str, Any]] = page["items"]
            if items:
                created += await self._ingest(agency_id, items)
                after = max(int(it["position"]) for it in items)
            if page.get("next_after") is None or not items:
                break
        return created

    async def follow_stream(self, agency_id: str) -> int:
        """Follows the node's log on one request (`GET /v1/log/stream`) from the stored
        cursor, until the stream ends (with the token that opened it) or the notifier
        stops, reading the subscriptions again as often as set; returns how many
        notifications it made. What arrives within `follow_linger` of an entry is
        ingested with it, in one transaction of the notifier's store. A node without the
        stream (404: an older version) has its log paged instead, once per call."""
        client, base, audience = self._log_of(agency_id)
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        created = 0
        async with client.stream(
            "GET",
            f"{base}/v1/log/stream",
            params={"after": self.store.cursor(agency_id)},
            headers=self._token(audience, LOG_READ),
            timeout=httpx.Timeout(10.0, read=LOG_STREAM_SILENCE_S),
        ) as r:
            if r.status_code == 404:  # a node from before the stream: paged instead
                return await self.follow_once(agency_id)
            if r.status_code != 200:
                await r.aread()
                r.raise_for_status()
            reading = asyncio.create_task(_read_lines(r, lines))
            try:
                while not self._stopping.is_set():
                    if time.monotonic() >= self._refresh_at(agency_id):  # busy or idle
                        await self._refreshed(agency_id)
                    wait = self._refresh_at(agency_id) - time.monotonic()
                    first = await self._next_line(lines, wait)
                    if first is None:
                        break  # the stream ended
                    if not first:
                        continue  # a refresh is due, or the notifier stops
                    await self._pause(self.settings.follow_linger)
                    got = [first, *_drain(lines)]
                    items = [json.loads(line) for line in got if line]
                    created += await self._ingest(agency_id, items)
                    await self.check_deadlines(agency_id)
                    if None in got:
                        break
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
        return created

    async def _next_line(self, lines: asyncio.Queue[bytes | None], timeout: float) -> bytes | None:
        """The stream's next entry; None when it ended, empty when `timeout` passed
        first or the notifier stops."""
        getting = asyncio.ensure_future(lines.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait(
                {getting, stopping}, timeout=max(timeout, 0.0), return_when=FIRST_COMPLETED
            )
            return getting.result() if getting.done() else b""
        finally:
            getting.cancel()
            stopping.cancel()

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _ingest(self, agency_id: str, items: list[dict[str, Any]]) -> int:
        """Notifications and deadline changes of log items, and the cursor past them,
        in one transaction; wakes the deliverer when there is something to deliver."""
        if not items:
            return 0
        notes = []
        for it in items:
            if it.get("direction") == "received":
                notes.append(event_notification(agency_id, it))
                self._remember_trace(notes[-1].id, it.get("traceparent"))
        roles = await asyncio.to_thread(self._roles, agency_id)
        changes = [c for it in items for c in plan(it, roles)]
        last = max(int(it["position"]) for it in items)
        subs = self.store.subscriptions(agency_id)
        created = self.store.ingest(agency_id, last, notes, changes, subs, self.now())
        if created:
            self._wake.set()
            log.debug("%s: %d new notification(s), log read to %d", agency_id, created, last)
        return created

    def _remember_trace(self, notification_id: str, traceparent: Any) -> None:
        if isinstance(traceparent, str) and traceparent:
            self._traces[notification_id] = traceparent
            while len(self._traces) > _MAX_TRACES:
                self._traces.popitem(last=False)

    @contextlib.contextmanager
    def _delivery_span(
        self, d: DueDelivery, subscription: StoredSubscription, headers: dict[str, str]
    ) -> Iterator[Callable[[int | None, str | None], None]]:
        """A CLIENT span continuing the event's trace (if known), its context injected
        into the webhook's headers; yields `done(status_code, error)`."""
        parent = self._traces.get(d.notification_id)
        if parent is None:
            yield lambda status, error: None
            return
        context = _propagator.extract({"traceparent": parent})
        with self._tracer.start_as_current_span(
            "POST webhook",
            context=context,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "nrm.agency": subscription.agency_id,
                "nrm.subscription": subscription.id,
                "nrm.notification.id": d.notification_id,
                "nrm.delivery.attempt": d.attempts + 1,
            },
        ) as span:
            _propagator.inject(headers)

            def done(status: int | None, error: str | None) -> None:
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                if error is not None or status is None or status >= 400:
                    span.set_status(Status(StatusCode.ERROR, error or str(status)))

            yield done

    # -- deadlines ----------------------------------------------------------------------

    def _roles(self, agency_id: str) -> frozenset[Role]:
        """The agency's roles (which deadlines it owes as a recipient). The directory may
        be fetched: call it off the event loop, which may be serving the registry too."""
        record = self.directory().agency(agency_id)
        return frozenset(record.roles) if record is not None else frozenset()

    def escalation_recipients(self, agency_id: str, kind: str = "") -> list[str]:
        """The kind's audience (active, not ourselves): the competent authorities, and
        the oversight body for some kinds; else the national coordinator."""
        directory = self.directory()
        for roles in (audience(kind), (Role.NATIONAL_COORDINATOR,)):
            found = [
                a.id
                for a in directory.agencies
                if not set(roles).isdisjoint(a.roles)
                and a.status is AgencyStatus.ACTIVE
                and a.id != agency_id
            ]
            if found:
                return sorted(found)
        return []

    async def check_deadlines(self, agency_id: str) -> int:
        """Every open deadline past due: a reminder notification, or one escalation. One
        pass per agency at a time (the follower and the clock both look)."""
        lock = self._deadline_locks.setdefault(agency_id, asyncio.Lock())
        async with lock:
            return await self._act_on_due(agency_id)

    async def _act_on_due(self, agency_id: str) -> int:
        now, acted = self.now(), 0
        for d in self.store.due_deadlines(agency_id, now.timestamp()):
            if d.action == "remind":
                note = reminder_notification(
                    agency_id,
                    REMINDS_OF.get(d.kind, d.kind),
                    d.case,
                    d.about_event_id,
                    d.target or d.due,
                    now,
                )
                self.store.remind(d, note, self.store.subscriptions(agency_id), now)
                self._wake.set()
            elif d.action == "erase":
                await self._erase(agency_id, d, now)
            else:
                await self._escalate(agency_id, d, now)
            acted += 1
        return acted

    async def _erase(self, agency_id: str, d: DueDeadline, now: datetime) -> None:
        """The retention period of a case this agency closed has ended: its node orders
        the erasure (to every party it knows), on the legal basis `retention-expired`."""
        directory = await asyncio.to_thread(self.directory)
        recipients = [
            a
            for a in d.key.split(",")
            if a != agency_id
            and (record := directory.agency(a)) is not None
            and record.status is AgencyStatus.ACTIVE
        ]
        if not recipients:
            self._postpone(d, "no active agency the closing went to: the order needs one")
            return
        body = {
            "type": "case.erasure-ordered",
            "recipients": recipients,
            "payload": {
                "legal_basis": str(ErasureBasis.RETENTION_EXPIRED),
                "ordered_by_officer": RETENTION_OFFICER,
            },
        }
        key = retention_key(d.about_event_id)
        await self._act(agency_id, d, now, body, key, "erased", ERASE_RETENTION)

    async def _escalate(self, agency_id: str, d: DueDeadline, now: datetime) -> None:
        recipients = await asyncio.to_thread(self.escalation_recipients, agency_id, d.kind)
        if not recipients:
            self._postpone(d, "no competent authority or national coordinator in the directory")
            return
        body = {
            "type": "case.escalated",
            "recipients": recipients,
            "payload": {
                "deadline": d.kind,
                "about_event_id": d.about_event_id,
                "due": d.due.isoformat(),
            },
        }
        key = escalation_key(d.kind, d.about_event_id)
        await self._act(agency_id, d, now, body, key, "escalated", ESCALATE)

    async def _act(
        self,
        agency_id: str,
        d: DueDeadline,
        now: datetime,
        body: dict[str, Any],
        idempotency_key: str,
        done: str,
        scope: str,
    ) -> None:
        """Append the event a passed deadline calls for through the agency's own node,
        once: the Idempotency-Key makes a retry, a restart or a second notifier harmless.
        `scope`: the token's, which lets the node accept that event from its notifier."""
        agency = self.agencies[agency_id]
        client, base = self._router(agency)
        headers = self._token(agency.audience, scope)
        headers[IDEMPOTENCY_HEADER] = idempotency_key
        try:
            r = await client.post(f"{base}/v1/cases/{d.case}/events", json=body, headers=headers)
        except httpx.HTTPError as exc:
            self._postpone(d, f"router unreachable: {type(exc).__name__}")
            return
        problem = _problem(r)
        if r.is_success or problem.get("error") == "idempotency-key-reused":
            # the second case: an earlier run acted with other recipients already
            detail = str(r.json().get("event_id", "")) if r.is_success else f"{done} earlier"
            self.store.settle_deadline(d, done, detail, now)
            log.info("%s: %s of %s", done, d.kind, d.about_event_id)
        elif r.status_code in (404, 409, 422):
            reason = f"{r.status_code} {problem.get('error', '')}: {problem.get('detail', '')}"
            self.store.settle_deadline(d, "refused", reason[:500], now)
            log.warning("%s of %s refused by the router: %s", d.kind, d.about_event_id, reason)
        else:
            self._postpone(d, f"router answered {r.status_code}")

    def _postpone(self, d: DueDeadline, detail: str) -> None:
        wait = min(self.settings.escalation_retry_seconds * 2**d.tries, 3600.0)
        now = self.now()
        self.store.postpone_deadline(d, detail, (now + timedelta(seconds=wait)).timestamp(), now)

    # -- webhook deliveries -------------------------------------------------------------

    async def deliver_due(self) -> int:
        """All deliveries due now: subscriptions in parallel, each one's in order."""
        due = self.store.due_deliveries(self.now().timestamp())
        by_sub: dict[str, list[DueDelivery]] = {}
        for d in due:
            by_sub.setdefault(d.subscription, []).append(d)
        await asyncio.gather(*(self._deliver(sub, ds) for sub, ds in by_sub.items()))
        return len(due)

    def _secret(self, subscription_id: str) -> str | None:
        if subscription_id in self._secrets:
            return self._secrets[subscription_id]
        sub = self.store.subscription(subscription_id)
        agency = self.agencies.get(sub.agency_id) if sub else None
        if sub is None or agency is None or sub.secret_sealed is None:
            return None
        with contextlib.suppress(SecretUnavailable):
            self._secrets[subscription_id] = open_secret(
                sub.secret_sealed, self.identity, sub.agency_id, sub.id
            )
        return self._secrets.get(subscription_id)

    async def _deliver(self, subscription_id: str, deliveries: list[DueDelivery]) -> None:
        sub = self.store.subscription(subscription_id)
        if sub is None:
            return
        secret = self._secret(subscription_id)
        client = self._client("webhooks", self.settings.webhook_transport)
        policy = self.settings.retry
        for d in deliveries:
            status_code: int | None = None
            error: str | None = None
            started = time.monotonic()
            if secret is None:
                error = "subscription secret unavailable"
            else:
                headers = {
                    "Content-Type": "application/json",
                    HEADER: sign(secret, d.body),
                    IDEMPOTENCY_HEADER: d.notification_id,
                    "Nrm-Subscription": subscription_id,
                    "Nrm-Delivery-Attempt": str(d.attempts + 1),
                    "User-Agent": "nrm-notifier/1",
                }
                with self._delivery_span(d, sub, headers) as traced:
                    try:
                        r = await client.post(
                            sub.webhook_url,
                            content=d.body,
                            headers=headers,
                            timeout=policy.timeout_seconds,
                        )
                        status_code = r.status_code
                    except httpx.TimeoutException:
                        error = "timeout"
                    except httpx.HTTPError as exc:
                        error = f"{type(exc).__name__}"
                    traced(status_code, error)
            result = outcome(status_code)
            elapsed = int((time.monotonic() - started) * 1000)
            log.debug(
                "delivery %d of notification %s to %s: %s",
                d.id,
                d.notification_id,
                subscription_id,
                status_code or error,
            )
            now = self.now()
            next_at: float | None = None
            dead_reason: str | None = None
            if result == "delivered":
                status = "delivered"
            elif result == "gone":
                status = "gone"
            elif result == "refused":
                status, dead_reason = "dead", f"refused: HTTP {status_code}"
            elif d.tries + 1 >= policy.max_attempts:
                status = "dead"
                dead_reason = f"{d.tries + 1} attempts failed; last: {error or status_code}"
            else:
                status = "pending"
                next_at = now.timestamp() + policy.delay(d.tries + 1, self.rng)
            self.store.record_attempt(
                d,
                status_code=status_code,
                error=error,
                duration_ms=elapsed,
                result=result,
                status=status,
                now=now,
                next_at=next_at,
                dead_reason=dead_reason,
            )
            if result == "gone":
                self.store.set_local_status(subscription_id, "disabled", "HTTP 410 Gone", now)
                log.warning("subscription %s answered 410: disabled", subscription_id)
                return
            if status == "pending":
                return  # a failing receiver: the rest of its batch waits for the next pass

    # -- loops --------------------------------------------------------------------------

    async def step(self, agency_id: str, stream: bool = False) -> int:
        """One follower pass for one agency: its log paged to the end, or with `stream`
        followed until its stream ends; failures are recorded, never raised."""
        try:
            if self._refresh_due(agency_id) and not await self._refreshed(agency_id):
                return 0
            follow = self.follow_stream if stream else self.follow_once
            worked = await follow(agency_id)
            worked += await self.check_deadlines(agency_id)
            self.errors.pop(agency_id, None)
            return worked
        except Exception as exc:
            log.warning("notifier step for %s failed: %s", agency_id, exc)
            self.errors[agency_id] = f"{type(exc).__name__}: {exc}"
            return 0

    def _refresh_due(self, agency_id: str) -> bool:
        return not self.store.known(agency_id) or time.monotonic() >= self._refresh_at(agency_id)

    def _refresh_at(self, agency_id: str) -> float:
        """When the agency's subscriptions are next due (monotonic clock)."""
        every = self.settings.subscription_refresh_seconds
        return self._subs_asked.get(agency_id, -every) + every

    async def _refreshed(self, agency_id: str) -> bool:
        """Refresh the subscriptions if the agency's are (still) due: followers due
        together share one read of them all. Whether the agency's were ever loaded:
        without them nothing may be ingested."""
        async with self._refreshing:
            if self._refresh_due(agency_id):
                await self.refresh_subscriptions()
        return self.store.known(agency_id)

    async def run_once(self) -> int:
        worked = 0
        for agency_id in self.agencies:
            worked += await self.step(agency_id)
        worked += await self.deliver_due()
        return worked

    async def _follow_loop(self) -> None:
        """One follower per served node, each on its node's log stream."""
        await asyncio.gather(*(self._follow(a) for a in self.agencies))

    async def _follow(self, agency_id: str) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            await self.step(agency_id, stream=True)
            if agency_id in self.errors or time.monotonic() - started < 0.01:
                # A failing node (or a stream that ends at once): do not spin on it.
                await self._pause(self.settings.poll_interval)

    async def _deadline_loop(self) -> None:
        """Deadlines fall due with the clock, not with the log: looked for every
        `poll_interval` (a query of the notifier's own store per node)."""
        while not self._stopping.is_set():
            for agency_id in self.agencies:
                if self.store.known(agency_id):
                    try:
                        await self.check_deadlines(agency_id)
                    except Exception as exc:
                        log.warning("deadlines of %s: %s", agency_id, exc)
                        self.errors[f"{agency_id}:deadlines"] = f"{type(exc).__name__}: {exc}"
            await self._pause(self.settings.poll_interval)

    async def _delivery_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.deliver_due()
            except Exception as exc:
                log.exception("delivery pass failed")
                self.errors["deliveries"] = f"{type(exc).__name__}: {exc}"
                worked = 0
            if not worked:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), min(self.settings.poll_interval, 0.05)
                    )

    async def run(self) -> None:
        """Both loops until `stop()`; a failure is recorded and retried, never fatal."""
        self._running = asyncio.gather(
            self._follow_loop(), self._deadline_loop(), self._delivery_loop()
        )
        with contextlib.suppress(asyncio.CancelledError):
            await self._running

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._running is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._running), 15)
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self.store.close()


async def _read_lines(r: httpx.Response, lines: asyncio.Queue[bytes | None]) -> None:
    """The stream's entries into `lines`, then None at its end (or its failure, which
    the reading task raises)."""
    try:
        async for line in r.aiter_lines():
            if line:  # not a keep-alive
                lines.put_nowait(line.encode())
    finally:
        lines.put_nowait(None)


def _drain(lines: asyncio.Queue[bytes | None]) -> list[bytes | None]:
    got: list[bytes | None] = []
    while not lines.empty():
        got.append(lines.get_nowait())
    return got


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
