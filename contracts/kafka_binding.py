"""The CloudEvents 1.0 Kafka protocol binding, binary mode, for bus envelopes.

CloudEvents attributes and the bus's clear extensions travel as `ce_` headers; the value is
the rest of the envelope (restrictions, operational fields, deadlines, ciphertexts, signature) as
JSON. The key is the case pseudonym, so one case stays in one partition, in order.

Two things ride beside the envelope and are never part of the signed, logged envelope:
the W3C `traceparent`, and a case-key grant (`nrm_case_key_grant`) that delivers this
recipient's pairwise case key the first time; keeping grants out of the append-only log
is what lets erasure by key destruction hold (contracts.sealing).

A node's inbox carries one other kind of record: a forwarding (R10), an event passed on
by an agency of its country or by a peer country's gateway, told apart by its content
type. Its value is the forwarding's canonical JSON (the original envelope inside it,
byte for byte, so both signatures still verify) and its grant rides in the same header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts.envelope import Envelope
from contracts.sealing import Forwarding, SealingError, parse_forwarding

Headers = tuple[tuple[str, bytes], ...]

CE_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "dataschema")
CE_EXTENSIONS = ("sender", "recipients")
VALUE_MEMBERS = ("restrictions", "operational", "deadlines", "sealed", "signature")
GRANT_HEADER = "nrm_case_key_grant"
TRACE_HEADER = "traceparent"
CONTENT_TYPE_HEADER = "content-type"
ENVELOPE_CONTENT_TYPE = "application/json"
FORWARDING_CONTENT_TYPE = "application/vnd.nrm.forwarding+json"


class MalformedMessage(ValueError):
    """A record that is not a bus envelope; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BusMessage:
    """A decoded record: the envelope, and what travelled beside it."""

    envelope: Envelope
    grant: bytes | None = None
    traceparent: str | None = None


def encode(
    envelope: Envelope, grant: bytes | None = None, traceparent: str | None = None
) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) for the envelope."""
    return Encoded.of(envelope.model_dump(mode="json")).record(grant, traceparent)


@dataclass(frozen=True)
class Encoded:
    """An envelope encoded once, for as many recipients as it has: the key, the value and
    the headers every record of it shares; `record` adds what differs per recipient."""

    key: bytes
    value: bytes
    headers: Headers

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Encoded:
        """From the envelope's JSON form (`Envelope.model_dump(mode="json")`)."""
        headers: list[tuple[str, bytes]] = [
            (f"ce_{name}", str(data[name]).encode()) for name in CE_ATTRIBUTES
        ]
        headers.append(("ce_sender", str(data["sender"]).encode()))
        headers.append(("ce_recipients", ",".join(data["recipients"]).encode()))
        headers.append((CONTENT_TYPE_HEADER, ENVELOPE_CONTENT_TYPE.encode()))
        value = json.dumps({k: data[k] for k in VALUE_MEMBERS}, separators=(",", ":")).encode()
        return cls(str(data["subject"]).encode(), value, tuple(headers))

    def record(
        self, grant: bytes | None = None, traceparent: str | None = None
    ) -> tuple[bytes, bytes, Headers]:
        """(key, value, headers) of one recipient's record."""
        extra: list[tuple[str, bytes]] = []
        if traceparent:
            extra.append((TRACE_HEADER, traceparent.encode()))
        if grant is not None:
            extra.append((GRANT_HEADER, grant))
        return self.key, self.value, (*self.headers, *extra) if extra else self.headers


def content_type(headers: Headers) -> str:
    """Which kind of record this is; a record without the header is read as an envelope
    (and refused by `decode` for what it lacks)."""
    for name, raw in headers:
        if name == CONTENT_TYPE_HEADER:
            return raw.decode(errors="replace")
    return ENVELOPE_CONTENT_TYPE


def _single_headers(headers: Headers) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name, raw in headers:
        if name in found:
            raise MalformedMessage(f"header {name} appears twice")
        found[name] = raw
    return found


def decode(key: bytes, value: bytes, headers: Headers) -> BusMessage:
    """The envelope of a record, or MalformedMessage naming what is wrong."""
    found = _single_headers(headers)
    try:
        attrs: dict[str, Any] = {n: found[f"ce_{n}"].decode() for n in CE_ATTRIBUTES}
        attrs["sender"] = found["ce_sender"].decode()
        attrs["recipients"] = found["ce_recipients"].decode().split(",")
    except KeyError as missing:
        raise MalformedMessage(f"missing CloudEvents header {missing.args[0]}") from None
    except UnicodeDecodeError:
        raise MalformedMessage("a CloudEvents header is not UTF-8") from None
    try:
        body = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("the value is not JSON") from None
    if not isinstance(body, dict) or set(body) != set(VALUE_MEMBERS):
        raise MalformedMessage(f"the value must be an object with exactly {list(VALUE_MEMBERS)}")
    try:
        envelope = Envelope.model_validate({**attrs, **body})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"envelope schema violation at {where}: {first['msg']}") from None
    if key != envelope.subject.encode():
        raise MalformedMessage("the record key is not the envelope's case pseudonym")
    return BusMessage(envelope, found.get(GRANT_HEADER), _trace(found))


def _trace(found: dict[str, bytes]) -> str | None:
    trace = found.get(TRACE_HEADER)
    return trace.decode(errors="replace") if trace else None


@dataclass(frozen=True)
class ForwardedMessage:
    """A decoded forwarding record: the forwarding, and what travelled beside it."""

    forwarding: Forwarding
    grant: bytes | None = None
    traceparent: str | None = None


def encode_forwarding(
    forwarding: Forwarding, grant: bytes | None = None, traceparent: str | None = None
) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) for a forwarding; the key is the case, as for an envelope."""
    headers: list[tuple[str, bytes]] = [(CONTENT_TYPE_HEADER, FORWARDING_CONTENT_TYPE.encode())]
    if traceparent:
        headers.append((TRACE_HEADER, traceparent.encode()))
    if grant is not None:
        headers.append((GRANT_HEADER, grant))
    return forwarding.original.subject.encode(), forwarding.canonical_bytes(), tuple(headers)


def decode_forwarding(key: bytes, value: bytes, headers: Headers) -> ForwardedMessage:
    """The forwarding of a record, or MalformedMessage naming what is wrong."""
    found = _single_headers(headers)
    if found.get(CONTENT_TYPE_HEADER) != FORWARDING_CONTENT_TYPE.encode():
        raise MalformedMessage(f"a forwarding record has content type {FORWARDING_CONTENT_TYPE}")
    try:
        forwarding = parse_forwarding(value)
    except SealingError as exc:
        raise MalformedMessage(f"not a forwarding: {exc}") from None
    if key != forwarding.original.subject.encode():
        raise MalformedMessage("the record key is not the forwarded envelope's case pseudonym")
    return ForwardedMessage(forwarding, found.get(GRANT_HEADER), _trace(found))
