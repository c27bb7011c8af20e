"""`nrm up` and `nrm demo`: the embedded bus, and the scenario played through it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nrm.cli import CliError


def add_commands(sub: Any) -> None:
    up = sub.add_parser("up", help="run a whole bus on this machine until Ctrl-C")
    up.add_argument("--data", type=Path, default=Path(".nrm-data"), help="data folder")
    up.add_argument("--country", default="XA")
    up.add_argument("--port", type=int, default=8400, help="first port (0: any free ports)")
    up.add_argument("--kafka", metavar="BOOTSTRAP", help=KAFKA_HELP)
    up.set_defaults(handler=_up)

    demo = sub.add_parser("demo", help="run the bus and play a trafficking case through it")
    demo.add_argument("--data", type=Path, help="data folder (default: a fresh temporary one)")
    demo.add_argument("--kafka", metavar="BOOTSTRAP", help=KAFKA_HELP)
    demo.add_argument(
        "--stay", action="store_true", help="keep the bus up after the demo (for the consoles)"
    )
    demo.set_defaults(handler=_demo)


KAFKA_HELP = "use Apache Kafka at host:port; 'auto' starts a broker under the data folder"


def _transport(kafka: str | None) -> str | None:
    return f"kafka://{kafka}" if kafka else None


@contextlib.contextmanager
def _kafka(kafka: str | None, data: Path) -> Iterator[str | None]:
    """The --kafka bootstrap; with 'auto', a local broker (deploy/kafka.py) that lives
    under <data>/kafka and is stopped on exit."""
    if kafka != "auto":
        yield kafka
        return
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "deploy" / "kafka.py"
    spec = importlib.util.spec_from_file_location("nrm_deploy_kafka", path)
    if spec is None or spec.loader is None or not path.exists():
        raise CliError(f"--kafka auto needs {path} (a source checkout)")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    print("Starting a local Apache Kafka broker (first run fetches it with mvn) ...", flush=True)
    try:
        broker = module.start_broker(data / "kafka")
    except Exception as exc:
        raise CliError(f"cannot start a Kafka broker: {exc}") from exc
    print(f"kafka     {broker.bootstrap}", flush=True)
    try:
        yield str(broker.bootstrap)
    finally:
        broker.stop()


def _up(args: argparse.Namespace) -> int:
    from nrm.demo import console_sign_ins
    from nrm.embedded import CountryBus

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise

    from referral_router import telemetry

    telemetry.setup_from_env("nrm-bus")

    async def run(kafka: str | None) -> None:
        bus = CountryBus(args.country, args.data, transport_url=_transport(kafka), port=args.port)
        try:
            await bus.start()
        except OSError as exc:
            raise CliError(
                f"cannot start: {exc} (is another bus on port {args.port}? try --port 0)"
            ) from exc
        print(f"registry  {bus.registry_url}")
        for agency, url in bus.urls.items():
            print(f"node      {url}  {agency}")
        print("web consoles (demo officers' sign-in):")
        console_sign_ins(bus, sys.stdout, tuple(bus.urls))
        print(f"data in {args.data.resolve()}; Ctrl-C stops")
        try:
            await asyncio.Event().wait()
        finally:
            await bus.stop()

    try:
        with _kafka(args.kafka, args.data) as kafka:
            asyncio.run(run(kafka))
    except KeyboardInterrupt:
        return 0
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nrm.demo import DemoFailed, console_sign_ins, run_demo
    from nrm.embedded import CountryBus

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    async def run(data: Path) -> int:
        with _kafka(args.kafka, data) as kafka:
            return await _play(data, kafka)

    async def _play(data: Path, kafka: str | None) -> int:
        bus = CountryBus("XA", data, transport_url=_transport(kafka))
        carrier = f"Apache Kafka at {kafka}" if kafka else "in-process transport"
        print(f"Starting the embedded bus: registry, 8 agency nodes, {carrier} ...")
        await bus.start()
        print("Web consoles, served by each node (an agency's inbox; the rapporteur's oversight):")
        console_sign_ins(bus, sys.stdout, ("safe-house", "child-protection", "rapporteur"))
        try:
            await run_demo(bus, sys.stdout)
            print("\nDemo complete: every step answered as the rules require.")
            if args.stay:
                print("The bus stays up for the consoles above; Ctrl-C stops it.", flush=True)
                await asyncio.Event().wait()
            else:
                print("The bus stops now: `nrm demo --stay` keeps it up to browse the consoles.")
        except DemoFailed as exc:
            print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            await bus.stop()
        return 0

    try:
        if args.data is not None:
            return asyncio.run(run(args.data))
        with tempfile.TemporaryDirectory(prefix="nrm-demo-") as tmp:
            return asyncio.run(run(Path(tmp)))
    except KeyboardInterrupt:  # --stay ends with Ctrl-C
        return 0
