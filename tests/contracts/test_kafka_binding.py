"""CloudEvents Kafka binary binding: lossless round trip, precise refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.envelope import Envelope
from contracts.kafka_binding import (
    ENVELOPE_CONTENT_TYPE,
    FORWARDING_CONTENT_TYPE,
    MalformedMessage,
    content_type,
    decode,
    decode_forwarding,
    encode,
    encode_forwarding,
)
from contracts.sealing import Forwarding


def test_round_trip_keeps_the_signed_bytes(sample_envelope: Envelope) -> None:
    key, value, headers = encode(sample_envelope, grant=b"\x00grant", traceparent="00-abc-def-01")
    msg = decode(key, value, headers)
    assert msg.envelope == sample_envelope
    assert msg.envelope.signing_bytes() == sample_envelope.signing_bytes()
    assert msg.grant == b"\x00grant" and msg.traceparent == "00-abc-def-01"
    assert key == sample_envelope.subject.encode()


def _mutations(env: Envelope) -> list[tuple[str, bytes, bytes, tuple[tuple[str, bytes], ...]]]:
    key, value, headers = encode(env)
    without_type = tuple(h for h in headers if h[0] != "ce_type")
    bad_type = tuple((n, b"case.unknown" if n == "ce_type" else v) for n, v in headers)
    extra_member = json.dumps({**json.loads(value), "extra": 1}).encode()
    return [
        ("missing CloudEvents header ce_type", key, value, without_type),
        ("unknown event type", key, value, bad_type),
        ("not JSON", key, b"{nope", headers),
        ("exactly", key, extra_member, headers),
        ("appears twice", key, value, (*headers, headers[0])),
        ("key is not", b"case-other0000", value, headers),
    ]


@pytest.mark.parametrize("index", range(6))
def test_malformed_records_are_named(sample_envelope: Envelope, index: int) -> None:
    expected, key, value, headers = _mutations(sample_envelope)[index]
    with pytest.raises(MalformedMessage, match=expected):
        decode(key, value, headers)


def _forwarding(env: Envelope) -> Forwarding:
    return Forwarding(
        id=uuid4(),
        time=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        forwarder="federation-xb",
        recipient="reintegration-office",
        original=env,
        signature={"alg": "Ed25519", "kid": "k", "sig": "s"},
    )


def test_a_forwarding_record_round_trips_and_is_told_apart(sample_envelope: Envelope) -> None:
    fw = _forwarding(sample_envelope)
    key, value, headers = encode_forwarding(fw, grant=b"\x00grant")
    assert content_type(headers) == FORWARDING_CONTENT_TYPE
    assert content_type(encode(sample_envelope)[2]) == ENVELOPE_CONTENT_TYPE
    assert content_type(()) == ENVELOPE_CONTENT_TYPE  # and `decode` names what it lacks
    msg = decode_forwarding(key, value, headers)
    assert msg.forwarding == fw and msg.grant == b"\x00grant" and msg.traceparent is None
    assert value == fw.canonical_bytes() and key == sample_envelope.subject.encode()


def test_malformed_forwarding_records_are_named(sample_envelope: Envelope) -> None:
    key, value, headers = encode_forwarding(_forwarding(sample_envelope))
    as_envelope = tuple((n, b"application/json" if n == "content-type" else v) for n, v in headers)
    spaced = json.dumps(json.loads(value), indent=1).encode()  # same JSON, not canonical
    for expected, k, v, h in [
        ("content type", key, value, as_envelope),
        ("not in canonical", key, spaced, headers),
        ("does not parse", key, b"{}", headers),
        ("appears twice", key, value, (*headers, headers[0])),
        ("key is not", b"case-other0000", value, headers),
    ]:
        with pytest.raises(MalformedMessage, match=expected):
            decode_forwarding(k, v, h)
