"""`nrm up` and `nrm demo`: the embedded bus, and the scenario played through it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from nrm.cli import CliError


def add_commands(sub: Any) -> None:
    up = sub.add_parser("up", help="run a whole bus on this machine until Ctrl-C")
    up.add_argument("--data", type=Path, default=Path(".nrm-data"), help="data folder")
    up.add_argument("--country", default="XA")
    up.add_argument("--port", type=int, default=8400, help="first port (0: any free ports)")
    up.add_argument("--kafka", metavar="BOOTSTRAP", help="use Apache Kafka at host:port")
    up.set_defaults(handler=_up)

    demo = sub.add_parser("demo", help="run the bus and play a trafficking case through it")
    demo.add_argument("--data", type=Path, help="data folder (default: a fresh temporary one)")
    demo.add_argument("--kafka", metavar="BOOTSTRAP", help="use Apache Kafka at host:port")
    demo.set_defaults(handler=_demo)


def _transport(kafka: str | None) -> str | None:
    return f"kafka://{kafka}" if kafka else None


def _up(args: argparse.Namespace) -> int:
    from nrm.embedded import CountryBus

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        bus = CountryBus(
            args.country, args.data, transport_url=_transport(args.kafka), port=args.port
        )
        try:
            await bus.start()
        except OSError as exc:
            raise CliError(
                f"cannot start: {exc} (is another bus on port {args.port}? try --port 0)"
            ) from exc
        print(f"registry  {bus.registry_url}")
        for agency, url in bus.urls.items():
            print(f"node      {url}  {agency}")
        print(f"data in {args.data.resolve()}; Ctrl-C stops")
        try:
            await asyncio.Event().wait()
        finally:
            await bus.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nrm.demo import DemoFailed, play, timeline
    from nrm.embedded import CountryBus

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    async def run(data: Path) -> int:
        bus = CountryBus("XA", data, transport_url=_transport(args.kafka))
        print("Starting the embedded bus: registry, 8 agency nodes, in-process transport ...")
        await bus.start()
        try:
            case = await play(bus, sys.stdout)
            await timeline(bus, case, sys.stdout)
        except DemoFailed as exc:
            print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            await bus.stop()
        print("\nDemo complete: every step answered as the rules require.")
        return 0

    if args.data is not None:
        return asyncio.run(run(args.data))
    with tempfile.TemporaryDirectory(prefix="nrm-demo-") as tmp:
        return asyncio.run(run(Path(tmp)))
