"""The web console a node serves under /console: officers sign in, work their agency's
inbox, record lifecycle events; an oversight body's officers also audit every node.

Server-rendered pages (Jinja2, autoescaped) and two small static files; no build step and
nothing fetched from elsewhere at run time. It runs inside the node, where the agency's
keys are, so opened fields never leave the node except to the signed-in officer's page.
Every event goes through `AgencyNode.submit`, the API's own path, so the same rules give
the same refusals; the officer fields come from the session, never from the form (R7).

Privacy in the browser: URLs carry only random case pseudonyms and event ids, page titles
only the page's kind, the only cookie is a signed random session id, pages are sent with
`Cache-Control: no-store`, and the scripts use no web storage.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from contracts.directory import TrustAnchor, b64url_decode
from contracts.events import CATALOGUE
from contracts.problems import Problem, problem_of
from contracts.statistics import charts, compute, figures_csv
from contracts.vocabulary import Role
from referral_router.console.casework import Inbox, deadlines, parties, shown_fields
from referral_router.console.forms import (
    EventForm,
    FieldError,
    field_names,
    form_for,
    payload_of,
    validate,
)
from referral_router.console.officers import OfficerBook, Session, SignInPolicy, SignInRefused
from referral_router.console.oversight import OversightWatch, Unreachable, WatchSettings
from referral_router.console.oversight_figures import (
    decisions,
    decisions_by_officer,
    exchange_rows,
    referrals_by_agency,
)
from referral_router.console.sessions import CookieSeal, new_secret, same_token
from referral_router.rules.lifecycle import EMITTERS, UnknownCase
from referral_router.sending.node import AgencyNode, Submission
from referral_router.sending.problems import SUBMISSION_PROBLEMS

HERE = Path(__file__).parent
PREFIX = "/console"
#: Event types the console never offers in "record an event": opened by the screening
#: form, answered from the referral itself, or raised by the notifier (R8).
NOT_RECORDED_HERE = frozenset(
    {"case.screened", "referral.accepted", "referral.declined", "case.escalated"}
)
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


@dataclass(frozen=True)
class ConsoleSettings:
    """How a node serves its console. `book_path` holds officers, sessions and (for an
    oversight body) verdict history; `peers` are the nodes an oversight body watches
    (default: every agency's router URL in the directory)."""

    book_path: Path
    peers: Callable[[], Mapping[str, str]] | None = None
    peer_audience: str = "nrm-router:{agency}"
    registry_url: str | None = None
    anchor: TrustAnchor | None = None
    verify_interval: float = 300.0
    secure_cookies: bool = False  # also set when a request arrives over https
    policy: SignInPolicy = field(default_factory=SignInPolicy)


class Redirect(Exception):
    def __init__(self, to: str) -> None:
        self.to = to


class Forbidden(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        self.message = message
        self.status = status


class Console:
    """One node's console: its officer book, inbox index, oversight watch and web app."""

    def __init__(
        self,
        node: AgencyNode,
        settings: ConsoleSettings,
        master_key: bytes,
        token_for: Callable[[str], str] | None = None,
    ) -> None:
        self.node = node
        self.settings = settings
        self.book = OfficerBook(settings.book_path, policy=settings.policy)
        self.seal = CookieSeal(node.agency_id, master_key)
        self.inbox = Inbox(node)
        self.watch = (
            OversightWatch(
                settings.book_path,
                lambda: node.roster.directory,
                WatchSettings(
                    peers=settings.peers or self._directory_peers,
                    token=token_for,
                    registry_url=settings.registry_url,
                    anchor=settings.anchor,
                ),
            )
            if token_for is not None
            else None
        )
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = _when
        self.app = build_app(self)

    def _directory_peers(self) -> dict[str, str]:
        return {
            a.id: a.endpoints.router_url
            for a in self.node.roster.directory.active_agencies()
            if a.country == self.node.country
        }

    @property
    def oversight(self) -> bool:
        record = self.node.roster.directory.agency(self.node.agency_id)
        return self.watch is not None and record is not None and Role.OVERSIGHT in record.roles

    @property
    def agency_name(self) -> str:
        record = self.node.roster.directory.agency(self.node.agency_id)
        return record.name if record else self.node.agency_id

    def may_record(self) -> list[str]:
        role = self.node.roster.role(self.node.agency_id)
        return [
            t
            for t in CATALOGUE
            if t not in NOT_RECORDED_HERE and (t not in EMITTERS or role in EMITTERS[t])
        ]

    @property
    def may_screen(self) -> bool:
        return self.node.roster.role(self.node.agency_id) in EMITTERS["case.screened"]

    async def run(self, stop: Any) -> None:
        if self.watch is not None and self.oversight:
            await self.watch.run(self.settings.verify_interval, stop)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
        self.book.close()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


# --- the app -------------------------------------------------------------------------


def build_app(console: Console) -> FastAPI:
    app = FastAPI(title="NRM console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    pages = _Pages(console)

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

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return pages.render(request, "error.html", None, exc.status, message=exc.message)

    routes: list[tuple[str, str, Callable[..., Awaitable[Response]]]] = [
        ("GET", "/", pages.home),
        ("GET", "/sign-in", pages.sign_in_form),
        ("POST", "/sign-in", pages.sign_in),
        ("POST", "/sign-out", pages.sign_out),
        ("GET", "/inbox", pages.inbox),
        ("GET", "/cases/new", pages.new_case),
        ("POST", "/cases", pages.screen_case),
        ("GET", "/cases/{case}", pages.case),
        ("GET", "/cases/{case}/events/new", pages.new_event),
        ("POST", "/cases/{case}/events", pages.record_event),
        ("GET", "/oversight", pages.oversight),
        ("POST", "/oversight/verify", pages.verify_now),
        ("GET", "/oversight/exchanges", pages.exchanges),
        ("GET", "/oversight/decisions", pages.decisions),
        ("GET", "/oversight/referrals", pages.referrals),
        ("GET", "/oversight/statistics", pages.statistics),
        ("GET", "/oversight/statistics.csv", pages.statistics_csv),
        ("GET", "/oversight/charts/{name}", pages.chart),
        ("GET", "/oversight/proof", pages.proof),
    ]
    for method, path, handler in routes:
        app.add_api_route(path, handler, methods=[method], response_class=HTMLResponse)
    return app


class _Pages:
    """The console's routes; each page needs a signed-in officer except sign-in itself."""

    def __init__(self, console: Console) -> None:
        self.c = console
        self.node = console.node

    # --- plumbing ------------------------------------------------------------------

    def _secure(self, request: Request) -> bool:
        return self.c.settings.secure_cookies or request.url.scheme == "https"

    def _session(self, request: Request) -> tuple[str, Session] | None:
        names = self.c.seal.names(self._secure(request))
        session_id = self.c.seal.open_session(request.cookies.get(names.session))
        session = self.c.book.session(session_id) if session_id else None
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
            raise Forbidden("this form was not sent from this console")
        form = await request.form()
        data = {k: [str(v) for v in form.getlist(k)] for k in form}
        if session is not None and not same_token(session.csrf, (data.get("csrf") or [None])[0]):
            raise Forbidden(
                "this form has expired or did not come from this console: reload the page"
            )
        return data

    def _oversight_only(self) -> None:
        if not self.c.oversight:
            raise Forbidden("the oversight view is for oversight bodies' nodes", 404)

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
            self.c.book.flash(found[0], None)
        return self.c.templates.TemplateResponse(
            request,
            template,
            {
                "console": self.c,
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
        raise Redirect(f"{PREFIX}/oversight" if self.c.oversight else f"{PREFIX}/inbox")

    async def sign_in_form(
        self, request: Request, status: int = 200, error: str | None = None, retry: int = 0
    ) -> Response:
        nonce = new_secret()
        response = self.render(
            request,
            "sign_in.html",
            None,
            status,
            sign_in_token=self.c.seal.sign_in_token(nonce),
            error=error,
        )
        if retry:
            response.headers["Retry-After"] = str(retry)
        names = self.c.seal.names(self._secure(request))
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
        names = self.c.seal.names(self._secure(request))
        token = (data.get("csrf") or [None])[0]
        if not self.c.seal.sign_in_token_ok(request.cookies.get(names.sign_in), token):
            return await self.sign_in_form(
                request, 403, "the sign-in form expired or was not sent from this console"
            )
        officer_id = (data.get("officer") or [""])[0].strip()[:64]
        password = (data.get("password") or [""])[0]
        client = request.client.host if request.client else "unknown"
        try:
            officer = await run_in_threadpool(self.c.book.sign_in, officer_id, password, client)
        except SignInRefused as exc:
            return await self.sign_in_form(request, exc.status, exc.message, exc.retry_after or 0)
        session_id = self.c.book.open_session(officer)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            names.session,
            self.c.seal.seal_session(session_id),
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
        self.c.book.close_session(session_id)
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(self.c.seal.names(self._secure(request)).session, path="/")
        return response

    # --- inbox and cases -----------------------------------------------------------

    async def inbox(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        referrals = await run_in_threadpool(self.c.inbox.referrals)
        received = await run_in_threadpool(self.c.inbox.received)
        return self.render(request, "inbox.html", session, referrals=referrals, received=received)

    async def case(self, request: Request, case: str) -> Response:
        _, session = self._signed_in(request)
        try:
            view = await run_in_threadpool(self.node.case_view, case)
        except UnknownCase:
            raise Forbidden("this node holds no such case", 404) from None
        events = [
            {**ev, "shown": shown_fields(ev, form_for(ev["type"]).labels)} for ev in view["events"]
        ]
        return self.render(
            request,
            "case.html",
            session,
            case=case,
            view=view,
            events=events,
            deadlines=deadlines(view, self.node.clock()),
            escalations=[e for e in view["events"] if e["type"] == "case.escalated"],
            parties=parties(view, self.node.agency_id),
            may_record=self.c.may_record(),
        )

    async def new_case(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        if not self.c.may_screen:
            raise Forbidden("this agency's role does not open cases (case.screened)")
        return self._event_page(request, session, form_for("case.screened"), None)

    async def new_event(self, request: Request, case: str) -> Response:
        _, session = self._signed_in(request)
        event_type = request.query_params.get("type", "")
        if event_type not in CATALOGUE or event_type in ("case.screened", "case.escalated"):
            raise Forbidden("choose an event type from the case page", 404)
        values: dict[str, list[str]] = {}
        referral = request.query_params.get("referral")
        if referral and event_type in ("referral.accepted", "referral.declined"):
            values["referral_id"] = [referral]
            view = await run_in_threadpool(self._case_view_or_none, case)
            asked = next(
                (r for r in (view or {}).get("referrals", []) if r["referral_id"] == referral),
                None,
            )
            if asked is not None:
                values["recipients"] = [asked["from_agency"]]
        return self._event_page(request, session, form_for(event_type), case, values=values)

    def _case_view_or_none(self, case: str) -> dict[str, Any] | None:
        try:
            return self.node.case_view(case)
        except UnknownCase:
            return None

    def _event_page(
        self,
        request: Request,
        session: Session,
        form: EventForm,
        case: str | None,
        status: int = 200,
        values: Mapping[str, list[str]] | None = None,
        errors: list[FieldError] | None = None,
        refusal: Problem | None = None,
    ) -> Response:
        errors = errors or []
        known = field_names(form) | {"recipients"}
        agencies = [
            a for a in self.node.roster.directory.active_agencies() if a.id != self.node.agency_id
        ]
        return self.render(
            request,
            "event_form.html",
            session,
            status,
            form=form,
            case=case,
            values=values or {},
            errors={e.name: e.message for e in errors if e.name in known},
            form_errors=[e for e in errors if e.name not in known],
            all_errors=errors,
            refusal=refusal,
            agencies=agencies,
            form_key=secrets.token_urlsafe(16),
        )

    async def screen_case(self, request: Request) -> Response:
        session_id, session = self._signed_in(request)
        if not self.c.may_screen:
            raise Forbidden("this agency's role does not open cases (case.screened)")
        data = await self._posted(request, session)
        return await self._submit(request, session_id, session, "case.screened", None, data)

    async def record_event(self, request: Request, case: str) -> Response:
        session_id, session = self._signed_in(request)
        data = await self._posted(request, session)
        event_type = (data.get("type") or [""])[0]
        if event_type not in CATALOGUE or event_type in ("case.screened", "case.escalated"):
            raise Forbidden("unknown event type", 422)
        return await self._submit(request, session_id, session, event_type, case, data)

    async def _submit(
        self,
        request: Request,
        session_id: str,
        session: Session,
        event_type: str,
        case: str | None,
        data: dict[str, list[str]],
    ) -> Response:
        form = form_for(event_type)
        payload, errors = payload_of(form, data, session.officer.id)
        recipients = [r for r in data.get("recipients", []) if r]
        to = payload.get("to_agency")
        if event_type == "referral.requested" and isinstance(to, str) and to not in recipients:
            recipients.append(to)  # the referred agency is always told
        model, invalid = validate(event_type, payload)
        errors += invalid
        if not recipients:
            errors.append(FieldError("recipients", "Choose at least one agency to send it to"))

        def again(status: int, refusal: Problem | None = None) -> Response:
            return self._event_page(
                request, session, form, case, status, data, errors, refusal=refusal
            )

        if errors or model is None:
            return again(422)
        key = f"console:{session.officer.id}:{(data.get('form_key') or [''])[0][:64]}"
        submission = Submission(event_type, model, tuple(recipients), case)
        try:
            receipt = await run_in_threadpool(self.node.submit, submission, key)
        except UnknownCase:
            raise Forbidden("this node holds no such case", 404) from None
        except tuple(SUBMISSION_PROBLEMS) as exc:  # the API's own refusal, word for word
            refused = problem_of(exc, SUBMISSION_PROBLEMS)
            return again(refused.status, refused)
        body = receipt.body
        self.c.book.flash(
            session_id,
            f"Recorded {body['type']}, sent to {', '.join(body['recipients'])}, under "
            f"officer {session.officer.id}.",
        )
        raise Redirect(f"{PREFIX}/cases/{body['case']}")

    # --- oversight -----------------------------------------------------------------

    async def _snapshot(self) -> Any:
        assert self.c.watch is not None
        return self.c.watch.latest or await self.c.watch.verify()

    async def oversight(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        assert self.c.watch is not None
        snapshot = await self._snapshot()
        return self.render(
            request,
            "oversight.html",
            session,
            snapshot=snapshot,
            history=self.c.watch.history(),
            anchor_fingerprint=_fingerprint(self.c.settings.anchor),
        )

    async def verify_now(self, request: Request) -> Response:
        session_id, session = self._signed_in(request)
        self._oversight_only()
        await self._posted(request, session)
        assert self.c.watch is not None
        snapshot = await self.c.watch.verify()
        failed = [v.agency for v in snapshot.verdicts if not v.ok]
        self.c.book.flash(
            session_id,
            f"Verified {len(snapshot.verdicts)} node(s): "
            + (f"FAILED: {', '.join(failed)}" if failed else "all OK"),
        )
        raise Redirect(f"{PREFIX}/oversight")

    async def exchanges(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        assert self.c.watch is not None
        snapshot = await self._snapshot()
        rows = exchange_rows(snapshot.verified, snapshot.checked_at, self.c.watch.settings.grace)
        left_out = sorted(v.agency for v in snapshot.verdicts if not v.ok)
        return self.render(
            request, "exchanges.html", session, snapshot=snapshot, rows=rows, left_out=left_out
        )

    async def decisions(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        found = decisions(snapshot.envelopes())
        where = {
            e.event_id: a
            for a, r in sorted(snapshot.verified.items())
            for e in r.leaves
            if e.envelope is not None and e.envelope.get("sender") == a
        }
        return self.render(
            request,
            "decisions.html",
            session,
            snapshot=snapshot,
            by_officer=decisions_by_officer(found),
            latest=found[:50],
            logged_at=where,
            anchor_fingerprint=_fingerprint(self.c.settings.anchor),
        )

    async def referrals(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        rows = referrals_by_agency(snapshot.envelopes(), self.node.clock())
        return self.render(request, "referrals.html", session, snapshot=snapshot, rows=rows)

    def _figures(self, snapshot: Any) -> dict[str, Any]:
        roles = {a.id: str(a.roles[0]) for a in self.node.roster.directory.agencies}
        return compute(snapshot.envelopes(), roles)

    async def statistics(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        figures = self._figures(snapshot)
        return self.render(
            request,
            "statistics.html",
            session,
            snapshot=snapshot,
            figures=figures,
            charts=sorted(charts(figures)),
        )

    async def statistics_csv(self, request: Request) -> Response:
        self._signed_in(request)
        self._oversight_only()
        figures = self._figures(await self._snapshot())
        return Response(
            figures_csv(figures),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
        )

    async def chart(self, request: Request, name: str) -> Response:
        self._signed_in(request)
        self._oversight_only()
        svgs = charts(self._figures(await self._snapshot()))
        if name not in svgs:
            raise Forbidden("no such chart", 404)
        headers = {}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(svgs[name], media_type="image/svg+xml", headers=headers)

    async def proof(self, request: Request) -> Response:
        if self._session(request) is None:
            return JSONResponse({"error": "unauthenticated", "detail": "sign in"}, 401)
        if not self.c.oversight or self.c.watch is None:
            return JSONResponse({"error": "not-found", "detail": "not an oversight node"}, 404)
        agency = request.query_params.get("agency", "")
        event_id = request.query_params.get("event_id", "")
        if not agency or not event_id or len(event_id) > 64:
            return JSONResponse({"error": "invalid-request", "detail": "agency and event_id"}, 422)
        try:
            material = await self.c.watch.proof_material(agency, event_id)
        except LookupError as exc:
            return JSONResponse({"error": "not-found", "detail": str(exc)}, 404)
        except (Unreachable, KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": "unavailable", "detail": str(exc)}, 502)
        return JSONResponse(material)


def _fingerprint(anchor: TrustAnchor | None) -> str | None:
    """What an officer compares with the anchor fingerprint the registry publishes."""
    if anchor is None:
        return None
    digest = hashlib.sha256(b64url_decode(anchor.public_key)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))
