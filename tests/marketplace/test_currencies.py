"""Currencies are ISO 4217 money codes with their minor units; amounts stay inside the ledger's columns."""

from decimal import Decimal

import pytest

from marketplace.models import Dataset, Deposit, LedgerTransaction, Wallet
from marketplace.money import AMOUNT_MAX, MoneyError, currencies_accepted, currency_check, exponent, money
from marketplace.services.deposits import deposit_request
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, fund, upload_file

pytestmark = pytest.mark.django_db

LISTING = {
    "title": "Shop sales",
    "subject_jurisdictions": ["US"],
    "classification": "public",
    "categories": ["statistics"],
    "subjects": 0,
}
NOT_MONEY = [
    "XAU",
    "XAG",
    "XPT",
    "XPD",
    "XTS",
    "XXX",
    "XBA",
    "XBD",
    "XDR",
    "XSU",
    "XUA",
    "XAD",
    "BOV",
    "CHE",
    "CHW",
    "CLF",
    "COU",
    "MXV",
    "USN",
    "UYI",
    "UYW",
]


def test_minor_units_come_from_iso_4217():
    assert (exponent("JPY"), exponent("EUR"), exponent("USD"), exponent("XAF"), exponent("ISK")) == (0, 2, 2, 0, 0)
    assert {"EUR", "USD", "JPY", "GBP", "CHF", "XOF", "XCD"} <= set(currencies_accepted())
    assert not set(NOT_MONEY) & set(currencies_accepted())


@pytest.mark.parametrize("code", NOT_MONEY)
def test_funds_metals_units_of_account_and_test_codes_are_not_money(code):
    with pytest.raises(MoneyError):
        currency_check(code)


@pytest.mark.parametrize("code", ["KWD", "BHD", "OMR"])
def test_three_decimal_currencies_are_refused_because_the_columns_hold_two(code):
    with pytest.raises(MoneyError, match="3 decimal places"):
        currency_check(code)


def test_amounts_are_never_rounded():
    assert money("1000.00", "JPY") == Decimal("1000")
    assert money("10.5", "EUR") == Decimal("10.50")
    for amount, currency in (("10.50", "JPY"), ("10.001", "EUR"), (str(AMOUNT_MAX + 1), "EUR"), ("NaN", "EUR")):
        with pytest.raises(MoneyError):
            money(amount, currency)


def test_a_lower_case_currency_is_stored_upper_case_and_buyers_holding_it_can_pay(client_for, provider_eu, buyer_us):
    created = client_for(provider_eu).post(
        "/api/v1/datasets/", {**LISTING, "price": "25.00", "currency": "usd"}, format="json"
    )
    assert created.status_code == 201, created.content
    dataset_id = created.json()["id"]
    assert created.json()["currency"] == "USD" and Dataset.objects.get(pk=dataset_id).currency == "USD"
    assert upload_file(client_for(provider_eu), dataset_id).status_code == 201
    assert client_for(provider_eu).post(f"/api/v1/datasets/{dataset_id}/publish/").status_code == 200

    bought = client_for(buyer_us).post("/api/v1/trades/", {"dataset": dataset_id}, format="json")

    assert bought.status_code == 201, bought.content
    assert bought.json()["currency"] == "USD"


@pytest.mark.parametrize("code", ["XAU", "XTS", "XXX", "BOV", "XDR", "usn", "US", "EURO", "€"])
def test_not_money_is_refused_on_listings_deposits_and_filters(client_for, provider_eu, buyer_us, code):
    listing = client_for(provider_eu).post(
        "/api/v1/datasets/", {**LISTING, "price": "25.00", "currency": code}, format="json"
    )
    deposit = client_for(buyer_us).post(
        "/api/v1/wallet/deposits/", {"amount": "25.00", "currency": code}, format="json"
    )
    filtered = client_for(buyer_us).get("/api/v1/wallet/entries/", {"currency": code})

    assert listing.status_code == 400 and "currency" in listing.json()["fields"]
    assert deposit.status_code == 400 and "currency" in deposit.json()["fields"]
    assert filtered.status_code == 400 and "currency" in filtered.json()["fields"]
    assert not Dataset.objects.exists() and not Deposit.objects.filter(status="pending").exists()


def test_filters_accept_any_case(client_for, buyer_us):
    lower = client_for(buyer_us).get("/api/v1/wallet/entries/?currency=usd").json()
    upper = client_for(buyer_us).get("/api/v1/wallet/entries/?currency=USD").json()
    deposits = client_for(buyer_us).get("/api/v1/wallet/deposits/?currency=eur").json()

    assert lower["count"] == upper["count"] > 0
    assert deposits["count"] == 1 and deposits["results"][0]["currency"] == "EUR"


def test_a_listing_switched_to_yen_must_have_a_whole_yen_price(client_for, provider_eu):
    dataset = DatasetFactory(provider=provider_eu.organisation, price=Decimal("10.50"), currency="EUR")
    provider = client_for(provider_eu)

    switched = provider.patch(f"/api/v1/datasets/{dataset.id}/", {"currency": "JPY"}, format="json")
    dataset.refresh_from_db()
    assert switched.status_code == 400 and "price" in switched.json()["fields"]
    assert (dataset.price, dataset.currency) == (Decimal("10.50"), "EUR")

    with_price = provider.patch(
        f"/api/v1/datasets/{dataset.id}/", {"currency": "jpy", "price": "1500.00"}, format="json"
    )
    dataset.refresh_from_db()
    assert with_price.status_code == 200, with_price.content
    assert (dataset.price, dataset.currency, with_price.json()["price"]) == (Decimal("1500"), "JPY", "1500.00")

    fractional = provider.patch(f"/api/v1/datasets/{dataset.id}/", {"price": "1500.50"}, format="json")
    assert fractional.status_code == 400 and "price" in fractional.json()["fields"]


def test_a_deposit_the_wallet_could_not_hold_is_a_400_and_changes_nothing(client_for, buyer_us):
    Wallet.objects.filter(organisation=buyer_us.organisation, currency="EUR").update(
        available=AMOUNT_MAX - Decimal("10.00")
    )

    response = client_for(buyer_us).post(
        "/api/v1/wallet/deposits/", {"amount": "100.00", "currency": "EUR"}, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "amount_out_of_range"
    assert "amount" in response.json()["fields"]
    assert not Deposit.objects.filter(status="pending").exists()


def test_approving_a_credit_that_would_overflow_the_wallet_is_a_400_and_credits_nothing(client_for, officer):
    org = OrganisationFactory(name="Almost Full Ltd", jurisdiction="DE")
    member = MembershipFactory(organisation=org, role="buyer", funded=False)
    fund(org, "10.00", ("EUR",))
    deposit = deposit_request(membership=member, amount=AMOUNT_MAX - Decimal("20.00"), currency="EUR")
    Wallet.objects.filter(organisation=org, currency="EUR").update(
        available=Decimal("1000.00")
    )  # more arrived meanwhile
    transactions = LedgerTransaction.objects.count()

    response = client_for(officer).post(
        f"/api/v1/wallet/deposits/{deposit.id}/approve/", {"note": "wire received"}, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "amount_out_of_range"
    deposit.refresh_from_db()
    assert deposit.status == "pending" and LedgerTransaction.objects.count() == transactions
    assert Wallet.objects.get(organisation=org, currency="EUR").available == Decimal("1000.00")


def test_the_largest_amount_the_ledger_holds_is_accepted(client_for, officer):
    org = OrganisationFactory(name="Empty Wallet Ltd", jurisdiction="DE")
    MembershipFactory(organisation=org, role="buyer", funded=False)

    response = client_for(officer).post("/api/v1/wallet/deposits/", {"amount": str(AMOUNT_MAX), "currency": "EUR",
                                                                      "organisation": str(org.id)}, format="json")
    too_much = client_for(officer).post(
        "/api/v1/wallet/deposits/",
        {"amount": str(AMOUNT_MAX + Decimal("0.01")), "currency": "EUR", "organisation": str(org.id)},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert too_much.status_code == 400 and "amount" in too_much.json()["fields"]
