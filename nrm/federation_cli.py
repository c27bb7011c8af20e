"""`nrm demo --cross-border`: two federated countries and a voluntary return between them.

Adds the flag to the `demo` command that `nrm.embedded_cli` defines (register this module
after it in `nrm.cli.COMMAND_MODULES`); without that command it adds `demo-cross-border`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO


def add_commands(sub: Any) -> None:
    demo = sub.choices.get("demo")
    if demo is None:
        demo = sub.add_parser("demo-cross-border", help="return a victim across two countries")
        demo.add_argument("--data", type=Path, help="data folder (default: a fresh temporary one)")
        demo.add_argument("--kafka", metavar="BOOTSTRAP", help="use Apache Kafka at host:port")
        demo.set_defaults(handler=_cross_border, cross_border=True)
        return
    demo.add_argument(
        "--cross-border",
        action="store_true",
        help="two federated countries (XA, XB): a return planned, agreed, completed, monitored",
    )
    single = demo.get_default("handler")

    def handler(args: argparse.Namespace) -> int:
        return _cross_border(args) if args.cross_border else single(args)

    demo.set_defaults(handler=handler)


def _cross_border(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    kafka = f"kafka://{args.kafka}" if getattr(args, "kafka", None) else None
    if args.data is not None:
        return asyncio.run(run_demo(args.data, kafka, sys.stdout))
    with tempfile.TemporaryDirectory(prefix="nrm-federation-") as tmp:
        return asyncio.run(run_demo(Path(tmp), kafka, sys.stdout))


async def run_demo(data: Path, transport_url: str | None, out: TextIO) -> int:
    from nrm.demo import DemoFailed
    from nrm.federation_demo import (
        DESTINATION,
        ORIGIN,
        FederatedBuses,
        before_return,
        country_timeline,
        planning,
        play,
    )

    pair = FederatedBuses(data, transport_url)
    print("Starting two federated buses: XA (destination) and XB (origin) ...", file=out)
    await pair.start()
    try:
        case = await play(pair, out)
        # A second case: asylum lodged, so its return planning never crosses (R4).
        refused = await play(pair, out, [*before_return(asylum=True), planning()])
        for country in (DESTINATION, ORIGIN):
            await country_timeline(pair, country, case, out)
        await country_timeline(pair, DESTINATION, refused, out)
    except DemoFailed as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        await pair.stop()
    print(
        "\nCross-border demo complete: every crossing is in both countries' node stores.", file=out
    )
    return 0
