"""The AsyncAPI document describes the topics and headers the code really uses."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import yaml

from contracts.envelope import Envelope
from contracts.kafka_binding import CE_ATTRIBUTES, GRANT_HEADER, TRACE_HEADER, VALUE_MEMBERS, encode
from referral_router.transport.topics import dead_letter_topic, inbox_topic


def _doc() -> dict[str, Any]:
    return yaml.safe_load(resources.files("contracts").joinpath("asyncapi.yaml").read_text())


def _matches(address: str, topic: str) -> bool:
    pattern = "^" + re.sub(r"\\\{[a-z]+\\\}", "[A-Za-z0-9_-]+", re.escape(address)) + "$"
    return re.match(pattern, topic) is not None


def test_asyncapi_3_document_with_our_channels() -> None:
    doc = _doc()
    assert doc["asyncapi"].startswith("3.")
    assert _matches(doc["channels"]["inbox"]["address"], inbox_topic("XA", "safe-house"))
    assert _matches(doc["channels"]["deadLetter"]["address"], dead_letter_topic("XA", "safe-house"))
    for op in doc["operations"].values():
        ref = op["channel"]["$ref"].split("/")[-1]
        assert ref in doc["channels"]


def test_headers_and_value_members_match_the_binding(sample_envelope: Envelope) -> None:
    schemas = _doc()["components"]["schemas"]
    documented = set(schemas["caseEventHeaders"]["properties"])
    _, value, headers = encode(
        sample_envelope, grant=b"g", traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    )
    assert {name for name, _ in headers} <= documented
    assert {f"ce_{a}" for a in CE_ATTRIBUTES} <= set(schemas["caseEventHeaders"]["required"])
    assert {GRANT_HEADER, TRACE_HEADER} <= documented
    assert set(schemas["envelopeValue"]["required"]) == set(VALUE_MEMBERS)
    assert set(json.loads(value)) == set(VALUE_MEMBERS)
