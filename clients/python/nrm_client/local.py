"""A bus running on this machine (`nrm up`): its URLs, audiences and demo keystores.

For trying things out and for tests. `nrm up` writes `<data>/<country>/endpoints.json`;
this reads it, so nothing is copied by hand. In production, build `AgencyClient` from
your node's URL and your agency's keystore instead (`Credentials.from_keystore`).
"""

from __future__ import annotations

import os
from pathlib import Path

from contracts import endpoints
from nrm_client.client import AgencyClient
from nrm_client.credentials import Credentials

PASSPHRASE_ENV = "NRM_KEYSTORE_PASSPHRASE"


class LocalBus:
    def __init__(self, data: str | Path = ".nrm-data", country: str = "XA") -> None:
        self.folder = Path(data) / country
        path = self.folder / endpoints.FILE_NAME
        try:
            self.endpoints = endpoints.loads(path.read_bytes())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing: start the bus with `nrm up`") from None

    def url(self, agency_id: str) -> str:
        return self.endpoints.node(agency_id).url

    def credentials(self, agency_id: str) -> Credentials:
        """From the demo keystore `nrm up` made for the agency (demo only: a real
        agency keeps its keystore and passphrase in its own secret store)."""
        secrets = self.folder / self.endpoints.secrets
        kept = secrets / "passphrase"  # absent when `nrm up` took it from the environment
        passphrase = kept.read_text() if kept.exists() else os.environ[PASSPHRASE_ENV]
        return Credentials.from_keystore(secrets / f"{agency_id}.keystore", passphrase)

    def client(self, agency_id: str, **options: object) -> AgencyClient:
        """A client of the agency's own node (and of the notifier, for its stream)."""
        node = self.endpoints.node(agency_id)
        notifier = self.endpoints.notifier
        return AgencyClient(
            node.url,
            self.credentials(agency_id),
            node_audience=node.audience,
            notifier_url=notifier.url if notifier else None,
            notifier_audience=notifier.audience if notifier else None,
            **options,  # type: ignore[arg-type]
        )
