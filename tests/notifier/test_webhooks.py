"""Webhook delivery against a real receiver: retries, backoff, dead letters, 410, replay,
signatures, resumption after a crash, the SSE stream and the API's access rules."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from notifier import NotifierRuntime, RetryPolicy
from notifier.notifications import EVENT_FIELDS
from tests.notifier.conftest import (
    CANARY,
    NOTIFIER_AUDIENCE,
    World,
    eventually,
    serve,
    token,
    world,
)

CASE = "case-0a1b2c3d4e"


@asynccontextmanager
async def running(w: World, **kwargs: Any) -> AsyncIterator[tuple[NotifierRuntime, str]]:
    """The notifier's loops plus its API on a real port; stopped on exit."""
    rt = w.notifier(**kwargs)
    task = asyncio.create_task(rt.run())
    async with serve(rt.app) as api:
        try:
            yield rt, api
        finally:
            await rt.stop()
            await task


async def test_fails_first_then_delivered_signed_with_backoff(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("flaky", ["referral.requested"])
        w.receiver.fail_first["flaky"] = 2
        w.router.add("referral.requested", CASE, operational={"referral_id": "r1"})
        w.router.add("case.screened", CASE)  # not subscribed: no delivery
        async with running(w) as (rt, api):
            await eventually(lambda: len(w.receiver.got("flaky")) == 3)
            await eventually(lambda: rt.store.delivery_counts(sub["id"]) == {"delivered": 1})
            r = await w.http.get(
                f"{api}/v1/subscriptions/{sub['id']}/deliveries",
                headers=token(w.shelter, NOTIFIER_AUDIENCE),
            )
        got = w.receiver.got("flaky")
        assert all(g["verified"] for g in got)  # the receiver checked every signature
        assert len({g["idempotency_key"] for g in got}) == 1  # same key on every retry
        assert [g["attempt"] for g in got] == ["1", "2", "3"]
        assert json.loads(got[0]["body"])["type"] == "referral.requested"
        assert r.status_code == 200, r.text
        [delivery] = r.json()["items"]
        assert delivery["status"] == "delivered" and delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["history"]] == [503, 503, 200]
        assert [a["outcome"] for a in delivery["history"]] == ["retry", "retry", "delivered"]
        # full jitter: each wait is at most base * 2**(n-1) (+ scheduling slack)
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(got)]
        assert gaps[0] < 0.05 + 0.5 and gaps[1] < 0.1 + 0.5


async def test_dead_letter_after_max_attempts_then_replay(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("down", ["referral.requested"])
        w.receiver.fail_first["down"] = 3
        w.router.add("referral.requested", CASE, operational={"referral_id": "r1"})
        async with running(w, retry=RetryPolicy(max_attempts=3, base_seconds=0.02)) as (rt, api):
            await eventually(lambda: rt.store.delivery_counts(sub["id"]) == {"dead": 1})
            page = (
                await w.http.get(
                    f"{api}/v1/subscriptions/{sub['id']}/deliveries?status=dead",
                    headers=token(w.shelter, NOTIFIER_AUDIENCE),
                )
            ).json()
            [dead] = page["items"]
            assert dead["attempts"] == 3 and dead["dead_letter"]["reason"].startswith("3 attempts")
            assert page["subscription"]["deliveries"] == {"dead": 1}
            r = await w.http.post(
                f"{api}/v1/subscriptions/{sub['id']}/replay",
                headers=token(w.shelter, NOTIFIER_AUDIENCE),
            )
            assert r.json()["replayed"] == 1
            await eventually(lambda: rt.store.delivery_counts(sub["id"]) == {"delivered": 1})
            [d] = rt.store.deliveries(sub["id"], None, 0, 10)
        got = w.receiver.got("down")
        assert len(got) == 4 and len({g["idempotency_key"] for g in got}) == 1
        assert [a["status_code"] for a in d["history"]] == [503, 503, 503, 200]
        assert d["dead_letter"]["replayed_at"] is not None


async def test_slow_receiver_times_out_and_is_retried(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("slow", ["referral.requested"])
        w.receiver.delay["slow"] = 1.0
        w.router.add("referral.requested", CASE, operational={"referral_id": "r1"})
        retry = RetryPolicy(max_attempts=2, base_seconds=0.01, timeout_seconds=0.3)
        async with running(w, retry=retry) as (rt, _):
            await eventually(lambda: rt.store.delivery_counts(sub["id"]) == {"dead": 1})
            [d] = rt.store.deliveries(sub["id"], None, 0, 10)
        assert [a["error"] for a in d["history"]] == ["timeout", "timeout"]
        assert all(a["status_code"] is None and a["duration_ms"] >= 250 for a in d["history"])


async def test_410_disables_the_subscription(tmp: Path) -> None:
    async with world(tmp) as w:
        gone = await w.subscribe("gone", ["referral.requested"])
        ok = await w.subscribe("ok", ["referral.requested"])
        w.receiver.gone.add("gone")
        w.router.add("referral.requested", CASE, operational={"referral_id": "r1"})
        async with running(w) as (rt, _):
            await eventually(lambda: rt.store.delivery_counts(gone["id"]) == {"gone": 1})
            w.router.add("referral.requested", CASE, operational={"referral_id": "r2"})
            await eventually(lambda: rt.store.delivery_counts(ok["id"]) == {"delivered": 2})
            await asyncio.sleep(0.3)
            sub = rt.store.subscription(gone["id"])
            counts = rt.store.delivery_counts(gone["id"])
        assert sub is not None and sub.local_status == "disabled"
        assert counts == {"gone": 1}  # never attempted again while disabled
        assert len(w.receiver.got("gone")) == 1


async def test_crash_and_resume_loses_nothing_and_creates_no_duplicates(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested", "consent.recorded"])
        for i in range(3):
            w.router.add("referral.requested", CASE, operational={"referral_id": f"r{i}"})
        first = w.notifier()
        await first.step("xa-shelter")  # follows the log, but "crashes" before delivering
        assert first.store.cursor("xa-shelter") == 3
        first.store.close()
        w.router.add("consent.recorded", CASE)
        w.router.add("referral.requested", CASE, operational={"referral_id": "r9"})
        second = w.notifier()  # same SQLite file: resumes after position 3
        task = asyncio.create_task(second.run())
        try:
            await eventually(lambda: second.store.delivery_counts(sub["id"]) == {"delivered": 5})
            await asyncio.sleep(0.2)
        finally:
            await second.stop()
            await task
        keys = [g["idempotency_key"] for g in w.receiver.got("hook")]
        assert len(keys) == 5 and len(set(keys)) == 5
        ids = {json.loads(g["body"])["event_id"] for g in w.receiver.got("hook")}
        assert ids == {i["event_id"] for i in w.router.items}


async def test_a_burst_is_followed_in_few_transactions_when_the_notifier_lingers(
    tmp: Path,
) -> None:
    """A busy node's entries come on one stream and take a few transactions of the
    notifier's store, not one each: after an entry the notifier gathers what comes within
    `follow_linger`. Nothing is missed: every entry is notified once."""
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested"])
        notifier = w.notifier(follow_linger=0.3)
        ingests = 0
        ingest = notifier.store.ingest

        def counted(*args: Any) -> int:
            nonlocal ingests
            ingests += 1
            return ingest(*args)

        notifier.store.ingest = counted  # type: ignore[method-assign]
        task = asyncio.create_task(notifier.run())
        try:
            await eventually(lambda: w.router.streams > 0)
            for i in range(30):  # 30 entries over about 0.6 s
                w.router.add("referral.requested", CASE, operational={"referral_id": f"r{i}"})
                await asyncio.sleep(0.02)
            await eventually(lambda: notifier.store.delivery_counts(sub["id"]) == {"delivered": 30})
        finally:
            await notifier.stop()
            await task
        assert 1 <= ingests <= 6, ingests  # about 0.6 s / 0.3 s, and the one ending the burst
        assert w.router.streams <= 2 and w.router.reads == 0  # one stream (or its successor)
        keys = [g["idempotency_key"] for g in w.receiver.got("hook")]
        assert len(keys) == 30 and len(set(keys)) == 30


async def test_a_node_without_the_log_stream_is_paged(tmp: Path) -> None:
    """A node of an older version answers 404 to the stream: the notifier pages its log
    instead, and misses nothing."""
    async with world(tmp) as w:
        w.router.streaming = False
        sub = await w.subscribe("hook", ["referral.requested"])
        w.router.add("referral.requested", CASE, operational={"referral_id": "r0"})
        async with running(w) as (rt, _):
            await eventually(lambda: w.router.reads > 0)
            w.router.add("referral.requested", CASE, operational={"referral_id": "r1"})
            await eventually(lambda: rt.store.delivery_counts(sub["id"]) == {"delivered": 2})
        assert w.router.streams == 0 and "xa-shelter" not in rt.errors


async def test_no_personal_field_in_any_notification(tmp: Path) -> None:
    """Canary: clear and would-be-personal values in the log never reach a body."""
    async with world(tmp) as w:
        await w.subscribe("canary", ["case.screened", "referral.requested", "referral.accepted"])
        w.router.add(
            "case.screened",
            CASE,
            operational={
                "screened_by_officer": CANARY,
                "full_name": CANARY,  # as if a personal field had leaked into clear
                "found_at": CANARY,
            },
        )
        w.router.add(
            "referral.requested",
            CASE,
            operational={
                "referral_id": CANARY,
                "to_agency": "xa-shelter",
                "pickup_location": CANARY,
            },
        )
        w.router.add(
            "referral.accepted",
            CASE,
            operational={"referral_id": CANARY, "shelter_address": CANARY},
        )
        async with running(w) as (_rt, api):
            await eventually(lambda: len(w.receiver.got("canary")) == 3)
            async with w.http.stream(
                "GET",
                f"{api}/v1/notifications/stream",
                headers=token(w.shelter, NOTIFIER_AUDIENCE),
            ) as stream:
                sse = await _read_events(stream, 3)
        bodies = [g["body"] for g in w.receiver.got("canary")] + [e["data"].encode() for e in sse]
        for body in bodies:
            assert CANARY.encode() not in body
            assert set(json.loads(body)) <= EVENT_FIELDS


async def _read_events(stream: httpx.Response, n: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in stream.aiter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == n:
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.strip()
    return events


async def test_sse_resumes_from_last_event_id(tmp: Path) -> None:
    async with world(tmp) as w:
        for i in range(4):
            w.router.add("referral.requested", CASE, operational={"referral_id": f"r{i}"})
        async with running(w) as (rt, api):
            await eventually(lambda: rt.store.cursor("xa-shelter") == 4)
            url = f"{api}/v1/notifications/stream"
            async with w.http.stream("GET", url, headers=token(w.shelter, NOTIFIER_AUDIENCE)) as s:
                assert s.headers["content-type"].startswith("text/event-stream")
                first = await _read_events(s, 2)
            headers = token(w.shelter, NOTIFIER_AUDIENCE) | {"Last-Event-ID": first[-1]["id"]}
            async with w.http.stream("GET", url, headers=headers) as s:
                w.router.add("referral.requested", CASE, operational={"referral_id": "late"})
                rest = await _read_events(s, 3)  # two stored, one live
        seen = [json.loads(e["data"])["event_id"] for e in first + rest]
        assert seen == [i["event_id"] for i in w.router.items]
        assert [int(e["id"]) for e in first + rest] == sorted(int(e["id"]) for e in first + rest)


async def test_api_needs_a_token_of_the_agency_or_the_operator(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested"])
        rt = w.notifier()
        await rt.step("xa-shelter")
        async with serve(rt.app) as api:
            url = f"{api}/v1/subscriptions/{sub['id']}/deliveries"
            assert (await w.http.get(url)).status_code == 401
            bad = token(w.shelter, "https://other.example")
            assert (await w.http.get(url, headers=bad)).status_code == 401
            other = token(w.agencies["xa-police"], NOTIFIER_AUDIENCE)
            assert (await w.http.get(url, headers=other)).status_code == 403
            own = token(w.shelter, NOTIFIER_AUDIENCE)
            assert (await w.http.get(url, headers=own)).status_code == 200
            op = token(w.operator, NOTIFIER_AUDIENCE)
            assert (await w.http.get(url, headers=op)).status_code == 200
            replay = f"{api}/v1/subscriptions/{sub['id']}/replay"
            other = token(w.agencies["xa-police"], NOTIFIER_AUDIENCE)  # tokens are one-time
            assert (await w.http.post(replay, headers=other)).status_code == 403
            assert (await w.http.get(f"{api}/healthz")).status_code == 200
            ready = await w.http.get(f"{api}/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
        await rt.stop()
