"""`nrm bench`: the benchmark with baselines; see nrm/bench/ for what each stage measures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

STAGES = ("crypto", "store", "stack", "transport", "e2e", "growth", "audit")
BUSES = ("embedded", "kafka", "processes")


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the bus end to end and per stage, each next to a baseline",
        description=(
            "Prints a table and writes results/bench.json, bench.txt and bench.svg. "
            "Kafka stages start their own broker (deploy/kafka.py) unless --kafka is given."
        ),
    )
    p.add_argument("--quick", action="store_true", help="small sizes (under a minute), for CI")
    p.add_argument("--kafka", metavar="BOOTSTRAP", help="use this running broker (host:port)")
    p.add_argument(
        "--kafka-pki", type=Path, metavar="DIR", help="with --kafka: its `nrm pki` folder"
    )
    p.add_argument("--no-kafka", action="store_true", help="skip the Kafka stages")
    p.add_argument(
        "--processes",
        action="store_true",
        help="end to end also on a process per piece (as `nrm up --processes`) over Kafka; "
        "the targets are then judged on it",
    )
    p.add_argument(
        "--bus",
        nargs="+",
        choices=BUSES,
        help="end to end only on these buses (default: embedded and kafka, and processes "
        "with --processes); `--bus processes` measures a lever on the stated topology alone",
    )
    p.add_argument(
        "--max-events",
        type=int,
        help="growth: events to send, checkpoints doubling from 10,000 (default 40,000; "
        "1000000 for the million, about an hour)",
    )
    p.add_argument(
        "--audit-leaves", type=int, help="audit log size (default 1,000,000; 10,000 quick)"
    )
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample where the end-to-end time goes (default: on unless --quick)",
    )
    p.add_argument(
        "--only", nargs="+", choices=STAGES, default=list(STAGES), help="run only these stages"
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    import logging

    from nrm.bench.runner import Options, run
    from nrm.cli import CliError

    if args.kafka and args.no_kafka:
        raise CliError("--kafka and --no-kafka contradict each other")
    asked = set(args.bus or ()) | ({"processes"} if args.processes else set())
    if args.no_kafka and asked - {"embedded"}:
        raise CliError("the kafka and processes buses run on Kafka: they contradict --no-kafka")
    buses = tuple(dict.fromkeys([*(args.bus or ("embedded", "kafka")), *sorted(asked)]))
    if args.kafka and not args.kafka_pki:
        raise CliError("--kafka needs --kafka-pki: the broker speaks TLS with certificates only")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # transient rebalance noise
    run(
        Options(
            quick=args.quick,
            kafka=args.kafka,
            kafka_pki=args.kafka_pki,
            no_kafka=args.no_kafka,
            max_events=args.max_events,
            audit_leaves=args.audit_leaves,
            profile=args.profile,
            out=args.out,
            progress=not args.no_progress,
            buses=buses,
            stages=tuple(args.only),
        )
    )
    return 0
