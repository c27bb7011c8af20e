"""The web console a node serves under /console: officers sign in, work their agency's
inbox, record lifecycle events; an oversight body's officers also audit every node.

Server-rendered pages (Jinja2, autoescaped) and two small static files; no build step and
nothing fetched from elsewhere at run time. It runs inside the node, where the agency's
keys are, so opened fields never leave the node except to the signed-in officer's page.

Privacy in the browser: URLs carry only random case pseudonyms, event ids and event types,
page titles only the page's kind, the only cookie is a signed random session id, pages are
sent with `Cache-Control: no-store`, and the scripts use no web storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from referral_router.console.case_pages import CasePages
from referral_router.console.casework import Inbox
from referral_router.console.officers import OfficerBook
from referral_router.console.oversight import OversightWatch, WatchSettings
from referral_router.console.oversight_pages import OversightPages
from referral_router.console.pages import PageRefused, Pages, Parts, Redirect
from referral_router.console.sessions import CookieSeal
from referral_router.console.settings import ConsoleSettings
from referral_router.sending.node import AgencyNode

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class Console:
    """One node's console: its officers' book, inbox index, oversight watch and web app.
    `token_for(agency)` signs this node's agency into another node's oversight API."""

    def __init__(
        self,
        node: AgencyNode,
        settings: ConsoleSettings,
        master_key: bytes,
        token_for: Callable[[str], str] | None = None,
    ) -> None:
        watch = (
            OversightWatch(
                settings.book_path,
                lambda: node.roster.directory,
                WatchSettings(
                    peers=settings.peers or (lambda: _directory_peers(node)),
                    token=token_for,
                    registry_url=settings.registry_url,
                    anchor=settings.anchor,
                ),
            )
            if token_for is not None
            else None
        )
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        templates.env.filters["when"] = _when
        self.parts = Parts(
            node=node,
            settings=settings,
            book=OfficerBook(settings.book_path, policy=settings.policy),
            seal=CookieSeal(node.agency_id, master_key),
            inbox=Inbox(node),
            watch=watch,
            templates=templates,
        )
        self.book = self.parts.book
        self.app = build_app(self.parts)

    async def run(self, stop: asyncio.Event) -> None:
        """An oversight body's node verifies every watched node periodically."""
        watch = self.parts.watch
        if watch is not None and self.parts.oversight:
            await watch.run(self.parts.settings.verify_interval, stop)

    def close(self) -> None:
        if self.parts.watch is not None:
            self.parts.watch.close()
        self.parts.book.close()


def _directory_peers(node: AgencyNode) -> dict[str, str]:
    return {
        a.id: a.endpoints.router_url
        for a in node.roster.directory.active_agencies()
        if a.country == node.country
    }


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def build_app(parts: Parts) -> FastAPI:
    app = FastAPI(title="NRM console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    base, cases, oversight = Pages(parts), CasePages(parts), OversightPages(parts)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.to, status_code=303)

    @app.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused) -> Response:
        return base.render(request, "error.html", None, exc.status, message=exc.message)

    routes: list[tuple[str, str, Callable[..., Awaitable[Response]]]] = [
        ("GET", "/", base.home),
        ("GET", "/sign-in", base.sign_in_page),
        ("POST", "/sign-in", base.sign_in),
        ("POST", "/sign-out", base.sign_out),
        ("GET", "/inbox", cases.inbox),
        ("GET", "/cases/new", cases.new_case),
        ("POST", "/cases", cases.screen_case),
        ("GET", "/cases/{case}", cases.case),
        ("GET", "/cases/{case}/events/new", cases.new_event),
        ("POST", "/cases/{case}/events", cases.record_event),
        ("GET", "/oversight", oversight.nodes),
        ("POST", "/oversight/verify", oversight.verify_now),
        ("GET", "/oversight/exchanges", oversight.exchanges),
        ("GET", "/oversight/decisions", oversight.decisions),
        ("GET", "/oversight/referrals", oversight.referrals),
        ("GET", "/oversight/statistics", oversight.statistics),
        ("GET", "/oversight/statistics.csv", oversight.statistics_csv),
        ("GET", "/oversight/charts/{name}", oversight.chart),
        ("GET", "/oversight/proof", oversight.proof),
    ]
    for method, path, handler in routes:
        app.add_api_route(path, handler, methods=[method], response_class=HTMLResponse)
    return app
