"""Pick a transport from one configuration string, so deployment is configuration.

- ``memory:``                        in-process, nothing on disk (tests, demos)
- ``sqlite:///abs/path/bus.db``      in-process, durable in that SQLite file (default)
- ``sqlite:relative/bus.db``         same, path relative to the working directory
- ``kafka://host:9092[,host2:9092]`` Apache Kafka
"""

from __future__ import annotations

from .base import Transport


def open_transport(url: str, **kafka_settings: object) -> Transport:
    """A transport for ``url`` (see module doc); ``kafka_settings`` tune KafkaSettings."""
    if url in ("memory:", "sqlite::memory:"):
        from .in_process import InProcessTransport

        return InProcessTransport(":memory:")
    if url.startswith("sqlite:"):
        from .in_process import InProcessTransport

        path = url.removeprefix("sqlite:")
        path = path.removeprefix("//") if path.startswith("///") else path
        return InProcessTransport(path)
    if url.startswith("kafka://"):
        from .kafka import KafkaTransport

        return KafkaTransport(url.removeprefix("kafka://").rstrip("/"), **kafka_settings)
    raise ValueError(f"unknown transport URL {url!r}: use memory:, sqlite:<path> or kafka://")
