"""`nrm officer add|disable|enable|unlock|password|list`: a node administrator's accounts.

The officers' book is the node's console database (SQLite). It is written here directly,
on the node's machine, while the node runs: the console re-reads an officer on every
request, so `disable` ends that officer's sessions at once. Passwords are read from the
environment variable named by `--password-env` or typed twice at a prompt, never taken
as an argument (it would stay in the shell history and the process list).

Which book: `--db PATH`; or `--agency ID` for a node of the embedded bus (`nrm up`, under
`--data`/`--country`); else `NRM_CONSOLE_DB`; else `<NRM_DATA_DIR>/console.db` as
`nrm node serve` lays it out.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from nrm.agency_cli import passphrase
from nrm.cli import CliError
from referral_router.console.officers import OfficerBook, OfficerError, check_officer_id

DEFAULT_PASSWORD_ENV = "NRM_OFFICER_PASSWORD"


def book_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    if args.agency:
        return args.data / args.country / "nodes" / args.agency / "console.db"
    if os.environ.get("NRM_CONSOLE_DB"):
        return Path(os.environ["NRM_CONSOLE_DB"])
    return Path(os.environ.get("NRM_DATA_DIR") or ".nrm-node") / "console.db"


def _book(args: argparse.Namespace, create: bool = False) -> OfficerBook:
    path = book_path(args)
    if not create and not path.exists():
        raise CliError(f"no officers' book at {path} (see `nrm officer --help`)")
    return OfficerBook(path)


def _password(args: argparse.Namespace) -> str:
    return passphrase(args.password_env, confirm=True, what=f"officer {args.officer}'s new")


def cmd_add(args: argparse.Namespace) -> int:
    try:
        check_officer_id(args.officer)
    except OfficerError as exc:
        raise CliError(str(exc)) from None
    book = _book(args, create=True)
    try:
        book.add(args.officer, args.name, _password(args))
    except OfficerError as exc:
        raise CliError(str(exc)) from None
    finally:
        book.close()
    print(f"officer {args.officer} added to {book.path}")
    return 0


def _change(args: argparse.Namespace, what: str) -> int:
    book = _book(args)
    try:
        if what == "password":
            book.set_password(args.officer, _password(args))
        else:
            getattr(book, what)(args.officer)
    except OfficerError as exc:
        raise CliError(str(exc)) from None
    finally:
        book.close()
    done = {"disable": "disabled (its sessions ended)", "enable": "enabled", "unlock": "unlocked"}
    print(f"officer {args.officer} {done.get(what, 'has a new password (its sessions ended)')}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    book = _book(args)
    try:
        officers = book.officers()
    finally:
        book.close()
    now = datetime.now(UTC)
    print(f"{'officer':<20} {'status':<22} {'last sign-in':<17} name")
    for o in officers:
        status = "active" if o.active else "disabled"
        if o.locked_at(now) and o.locked_until is not None:
            status += f", locked to {o.locked_until:%H:%M}"
        last = f"{o.last_sign_in:%Y-%m-%d %H:%M}" if o.last_sign_in else "never"
        print(f"{o.id:<20} {status:<22} {last:<17} {o.name}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    officer = subparsers.add_parser(
        "officer",
        help="manage the officers who sign in to a node's web console",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = officer.add_subparsers(dest="officer_command", metavar="ACTION", required=True)

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="the node's console database")
        p.add_argument("--agency", help="a node of the embedded bus (with --data, --country)")
        p.add_argument("--data", type=Path, default=Path(".nrm-data"))
        p.add_argument("--country", default="XA")

    p = sub.add_parser("add", help="add an officer (asks for a password)")
    p.add_argument("officer", help="the officer id recorded on decisions (a badge number)")
    p.add_argument("--name", required=True, help="display name, shown to administrators only")
    p.add_argument("--password-env", default=DEFAULT_PASSWORD_ENV)
    where(p)
    p.set_defaults(handler=cmd_add)
    for action, text in (
        ("disable", "stop an officer signing in; ends their sessions"),
        ("enable", "let a disabled officer sign in again"),
        ("unlock", "lift a lockout after failed sign-ins"),
        ("password", "set a new password (asks for it); ends their sessions"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("officer")
        p.add_argument("--password-env", default=DEFAULT_PASSWORD_ENV)
        where(p)
        p.set_defaults(handler=lambda a, what=action: _change(a, what))
    p = sub.add_parser("list", help="list the officers and their status")
    where(p)
    p.set_defaults(handler=cmd_list)
