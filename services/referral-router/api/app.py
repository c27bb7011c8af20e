"""A node's HTTP app: the cases routes, health, and (with an audit log) oversight."""

from __future__ import annotations

from fastapi import FastAPI

from contracts import openapi_auth
from contracts.vocabulary import Role
from referral_router import telemetry
from referral_router.api.auth import Authenticator
from referral_router.api.cases import cases
from referral_router.api.disclosures import PeerParts, disclosures
from referral_router.api.errors import install_error_handlers
from referral_router.api.health import health
from referral_router.api.log_stream import OpenStreams, log_stream
from referral_router.api.oversight import oversight_router
from referral_router.api.shedding import Shedding
from referral_router.audit.log import AuditLog
from referral_router.audit.victim_statistics import publish
from referral_router.sending.intake import Intake
from referral_router.sending.node import AgencyNode
from referral_router.sending.passing_on import Forwarder
from referral_router.store.feed import LogFeed
from referral_router.store.thread import StoreThread


def create_app(
    node: AgencyNode,
    check_token: Authenticator,
    audit: AuditLog | None = None,
    public_url: str | None = None,
    intake: Intake | None = None,
    feed: LogFeed | None = None,
    notifier: tuple[str, Authenticator] | None = None,
    forwarder: Forwarder | None = None,
    peer_parts: PeerParts | None = None,
) -> FastAPI:
    """`public_url`: the base URL clients use, when a proxy stands in front (DPoP proofs
    name the URL the client called); `intake` takes commands (one of its own if None),
    `feed` lets log readers wait for new entries (without one they page the store only).
    `notifier`: its id and the check of its scoped tokens (it may read the log, append
    escalations and order erasures when a retention period ends). `forwarder`: the
    node's sealing, which passes cases on (R10); `peer_parts`: how this node asks the
    others for their part of a disclosure record."""
    app = FastAPI(
        title=f"NRM referral router ({node.agency_id})",
        version="1",
        description="An agency's node on the NRM referral bus.",
        telemetry=telemetry.FRAMEWORK_TELEMETRY_OFF,
    )
    app.state.node = node
    app.state.intake = intake = intake or Intake(node, StoreThread(node.agency_id))
    app.state.feed = feed
    app.state.log_streams = OpenStreams()
    app.state.forwarder = forwarder
    app.state.peer_parts = peer_parts
    app.state.check_token = check_token
    app.state.public_url = public_url
    if notifier is not None:  # its service identity: scoped tokens (api/auth.py)
        app.state.notifier_id, app.state.check_notifier = notifier
    app.state.directory = lambda: node.roster.directory
    app.include_router(cases)
    app.include_router(log_stream)
    app.include_router(disclosures)
    app.include_router(health)
    if audit is not None:  # the node's verifiable log, for oversight bodies (R7)
        app.state.audit = audit
        app.state.victim_statistics = lambda: publish(
            node.store,
            node.sealer,
            authority=Role.COMPETENT_AUTHORITY in node.roster.roles_of(node.agency_id),
        )
        app.include_router(oversight_router)
    install_error_handlers(app)
    app.add_middleware(Shedding, intake=intake)
    openapi_auth.install(app)
    return app
