"""Each error the node's API documents, tried once through the client library: the right
exception, a 4xx, and a detail that says what went wrong."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from contracts.keystore import generate_agency_keys
from nrm_client import (
    AgencyClient,
    BadRequest,
    ConcurrentWrite,
    Credentials,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    LocalBus,
    NotFound,
    NrmError,
    RuleViolation,
    SchemaViolation,
    Unauthenticated,
    UnknownAgency,
)
from tests.client.conftest import ADULT


def _explains(error: NrmError, status: int, code: str) -> None:
    assert error.status == status and error.error == code, (error.status, error.error)
    assert len(error.detail) > 10, error.detail


def test_400_a_body_that_is_not_json(police: AgencyClient) -> None:
    with pytest.raises(BadRequest) as caught:
        police.request(
            "POST",
            "/v1/cases",
            content=b'{"recipients": [',
            headers={"Content-Type": "application/json", "Idempotency-Key": "k-400"},
        )
    _explains(caught.value, 400, "malformed-json")


def test_401_an_agency_the_directory_does_not_know(local: LocalBus) -> None:
    impostor = Credentials(generate_agency_keys("border-police"))  # same id, other keys
    client = AgencyClient(local.url("border-police"), impostor)
    with client, pytest.raises(Unauthenticated) as caught:
        client.case("case-0123456789")
    _explains(caught.value, 401, "unauthenticated")
    assert "key id" in caught.value.detail


def test_403_another_agencys_node(local: LocalBus) -> None:
    authority = local.credentials("nrm-authority")
    with (
        AgencyClient(
            local.url("border-police"), authority, node_audience="nrm-router:border-police"
        ) as client,
        pytest.raises(Forbidden) as caught,
    ):
        client.case("case-0123456789")
    _explains(caught.value, 403, "forbidden")


def test_404_a_case_this_node_never_saw(police: AgencyClient) -> None:
    with pytest.raises(NotFound) as caught:
        police.case("case-" + uuid.uuid4().hex[:16])
    _explains(caught.value, 404, "unknown-case")


def test_409_a_rule_refuses_the_event(police: AgencyClient) -> None:
    case = police.screen(ADULT, recipients=["nrm-authority"]).case
    with pytest.raises(RuleViolation) as caught:
        police.append(
            case,
            "referral.requested",
            {"referral_id": "r-1", "to_agency": "safe-house", "service": "shelter"},
            recipients=["safe-house"],
        )
    _explains(caught.value, 409, "rule-violation")
    assert caught.value.rule == "R9"


def test_409_a_concurrent_write_to_the_same_case(police: AgencyClient) -> None:
    case = police.screen(ADULT, recipients=["nrm-authority"]).case

    def consent(i: int) -> NrmError | None:
        payload = {
            "consent_id": f"c-{i}",
            "recipients": ["safe-house"],
            "categories": ["service"],
            "recorded_by_officer": "bp-1",
        }
        try:
            police.append(case, "consent.recorded", payload, recipients=["nrm-authority"])
        except NrmError as exc:
            return exc
        return None

    conflicts: list[NrmError] = []
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):  # races are probabilistic: enough rounds to meet one
            conflicts += [e for e in pool.map(consent, range(8)) if e is not None]
            if conflicts:
                break
    assert conflicts, "eight parallel appends to one case never collided"
    assert all(isinstance(e, ConcurrentWrite) for e in conflicts), conflicts
    _explains(conflicts[0], 409, "concurrent-write")
    assert "retry" in conflicts[0].detail


def test_422_a_field_breaks_the_schema(police: AgencyClient) -> None:
    bad = {k: v for k, v in ADULT.items() if k != "full_name"}
    with pytest.raises(SchemaViolation) as caught:
        police.screen(bad, recipients=["nrm-authority"])
    _explains(caught.value, 422, "schema-violation")
    assert any("full_name" in e["loc"] for e in caught.value.errors)


def test_422_an_unknown_recipient(police: AgencyClient) -> None:
    with pytest.raises(UnknownAgency) as caught:
        police.screen(ADULT, recipients=["nobody-registered"])
    _explains(caught.value, 422, "unknown-agency")
    assert caught.value.rule == "R6"


def test_422_an_idempotency_key_reused_for_another_request(police: AgencyClient) -> None:
    key = f"k-{uuid.uuid4().hex}"
    police.screen(ADULT, recipients=["nrm-authority"], idempotency_key=key)
    again = police.screen(ADULT, recipients=["nrm-authority"], idempotency_key=key)
    assert again.event_id  # the same request again: the first answer
    with pytest.raises(IdempotencyKeyReused) as caught:
        police.screen({**ADULT, "nationality": "XC"}, ["nrm-authority"], idempotency_key=key)
    _explains(caught.value, 422, "idempotency-key-reused")


def test_422_a_request_the_node_cannot_carry_out(police: AgencyClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        police.screen(ADULT, recipients=["border-police"])  # to itself
    _explains(caught.value, 422, "invalid-request")
