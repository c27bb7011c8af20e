"""`nrm notifier serve` is wired in, acts with its own identity, and refuses a malformed
agency specification or an agency's keystore."""

from __future__ import annotations

import argparse

import pytest

from nrm import notifier_cli
from nrm.cli import CliError


def test_serve_parses_and_rejects_bad_agency_specs() -> None:
    parser = argparse.ArgumentParser()
    notifier_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "notifier",
            "serve",
            "--agency",
            "xa-a@https://r",
            "--anchor",
            "anchor.json",
            "--identity",
            "notifier.keystore",
        ]
    )
    assert args.handler is notifier_cli.cmd_serve and args.port == 8720
    assert args.passphrase_env == "NRM_NOTIFIER_PASSPHRASE"
    assert notifier_cli._served("xa-a@https://r").router_url == "https://r"
    for bad in ("xa-a", "xa-a@", "@https://r", "xa-a@ftp://r"):
        with pytest.raises(CliError, match="ID@ROUTER_URL"):
            notifier_cli._served(bad)
    with pytest.raises(CliError, match="no agency keystore"):
        notifier_cli._served("xa-a=a.keystore@https://r")
