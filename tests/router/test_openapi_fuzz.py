"""Property-based requests over the router's own OpenAPI document: never a 5xx.

Drives schemathesis through its Hypothesis strategies (its pytest plugin does not run
under pytest 9), one operation at a time, against a real running node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.bus.running import RunningBus

EXAMPLES_PER_OPERATION = 40


def _fuzz(operation: Any, bus: RunningBus, statuses: dict[str, set[int]]) -> Callable[[], None]:
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def no_5xx(case: Any) -> None:
        body = case.body
        # Known recipients half the time, so requests also reach rules and sealing.
        if (
            isinstance(body, dict)
            and isinstance(body.get("recipients"), list)
            and (len(body["recipients"]) % 2 == 0)
        ):
            body["recipients"] = ["child-protection", "nrm-authority"]
        token = bus.bus.token("border-police")
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        statuses.setdefault(label, set()).add(response.status_code)
        assert response.status_code < 500, f"{label}: {response.text[:500]}"

    return no_5xx


def test_no_server_error_for_any_generated_request(bus: RunningBus) -> None:
    schema = schemathesis.openapi.from_url(f"{bus.bus.urls['border-police']}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # every route of the API is exercised
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        _fuzz(operation, bus, statuses)()
    # The fuzzing reached the validation layer and, sometimes, beyond it.
    assert any(422 in s for s in statuses.values()), statuses
    assert statuses["POST /v1/cases"] - {422}, statuses
