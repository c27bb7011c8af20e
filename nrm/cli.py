"""`nrm`: one command for the whole bus. Each area adds its sub-commands from its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

#: Modules that each define `add_commands(subparsers)`; their handlers return an exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "nrm.embedded_cli",
    "nrm.token_cli",
    "nrm.agency_cli",
    "nrm.audit_cli",
    "nrm.bench_cli",
    "nrm.notifier_cli",
    "nrm.node_cli",
    "nrm.gateway_cli",
    "nrm.federation_cli",
    "nrm.officer_cli",
    "nrm.topology_cli",
    "nrm.pki_cli",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nrm",
        description="The NRM referral bus: run it, administer it, audit it.",
        epilog="Start here: `nrm up` runs a bus on this machine and prints its URLs; "
        "`nrm token --agency border-police` prints a token for that agency's node and "
        "`nrm dpop METHOD URL` the proof each request needs (README: Connect your system).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that area is not built yet
            raise
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CliError as exc:
        print(f"nrm {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
