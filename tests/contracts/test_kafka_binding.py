"""CloudEvents Kafka binary binding: lossless round trip, precise refusals."""

from __future__ import annotations

import json

import pytest

from contracts.envelope import Envelope
from contracts.kafka_binding import MalformedMessage, decode, encode


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
