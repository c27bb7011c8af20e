"""`nrm demo --cross-border`: two federated countries and a voluntary return between them.

Adds the flag to the `demo` command that `nrm.embedded_cli` defines (register this module
after it in `nrm.cli.COMMAND_MODULES`); without that command it adds `demo-cross-border`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

if TYPE_CHECKING:
    from nrm.broker import SecuredKafka


def add_commands(sub: Any) -> None:
    demo = sub.choices.get("demo")
    if demo is None:
        demo = sub.add_parser("demo-cross-border", help="return a victim across two countries")
        demo.add_argument("--data", type=Path, help="data folder (default: a fresh temporary one)")
        demo.add_argument("--kafka", metavar="BOOTSTRAP", help="use Apache Kafka at host:port")
        demo.add_argument("--kafka-pki", type=Path, metavar="DIR", help="its nrm pki folder")
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
    from nrm import logs
    from nrm.embedded_cli import NEXT_STEPS, kafka_from_args

    logs.setup(level="ERROR")

    def run(data: Path) -> int:
        option, pki = getattr(args, "kafka", None), getattr(args, "kafka_pki", None)
        with kafka_from_args(option, pki, data) as kafka:
            return asyncio.run(run_demo(data, kafka, sys.stdout))

    if args.data is not None:
        code = run(args.data)
    else:
        with tempfile.TemporaryDirectory(prefix="nrm-federation-") as tmp:
            code = run(Path(tmp))
    if code == 0:
        print(NEXT_STEPS)
    return code


OVERSIGHT = {"XA": "rapporteur", "XB": "xb-rapporteur"}


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """`values` set in this process's environment for the block (None: unset), then the
    environment as it was (tests run more buses after this)."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def audit_both_sides(pair: Any, data: Path, out: TextIO) -> None:
    """Each country's oversight body verifies its own nodes' logs with `nrm audit verify`;
    then every crossing is shown in both countries' logs: the same leaf, proven included
    under a checkpoint that the holding node signed."""
    from nrm.cli import main as nrm
    from nrm.demo import DemoFailed
    from nrm.federation_demo import crossings

    print("\nAudit, by each country's oversight body:", file=out)
    for country, bus in pair.buses.items():
        anchor = data / f"{country}-anchor.json"
        anchor.write_text(bus.anchor().model_dump_json())
        keystore, passphrase = bus.keystore(OVERSIGHT[country])
        args = ["audit", "verify", "--anchor", str(anchor), "--registry", bus.registry_url,
                "--keystore", str(keystore),
                "--audience", "nrm-router:{agency}", "--state", str(data / f"{country}-state.json"),
                "--fresh", "--quiet", "--grace", "30"]  # fmt: skip
        for agency, url in bus.urls.items():
            args += ["--node", f"{agency}={url}"]
        trust = getattr(bus, "trust_file", None)  # HTTPS nodes: the country's CA
        with _environment(NRM_KEYSTORE_PASSPHRASE=passphrase, NRM_CA_FILE=trust):
            code = await asyncio.to_thread(nrm, args)
        verdict = "every log verified" if code == 0 else f"FAILED (exit {code})"
        print(f"  {country}: nrm audit verify over {len(bus.urls)} nodes: {verdict}", file=out)
        if code != 0:
            raise DemoFailed(f"{country}'s audit did not verify")
    crossed = [c for c in await crossings(pair, "XA") if c["outcome"] == "crossed"]
    directories = {
        country: await asyncio.to_thread(bus.directory_client().refresh)
        for country, bus in pair.buses.items()
    }
    for crossing in crossed:
        held = []
        for country, bus in pair.buses.items():
            for agency, url in bus.urls.items():
                leaf = await _proven_leaf(bus, OVERSIGHT[country], agency, url,
                                          crossing["event_id"], directories[country])  # fmt: skip
                if leaf is not None:
                    held.append((country, agency, leaf))
        countries = {c for c, _, _ in held}
        if countries != {"XA", "XB"} or len({h for _, _, h in held}) != 1:
            raise DemoFailed(f"crossing {crossing['event_id']} is not the same leaf in both logs")
        where = ", ".join(f"{c}/{a}" for c, a, _ in held)
        print(
            f"  {crossing['event_type']:<26} one leaf {held[0][2][:16]}... proven in {where}",
            file=out,
        )


async def _proven_leaf(
    bus: Any, oversight: str, agency: str, url: str, event_id: str, directory: Any
) -> str | None:
    """The event's leaf hash in `agency`'s log, proven included under a checkpoint the
    node signed now; None if the event is not in that log."""
    from contracts.audit_verification import open_node_checkpoint
    from contracts.transparency import verify_inclusion

    def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {bus.token(oversight, agency)}"}

    async with httpx.AsyncClient(base_url=url, timeout=30, verify=bus.verify) as client:
        size = (await client.post("/v1/audit/checkpoints", headers=auth())).json()["size"]
        note = (await client.get("/v1/audit/checkpoint", headers=auth())).text
        resp = await client.get(
            "/v1/audit/inclusion", params={"event_id": event_id, "size": size}, headers=auth()
        )
    if resp.status_code != 200:
        return None
    proof = resp.json()
    checkpoint = open_node_checkpoint(note, directory)
    verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]), proof["index"], checkpoint.size,
        [bytes.fromhex(h) for h in proof["proof"]], checkpoint.root,
    )  # fmt: skip
    return str(proof["leaf_hash"])


async def run_demo(data: Path, kafka: SecuredKafka | None, out: TextIO, pair: Any = None) -> int:
    """The cross-border story on two federated buses: embedded ones on `kafka` (None:
    SQLite), or `pair` (e.g. `nrm.topology.FederatedProcesses`, not yet started)."""
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

    pair = pair or FederatedBuses(data, kafka)
    print("Starting two federated buses: XA (destination) and XB (origin) ...", file=out)
    await pair.start()
    try:
        case = await play(pair, out)
        # A second case: asylum lodged, so nothing of it goes towards XB (R4).
        refused = await play(pair, out, [*before_return(asylum=True), planning(asylum=True)])
        for country in (DESTINATION, ORIGIN):
            await country_timeline(pair, country, case, out)
        await country_timeline(pair, DESTINATION, refused, out)
        await audit_both_sides(pair, data, out)
    except DemoFailed as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        await pair.stop()
    print(
        "\nCross-border demo complete: every crossing is in both countries' verified logs.",
        file=out,
    )
    return 0
