"""Partitioning must equal Kafka's (Java client and aiokafka); topic names are one scheme."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from referral_router.transport.partitioning import murmur2, partition_for
from referral_router.transport.topics import (
    checkpoints_topic,
    dead_letter_topic,
    directory_topic,
    federation_topic,
    inbox_topic,
    parse_inbox_topic,
)

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS.items())
def test_murmur2_matches_the_java_client(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_partition_matches_aiokafka_default_partitioner(key: bytes, partitions: int) -> None:
    everything = list(range(partitions))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, everything, everything)


def test_topic_names() -> None:
    assert inbox_topic("XA", "police-7") == "nrm.XA.inbox.police-7"
    assert dead_letter_topic("XA", "safe-house") == "nrm.XA.dead-letter.safe-house"
    assert directory_topic("XA") == "nrm.XA.directory"
    assert checkpoints_topic("XA") == "nrm.XA.checkpoints"
    assert federation_topic("XA", "YB") == "nrm.XA.federation.YB"
    assert parse_inbox_topic("nrm.XA.inbox.police-7") == ("XA", "police-7")
    assert parse_inbox_topic("nrm.XA.dead-letter") is None


@pytest.mark.parametrize(
    ("country", "agency"), [("xa", "a"), ("XAB", "a"), ("XA", "a.b"), ("XA", ""), ("XA", "a b")]
)
def test_topic_parts_are_validated(country: str, agency: str) -> None:
    with pytest.raises(ValueError):
        inbox_topic(country, agency)
