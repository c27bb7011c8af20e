"""`nrm up` and `nrm demo`: the embedded bus, and the scenario played through it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nrm import local_bus, logs, serving
from nrm.cli import CliError

if TYPE_CHECKING:
    from nrm.broker import SecuredKafka


def add_commands(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="run a whole bus on this machine until Ctrl-C or SIGTERM",
        description="Runs the registry, one node per demo agency and the notifier on "
        "127.0.0.1 (ports from --port on), writes their URLs and token audiences to "
        "<data>/<country>/endpoints.json, and prints how to call a node. `nrm token`, "
        "`nrm url` and `nrm audit` read that file.",
    )
    up.add_argument("--data", type=Path, default=local_bus.DEFAULT_DATA, help="data folder")
    up.add_argument("--country", default=local_bus.DEFAULT_COUNTRY)
    up.add_argument("--port", type=int, default=8400, help="first port (0: any free ports)")
    up.add_argument("--kafka", metavar="BOOTSTRAP", help=KAFKA_HELP)
    logs.add_options(up)
    up.add_argument("--kafka-pki", type=Path, metavar="DIR", help=KAFKA_PKI_HELP)
    up.set_defaults(handler=_up)

    demo = sub.add_parser("demo", help="run the bus and play a trafficking case through it")
    demo.add_argument("--data", type=Path, help="data folder (default: a fresh temporary one)")
    demo.add_argument("--kafka", metavar="BOOTSTRAP", help=KAFKA_HELP)
    demo.add_argument(
        "--stay", action="store_true", help="keep the bus up after the demo (for the consoles)"
    )
    demo.add_argument("--kafka-pki", type=Path, metavar="DIR", help=KAFKA_PKI_HELP)
    demo.set_defaults(handler=_demo)


KAFKA_HELP = (
    "use Apache Kafka at host:port (TLS, client certificates); 'auto' starts a secured "
    "broker under the data folder"
)
KAFKA_PKI_HELP = (
    "with --kafka host:port: the `nrm pki` folder whose CA the brokers trust and which "
    "holds the operator's certificate (agency certificates are issued from it)"
)


@contextlib.contextmanager
def kafka_from_args(
    kafka: str | None, pki: Path | None, data: Path, country: str = "XA"
) -> Iterator[SecuredKafka | None]:
    """The --kafka option: none, a broker of ours ('auto': deploy/kafka.py under
    <data>/kafka, stopped on exit), or the operator's own broker and its PKI folder."""
    from nrm.broker import SecuredKafka, start_local
    from nrm.pki import LocalCA

    if kafka is None:
        yield None
        return
    if kafka != "auto":
        if pki is None or not LocalCA(pki).exists():
            raise CliError(
                "--kafka host:port needs --kafka-pki DIR (the CA its brokers trust, made "
                "with `nrm pki init`): the bus never talks plaintext to Kafka"
            )
        yield SecuredKafka(kafka, LocalCA(pki))
        return
    print("Starting a local Apache Kafka broker (first run fetches it with mvn) ...", flush=True)
    try:
        broker = start_local(data / "kafka", country)
    except Exception as exc:
        raise CliError(f"cannot start a Kafka broker: {exc}") from exc
    print(f"kafka     {broker.bootstrap} (TLS; CA and certificates in {broker.pki.folder})")
    try:
        yield broker
    finally:
        broker.stop()


def _up(args: argparse.Namespace) -> int:
    from nrm.demo import console_sign_ins
    from nrm.embedded import CountryBus
    from referral_router import telemetry

    logs.setup_from(args)
    telemetry.setup_from_env("nrm-bus")

    async def run(kafka: SecuredKafka | None) -> None:
        stop = asyncio.Event()
        serving.stop_on_signals(stop)  # before anything starts: a SIGTERM now still stops
        bus = CountryBus(args.country, args.data, port=args.port, kafka=kafka)
        try:
            try:
                await bus.start()
            except OSError as exc:
                raise CliError(
                    f"cannot start: {exc} (is another bus on port {args.port}? try --port 0)"
                ) from exc
            bus.write_endpoints()
            print("web consoles (demo officers' sign-in):")
            console_sign_ins(bus, sys.stdout, tuple(bus.urls))
            print(startup_banner(bus, args.data, kafka), flush=True)
            await stop.wait()
            print("stopping ...", flush=True)
        finally:
            await bus.stop()
            telemetry.shutdown()

    try:
        with kafka_from_args(args.kafka, args.kafka_pki, args.data, args.country) as kafka:
            serving.run(run(kafka))
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        return 0
    print("stopped", flush=True)
    return 0


NEXT_STEPS = """
Next: run the bus yourself and call a node (README, "Connect your system"):
  nrm up            # registry :8400, nodes :8401-8408, notifier :8409; Ctrl-C stops
  export NRM_TOKEN=$(nrm token --agency border-police)
  curl -H "Authorization: DPoP $NRM_TOKEN" \\
       -H "DPoP: $(nrm dpop GET http://127.0.0.1:8401/v1/inbox)" http://127.0.0.1:8401/v1/inbox"""


def data_options(data: Path, country: str) -> str:
    """The options another `nrm` command needs to find this bus ('' for the defaults)."""
    options = "" if data == local_bus.DEFAULT_DATA else f" --data {data}"
    return options + ("" if country == local_bus.DEFAULT_COUNTRY else f" --country {country}")


def startup_banner(bus: Any, data: Path, kafka: SecuredKafka | None) -> str:
    """What `nrm up` prints once everything listens: where, and how to call a node."""
    lines = [f"registry  {bus.registry_url}", f"notifier  {bus.notifier_url}"]
    for spec in bus.agencies:
        roles = ", ".join(str(r) for r in spec.roles)
        lines.append(f"node      {bus.urls[spec.id]}  {spec.id} ({roles})")
    if kafka:
        lines.append(f"kafka     {kafka.bootstrap} (TLS, client certificates: {kafka.pki.folder})")
    where = bus.root.resolve()
    lines.append(f"data      {where} (endpoints.json, anchor.json)")
    first = bus.agencies[0].id
    url = bus.urls[first]
    opts = data_options(data, bus.country)
    lines += [
        "",
        f"Call {first}'s node (README: Connect your system):",
        f"  export NRM_TOKEN=$(nrm token --agency {first}{opts})",
        f'  curl -H "Authorization: DPoP $NRM_TOKEN" '
        f'-H "DPoP: $(nrm dpop GET {url}/v1/inbox{opts})" {url}/v1/inbox',
        "Ctrl-C or SIGTERM stops the bus.",
    ]
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from nrm.demo import DemoFailed, console_sign_ins, run_demo
    from nrm.embedded import CountryBus

    logs.setup(level="WARNING")

    async def run(data: Path) -> int:
        with kafka_from_args(args.kafka, args.kafka_pki, data) as kafka:
            return await _play(data, kafka)

    async def _play(data: Path, kafka: SecuredKafka | None) -> int:
        bus = CountryBus("XA", data, kafka=kafka)
        carrier = f"Apache Kafka at {kafka.bootstrap} (TLS)" if kafka else "in-process transport"
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
        print(NEXT_STEPS)
        return 0

    try:
        if args.data is not None:
            return asyncio.run(run(args.data))
        with tempfile.TemporaryDirectory(prefix="nrm-demo-") as tmp:
            return asyncio.run(run(Path(tmp)))
    except KeyboardInterrupt:  # --stay ends with Ctrl-C
        return 0
