"""`nrm notifier serve` is wired in and refuses a malformed agency specification."""

from __future__ import annotations

import argparse

import pytest

from nrm import notifier_cli
from nrm.cli import CliError


def test_serve_parses_and_rejects_bad_agency_specs() -> None:
    parser = argparse.ArgumentParser()
    notifier_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["notifier", "serve", "--agency", "xa-a=a.json@http://r", "--anchor", "anchor.json"]
    )
    assert args.handler is notifier_cli.cmd_serve and args.port == 8720
    for bad in ("xa-a", "xa-a=a.json", "=a.json@http://r"):
        with pytest.raises(CliError):
            notifier_cli._served(bad, "NRM_TEST_PASSPHRASE")
