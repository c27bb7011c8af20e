"""The bus `nrm up` runs on this machine, as other commands find it: its data folder, its
address book (`endpoints.json`), its trust anchor and its demo keystores.

`nrm token`, `nrm dpop`, `nrm url` and `nrm audit` fall back on it when no explicit
option says otherwise, so the README's commands work as written against `nrm up`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contracts import endpoints
from contracts.keystore import AgencyKeys, KeystoreError
from nrm.cli import CliError

DEFAULT_DATA = Path(".nrm-data")
DEFAULT_COUNTRY = "XA"


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the local bus's data folder (nrm up)"
    )
    p.add_argument("--country", default=DEFAULT_COUNTRY, help="the local bus's country")


def folder(args: argparse.Namespace) -> Path:
    """`<data>/<country>`: where `nrm up` keeps that country's files."""
    return Path(args.data) / args.country


def running(args: argparse.Namespace) -> endpoints.Endpoints:
    """The address book of the bus running with this data folder."""
    path = folder(args) / endpoints.FILE_NAME
    try:
        return endpoints.loads(path.read_bytes())
    except FileNotFoundError:
        hint = "" if Path(args.data) == DEFAULT_DATA else f" --data {args.data}"
        raise CliError(
            f"no running bus: {path} is missing (start one with `nrm up{hint}`)"
        ) from None
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None


def demo_keys(args: argparse.Namespace, agency_id: str) -> AgencyKeys:
    """An agency's keys from the demo keychain `nrm up` made (demo only)."""
    from nrm.embedded import Keychain

    secrets = folder(args) / "secrets"
    try:
        return Keychain.existing(secrets).existing_keys(agency_id)
    except FileNotFoundError as exc:
        raise CliError(f"{exc} (or pass --keystore)") from None
    except KeystoreError as exc:
        raise CliError(f"{secrets}: {exc}") from None
