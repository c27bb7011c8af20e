"""A real embedded bus (registry, every demo agency's node, the notifier) for the client
library, with the address book `nrm up` would write, so `LocalBus` finds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nrm_client import AgencyClient, LocalBus
from tests.bus.running import RunningBus, running_bus

ADULT: dict[str, Any] = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "adult",
    "screened_by_officer": "bp-0042",
    "full_name": "Amina Quartermaine",
    "nationality": "XB",
    "found_at": "Farm 12, north road",
    "indicators": [{"form": "forced-labour", "strength": "strong", "observation": "no pay"}],
}
CONSENT: dict[str, Any] = {
    "consent_id": "consent-1",
    "recipients": ["safe-house"],
    "categories": ["identity", "service"],
    "recorded_by_officer": "bp-0042",
}
REFERRAL: dict[str, Any] = {
    "referral_id": "ref-1",
    "to_agency": "safe-house",
    "service": "shelter",
    "consent_id": "consent-1",
    "full_name": "Amina Quartermaine",
    "needs": "a bed tonight",
}


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    data: Path = tmp_path_factory.mktemp("client-bus")
    with running_bus(data) as b:
        b.bus.write_endpoints()
        yield b


@pytest.fixture(scope="module")
def local(bus: RunningBus) -> LocalBus:
    return LocalBus(bus.bus.data_dir, bus.bus.country)


@pytest.fixture
def police(local: LocalBus) -> Iterator[AgencyClient]:
    with local.client("border-police") as client:
        yield client


@pytest.fixture
def shelter(local: LocalBus) -> Iterator[AgencyClient]:
    with local.client("safe-house") as client:
        yield client


def referred_case(police: AgencyClient) -> str:
    """A case screened by border police and referred to the safe house on consent."""
    case = police.screen(ADULT, recipients=["nrm-authority"]).case
    police.append(case, "consent.recorded", CONSENT, recipients=["nrm-authority"])
    police.append(case, "referral.requested", REFERRAL, recipients=["safe-house"])
    return case
