from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.envelope import Envelope, dataschema_for, source_for


@pytest.fixture
def sample_envelope() -> Envelope:
    return Envelope(
        id=uuid4(),
        source=source_for("XA", "border-police"),
        type="case.screened",
        subject="case-0123456789abcdef",
        time=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        dataschema=dataschema_for("case.screened"),
        sender="border-police",
        recipients=("child-protection", "nrm-authority"),
        operational={
            "age_status": "unknown",
            "forms_of_exploitation": ["forced-labour"],
            "screened_by_officer": "bp-0042",
        },
    )
