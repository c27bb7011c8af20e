"""The pure federation contract: what a registry may publish, and the border rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from contracts.directory import TrustAnchor
from contracts.federation import (
    BorderRefused,
    CounterpartGrant,
    FederationDocument,
    FederationSignatureInvalid,
    PeerFederation,
    check_inbound,
    check_outbound,
    sign_federation,
    verify_federation,
)
from contracts.restrictions import Restrictions
from contracts.vocabulary import DataCategory


def anchor(country: str, key: ed25519.Ed25519PrivateKey) -> TrustAnchor:
    return TrustAnchor.for_key(country, f"{country.lower()}-reg-1", key.public_key())


def federation(peer_key: ed25519.Ed25519PrivateKey) -> PeerFederation:
    return PeerFederation(
        peer="XA",
        anchor=anchor("XA", peer_key),
        registry_url="http://xa.example/registry",
        gateway_url="http://xa.example/gateway",
        peer_gateway="federation-xb",
        gateway="federation-xa",
        counterparts=(
            CounterpartGrant(
                agency="reintegration-office",
                event_types=("return.planning-started",),
                categories=(DataCategory.IDENTITY, DataCategory.HEALTH),
            ),
        ),
    )


@pytest.mark.parametrize("category", ["exploitation-account", "location", "operational"])
def test_never_across_a_border(category: str) -> None:
    with pytest.raises(ValidationError, match=r"never across|always travels"):
        CounterpartGrant(agency="ro", event_types=("return.completed",), categories=(category,))  # type: ignore[arg-type]


def test_only_return_events_are_federated() -> None:
    with pytest.raises(ValidationError, match="only return-planning"):
        CounterpartGrant(agency="ro", event_types=("case.screened",))


def test_signed_document_believed_only_with_its_anchor() -> None:
    xb_key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    doc = FederationDocument(
        country="XB",
        serial=3,
        issued_at=datetime.now(UTC),
        registry_key_id="xb-reg-1",
        peers=(federation(ed25519.Ed25519PrivateKey.generate()),),
    )
    signed = sign_federation(doc, xb_key)
    assert verify_federation(signed.to_bytes(), anchor("XB", xb_key)) == doc
    with pytest.raises(FederationSignatureInvalid):
        verify_federation(signed, anchor("XB", other))
    forged = sign_federation(doc, other)
    with pytest.raises(FederationSignatureInvalid):
        verify_federation(forged, anchor("XB", xb_key))


@pytest.mark.parametrize(
    ("restrictions", "assessed", "rule"),
    [
        (Restrictions(), False, "R4"),  # no risk assessment
        (Restrictions(no_origin_contact=True), True, "R4"),  # asylum, refugee or serious risk
        (Restrictions(presumed_child=True, guardian_appointed=True), True, "R2"),
        (Restrictions(no_return=True), True, "R2"),  # return against the child's interests
    ],
)
def test_outbound_rules(restrictions: Restrictions, assessed: bool, rule: str) -> None:
    with pytest.raises(BorderRefused) as refused:
        check_outbound("return.planning-started", restrictions, assessed)
    assert refused.value.rule == rule


def test_outbound_allows_a_child_with_guardian_and_determination() -> None:
    child = Restrictions(
        presumed_child=True, guardian_appointed=True, best_interests_determined=True
    )
    check_outbound("return.planning-started", child, True)
    with pytest.raises(BorderRefused, match="not a return-planning"):
        check_outbound("case.screened", Restrictions(), True)
    with pytest.raises(BorderRefused, match="no contact with the country of origin"):
        check_outbound("return.completed", Restrictions(no_origin_contact=True), True)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"forwarder": "someone-else"}, "FEDERATION"),
        ({"recipient": "xb-rapporteur"}, "FEDERATION"),
        ({"source_country": "XC"}, "FEDERATION"),
        ({"wrapped": {DataCategory.IDENTITY, DataCategory.SERVICE}}, "R5"),
        ({"restrictions": Restrictions(no_origin_contact=True)}, "R4"),
    ],
)
def test_inbound_rules(change: dict[str, object], rule: str) -> None:
    args: dict[str, object] = {
        "federation": federation(ed25519.Ed25519PrivateKey.generate()),
        "event_type": "return.planning-started",
        "source_country": "XA",
        "forwarder": "federation-xb",
        "recipient": "reintegration-office",
        "restrictions": Restrictions(),
        "wrapped": {DataCategory.IDENTITY},
    }
    check_inbound(**args)  # type: ignore[arg-type]
    with pytest.raises(BorderRefused) as refused:
        check_inbound(**{**args, **change})  # type: ignore[arg-type]
    assert refused.value.rule == rule
