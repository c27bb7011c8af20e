"""`nrm up --processes`, `nrm demo [--cross-border] --processes` and `nrm status`.

With `--processes` every piece of the bus runs as its own OS process (`nrm.topology`)
on Apache Kafka (a local broker under the data folder unless `--kafka` names one), each
with its own store: a SQLite file, or with `--postgres` a database of its own on a
PostgreSQL server started under the data folder (deploy/postgres.py). Ctrl-C or SIGTERM
stops them in order: notifier, nodes and gateways, registry, PostgreSQL, the broker last.

Adds its flags to the `up` and `demo` commands (register this module after
`nrm.embedded_cli` and `nrm.federation_cli` in `nrm.cli.COMMAND_MODULES`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from nrm.cli import CliError

if TYPE_CHECKING:
    from nrm.broker import SecuredKafka

PROCESSES_HELP = "every piece its own OS process, on Apache Kafka (a local broker by default)"
POSTGRES_HELP = "with --processes: each process its own PostgreSQL database (a local server)"


def add_commands(sub: Any) -> None:
    for name in ("up", "demo"):
        command = sub.choices[name]
        command.add_argument("--processes", action="store_true", help=PROCESSES_HELP)
        command.add_argument("--postgres", action="store_true", help=POSTGRES_HELP)
        inner = command.get_default("handler")
        outer = _up if name == "up" else _demo
        command.set_defaults(handler=_choose(inner, outer))
    status = sub.add_parser("status", help="each process of a running bus: health and lags")
    status.add_argument("--data", type=Path, default=Path(".nrm-data"), help="data folder")
    status.add_argument("--json", action="store_true", help="machine-readable, with CPU times")
    status.set_defaults(handler=_status)


def _choose(
    embedded: Callable[[argparse.Namespace], int], processes: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        if args.postgres and not args.processes:
            raise CliError("--postgres needs --processes")
        return processes(args) if args.processes else embedded(args)

    return handler


@contextlib.contextmanager
def _postgres(wanted: bool, data: Path) -> Iterator[Any]:
    """deploy/postgres.py's server under <data>/postgres, stopped (and removed) on exit."""
    if not wanted:
        yield None
        return
    print("Starting a local PostgreSQL server ...", flush=True)
    try:
        from nrm.broker import deploy_module

        server = deploy_module("postgres").start_postgres(data / "postgres")
    except Exception as exc:
        raise CliError(
            f"cannot start PostgreSQL (deploy/ensure-postgres.sh installs it): {exc}"
        ) from exc
    try:
        yield server
    finally:
        server.stop()


async def until_signalled() -> None:
    """Wait for SIGINT or SIGTERM (this process owns them: the children are in their own
    sessions and stop when told, in order)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _up(args: argparse.Namespace) -> int:
    from nrm.embedded_cli import kafka_from_args
    from nrm.topology import CountryProcesses

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    async def run(kafka: SecuredKafka, postgres: Any) -> None:
        bus = CountryProcesses(args.country, args.data, kafka, port=args.port, postgres=postgres)
        try:
            await bus.start()
            print(f"registry  {bus.registry_url}")
            for agency, url in bus.urls.items():
                print(f"node      {url}  {agency}")
            print(f"notifier  {bus.notifier_url}")
            store = "PostgreSQL, a database each" if postgres else "SQLite, a file each"
            print(f"{len(bus.supervisor.children)} processes ({store}); `nrm status --data "
                  f"{args.data}` shows them; Ctrl-C stops", flush=True)  # fmt: skip
            await until_signalled()
        finally:
            print("stopping: notifier, nodes, registry, then the broker ...", flush=True)
            await bus.stop()

    with (
        kafka_from_args(args.kafka or "auto", args.kafka_pki, args.data, args.country) as kafka,
        _postgres(args.postgres, args.data) as pg,
    ):
        assert kafka is not None
        asyncio.run(run(kafka, pg))
    return 0


def _demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.data is not None:
        return _demo_in(args, args.data)
    with tempfile.TemporaryDirectory(prefix="nrm-demo-") as tmp:
        return _demo_in(args, Path(tmp))


def _demo_in(args: argparse.Namespace, data: Path) -> int:
    from nrm.embedded_cli import kafka_from_args

    if getattr(args, "cross_border", False):
        if args.kafka:
            raise CliError("each country runs its own Kafka here: leave out --kafka")
        return _cross_border(args, data)
    with (
        kafka_from_args(args.kafka or "auto", args.kafka_pki, data) as kafka,
        _postgres(args.postgres, data) as pg,
    ):
        assert kafka is not None
        return asyncio.run(_play(data, kafka, pg, stay=bool(getattr(args, "stay", False))))


def _cross_border(args: argparse.Namespace, data: Path) -> int:
    """Two countries, each with its own broker (stopped last), registry and processes."""
    from nrm.embedded_cli import kafka_from_args
    from nrm.federation_cli import run_demo
    from nrm.topology import FederatedProcesses

    with (
        kafka_from_args("auto", None, data / "XA", "XA") as xa,
        kafka_from_args("auto", None, data / "XB", "XB") as xb,
        _postgres(args.postgres, data) as pg,
    ):
        assert xa is not None and xb is not None
        pair = FederatedProcesses(data, brokers={"XA": xa, "XB": xb}, postgres=pg)
        return asyncio.run(run_demo(data, None, sys.stdout, pair=pair))


async def _play(data: Path, kafka: SecuredKafka, postgres: Any, stay: bool = False) -> int:
    from nrm.demo import DemoFailed, run_demo
    from nrm.topology import CountryProcesses

    bus = CountryProcesses("XA", data, kafka, postgres=postgres)
    print(
        f"Starting the bus as processes: registry, provisioner, 8 agency nodes, notifier, "
        f"each its own, on Apache Kafka at {kafka.bootstrap} (TLS, a principal per agency) ..."
    )
    t0 = time.monotonic()
    try:
        await bus.start()
        print(f"{len(bus.supervisor.children)} processes ready in {time.monotonic() - t0:.0f}s")
        await run_demo(bus, sys.stdout)
        print("\nDemo complete over separate processes: every step answered as the rules require.")
        if stay:
            print(f"The processes stay up (`nrm status --data {data}`); Ctrl-C stops them.")
            await until_signalled()
    except DemoFailed as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        await bus.stop()
    return 0


# --- nrm status ------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    from nrm.topology import STATE_FILE

    states = sorted(args.data.glob(f"*/{STATE_FILE}"))
    if not states:
        raise CliError(f"no bus of processes under {args.data} (`nrm up --processes` runs one)")
    report = [observe(json.loads(p.read_text())) for p in states]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for country in report:
            print(_table(country))
    healthy = all(p["health"] == "ready" for c in report for p in c["processes"])
    return 0 if healthy else 1


def observe(state: dict[str, Any]) -> dict[str, Any]:
    """A supervisor's state file, checked now: each process alive or not, its readiness
    answer, its lags and the CPU time it used."""
    from nrm.serving import verify_context
    from nrm.supervisor import alive, cpu_seconds

    out = {**state, "processes": []}
    with httpx.Client(timeout=5, verify=verify_context(state.get("ca_file"))) as client:
        for p in state["processes"]:
            seen = {**p, "health": "down", "lag": None, "cpu_seconds": None}
            pid = p.get("pid")
            if pid and alive(int(pid)):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    seen["cpu_seconds"] = round(cpu_seconds(int(pid)), 2)
            if seen["cpu_seconds"] is not None and not p["url"]:
                seen["health"] = "ready"  # serves no HTTP: running is all it can say
            elif seen["cpu_seconds"] is not None:
                try:
                    resp = client.get(p["url"] + p["ready_path"])
                    body = (
                        resp.json() if resp.headers.get("content-type", "").endswith("json") else {}
                    )
                    seen["health"] = "ready" if resp.status_code == 200 else f"{resp.status_code}"
                    seen["lag"] = body.get("lag") if isinstance(body, dict) else None
                except httpx.HTTPError as exc:
                    seen["health"] = f"no answer ({type(exc).__name__})"
            out["processes"].append(seen)
    return out


def _table(country: dict[str, Any]) -> str:
    lines = [f"{country['country']}: supervisor pid {country['supervisor_pid']}, "
             f"Kafka {country['kafka']}"]  # fmt: skip
    head = f"  {'process':<28} {'pid':>7} {'status':<9} {'health':<10} {'relay lag':>9} "
    lines.append(head + f"{'inbox lag':>9} {'restarts':>8} {'cpu s':>7}  url")
    for p in country["processes"]:
        lag = p["lag"] or {}
        cells = [
            f"  {p['name']:<28}",
            f"{p['pid'] or '-':>7}",
            f"{'held' if p.get('held') and p['status'] != 'running' else p['status']:<9}",
            f"{p['health']:<10}",
            f"{lag.get('relay', '-'):>9}",
            f"{lag.get('inbox', '-'):>9}",
            f"{p['restarts']:>8}",
            f"{p['cpu_seconds'] if p['cpu_seconds'] is not None else '-':>7}",
            f" {p['url']}",
        ]
        lines.append(" ".join(cells))
    return "\n".join(lines)
