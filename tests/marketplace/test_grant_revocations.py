"""Revoking paid access: a provider asks, an officer decides with a refund decision (full, pro-rata
or none) or declines; a suspended grant is reinstated or revoked by an officer. Every check goes
through the HTTP API and reads balances back from the wallet endpoints and the ledger."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from compliance.models import AuditEvent
from marketplace.models import (
    AccessGrant,
    GrantRevocationRequest,
    LedgerEntry,
    LedgerTransaction,
    Membership,
    Trade,
    Wallet,
)
from marketplace.services.grant_revocations import grant_suspend
from marketplace.services.ledger import ledger_refund_split
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import MembershipFactory, OrganisationFactory, fund

pytestmark = pytest.mark.django_db

REQUESTS = "/api/v1/revocation-requests/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ELEMENTA_PLATFORM_FEE = Decimal("0.05")


@pytest.fixture
def buyer(db: None) -> Membership:
    membership = MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Thin Wallet Ltd", jurisdiction="DE"), role="buyer", funded=False
    )
    fund(membership.organisation, "150.00", ("EUR",))
    return membership


@pytest.fixture
def stranger(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Other Buyer", jurisdiction="DE"), role=Membership.Role.BUYER
    )


@pytest.fixture
def other_provider(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Other Provider", jurisdiction="DE"), role=Membership.Role.PROVIDER
    )


def paid_grant(
    client_for, provider: Membership, buyer: Membership, dataset, *, term_days: int | None = 30
) -> AccessGrant:
    """Buyer pays 100.00 EUR over HTTP (escrow), the trade is approved and settled (provider 95.00,
    platform 5.00), with a file to download."""
    dataset.licence = {"term_days": term_days} if term_days else {}
    dataset.save()
    client_for(provider).post(
        f"/api/v1/datasets/{dataset.id}/files/", {"file": SimpleUploadedFile("a.csv", b"id\n1\n")}, format="multipart"
    )
    bought = client_for(buyer).post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json")
    assert bought.status_code == 201, bought.json()
    trade_transition(trade_id=bought.json()["id"], to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=bought.json()["id"])
    return AccessGrant.objects.get(trade_id=bought.json()["id"])


def balances(client) -> dict[str, tuple[str, str]]:
    return {b["currency"]: (b["available"], b["held"]) for b in client.get("/api/v1/wallet/").json()["balances"]}


def revenue(client) -> str:
    return {p["currency"]: p for p in client.get("/api/v1/wallet/platform/").json()}["EUR"]["revenue"]


def total(entries) -> Decimal:
    # Summed in Python: SQLite's SUM works in binary floating point.
    return sum(entries.values_list("amount", flat=True), Decimal(0))


def assert_ledger_consistent() -> None:
    """Every transaction balances, the whole ledger sums to zero, wallets agree with their entries
    and none is negative."""
    for txn in LedgerTransaction.objects.all():
        assert total(txn.entries) == 0, txn
    assert total(LedgerEntry.objects) == 0
    for wallet in Wallet.objects.all():
        assert (wallet.available, wallet.held) == (
            total(wallet.entries.filter(account="available")),
            total(wallet.entries.filter(account="held")),
        )
        assert wallet.available >= 0 and wallet.held >= 0


def set_term(grant: AccessGrant, *, started_days_ago: int, ends_in_days: int) -> None:
    now = timezone.now()
    AccessGrant.objects.filter(pk=grant.pk).update(
        valid_from=now - timedelta(days=started_days_ago), valid_until=now + timedelta(days=ends_in_days)
    )


# --- a provider asks; the buyer sees; an officer decides ----------------------------------------


def test_a_provider_request_leaves_access_open_and_an_officer_refunds_in_full(
    client_for, provider_eu, buyer, officer, stranger, other_provider, eu_personal,
):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    provider, buyer_api, api = client_for(provider_eu), client_for(buyer), client_for(officer)

    asked = provider.post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "licence breach: resold to a third party"}, format="json"
    )

    assert asked.status_code == 202, asked.json()
    request_id = asked.json()["id"]
    assert (asked.json()["status"], asked.json()["grant_status"]) == ("pending", "active")
    assert buyer_api.get(f"/api/v1/grants/{grant.id}/download/").status_code == 200  # nothing changed yet
    assert [r["id"] for r in buyer_api.get(REQUESTS).json()["results"]] == [request_id]
    assert buyer_api.get(f"{REQUESTS}{request_id}/").json()["reason"] == "licence breach: resold to a third party"
    assert buyer_api.get(f"/api/v1/grants/{grant.id}/").json()["revocation_requests"][0]["status"] == "pending"
    assert [r["id"] for r in buyer_api.get(f"/api/v1/trades/{grant.trade_id}/").json()["revocation_requests"]] == [
        request_id
    ]
    twice = provider.post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "again"}, format="json")
    assert twice.status_code == 409 and twice.json()["code"] == "revocation_request_pending"
    assert AuditEvent.objects.get(kind="grant.revocation_requested").actor_label == provider_eu.user.username

    # Other tenants see nothing and cannot act; the parties cannot decide.
    assert client_for(stranger).get(REQUESTS).json()["count"] == 0
    assert client_for(stranger).get(f"{REQUESTS}{request_id}/").status_code == 404
    assert client_for(other_provider).get(f"{REQUESTS}{request_id}/").status_code == 404
    assert (
        client_for(other_provider).post(REQUESTS, {"grant": str(grant.id), "reason": "x"}, format="json").status_code
        == 404
    )
    assert buyer_api.post(REQUESTS, {"grant": str(grant.id), "reason": "x"}, format="json").status_code == 403
    for party in (provider, buyer_api, client_for(stranger)):
        refused = party.post(
            f"{REQUESTS}{request_id}/decide/", {"decision": "revoke", "refund": "none", "reason": "x"}, format="json"
        )
        assert refused.status_code == 403
    no_refund = api.post(
        f"{REQUESTS}{request_id}/decide/", {"decision": "revoke", "reason": "breach confirmed"}, format="json"
    )
    assert no_refund.status_code == 400 and "refund" in no_refund.json()["fields"]
    assert GrantRevocationRequest.objects.get(pk=request_id).status == "pending"

    decided = api.post(
        f"{REQUESTS}{request_id}/decide/",
        {"decision": "revoke", "refund": "full", "reason": "breach confirmed"},
        format="json",
    )

    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert (
        body["status"],
        body["refund"],
        body["refund_amount"],
        body["refund_currency"],
        body["decided_by"],
        body["grant_status"],
    ) == ("revoked", "full", "100.00", "EUR", officer.user.username, "revoked")
    trade = buyer_api.get(f"/api/v1/trades/{grant.trade_id}/").json()
    assert trade["status"] == "refunded" and "breach confirmed" in trade["events"][-1]["reason"]
    assert balances(buyer_api) == {"EUR": ("150.00", "0.00")}  # credited
    assert balances(provider) == {"EUR": ("0.00", "0.00")}  # debited its 95.00
    assert revenue(api) == "0.00"  # and the platform its 5.00 fee
    download = buyer_api.get(f"/api/v1/grants/{grant.id}/download/")
    assert download.status_code == 403 and download.json()["code"] == "grant_inactive"
    again = api.post(f"{REQUESTS}{request_id}/decide/", {"decision": "decline", "reason": "x"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "revocation_request_decided"
    assert AuditEvent.objects.get(kind="grant.revocation_decided").actor_label == officer.user.username
    assert_ledger_consistent()


def test_the_provider_may_also_file_through_the_requests_list(client_for, provider_eu, buyer, eu_personal):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)

    filed = client_for(provider_eu).post(
        REQUESTS, {"grant": str(grant.id), "reason": "data subject withdrew consent"}, format="json"
    )

    assert filed.status_code == 202 and filed.json()["status"] == "pending"
    assert client_for(provider_eu).get(f"{REQUESTS}?status=pending").json()["count"] == 1


def test_an_officer_may_decline_and_access_stays(client_for, provider_eu, buyer, officer, eu_personal):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    request_id = (
        client_for(provider_eu)
        .post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "late payment"}, format="json")
        .json()["id"]
    )

    declined = client_for(officer).post(
        f"{REQUESTS}{request_id}/decide/", {"decision": "decline", "reason": "paid in escrow"}, format="json"
    )

    assert declined.status_code == 200 and (declined.json()["status"], declined.json()["refund"]) == ("declined", "")
    assert client_for(buyer).get(f"/api/v1/grants/{grant.id}/download/").status_code == 200
    assert client_for(buyer).get(f"{REQUESTS}{request_id}/").json()["decision_reason"] == "paid in escrow"
    assert balances(client_for(provider_eu)) == {"EUR": ("95.00", "0.00")}
    # A new request may follow a declined one.
    assert (
        client_for(provider_eu)
        .post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "again"}, format="json")
        .status_code
        == 202
    )


# --- pro-rata refunds ---------------------------------------------------------------------------


def test_an_officer_revokes_with_a_pro_rata_refund_of_the_unused_term(
    client_for, provider_eu, buyer, officer, eu_personal
):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    set_term(grant, started_days_ago=10, ends_in_days=20)  # a third used, two thirds left

    revoked = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "licence ended early", "refund": "pro_rata"}, format="json"
    )

    assert revoked.status_code == 200, revoked.json()
    # 100.00 × (just under) 2/3, rounded down to the cent; the platform gives back 5% of it (3.33), the provider the
    # rest.
    assert (revoked.json()["refund"], revoked.json()["refund_amount"]) == ("pro_rata", "66.66")
    assert balances(client_for(buyer)) == {"EUR": ("116.66", "0.00")}
    assert balances(client_for(provider_eu)) == {"EUR": ("31.67", "0.00")}
    assert revenue(client_for(officer)) == "1.67"
    assert client_for(buyer).get(f"/api/v1/trades/{grant.trade_id}/").json()["status"] == "settled"
    assert client_for(buyer).get(f"/api/v1/grants/{grant.id}/").json()["status"] == "revoked"
    assert LedgerTransaction.objects.filter(trade_id=grant.trade_id, kind="refund").count() == 1
    assert_ledger_consistent()


def test_time_under_suspension_counts_as_unused(client_for, provider_eu, buyer, officer, eu_personal):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    set_term(grant, started_days_ago=10, ends_in_days=20)
    grant_suspend(grant_id=grant.id, reason="re-screening under eu@test: would now be denied")
    AccessGrant.objects.filter(pk=grant.pk).update(suspended_at=timezone.now() - timedelta(days=5))  # 5 of 30 days used

    revoked = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "transfer now unlawful", "refund": "pro_rata"}, format="json"
    )

    assert revoked.status_code == 200, revoked.json()
    assert revoked.json()["refund_amount"] == "83.33"  # 25/30 of 100.00, rounded down
    assert balances(client_for(buyer)) == {"EUR": ("133.33", "0.00")}
    assert_ledger_consistent()


def test_pro_rata_needs_an_end_date(client_for, provider_eu, buyer, officer, eu_personal):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal, term_days=None)
    request_id = (
        client_for(provider_eu)
        .post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "breach"}, format="json")
        .json()["id"]
    )

    refused = client_for(officer).post(
        f"{REQUESTS}{request_id}/decide/",
        {"decision": "revoke", "refund": "pro_rata", "reason": "breach"},
        format="json",
    )

    assert refused.status_code == 400 and refused.json()["code"] == "pro_rata_unavailable"
    assert client_for(buyer).get(f"/api/v1/grants/{grant.id}/").json()["status"] == "active"
    assert GrantRevocationRequest.objects.get(pk=request_id).status == "pending"
    assert balances(client_for(buyer)) == {"EUR": ("50.00", "0.00")}


def test_a_refund_the_provider_cannot_cover_changes_nothing(client_for, provider_eu, buyer, officer, eu_personal):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    Wallet.objects.filter(organisation=provider_eu.organisation).update(
        available=Decimal("10.00")
    )  # paid out elsewhere

    refused = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "breach", "refund": "full"}, format="json"
    )

    assert refused.status_code == 409 and refused.json()["code"] == "refund_not_covered"
    assert client_for(buyer).get(f"/api/v1/grants/{grant.id}/").json()["status"] == "active"
    assert not GrantRevocationRequest.objects.exists() and not LedgerTransaction.objects.filter(kind="refund").exists()


def test_an_officer_revocation_decides_the_pending_provider_request(
    client_for, provider_eu, buyer, officer, eu_personal
):
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    request_id = (
        client_for(provider_eu)
        .post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "breach"}, format="json")
        .json()["id"]
    )

    revoked = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "breach confirmed", "refund": "none"}, format="json"
    )

    assert (
        revoked.status_code == 200
        and revoked.json()["id"] == request_id
        and revoked.json()["requested_by"] == provider_eu.user.username
    )
    assert balances(client_for(provider_eu)) == {"EUR": ("95.00", "0.00")}  # refund none: the money stays
    assert client_for(buyer).get(f"/api/v1/trades/{grant.trade_id}/").json()["status"] == "settled"


@pytest.mark.parametrize("price", ["0.01", "0.99", "1.00", "33.33", "100.00", "12345.67"])
def test_a_partial_refund_splits_like_the_settlement_and_adds_up(client_for, provider_eu, buyer, eu_personal, price):
    eu_personal.price = Decimal(price)
    eu_personal.save()
    fund(buyer.organisation, "20000.00", ("EUR",))
    grant = paid_grant(client_for, provider_eu, buyer, eu_personal)
    trade = grant.trade
    fee = total(LedgerEntry.objects.filter(transaction__trade=trade, transaction__kind="settle", account="revenue"))
    for cents in range(1, int(trade.price * 100) + 1, max(1, int(trade.price * 100) // 37)):
        amount = Decimal(cents) / 100
        provider_part, platform_part = ledger_refund_split(trade=trade, amount=amount)
        assert provider_part + platform_part == amount
        assert 0 <= platform_part <= fee and 0 <= provider_part <= trade.price - fee
    assert ledger_refund_split(trade=trade, amount=trade.price) == (trade.price - fee, fee)
