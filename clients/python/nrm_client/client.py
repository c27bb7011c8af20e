"""An agency system's client of its own node: screen and append events, pass a case on,
read a case and its disclosure record, page the inbox, follow the node's log and the
notifier's stream.

Writes carry an Idempotency-Key, made here when the caller gives none and kept across
retries, so a write whose answer was lost is repeated safely: the node answers the
repeat with the first answer and appends nothing twice. Every request carries a fresh
DPoP proof (`Credentials`); errors arrive as exceptions from `nrm_client.errors`.
Answers are the node API's own models (`contracts.node_api`), validated on arrival.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.connections import CLIENT_IDLE_S, LOG_STREAM_SILENCE_S
from contracts.endpoints import router_audience
from contracts.node_api import CaseView, EventReceipt, ForwardReceipt, InboxItem, InboxPage
from nrm_client.credentials import Credentials
from nrm_client.errors import Unauthenticated, Unavailable, error_from
from nrm_client.retries import RETRY_STATUSES, RetryPolicy
from nrm_client.sse import EventStreamParser, Notification

#: A plain mapping, or a payload model from `contracts.events` (e.g. `CaseScreened`).
Payload = Mapping[str, Any] | Any
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STREAM_PATH = "/v1/notifications/stream"
LOG_STREAM_PATH = "/v1/log/stream"


def _payload(payload: Payload) -> dict[str, Any]:
    """A contracts payload model (e.g. `contracts.events.CaseScreened`) or a plain dict."""
    dump = getattr(payload, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json", exclude_unset=True))
    return dict(payload)


class AgencyClient:
    def __init__(
        self,
        node_url: str,
        credentials: Credentials,
        *,
        node_audience: str | None = None,
        notifier_url: str | None = None,
        notifier_audience: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.node_url = node_url.rstrip("/")
        self.credentials = credentials
        self.node_audience = node_audience or router_audience(credentials.agency_id)
        self.notifier_url = notifier_url.rstrip("/") if notifier_url else None
        self.notifier_audience = notifier_audience
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=CLIENT_IDLE_S),
        )
        self._sleep = sleep

    @property
    def agency_id(self) -> str:
        return self.credentials.agency_id

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgencyClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------

    def screen(
        self, payload: Payload, recipients: Sequence[str], *, idempotency_key: str | None = None
    ) -> EventReceipt:
        """Open a case with `case.screened`; the receipt names the new case."""
        body = {"recipients": list(recipients), "payload": _payload(payload)}
        return self._write("/v1/cases", body, idempotency_key)

    def append(
        self,
        case: str,
        event_type: str,
        payload: Payload,
        recipients: Sequence[str],
        *,
        idempotency_key: str | None = None,
    ) -> EventReceipt:
        """Append one lifecycle event to a case; the node's rules decide if it may."""
        body = {"type": event_type, "recipients": list(recipients), "payload": _payload(payload)}
        return self._write(f"/v1/cases/{case}/events", body, idempotency_key)

    def forward(
        self,
        case: str,
        to: str,
        *,
        officer: str,
        consent_id: str | None = None,
        consent_override: Mapping[str, str] | None = None,
        event_ids: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> ForwardReceipt:
        """Pass the case on to agency `to` (R10), on the person's consent naming it or an
        override with a legal-basis code (R9); the receipt lists, per event, what `to`
        can open."""
        body: dict[str, Any] = {"to": to, "forwarded_by_officer": officer}
        if consent_id is not None:
            body["consent_id"] = consent_id
        if consent_override is not None:
            body["consent_override"] = dict(consent_override)
        if event_ids is not None:
            body["event_ids"] = list(event_ids)
        response = self._post(f"/v1/cases/{case}/forward", body, idempotency_key)
        return ForwardReceipt.model_validate_json(response.content)

    def _write(self, path: str, body: dict[str, Any], key: str | None) -> EventReceipt:
        return EventReceipt.model_validate_json(self._post(path, body, key).content)

    def _post(self, path: str, body: dict[str, Any], key: str | None) -> httpx.Response:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.request("POST", path, json=body, headers=headers)

    # -- reads ------------------------------------------------------------------------

    def case(self, case: str) -> CaseView:
        """The case as this agency may see it: unentitled fields say `withheld`."""
        return CaseView.model_validate_json(self.request("GET", f"/v1/cases/{case}").content)

    def disclosure_record(self, case: str) -> dict[str, Any]:
        """Every disclosure of the case's personal data on the bus (GDPR art. 15(1)(c)):
        who received which categories when, on what basis, passed on to whom. A
        competent authority's node produces it."""
        answer: dict[str, Any] = self.request("GET", f"/v1/cases/{case}/disclosure-record").json()
        return answer

    def inbox(self, after: int = 0, *, page_size: int = 100) -> Iterator[InboxItem]:
        """Every event received after position `after`, oldest first, page by page to
        the end. Resume from a durable cursor: `inbox(after=cursor.position)`."""
        while True:
            answer = self.request("GET", "/v1/inbox", params={"after": after, "limit": page_size})
            page = InboxPage.model_validate_json(answer.content)
            yield from page.items
            # a page may hold no received event yet not be the end (the node pages its
            # whole log): follow next_after, never backwards
            if page.next_after is None or page.next_after <= after:
                return
            after = page.next_after

    def follow_log(
        self, after: int = 0, *, direction: str | None = None, reconnect: bool = True
    ) -> Iterator[InboxItem]:
        """Every event the node records after position `after` (only those it "sent" or
        "received", with `direction`), as each is recorded: the node's log stream, one
        request for many events. A stream ends with its token; the next opens with a new
        one after the last position yielded, as after a broken connection (unless
        `reconnect` is False). Keep that position (`FileCursor`) to resume after a
        restart."""
        url = self.node_url + LOG_STREAM_PATH
        renewed = False
        while True:
            params: dict[str, Any] = {"after": after}
            if direction is not None:
                params["direction"] = direction
            opened = time.monotonic()
            headers = self.credentials.headers("GET", url, self.node_audience)
            try:
                with self._http.stream(
                    "GET",
                    url,
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=LOG_STREAM_SILENCE_S),
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        error = error_from(response)
                        if not isinstance(error, Unauthenticated) or renewed:
                            raise error
                        renewed = True  # a token the node saw expire: one try with a new one
                        self.credentials.forget(self.node_audience)
                        continue
                    renewed = False
                    for line in response.iter_lines():
                        if line:  # not a keep-alive
                            item = InboxItem.model_validate_json(line)
                            after = item.position
                            yield item
            except (httpx.TransportError, httpx.StreamError):
                if not reconnect:
                    raise Unavailable(f"the log stream from {url} broke") from None
            if not reconnect:
                return
            if time.monotonic() - opened < 1.0:
                self._sleep(1.0)  # one that ended at once (a stopping node): no spinning

    def notifications(
        self, *, last_event_id: int | None = None, reconnect: bool = True
    ) -> Iterator[Notification]:
        """The notifier's stream for this agency (the same notifications as its
        webhooks), resuming after `last_event_id`; reconnects when the stream breaks."""
        if not self.notifier_url or not self.notifier_audience:
            raise ValueError("give notifier_url and notifier_audience to follow the stream")
        parser = EventStreamParser(last_event_id=last_event_id)
        url = self.notifier_url + STREAM_PATH
        while True:
            headers = self.credentials.headers("GET", url, self.notifier_audience)
            headers["Accept"] = "text/event-stream"
            if parser.last_event_id is not None:
                headers["Last-Event-ID"] = str(parser.last_event_id)
            try:
                with self._http.stream(
                    "GET", url, headers=headers, timeout=httpx.Timeout(10.0, read=60.0)
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        raise error_from(response)
                    for line in response.iter_lines():
                        note = parser.feed(line)
                        if note is not None:
                            yield note
            except (httpx.TransportError, httpx.StreamError):
                if not reconnect:
                    raise Unavailable(f"the stream from {url} broke") from None
            self._sleep((parser.retry_ms or 2000) / 1000)

    # -- any request ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request to the node, authenticated, retried when safe; an error answer
        raises its `NrmError`."""
        url = self.node_url + path
        extra = dict(headers or {})
        safe = method.upper() in SAFE_METHODS or "Idempotency-Key" in extra
        attempt, renewed = 0, False
        while True:
            attempt += 1
            sent = {**extra, **self.credentials.headers(method, url, self.node_audience)}
            try:
                response = self._http.request(
                    method, url, json=json, content=content, params=params, headers=sent
                )
            except httpx.TransportError as exc:
                wait = self.retry.delay(attempt, None, datetime.now(UTC)) if safe else None
                if wait is None:
                    raise Unavailable(f"{method} {url}: no answer ({type(exc).__name__})") from exc
                self._sleep(wait)
                continue
            if response.is_success:
                return response
            error = error_from(response)
            if isinstance(error, Unauthenticated) and not renewed:
                renewed = True  # e.g. a token the node saw expire: one try with a new one
                self.credentials.forget(self.node_audience)
                continue
            if response.status_code in RETRY_STATUSES and safe:
                wait = self.retry.delay(
                    attempt, response.headers.get("Retry-After"), datetime.now(UTC)
                )
                if wait is not None:
                    self._sleep(wait)
                    continue
            raise error

    def dead_letters(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Received messages this node could never apply, each with its rule and reason."""
        body = self.request("GET", "/v1/dead-letters", params={"after": after, "limit": limit})
        items: list[dict[str, Any]] = body.json()["items"]
        return items
