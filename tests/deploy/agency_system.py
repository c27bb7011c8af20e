"""An agency's system, run inside its own node's container (`podman exec -i ... python -`).

It holds what that container holds and nothing more: the agency's keystore from its own
volume, the passphrase from its own compose secret, the CA certificate from `trust`. It
calls the node's HTTPS API with the project's client library (DPoP-bound tokens signed
with that keystore) and prints one JSON document.

    refer                          police: screen a case, record consent, refer it
    accept CASE REFERRAL           authority: once the referral arrived, accept it
    referral CASE REFERRAL STATUS  either: the case once the referral has that status
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from nrm_client import AgencyClient, Credentials, NotFound

TIMEOUT = 60.0
POLICE, AUTHORITY = "xa-police", "xa-authority"
SCREENED = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "adult",
    "screened_by_officer": "bp-0042",
    "full_name": "A. Example",
    "nationality": "XB",
    "found_at": "Farm 12, north road",
    "indicators": [{"form": "forced-labour", "strength": "strong", "observation": "no pay"}],
}


def node() -> AgencyClient:
    passphrase = Path(os.environ["NRM_KEYSTORE_PASSPHRASE_FILE"]).read_text().strip()
    credentials = Credentials.from_keystore(os.environ["NRM_KEYSTORE"], passphrase)
    trust = ssl.create_default_context(cafile=os.environ["NRM_CA_FILE"])
    url = f"https://127.0.0.1:{os.environ['NRM_PORT']}"  # its certificate names 127.0.0.1
    return AgencyClient(url, credentials, transport=httpx.HTTPTransport(verify=trust))


def refer(client: AgencyClient) -> dict[str, Any]:
    case = client.screen(SCREENED, recipients=[AUTHORITY]).case
    consent = {
        "consent_id": "consent-1",
        "recipients": [AUTHORITY],
        "categories": ["identity", "service"],
        "recorded_by_officer": "bp-0042",
    }
    client.append(case, "consent.recorded", consent, recipients=[AUTHORITY])
    referral = {
        "referral_id": "ref-1",
        "to_agency": AUTHORITY,
        "service": "identification",
        "consent_id": "consent-1",
        "full_name": "A. Example",
        "needs": "an identification interview",
    }
    client.append(case, "referral.requested", referral, recipients=[AUTHORITY])
    return {"case": case}


def view(client: AgencyClient, case: str, referral: str, status: str) -> dict[str, Any]:
    """The case once its referral has `status` here (events travel over Kafka)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            seen = client.case(case)
            if any(r.referral_id == referral and r.status == status for r in seen.referrals):
                return json.loads(seen.model_dump_json())
        except NotFound:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{client.agency_id}: {referral} not {status} in {TIMEOUT:.0f}s")
        time.sleep(0.5)


def accept(client: AgencyClient, case: str, referral: str) -> dict[str, Any]:
    view(client, case, referral, "requested")
    answer = {"referral_id": referral, "answered_by_officer": "ia-0007"}
    client.append(case, "referral.accepted", answer, recipients=[POLICE])
    return view(client, case, referral, "accepted")


def main(argv: list[str]) -> None:
    with node() as client:
        if argv[0] == "refer":
            out = refer(client)
        elif argv[0] == "accept":
            out = accept(client, argv[1], argv[2])
        else:
            out = view(client, argv[1], argv[2], argv[3])
    print(json.dumps({"agency": client.agency_id, **out}))


if __name__ == "__main__":
    main(sys.argv[1:])
