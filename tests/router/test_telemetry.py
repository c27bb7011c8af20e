"""OpenTelemetry: one trace from the sender's HTTP request to the receiver's store.

The SDK's in-memory exporter collects every span of a real embedded bus; the test follows
one event: SERVER span at border-police -> PRODUCER span of its relay -> CONSUMER span at
each recipient, all with one trace id. It also checks that no span carries a personal
field (the payload's words, or the case pseudonym) and that the metrics count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from nrm.embedded import DEMO_AGENCIES
from referral_router import telemetry
from tests.bus.running import RunningBus, running_bus
from tests.router.test_http_api import ADULT

AGENCIES = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", "nrm-authority"))
SECRET = "Zebulon Quartermaine"  # a personal value that must never reach a span


@pytest.fixture(scope="module")
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.configure(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    yield spans, reader
    telemetry.configure()


@pytest.fixture(scope="module")
def traced_bus(otel: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    data: Path = tmp_path_factory.mktemp("otel-bus")
    with running_bus(data, agencies=AGENCIES) as bus:
        yield bus


def _send(bus: RunningBus) -> tuple[str, str]:
    with bus.client("border-police") as c:
        r = c.post(
            "/v1/cases",
            json={"recipients": ["nrm-authority"], "payload": {**ADULT, "full_name": SECRET}},
        )
    assert r.status_code == 201, r.text
    bus.settle()
    return r.json()["case"], r.json()["event_id"]


def test_one_trace_from_http_through_relay_to_receiver_store(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader], traced_bus: RunningBus
) -> None:
    exporter, _ = otel
    exporter.clear()
    case, event_id = _send(traced_bus)
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()

    def one(kind: SpanKind, **attrs: object) -> ReadableSpan:
        found = [
            s
            for s in spans
            if s.kind is kind and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
        ]
        assert len(found) == 1, (kind, attrs, [(s.name, s.attributes) for s in spans])
        return found[0]

    http = one(SpanKind.SERVER, **{"nrm.agency": "border-police", "http.route": "/v1/cases"})
    publish = one(SpanKind.PRODUCER, **{"messaging.message.id": event_id})
    apply = one(SpanKind.CONSUMER, **{"messaging.message.id": event_id})
    assert http.name == "POST /v1/cases"
    assert (http.attributes or {})["http.response.status_code"] == 201
    assert http.context is not None and publish.context is not None and apply.context
    trace_id = http.context.trace_id
    assert publish.context.trace_id == trace_id == apply.context.trace_id
    assert publish.parent is not None and publish.parent.span_id == http.context.span_id
    assert apply.parent is not None and apply.parent.span_id == publish.context.span_id
    assert (apply.attributes or {})["nrm.agency"] == "nrm-authority"
    assert (apply.attributes or {})["nrm.outcome"] == "applied"

    for s in spans:  # nothing personal, not even the case pseudonym
        text = repr((s.name, dict(s.attributes or {}), [e.attributes for e in s.events]))
        assert SECRET not in text and case not in text, text


def test_metrics_count_appended_published_received_and_lag(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader], traced_bus: RunningBus
) -> None:
    _, reader = otel
    _send(traced_bus)
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:  # type: ignore[union-attr]
                    key = tuple(sorted((p.attributes or {}).items()))
                    points.setdefault(metric.name, {})[key] = p.value  # type: ignore[union-attr]

    def total(name: str, **attrs: str) -> float:
        return sum(
            v for k, v in points.get(name, {}).items() if all((a, b) in k for a, b in attrs.items())
        )

    assert total("nrm.events.appended", **{"nrm.agency": "border-police"}) >= 1
    assert total("nrm.events.published", **{"nrm.agency": "border-police"}) >= 1
    assert total("nrm.events.received", outcome="applied", **{"nrm.agency": "nrm-authority"}) >= 1
    assert "nrm.relay.lag" in points
    assert total("nrm.relay.lag", **{"nrm.agency": "border-police"}) == 0  # settled
    assert total("nrm.events.dead_lettered") == 0
