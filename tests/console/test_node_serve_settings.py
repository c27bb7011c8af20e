"""`nrm node serve` reads the console's settings from NRM_CONSOLE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrm.cli import CliError
from nrm.node_cli import config_from_env

BASE = {
    "NRM_AGENCY_ID": "rapporteur",
    "NRM_COUNTRY": "XA",
    "NRM_TRANSPORT": "memory:",
    "NRM_REGISTRY_URL": "http://127.0.0.1:8700",
    "NRM_TRUST_ANCHOR": "anchor.json",
    "NRM_KEYSTORE": "rapporteur.keystore",
    "NRM_DATA_DIR": "/srv/nrm",
}


def test_the_console_is_on_by_default_beside_the_node_s_files() -> None:
    cfg = config_from_env(BASE)
    assert cfg.console_db == Path("/srv/nrm/console.db")
    assert cfg.console_peers is None and not cfg.console_secure_cookies


def test_console_settings_from_the_environment() -> None:
    cfg = config_from_env(
        {
            **BASE,
            "NRM_CONSOLE_DB": "/secrets/officers.db",
            "NRM_CONSOLE_PEERS": "safe-house=https://sh.example:8443/, police=http://p:8500",
            "NRM_CONSOLE_SECURE_COOKIES": "1",
        }
    )
    assert cfg.console_db == Path("/secrets/officers.db")
    assert cfg.console_peers == {
        "safe-house": "https://sh.example:8443",
        "police": "http://p:8500",
    }
    assert cfg.console_secure_cookies
    assert config_from_env({**BASE, "NRM_CONSOLE": "off"}).console_db is None


def test_a_malformed_peer_list_is_refused() -> None:
    with pytest.raises(CliError, match="agency=http"):
        config_from_env({**BASE, "NRM_CONSOLE_PEERS": "safe-house"})
