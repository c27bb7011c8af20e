"""The notifier's copy of its agencies' subscriptions, read from a real registry.

A notifier serving several agencies reads all their subscriptions in one request
(`GET /v1/subscriptions` on the registry), however many followers find them due at
once, and stores an agency's list only when it changed: on the demo topology the refresh
runs every second, and a request and a write per agency per second were a third of an
otherwise busy notifier's CPU."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from registry import create_app as registry_app
from tests.notifier.conftest import REGISTRY_AUDIENCE, World, serve, token, world


class CountedTransport(httpx.AsyncHTTPTransport):
    """The real HTTP transport, counting the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url)
        return await super().handle_async_request(request)


def stamps(w: World) -> dict[str, str]:
    """Each stored subscription's last write, from the notifier's own database."""
    with sqlite3.connect(w.tmp / "notifier.sqlite") as db:
        return dict(db.execute("SELECT id, updated_at FROM subscriptions"))


async def test_several_agencies_are_read_in_one_request(tmp: Path) -> None:
    async with world(tmp) as w:
        shelter = await w.subscribe("shelter-hook", ["referral.requested"])
        police = await w.subscribe("police-hook", ["case.closed"], agency="xa-police")
        counted = CountedTransport()
        rt = w.notifier(also_serves=("xa-police", "xa-cp"), registry_transport=counted)
        await rt.refresh_subscriptions()
        assert [u.path for u in counted.sent] == ["/v1/subscriptions"]
        assert sorted(counted.sent[0].params.get_list("agency_id")) == [
            "xa-cp",
            "xa-police",
            "xa-shelter",
        ]
        assert [s.id for s in rt.store.subscriptions("xa-shelter")] == [shelter["id"]]
        assert [s.id for s in rt.store.subscriptions("xa-police")] == [police["id"]]
        assert rt.store.subscriptions("xa-cp") == [] and rt.store.known("xa-cp")
        assert not [k for k in rt.errors if k.endswith(":subscriptions")]
        await rt.stop()


async def test_followers_due_together_share_one_read(tmp: Path) -> None:
    async with world(tmp) as w:
        counted = CountedTransport()
        rt = w.notifier(also_serves=("xa-police", "xa-cp"), registry_transport=counted)
        known = await asyncio.gather(*(rt._refreshed(a) for a in rt.agencies))
        assert known == [True, True, True]
        assert len(counted.sent) == 1
        assert await rt._refreshed("xa-shelter")
        assert len(counted.sent) == 1  # not due again within the refresh period
        await rt.stop()


async def test_an_unchanged_list_is_not_written_again_and_a_change_is(tmp: Path) -> None:
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested"])
        rt = w.notifier()
        await rt.refresh_subscriptions()
        first = stamps(w)
        w.clock.advance(seconds=5)  # a write would stamp a later time
        await rt.refresh_subscriptions()
        assert stamps(w) == first
        url = f"{w.registry_url}/v1/agencies/xa-shelter/subscriptions/{sub['id']}"
        r = await w.http.delete(url, headers=token(w.operator, REGISTRY_AUDIENCE))
        assert r.status_code in (200, 204), r.text
        await rt.refresh_subscriptions()
        [stored] = rt.store.subscriptions("xa-shelter")
        assert stored.registry_status == "deleted" and not stored.active
        assert stamps(w) != first
        await rt.stop()


async def test_an_agency_the_registry_does_not_know_is_an_error_of_its_own(tmp: Path) -> None:
    """One stale name in the notifier's configuration does not hide the others'."""
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested"])
        rt = w.notifier(also_serves=("xa-gone",))
        await rt.refresh_subscriptions()
        assert [s.id for s in rt.store.subscriptions("xa-shelter")] == [sub["id"]]
        assert not rt.store.known("xa-gone")
        assert "does not know" in rt.errors["xa-gone:subscriptions"]
        assert "xa-shelter:subscriptions" not in rt.errors
        await rt.stop()


async def test_a_registry_that_cannot_answer_is_recorded_for_each_agency(tmp: Path) -> None:
    async with world(tmp) as w:
        rt = w.notifier(also_serves=("xa-police",))
        rt.settings.registry_url = "https://127.0.0.1:1"  # nothing listens there
        await rt.refresh_subscriptions()
        assert {"xa-shelter:subscriptions", "xa-police:subscriptions"} <= set(rt.errors)
        assert not rt.store.known("xa-shelter")
        rt.settings.registry_url = w.registry_url
        await rt.refresh_subscriptions()
        assert "xa-shelter:subscriptions" not in rt.errors and rt.store.known("xa-shelter")
        await rt.stop()


async def test_the_registry_answers_the_notifier_only_with_its_scope(tmp: Path) -> None:
    async with world(tmp) as w:
        url = f"{w.registry_url}/v1/subscriptions"
        asked = {"agency_id": ["xa-shelter", "xa-police"]}
        for scope, status in ((None, 403), ("log:read", 403), ("subscriptions:read", 200)):
            pair = w.notifier_keys.current(KeyUse.SIGNING)
            jwt = issue_token(
                w.notifier_keys.agency_id,
                pair.key_id,
                pair.ed25519(),
                REGISTRY_AUDIENCE,
                scope=scope,
            )
            r = await w.http.get(url, params=asked, headers={"Authorization": f"Bearer {jwt}"})
            assert r.status_code == status, (scope, r.text)


def before_the_one_read(app: ASGIApp) -> ASGIApp:
    """The registry as it was before `GET /v1/subscriptions`: that route is not found."""

    async def older(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/subscriptions":
            await JSONResponse({"error": "not-found"}, 404)(scope, receive, send)
            return
        await app(scope, receive, send)

    return older


async def test_a_registry_from_before_the_one_read_is_asked_per_agency(tmp: Path) -> None:
    """A notifier upgraded before its registry keeps its subscriptions: it asks per agency,
    and an agency that registry does not know is still an error of its own."""
    async with world(tmp) as w:
        sub = await w.subscribe("hook", ["referral.requested"])
        counted = CountedTransport()
        rt = w.notifier(also_serves=("xa-police", "xa-gone"), registry_transport=counted)
        async with serve(before_the_one_read(registry_app(w.registry))) as older:
            rt.settings.registry_url = older
            await rt.refresh_subscriptions()
        assert [u.path for u in counted.sent] == [
            "/v1/subscriptions",
            "/v1/agencies/xa-shelter/subscriptions",
            "/v1/agencies/xa-police/subscriptions",
            "/v1/agencies/xa-gone/subscriptions",
        ]
        assert [s.id for s in rt.store.subscriptions("xa-shelter")] == [sub["id"]]
        assert rt.store.known("xa-police") and not rt.store.known("xa-gone")
        assert set(k for k in rt.errors if k.endswith(":subscriptions")) == {
            "xa-gone:subscriptions"
        }
        await rt.stop()
