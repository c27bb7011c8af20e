"""The stamp on a delivery between gateways: for these bytes, now, once, by the peer."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts.federation import (
    FRESHNESS,
    DeliveryRefused,
    DeliveryStamp,
    check_fresh,
    stamp_delivery,
    verify_stamp,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = ed25519.Ed25519PrivateKey.generate()
FORWARDING = b'{"forwarding": "canonical bytes"}'


def _stamp(at: datetime = NOW, forwarding: bytes = FORWARDING) -> DeliveryStamp:
    return stamp_delivery(forwarding, "xb-gateway", "sig-1", KEY, at, os.urandom(16))


def test_a_fresh_stamp_of_these_bytes_by_the_peer_passes() -> None:
    stamp = _stamp()
    check_fresh(stamp, FORWARDING, NOW + timedelta(seconds=5))
    verify_stamp(stamp, KEY.public_key())
    again = DeliveryStamp.model_validate_json(stamp.model_dump_json())  # survives the wire
    verify_stamp(again, KEY.public_key())
    assert _stamp().nonce != stamp.nonce  # each attempt its own nonce


@pytest.mark.parametrize(
    "skew", [FRESHNESS + timedelta(seconds=1), -FRESHNESS - timedelta(seconds=1)]
)
def test_stale_or_future_stamps_are_refused(skew: timedelta) -> None:
    with pytest.raises(DeliveryRefused, match="outside"):
        check_fresh(_stamp(NOW - skew), FORWARDING, NOW)


def test_a_stamp_moved_to_other_bytes_is_refused() -> None:
    with pytest.raises(DeliveryRefused, match="another forwarding"):
        check_fresh(_stamp(), FORWARDING + b" ", NOW)


def test_a_stamp_by_another_key_or_altered_is_refused() -> None:
    stamp = _stamp()
    with pytest.raises(DeliveryRefused, match="does not verify"):
        verify_stamp(stamp, ed25519.Ed25519PrivateKey.generate().public_key())
    moved = stamp.model_copy(update={"sent_at": NOW + timedelta(seconds=30)})
    with pytest.raises(DeliveryRefused, match="does not verify"):
        verify_stamp(moved, KEY.public_key())
