"""The oversight body's pages: every node's verdict over time, exchanges, decisions by
officer (R7), referrals per agency (R8), statistics with small cells suppressed, and the
raw material for the browser's own proof check (`static/proof.js`). Only for nodes of
agencies with the `oversight` role."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from contracts.directory import TrustAnchor, b64url_decode
from contracts.problems import MEDIA_TYPE, problem
from contracts.statistics import charts, compute, figures_csv, victim_charts
from referral_router.console.oversight import OversightWatch, Snapshot, Unreachable
from referral_router.console.oversight_figures import (
    decisions,
    decisions_by_officer,
    exchange_rows,
    referrals_by_agency,
)
from referral_router.console.pages import PageRefused, Pages, Redirect
from referral_router.console.settings import PREFIX


class OversightPages(Pages):
    def _oversight_only(self) -> None:
        if not self.parts.oversight:
            raise PageRefused("the oversight view is for oversight bodies' nodes", 404)

    @property
    def watch(self) -> OversightWatch:
        assert self.parts.watch is not None  # pages check `_oversight_only` first
        return self.parts.watch

    async def _snapshot(self) -> Snapshot:
        return self.watch.latest or await self.watch.verify()

    async def nodes(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        return self.render(
            request,
            "oversight.html",
            session,
            snapshot=snapshot,
            history=self.watch.history(),
            anchor_fingerprint=_fingerprint(self.parts.settings.anchor),
        )

    async def verify_now(self, request: Request) -> Response:
        session_id, session = self._signed_in(request)
        self._oversight_only()
        await self._posted(request, session)
        snapshot = await self.watch.verify()
        failed = [v.agency for v in snapshot.verdicts if not v.ok]
        self.parts.book.flash(
            session_id,
            f"Verified {len(snapshot.verdicts)} node(s): "
            + (f"FAILED: {', '.join(failed)}" if failed else "all OK"),
        )
        raise Redirect(f"{PREFIX}/oversight")

    async def exchanges(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        rows = exchange_rows(snapshot.verified, snapshot.checked_at, self.watch.settings.grace)
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
            anchor_fingerprint=_fingerprint(self.parts.settings.anchor),
        )

    async def referrals(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        rows = referrals_by_agency(snapshot.envelopes(), self.node.clock())
        return self.render(request, "referrals.html", session, snapshot=snapshot, rows=rows)

    def _figures(self, snapshot: Snapshot) -> dict[str, Any]:
        roles = {a.id: str(a.roles[0]) for a in self.node.roster.directory.agencies}
        return compute(snapshot.envelopes(), roles)

    async def _published(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
        """The figures from verified logs, the victim statistics each competent authority
        publishes, and every chart of both (file name -> SVG)."""
        figures = self._figures(await self._snapshot())
        victims = await self.watch.victim_statistics()
        svgs = charts(figures)
        for agency, published in victims.items():
            if "unavailable" not in published:
                svgs.update({f"{agency}-{n}": v for n, v in victim_charts(published).items()})
        return figures, victims, svgs

    async def statistics(self, request: Request) -> Response:
        _, session = self._signed_in(request)
        self._oversight_only()
        snapshot = await self._snapshot()
        figures, victims, svgs = await self._published()
        return self.render(
            request,
            "statistics.html",
            session,
            snapshot=snapshot,
            figures=figures,
            victims=victims,
            charts=sorted(svgs),
        )

    async def statistics_csv(self, request: Request) -> Response:
        self._signed_in(request)
        self._oversight_only()
        figures, victims, _ = await self._published()
        return Response(
            figures_csv({**figures, "victims": victims}),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
        )

    async def chart(self, request: Request, name: str) -> Response:
        self._signed_in(request)
        self._oversight_only()
        _, _, svgs = await self._published()
        if name not in svgs:
            raise PageRefused("no such chart", 404)
        headers = {}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(svgs[name], media_type="image/svg+xml", headers=headers)

    async def proof(self, request: Request) -> Response:
        """The raw material of one event's inclusion proof, for the page to check (JSON,
        errors as the bus's problem bodies)."""
        if self._session(request) is None:
            return _problem("unauthenticated", "sign in to the console first")
        if not self.parts.oversight:
            return _problem("not-found", "this node is not an oversight body's")
        agency = request.query_params.get("agency", "")
        event_id = request.query_params.get("event_id", "")
        if not agency or not event_id or len(event_id) > 64:
            return _problem("invalid-request", "give agency and event_id (at most 64 characters)")
        try:
            material = await self.watch.proof_material(agency, event_id)
        except LookupError as exc:
            return _problem("not-found", str(exc))
        except (Unreachable, KeyError, ValueError, TypeError) as exc:
            return _problem("unavailable", str(exc))
        return JSONResponse(material)


def _problem(error: str, detail: str) -> Response:
    found = problem(error, detail)
    return JSONResponse(
        found.body(), status_code=found.status, headers=found.headers(), media_type=MEDIA_TYPE
    )


def _fingerprint(anchor: TrustAnchor | None) -> str | None:
    """What an officer compares with the anchor fingerprint the registry publishes."""
    if anchor is None:
        return None
    digest = hashlib.sha256(b64url_decode(anchor.public_key)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))
