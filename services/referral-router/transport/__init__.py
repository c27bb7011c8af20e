"""Event transport between agency nodes with Kafka's semantics (see ``base``).

``open_transport("sqlite:///var/nrm/bus.db")`` embedded, ``open_transport("kafka://…")``
distributed; both satisfy ``Transport`` and pass the same conformance suite.
"""

from .base import (
    CommitFailedError,
    Consumer,
    DeliveryTimeoutError,
    Headers,
    Message,
    Position,
    Record,
    TopicPartition,
    Transport,
    TransportError,
    UnknownTopicError,
)
from .factory import open_transport
from .partitioning import murmur2, partition_for
from .topics import (
    checkpoints_topic,
    dead_letter_topic,
    directory_topic,
    federation_topic,
    inbox_topic,
    parse_inbox_topic,
)

__all__ = [
    "CommitFailedError",
    "Consumer",
    "DeliveryTimeoutError",
    "Headers",
    "Message",
    "Position",
    "Record",
    "TopicPartition",
    "Transport",
    "TransportError",
    "UnknownTopicError",
    "checkpoints_topic",
    "dead_letter_topic",
    "directory_topic",
    "federation_topic",
    "inbox_topic",
    "murmur2",
    "open_transport",
    "parse_inbox_topic",
    "partition_for",
]
