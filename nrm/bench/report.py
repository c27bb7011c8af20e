"""The benchmark's outputs: a plain-text table, a JSON document and an SVG chart.

The SVG is written by hand (no plotting dependency): two bar panels on log scales,
throughput at saturation (each end-to-end bar beside its raw transport baseline) and
p99 latency at each offered load.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}" if abs(v) >= 0.1 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [f"\n{title}", line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def text(doc: dict[str, Any]) -> str:
    """The whole report as text: one table per stage, ratios beside their figures."""
    m = doc["machine"]
    parts = [
        f"nrm bench ({'quick' if doc['quick'] else 'full'}) on {m['nproc']} cores, {m['cpu']}, "
        f"Python {m['python']} on {m.get('event_loop', 'asyncio')}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    ]
    if doc.get("crypto_floor"):
        parts.append(
            _table(
                "Crypto floor (µs/event; sealing vs the same AES-GCM/Ed25519 done bare)",
                ["recip", "seal", "open", "floor seal", "floor open", "seal ×", "open ×", "HPKE"],
                [
                    [r["recipients"], r["seal_us"], r["open_us"], r["floor_seal_us"],
                     r["floor_open_us"], r["seal_ratio"], r["open_ratio"], r["hpke_wrap_us"]]
                    for r in doc["crypto_floor"]
                ],
            )
        )  # fmt: skip
    if doc.get("store_append"):
        s = doc["store_append"]
        parts.append(
            _table(
                "Event store alone (CaseStore.record_sent, SQLite WAL FULL, 1 event per commit)",
                ["events", "env bytes", "append µs", "appends/s", "raw sqlite µs", "× raw"],
                [[s["events"], s["envelope_bytes_mean"], s["append_us"], s["appends_per_s"],
                  s["raw_sqlite_us"], s["ratio_to_raw_sqlite"]]],
            )
        )  # fmt: skip
    stack = doc.get("stack_floor") or {}
    if "stack_us" in stack:
        parts.append(
            _table(
                "Stack floor (CPU µs per event, 3 recipients: the parts every node is built "
                "from, bare, with no bus logic)",
                ["https request", "kafka client", "of it producing", "durable commits",
                 "stack", "crypto floor", "stack + crypto × crypto"],
                [[stack["https_request_us"], stack["kafka_client_us"],
                  stack.get("kafka_producer_us", ""), stack["durable_commits_us"],
                  stack["stack_us"], stack["crypto_floor_us"],
                  stack["ratio_with_crypto_to_crypto_floor"]]],
            )
        )  # fmt: skip
    if "batch_share_at_floor" in stack:
        parts.append(
            _table(
                "The sending node at the stack's floor (µs per event, bare; what the CPU "
                "target would leave it, recipients at their floor and the notifier free)",
                ["single", "batched", "batch share", "single at most", "batched at most",
                 "CPU and batch targets together"],
                [[stack["sender_single_us"], stack["sender_batched_us"],
                  stack["batch_share_at_floor"], stack["sender_single_at_most_us"],
                  stack["batched_at_most_us"],
                  "possible" if stack["cpu_and_batch_targets_together"] else "impossible"]],
            )
        )  # fmt: skip
    if doc.get("transport_baseline"):
        parts.append(
            _table(
                "Transport baseline (raw produce-then-consume, the bus's own record bytes)",
                ["transport", "recip", "offered/s", "events/s", "p50 ms", "p99 ms", "rec bytes"],
                [
                    [r["transport"], r["recipients"], r["offered_events_per_s"], r["events_per_s"],
                     r["p50_ms"], r["p99_ms"], r["record_bytes_mean"]]
                    for r in doc["transport_baseline"]
                ],
            )
        )  # fmt: skip
    if doc.get("end_to_end"):
        parts.append(
            _table(
                "End to end (sender HTTP request -> receiver's store; latency from when due)",
                ["transport", "bus", "row", "recip", "offered/s", "events/s", "× raw", "p50 ms",
                 "p99 ms", "accept p99", "cpu µs/ev", "× crypto", "sender µs/ev", "shed",
                 "drop", "err", "miss"],
                [
                    [r["transport"], r.get("bus", ""),
                     r["label"] + (f" ×{r['batch']}" if r.get("batch") else ""),
                     r["recipients"], r["offered_events_per_s"], r["events_per_s"],
                     r.get("ratio_to_raw_throughput", ""), r["p50_ms"], r["p99_ms"],
                     r["accept_p99_ms"], r.get("cpu_us_per_event", ""),
                     r.get("ratio_cpu_to_crypto_floor", ""), r.get("sender_cpu_us_per_event") or "",
                     r["shed"], r["dropped"], r["errors"], r["missing"]]
                    for r in doc["end_to_end"]
                ],
            )
        )  # fmt: skip
    by_process = [r for r in doc.get("end_to_end", []) if r.get("cpu_by_part")]
    if by_process:
        pieces = sorted({k for r in by_process for k in r["cpu_by_part"]})
        parts.append(
            _table(
                "CPU seconds per piece of the bus, a process each (summed over "
                "/proc/<pid>/stat; the broker apart)",
                ["row", "recip", "processes", "bus cpu s", *pieces, "broker", "loader"],
                [
                    [r["label"], r["recipients"], r["cpu_processes"], r["bus_cpu_s"],
                     *(r["cpu_by_part"].get(k, 0.0) for k in pieces),
                     "" if r.get("broker_cpu_s") is None else r["broker_cpu_s"],
                     r["loader_cpu_s"]]
                    for r in by_process
                ],
            )
        )  # fmt: skip
    if doc.get("idle"):
        pieces = sorted({k for r in doc["idle"] for k in r["by_part"]})
        parts.append(
            _table(
                "Idle bus (CPU-seconds per second with no load; per piece when a process each)",
                ["transport", "bus", "seconds", "cpu s/s", *pieces, "broker"],
                [
                    [r["transport"], r["bus"], r["seconds"], r["cpu_s_per_s"],
                     *(r["by_part"].get(k, "") for k in pieces),
                     "" if r["broker_cpu_s_per_s"] is None else r["broker_cpu_s_per_s"]]
                    for r in doc["idle"]
                ],
            )
        )  # fmt: skip
    if doc.get("growth"):
        parts.append(
            _table(
                "Growth (one recipient; filled in batches; a probe of single requests at "
                "each checkpoint)",
                ["sent", "probe ev/s", "cpu µs/ev", "p99 ms", "stores MB", "rcv MB", "RSS MB",
                 "rcv events", "rebuild s", "µs/event", "1M s", "rebuild MB"],
                [
                    [g["events_sent"], g["probe_events_per_s"], g["probe_cpu_us_per_event"],
                     g["probe_p99_ms"], g["store_mb"], g["receiver_store_mb"],
                     " / ".join(f"{v:,.0f}" for v in g["rss_mb"].values()), g["receiver_events"],
                     g["rebuild_s"], g["rebuild_us_per_event"], g["rebuild_1m_events_s"],
                     g.get("rebuild_peak_rss_mb", "")]
                    for g in doc["growth"]["rows"]
                ],
            )
        )  # fmt: skip
    if doc.get("audit"):
        a = doc["audit"]
        parts.append(
            _table(
                "Audit (verifiable log in memory)",
                ["leaves", "append µs", "incl proof µs", "p99", "cons proof µs", "p99",
                 "full verify s", "sha256 floor s", "× floor"],
                [[a["n_leaves"], a["append_us_per_leaf"], a["inclusion_proof_us_median"],
                  a["inclusion_proof_us_p99"], a["consistency_proof_us_median"],
                  a["consistency_proof_us_p99"], a["full_verification_s"], a["sha256_floor_s"],
                  a["full_verification_ratio_to_floor"]]],
            )
        )  # fmt: skip
    if doc.get("targets"):
        parts.append(
            _table(
                "Targets (reported, not enforced)",
                ["target", "measured", "verdict"],
                [
                    [
                        t["target"],
                        t["measured"],
                        "n/a" if t["met"] is None else "met" if t["met"] else "not met",
                    ]
                    for t in doc["targets"]
                ],
            )
        )
    if doc.get("profile"):
        p = doc["profile"]
        parts.append(
            _table(
                f"Where the time goes ({p['what']}; % of busy wall-clock samples, all threads)",
                ["project function (inclusive)", "%"],
                [[k, v] for k, v in p["top"]["project_total"][:12]],
            )
        )
    for skipped in doc.get("skipped", []):
        parts.append(f"\nskipped: {skipped}")
    parts.append(f"\ntotal {doc['elapsed_s']:.1f} s")
    return "\n".join(parts) + "\n"


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


# --- SVG ---------------------------------------------------------------------------

_COLOURS = ("#3465a4", "#9dbbe0", "#cc0000", "#f0a0a0", "#4e9a06", "#8ae234")


def _bar_panel(
    x0: float, title: str, unit: str, groups: list[str], series: dict[str, list[float]]
) -> list[str]:
    """A grouped bar panel with a log10 value axis, drawn at horizontal offset x0."""
    w, h, top, left = 460.0, 300.0, 40.0, 50.0
    values = [v for vs in series.values() for v in vs if v > 0]
    mid = x0 + w / 2
    out = [f'<text x="{mid}" y="20" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    if not values:
        return [*out, f'<text x="{mid}" y="150" text-anchor="middle">no data</text>']
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    hi = hi if hi > lo else lo + 1

    def y(v: float) -> float:
        return top + h - (math.log10(v) - lo) / (hi - lo) * h

    for d in range(lo, hi + 1):
        yy = y(10.0**d)
        out.append(f'<line x1="{x0 + left}" x2="{x0 + w}" y1="{yy}" y2="{yy}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x0 + left - 4}" y="{yy + 4}" text-anchor="end" font-size="10">'
            f"{10**d:g}</text>"
        )
    out.append(
        f'<text x="{x0 + 12}" y="{top + h / 2}" font-size="10" '
        f'transform="rotate(-90 {x0 + 12} {top + h / 2})" text-anchor="middle">'
        f"{escape(unit)}</text>"
    )
    gw = (w - left) / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    for gi, g in enumerate(groups):
        gx = x0 + left + gi * gw + gw * 0.1
        out.append(
            f'<text x="{gx + gw * 0.4}" y="{top + h + 14}" text-anchor="middle" '
            f'font-size="10">{escape(g)}</text>'
        )
        for si, (name, vs) in enumerate(series.items()):
            v = vs[gi] if gi < len(vs) else 0.0
            if v <= 0:
                continue
            yy = y(v)
            out.append(
                f'<rect x="{gx + si * bw}" y="{yy}" width="{bw - 1}" height="{top + h - yy}" '
                f'fill="{_COLOURS[si % len(_COLOURS)]}">'
                f"<title>{escape(name)} {g}: {v:g}</title></rect>"
            )
    for si, name in enumerate(series):
        ly = top + h + 30 + si * 14
        out.append(
            f'<rect x="{x0 + left}" y="{ly - 9}" width="10" height="10" '
            f'fill="{_COLOURS[si % len(_COLOURS)]}"/>'
        )
        out.append(f'<text x="{x0 + left + 14}" y="{ly}" font-size="11">{escape(name)}</text>')
    return out


def _series(row: dict[str, Any]) -> str:
    """A row's series in the chart: its transport, and whether a process per piece."""
    return row["transport"] + (" processes" if row.get("bus") == "processes" else "")


def svg(doc: dict[str, Any]) -> str:
    """Throughput at saturation (end to end beside raw transport) and p99 at fixed loads."""
    e2e = doc.get("end_to_end", [])
    raw = doc.get("transport_baseline", [])
    recips = sorted({r["recipients"] for r in e2e} | {r["recipients"] for r in raw})
    groups = [f"{r} recipient{'s' if r > 1 else ''}" for r in recips]

    def pick(rows: list[dict[str, Any]], series: str, key: str, label: Any) -> list[float]:
        out = []
        for r in recips:
            hit = [
                x[key]
                for x in rows
                if _series(x) == series
                and x["recipients"] == r
                and x.get("label", x["offered_events_per_s"]) == label
            ]
            out.append(float(hit[0]) if hit else 0.0)
        return out

    thr: dict[str, list[float]] = {}
    for t in ("embedded", "kafka", "kafka processes"):
        if any(_series(x) == t for x in e2e):
            thr[f"{t}: end to end"] = pick(e2e, t, "events_per_s", "saturation")
        if any(_series(x) == t for x in raw):
            thr[f"{t}: raw transport"] = pick(raw, t, "events_per_s", "saturation")
    lat: dict[str, list[float]] = {}
    for t in ("embedded", "kafka", "kafka processes"):
        for label in ("light", "half-saturation", "overload"):
            vals = pick(e2e, t, "p99_ms", label)
            if any(vals):
                lat[f"{t} {label}"] = vals
    body = _bar_panel(0, "Events/s at saturation", "events/s", groups, thr)
    body += _bar_panel(480, "End-to-end p99 at fixed offered load", "ms", groups, lat)
    height = 300 + 40 + 30 + 14 * max(len(thr), len(lat), 1) + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height}" '
        'font-family="sans-serif" font-size="12">\n'
        '<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )
