"""What every page of the console shares: the parts it works with, the signed-in
session, checked form posts, rendering, and signing in and out.

A page needs a signed-in officer, except signing in. Sessions are looked up on every
request (a disabled officer is out at once); every post must come from this console
(`Origin`) and carry the session's CSRF token (the sign-in form: a token bound to a nonce
cookie). Nothing a page renders comes from its query string but what it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from contracts.authority import may_emit
from contracts.events import CATALOGUE
from contracts.vocabulary import Role
from referral_router.console.casework import Inbox
from referral_router.console.officers import OfficerBook, Session, SignInRefused
from referral_router.console.oversight import OversightWatch
from referral_router.console.sessions import CookieSeal, new_secret, same_token
from referral_router.console.settings import PREFIX, ConsoleSettings
from referral_router.sending.node import AgencyNode

#: Event types the console never offers in "record an event": opened by the screening
#: form, answered from the referral itself, or raised by the notifier (R8).
NOT_RECORDED_HERE = frozenset(
    {"case.screened", "referral.accepted", "referral.declined", "case.escalated"}
)


class Redirect(Exception):
    def __init__(self, to: str) -> None:
        self.to = to


class PageRefused(Exception):
    """A page that cannot be shown (or a post that cannot be taken), with its status."""

    def __init__(self, message: str, status: int = 403) -> None:
        self.message = message
        self.status = status


@dataclass
class Parts:
    """What the pages work with; templates see it as `console`."""

    node: AgencyNode
    settings: ConsoleSettings
    book: OfficerBook
    seal: CookieSeal
    inbox: Inbox
    watch: OversightWatch | None
    templates: Jinja2Templates

    @property
    def oversight(self) -> bool:
        record = self.node.roster.directory.agency(self.node.agency_id)
        return self.watch is not None and record is not None and Role.OVERSIGHT in record.roles

    @property
    def agency_name(self) -> str:
        record = self.node.roster.directory.agency(self.node.agency_id)
        return record.name if record else self.node.agency_id

    def may_record(self) -> list[str]:
        """The event types the agency's roles may emit (`contracts.authority`)."""
        roles = self.node.roster.roles_of(self.node.agency_id)
        return [t for t in CATALOGUE if t not in NOT_RECORDED_HERE and may_emit(roles, t)]

    @property
    def may_screen(self) -> bool:
        return may_emit(self.node.roster.roles_of(self.node.agency_id), "case.screened")


class Pages:
    """The plumbing every group of pages shares, and signing in and out."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.node = parts.node

    def _secure(self, request: Request) -> bool:
        return self.parts.settings.secure_cookies or request.url.scheme == "https"

    def _session(self, request: Request) -> tuple[str, Session] | None:
        names = self.parts.seal.names(self._secure(request))
        session_id = self.parts.seal.open_session(request.cookies.get(names.session))
        session = self.parts.book.session(session_id) if session_id else None
        return (session_id, session) if session_id and session else None

    def _signed_in(self, request: Request) -> tuple[str, Session]:
        found = self._session(request)
        if found is None:
            raise Redirect(f"{PREFIX}/sign-in")
        return found

    async def _posted(self, request: Request, session: Session | None) -> dict[str, list[str]]:
        """The posted form, once its origin and CSRF token are checked."""
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise PageRefused("this form was not sent from this console")
        form = await request.form()
        data = {k: [str(v) for v in form.getlist(k)] for k in form}
        if session is not None and not same_token(session.csrf, (data.get("csrf") or [None])[0]):
            raise PageRefused(
                "this form has expired or did not come from this console: reload the page"
            )
        return data

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        flash = None
        found = self._session(request) if session is not None else None
        if found is not None and found[1].flash:
            flash = found[1].flash
            self.parts.book.flash(found[0], None)
        return self.parts.templates.TemplateResponse(
            request,
            template,
            {
                "console": self.parts,
                "session": session,
                "officer": session.officer if session else None,
                "csrf": session.csrf if session else "",
                "flash": flash,
                "prefix": PREFIX,
                "now": self.node.clock(),
                **context,
            },
            status_code=status,
        )

    # --- signing in ----------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        if self._session(request) is None:
            raise Redirect(f"{PREFIX}/sign-in")
        raise Redirect(f"{PREFIX}/oversight" if self.parts.oversight else f"{PREFIX}/inbox")

    async def sign_in_page(self, request: Request) -> Response:
        return self._sign_in_form(request)

    def _sign_in_form(
        self, request: Request, status: int = 200, error: str | None = None, retry: int = 0
    ) -> Response:
        nonce = new_secret()
        response = self.render(
            request,
            "sign_in.html",
            None,
            status,
            sign_in_token=self.parts.seal.sign_in_token(nonce),
            error=error,
        )
        if retry:
            response.headers["Retry-After"] = str(retry)
        names = self.parts.seal.names(self._secure(request))
        response.set_cookie(
            names.sign_in,
            nonce,
            max_age=1800,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path="/",
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        data = await self._posted(request, None)
        names = self.parts.seal.names(self._secure(request))
        token = (data.get("csrf") or [None])[0]
        if not self.parts.seal.sign_in_token_ok(request.cookies.get(names.sign_in), token):
            return self._sign_in_form(
                request, 403, "the sign-in form expired or was not sent from this console"
            )
        officer_id = (data.get("officer") or [""])[0].strip()[:64]
        password = (data.get("password") or [""])[0]
        client = request.client.host if request.client else "unknown"
        try:
            officer = await run_in_threadpool(self.parts.book.sign_in, officer_id, password, client)
        except SignInRefused as exc:
            return self._sign_in_form(request, exc.status, exc.message, exc.retry_after or 0)
        session_id = self.parts.book.open_session(officer)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            names.session,
            self.parts.seal.seal_session(session_id),
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path="/",
        )
        response.delete_cookie(names.sign_in, path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        session_id, session = self._signed_in(request)
        await self._posted(request, session)
        self.parts.book.close_session(session_id)
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(self.parts.seal.names(self._secure(request)).session, path="/")
        return response
