"""OpenTelemetry for a router node: one trace per event across nodes, and bus metrics.

One trace follows an event from the HTTP request at the sending node (SERVER span),
through the outbox relay (PRODUCER span per recipient, whose W3C `traceparent` rides in
the Kafka headers beside the envelope, never inside the signed envelope), to the
receiving node's inbox, where verifying, rule checks and the store append run inside a
CONSUMER span continuing that trace.

The relay runs after the HTTP request has returned, so the request's trace context is
remembered per event id in memory (bounded). A relay restarted after a crash has lost
it and starts a new trace for what it republishes: tracing is diagnostics, never a
reason to write more into the append-only store.

The receiving node remembers (in memory, bounded) the trace of each event it applied,
and its log API hands that `traceparent` to the notifier, whose webhook delivery continues
the trace into the agency's own system (`traceparent` header of the webhook).

Span attributes carry only the clear operational envelope's routing facts (event id and
type, agency ids, topic, partition, offset, outcome): never a payload field, never the
case pseudonym, so a trace backend holds nothing about a person. For the same reason the
web framework's own tracing, which records the raw URL path (and with it the pseudonym),
is switched off in every app (`FRAMEWORK_TELEMETRY_OFF`): the middleware below names
server spans by route template. Polling reads (`GET /v1/log`, `/v1/inbox`, health) make
no span unless the caller sends a `traceparent`: an idle bus exports nothing.

Metrics (counters unless noted): ``nrm.events.appended``, ``nrm.events.published``,
``nrm.events.received`` (attribute ``outcome``), ``nrm.events.dead_lettered``, and the
gauge ``nrm.relay.lag`` (store positions not yet published), each with ``nrm.agency``.

Configuration by environment (read by ``setup_from_env``):

- ``NRM_OTEL_EXPORTER``: ``none`` (default: the API's no-op, near-zero cost),
  ``console`` (spans and metrics printed to stdout) or ``otlp`` (OTLP over HTTP; the
  standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` etc. apply).
- ``NRM_OTEL_SERVICE_NAME``: the resource's ``service.name`` (else ``OTEL_SERVICE_NAME``,
  else the name the caller passes).
- ``OTEL_METRIC_EXPORT_INTERVAL``: milliseconds between metric exports (SDK standard).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.envelope import Envelope
from contracts.kafka_binding import TRACE_HEADER

SCOPE = "nrm.referral_router"
EXPORTERS = ("none", "console", "otlp")
_propagator = TraceContextTextMapPropagator()
#: `FastAPI(telemetry=...)`: no framework spans, metrics or logs (they carry raw paths).
FRAMEWORK_TELEMETRY_OFF: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}
#: GET paths polled in a loop (the notifier, health checks): no span unless asked for.
POLLED_PATHS = frozenset({"/v1/log", "/v1/inbox", "/v1/dead-letters", "/healthz", "/readyz"})


# --- providers -----------------------------------------------------------------------


@dataclass
class _State:
    """The providers in use; tests may install their own (see ``configure``)."""

    tracer: Tracer | None = None
    meter: Meter | None = None
    instruments: _Instruments | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()


def configure(
    *,
    tracer_provider: Any | None = None,
    meter_provider: Any | None = None,
) -> None:
    """Use these providers for the node's spans and metrics (``None``: the global ones).

    The OpenTelemetry API lets a process set its global providers only once; tests use
    this to swap in an SDK provider with an in-memory exporter at any time.
    """
    with _state.lock:
        _state.tracer = tracer_provider.get_tracer(SCOPE) if tracer_provider else None
        _state.meter = meter_provider.get_meter(SCOPE) if meter_provider else None
        _state.instruments = None


def setup_from_env(default_service_name: str = "nrm-router") -> str:
    """Install global SDK providers with the exporter ``NRM_OTEL_EXPORTER`` names.

    Returns the exporter in use. ``none`` installs nothing (the API stays a no-op).
    """
    exporter = os.environ.get("NRM_OTEL_EXPORTER", "none").strip().lower() or "none"
    if exporter not in EXPORTERS:
        raise ValueError(f"NRM_OTEL_EXPORTER={exporter!r}: use one of {', '.join(EXPORTERS)}")
    if exporter == "none":
        return exporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = (
        os.environ.get("NRM_OTEL_SERVICE_NAME")
        or os.environ.get("OTEL_SERVICE_NAME")
        or default_service_name
    )
    resource = Resource.create({"service.name": name})
    span_exporter: Any
    metric_exporter: Any
    if exporter == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter, metric_exporter = OTLPSpanExporter(), OTLPMetricExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(metric_exporter)]
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    configure()  # use the (now installed) global providers
    return exporter


def shutdown() -> None:
    """Export what the global SDK providers still hold, then stop them (a clean stop
    must not lose the last spans and metrics)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        stop = getattr(provider, "shutdown", None)
        if callable(stop):
            stop()


def tracer() -> Tracer:
    return _state.tracer or trace.get_tracer(SCOPE)


def _meter() -> Meter:
    return _state.meter or metrics.get_meter(SCOPE)


# --- metrics -------------------------------------------------------------------------

_relays: dict[str, Callable[[], Callable[[], int] | None]] = {}


class _Instruments:
    def __init__(self, meter: Meter) -> None:
        self.appended = meter.create_counter(
            "nrm.events.appended", unit="{event}", description="events this node sent"
        )
        self.published = meter.create_counter(
            "nrm.events.published", unit="{record}", description="records the relay published"
        )
        self.received = meter.create_counter(
            "nrm.events.received", unit="{record}", description="inbox records handled"
        )
        self.dead_lettered = meter.create_counter(
            "nrm.events.dead_lettered", unit="{record}", description="records never applicable"
        )
        meter.create_observable_gauge(
            "nrm.relay.lag",
            callbacks=[_observe_lag],
            unit="{position}",
            description="store positions the outbox relay has not yet published",
        )


def _instruments() -> _Instruments:
    with _state.lock:
        if _state.instruments is None:
            _state.instruments = _Instruments(_meter())
        return _state.instruments


def _observe_lag(options: CallbackOptions) -> Iterable[Observation]:
    out = []
    for agency, ref in list(_relays.items()):
        pending = ref()
        if pending is None:
            _relays.pop(agency, None)
            continue
        with contextlib.suppress(Exception):  # a closed store reports nothing
            out.append(Observation(pending(), {"nrm.agency": agency}))
    return out


def watch_relay(agency_id: str, pending: Callable[[], int]) -> None:
    """Report ``pending()`` as this agency's relay lag (held weakly: a stopped node's
    relay disappears from the gauge)."""

    def strong() -> Callable[[], int] | None:
        return pending

    bound = hasattr(pending, "__self__")
    _relays[agency_id] = weakref.WeakMethod(pending) if bound else strong  # type: ignore[arg-type]


# --- trace context per event ---------------------------------------------------------

_MAX_REMEMBERED = 10_000
_remembered: OrderedDict[str, str] = OrderedDict()
_remembered_lock = threading.Lock()


def current_traceparent(span: Span | None = None) -> str | None:
    """The W3C traceparent of ``span`` (default: the current span), if it is recording."""
    ctx = trace.set_span_in_context(span) if span is not None else None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return carrier.get(TRACE_HEADER)


def context_of(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return _propagator.extract({TRACE_HEADER: traceparent})


def event_appended(agency_id: str, envelope: Envelope) -> None:
    """The node appended an event it sends: count it."""
    _instruments().appended.add(1, {"nrm.agency": agency_id, "nrm.event.type": envelope.type})


def event_to_append(envelope: Envelope, parent: str | None = None) -> None:
    """Remember the trace of the request that asks for an event (`parent`, taken while
    the request was current; default: the current span's) before the event is saved:
    the relay may publish it as soon as the commit tells it, before the saving thread
    returns. A save that fails leaves an entry no publication ever asks for."""
    parent = parent or current_traceparent()
    if parent:
        with _remembered_lock:
            _remembered[str(envelope.id)] = parent
            while len(_remembered) > _MAX_REMEMBERED:
                _remembered.popitem(last=False)


def _remembered_context(event_id: str) -> otel_context.Context | None:
    with _remembered_lock:
        parent = _remembered.get(event_id)
    return context_of(parent)


_received: OrderedDict[tuple[str, str], str] = OrderedDict()


def _remember_received(
    agency_id: str, event_id: str, traceparent: str | None, *, first: bool = False
) -> None:
    if not traceparent:
        return
    with _remembered_lock:
        if first and (agency_id, event_id) in _received:
            return
        _received[(agency_id, event_id)] = traceparent
        while len(_received) > _MAX_REMEMBERED:
            _received.popitem(last=False)


def trace_of(agency_id: str, event_id: str, direction: str) -> str | None:
    """The `traceparent` to continue an event's trace from: the span that applied it at
    this node (received), or the request that appended it (sent); None if forgotten."""
    with _remembered_lock:
        if direction == "received":
            return _received.get((agency_id, event_id))
        return _remembered.get(event_id)


class PublishBatch:
    """PRODUCER spans for one relay batch: one per (event, recipient), each the child of
    the event's HTTP request span, ended when the broker acknowledged the batch."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._agencies: dict[str, int] = {}

    def start(self, envelope: Envelope, recipient: str, topic: str) -> str | None:
        """Start the span; returns the traceparent to put in the record's headers."""
        return self.start_for(str(envelope.id), envelope.sender, envelope.type, recipient, topic)

    def start_for(
        self, event_id: str, sender: str, event_type: str, recipient: str, topic: str
    ) -> str | None:
        """`start`, from the envelope's clear facts."""
        span = tracer().start_span(
            f"publish {topic}",
            context=_remembered_context(event_id),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": event_id,
                "nrm.agency": sender,
                "nrm.event.type": event_type,
                "nrm.recipient": recipient,
            },
        )
        self.spans.append(span)
        self._agencies[sender] = self._agencies.get(sender, 0) + 1
        return current_traceparent(span)

    def __enter__(self) -> PublishBatch:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        for span in self.spans:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
        if exc is None:
            for agency, n in self._agencies.items():
                _instruments().published.add(n, {"nrm.agency": agency})


class ApplyBatch:
    """CONSUMER spans for one poll's records, each continuing its sender's trace.

    Started before the batch is applied, and each event's trace remembered then: the
    node's log serves an applied event, with its trace, as soon as the batch commits,
    before the outcomes come back to this loop. Ended by `done` once the outcome is known."""

    def __init__(self, agency_id: str, records: Sequence[Any]) -> None:
        self.agency_id = agency_id
        self.spans = [self._start(r) for r in records]

    def _start(self, record: Any) -> Span:
        found = dict(record.headers)
        ctx = None
        event_id = None
        with contextlib.suppress(UnicodeDecodeError, AttributeError):
            parent = found.get(TRACE_HEADER)
            ctx = context_of(parent.decode("ascii") if parent else None)
            event_id = found["ce_id"].decode("ascii") if "ce_id" in found else None
        span = tracer().start_span(
            f"apply {record.topic}",
            context=ctx,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "nrm.agency": self.agency_id,
            },
        )
        if event_id:  # a redelivery keeps the trace of the record that was applied
            _remember_received(self.agency_id, event_id, current_traceparent(span), first=True)
        return span

    def done(self, index: int, outcome: str, envelope: Envelope | None) -> None:
        """Record what became of record `index`, and end its span."""
        span = self.spans[index]
        span.set_attribute("nrm.outcome", outcome)
        if envelope is not None:
            span.set_attribute("messaging.message.id", str(envelope.id))
            span.set_attribute("nrm.event.type", envelope.type)
            span.set_attribute("nrm.sender", envelope.sender)
            if outcome == "applied":  # a record without an id header (a forwarding) too
                trace_id = current_traceparent(span)
                _remember_received(self.agency_id, str(envelope.id), trace_id, first=True)
        _instruments().received.add(1, {"nrm.agency": self.agency_id, "outcome": outcome})
        if outcome == "dead-lettered":
            span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
            _instruments().dead_lettered.add(1, {"nrm.agency": self.agency_id})
        span.end()

    def abandon(self) -> None:
        """The batch could not be applied (it will be polled again): end every span."""
        for span in self.spans:
            span.set_status(Status(StatusCode.ERROR, "not applied"))
            span.end()


# --- HTTP ----------------------------------------------------------------------------


class TracingMiddleware:
    """A SERVER span per HTTP request (pure ASGI, so the span is the current context
    inside the endpoint, also in the threadpool). Continues an incoming traceparent.

    The span is named by the route template, never the raw path (which holds the case
    pseudonym)."""

    def __init__(self, app: Any, agency_id: str) -> None:
        self.app = app
        self.agency_id = agency_id

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k == b"traceparent" or k == b"tracestate"
        }
        method = scope.get("method", "GET")
        if method == "GET" and scope.get("path") in POLLED_PATHS and not carrier:
            await self.app(scope, receive, send)  # a poll: nothing worth a span
            return
        with tracer().start_as_current_span(
            f"{method}",
            context=_propagator.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "nrm.agency": self.agency_id},
        ) as span:

            async def send_wrapper(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")


def instrument_app(app: Any, agency_id: str) -> None:
    """Add the tracing middleware to a FastAPI app."""
    app.add_middleware(TracingMiddleware, agency_id=agency_id)


__all__ = [
    "ApplyBatch",
    "PublishBatch",
    "configure",
    "current_traceparent",
    "event_appended",
    "event_to_append",
    "instrument_app",
    "setup_from_env",
    "shutdown",
    "trace_of",
    "tracer",
    "watch_relay",
]
