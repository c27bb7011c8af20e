"""The agency's pages: its inbox, each case as this agency may see it, and the forms
that record events through `AgencyNode.submit`, the API's own path (same validation, same
rules, the API's refusal in the API's words). Officer fields come from the session (R7)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from contracts.events import CATALOGUE
from contracts.problems import Problem, problem_of
from referral_router.console.casework import deadlines, parties, shown_fields
from referral_router.console.forms import (
    EventForm,
    FieldError,
    field_names,
    form_for,
    payload_of,
    validate,
)
from referral_router.console.officers import Session
from referral_router.console.pages import PageRefused, Pages, Redirect
from referral_router.console.settings import PREFIX
from referral_router.rules.lifecycle import UnknownCase
from referral_router.sending.node import Submission
from referral_router.sending.problems import SUBMISSION_PROBLEMS


class CasePages(Pages):
    async def inbox(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        referrals = await run_in_threadpool(self.parts.inbox.referrals)
        received = await run_in_threadpool(self.parts.inbox.received)
        return self.render(request, "inbox.html", session, referrals=referrals, received=received)

    async def case(self, request: Request, case: str) -> Response:
        _, session = self._signed_in(request)
        try:
            view = await run_in_threadpool(self.node.case_view, case)
        except UnknownCase:
            raise PageRefused("this node holds no such case", 404) from None
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
            may_record=self.parts.may_record(),
        )

    async def new_case(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        if not self.parts.may_screen:
            raise PageRefused("this agency's role does not open cases (case.screened)")
        return self._event_page(request, session, form_for("case.screened"), None)

    async def new_event(self, request: Request, case: str) -> Response:
        _, session = self._signed_in(request)
        event_type = request.query_params.get("type", "")
        if event_type not in CATALOGUE or event_type in ("case.screened", "case.escalated"):
            raise PageRefused("choose an event type from the case page", 404)
        view = await run_in_threadpool(self._case_view_or_none, case)
        if view is None:
            raise PageRefused("this node holds no such case", 404)
        values: dict[str, list[str]] = {}
        referral = request.query_params.get("referral")
        if referral and event_type in ("referral.accepted", "referral.declined"):
            values["referral_id"] = [referral]
            asked = next((r for r in view["referrals"] if r["referral_id"] == referral), None)
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
        if not self.parts.may_screen:
            raise PageRefused("this agency's role does not open cases (case.screened)")
        data = await self._posted(request, session)
        return await self._submit(request, session_id, session, "case.screened", None, data)

    async def record_event(self, request: Request, case: str) -> Response:
        session_id, session = self._signed_in(request)
        data = await self._posted(request, session)
        event_type = (data.get("type") or [""])[0]
        if event_type not in CATALOGUE or event_type in ("case.screened", "case.escalated"):
            raise PageRefused("unknown event type", 422)
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
            raise PageRefused("this node holds no such case", 404) from None
        except tuple(SUBMISSION_PROBLEMS) as exc:  # the API's own refusal, word for word
            refused = problem_of(exc, SUBMISSION_PROBLEMS)
            return again(refused.status, refused)
        body = receipt.body
        self.parts.book.flash(
            session_id,
            f"Recorded {body['type']}, sent to {', '.join(body['recipients'])}, under "
            f"officer {session.officer.id}.",
        )
        raise Redirect(f"{PREFIX}/cases/{body['case']}")
