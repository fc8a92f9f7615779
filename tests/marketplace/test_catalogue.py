"""The catalogue list: published listings only (own drafts under `mine=true`), search ranked title-first,
`ordering`, price filters that need a currency, capped counts, and at most three SQL statements a page."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.apis.serializers import DATASET_LIST_COLUMNS, DatasetSerializer, dataset_list_item
from marketplace.models import Dataset
from marketplace.selectors import catalogue
from tests.conftest import ON_POSTGRES
from tests.factories import DatasetFactory, OrganisationFactory

pytestmark = pytest.mark.django_db
LIST = "/api/v1/datasets/"
NOW = timezone.now()


def _titles(client: Any, query: str = "") -> list[str]:
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 200, response.json()
    return [row["title"] for row in response.json()["results"]]


def _published(title: str, *, days_ago: int = 0, **kwargs: Any) -> Dataset:
    return DatasetFactory.create(title=title, published_at=NOW - timedelta(days=days_ago), **kwargs)


# --- visibility ---------------------------------------------------------------------------------


def test_the_catalogue_is_published_listings_and_mine_is_your_own_in_any_status(client_for, provider_eu, provider_cn):
    _published("Their published")
    DatasetFactory(provider=provider_cn.organisation, title="Their draft", status=Dataset.Status.DRAFT)
    DatasetFactory(provider=provider_cn.organisation, title="Their withdrawn", status=Dataset.Status.WITHDRAWN)
    DatasetFactory(provider=provider_eu.organisation, title="My draft", status=Dataset.Status.DRAFT)
    _published("My published", provider=provider_eu.organisation)
    me = client_for(provider_eu)

    assert set(_titles(me)) == {"Their published", "My published"}
    assert set(_titles(me, "mine=true")) == {"My draft", "My published"}
    assert _titles(me, "mine=true&status=draft") == ["My draft"]
    # other organisations' drafts never appear, however asked for
    for query in ("status=draft", "status=withdrawn", "q=their", "q=draft", f"provider={provider_cn.organisation_id}",
                  "mine=true&q=their"):
        assert not {"Their draft", "Their withdrawn"} & set(_titles(me, query)), query
    assert _titles(client_for(provider_cn), "mine=true&status=draft") == ["Their draft"]


def test_officers_see_any_status_when_they_ask_for_it(client_for, officer):
    DatasetFactory(title="A draft", status=Dataset.Status.DRAFT)
    _published("Published")

    assert _titles(client_for(officer)) == ["Published"]
    assert _titles(client_for(officer), "status=draft") == ["A draft"]


# --- ordering -----------------------------------------------------------------------------------


def test_default_order_is_newest_published_first_and_ties_break_by_id(client_for, buyer_us):
    _published("Old", days_ago=3)
    _published("New", days_ago=1)
    same = [_published(f"Same {n}", days_ago=2) for n in range(3)]
    tied = [d.title for d in sorted(same, key=lambda d: d.id, reverse=True)]

    assert _titles(client_for(buyer_us)) == ["New", *tied, "Old"]


def test_ordering_by_a_comma_list_of_allowed_fields(client_for, buyer_us):
    _published("B cheap old", days_ago=5, price=Decimal("10.00"))
    _published("A cheap new", days_ago=1, price=Decimal("10.00"))
    _published("C dear", days_ago=3, price=Decimal("99.00"))
    buyer = client_for(buyer_us)

    assert _titles(buyer, "ordering=price,-published_at") == ["A cheap new", "B cheap old", "C dear"]
    assert _titles(buyer, "ordering=-price,published_at") == ["C dear", "B cheap old", "A cheap new"]
    assert _titles(buyer, "ordering=title") == ["A cheap new", "B cheap old", "C dear"]
    assert _titles(buyer, "ordering=-title") == ["C dear", "B cheap old", "A cheap new"]
    assert _titles(buyer, "ordering=published_at") == ["B cheap old", "C dear", "A cheap new"]


@pytest.mark.parametrize("ordering", ["subjects", "price,price", "-relevance", "relevance", "price,", "id", "pr ice"])
def test_unknown_ordering_is_a_400_ordering_invalid(client_for, buyer_us, ordering):
    response = client_for(buyer_us).get(LIST, {"ordering": ordering})

    assert response.status_code == 400
    assert response.json()["code"] == "ordering_invalid" and "ordering" in response.json()["fields"]


# --- search -------------------------------------------------------------------------------------


def test_search_ranks_title_matches_before_description_matches(client_for, buyer_us):
    _published("Weather stations", description="Hourly retail footfall near stations", days_ago=0)
    _published("Retail baskets", description="Loyalty cards", days_ago=5)
    _published("Hospital beds", description="Occupancy", days_ago=1)

    assert _titles(client_for(buyer_us), "q=retail") == ["Retail baskets", "Weather stations"]
    # an explicit ordering overrides relevance; relevance can be one key among others
    assert _titles(client_for(buyer_us), "q=retail&ordering=-published_at") == ["Weather stations", "Retail baskets"]
    assert _titles(client_for(buyer_us), "q=retail&ordering=relevance,title") == ["Retail baskets", "Weather stations"]


def test_every_word_must_match_and_a_word_may_be_a_prefix(client_for, buyer_us):
    _published("Shanghai retail shoppers")
    _published("Berlin retail footfall")
    buyer = client_for(buyer_us)

    assert _titles(buyer, "q=retail shoppers") == ["Shanghai retail shoppers"]
    assert set(_titles(buyer, "q=reta")) == {"Shanghai retail shoppers", "Berlin retail footfall"}
    assert _titles(buyer, "q=!!!") == _titles(buyer)  # no words: no search


@pytest.mark.skipif(not ON_POSTGRES, reason="whole words and a last-word prefix are PostgreSQL's full-text search")
def test_the_last_word_is_a_prefix_and_the_words_before_it_are_whole_on_postgres(client_for, buyer_us):
    _published("Berlin shoppers panel", days_ago=1)
    _published("Berlin shopping streets", days_ago=2)
    buyer = client_for(buyer_us)

    assert set(_titles(buyer, "q=berlin shop")) == {"Berlin shoppers panel", "Berlin shopping streets"}
    assert _titles(buyer, "q=berlin shoppers") == ["Berlin shoppers panel"]
    assert _titles(buyer, "q=shoppers berl") == ["Berlin shoppers panel"]


@pytest.mark.skipif(not ON_POSTGRES, reason="whole words first is PostgreSQL's full-text search")
def test_whole_words_first_and_the_last_word_as_a_prefix_only_when_none_has_them_on_postgres(client_for, buyer_us):
    _published("Berlin shop receipts", days_ago=1)
    _published("Berlin shoppers panel", days_ago=2)
    buyer = client_for(buyer_us)

    assert _titles(buyer, "q=berlin shop") == ["Berlin shop receipts"]  # a listing has both whole words
    response = buyer.get(LIST, {"q": "berlin shop", "page_size": 1, "page": 2})
    assert response.status_code == 404  # the second page makes the same choice: one match, no more pages
    assert _titles(buyer, "q=berlin shopp") == ["Berlin shoppers panel"]  # none has "shopp": a prefix


@pytest.mark.skipif(not ON_POSTGRES, reason="trigram fallback is PostgreSQL's (pg_trgm)")
def test_partial_words_inside_a_title_are_found_by_the_trigram_fallback_on_postgres(client_for, buyer_us):
    _published("Nationwide retail panel")
    _published("Hospital beds")
    DatasetFactory(title="Draft retail panel", status=Dataset.Status.DRAFT)

    response = client_for(buyer_us).get(LIST, {"q": "etail"})

    assert [row["title"] for row in response.json()["results"]] == ["Nationwide retail panel"]
    assert response.json()["count"] == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="the ranking window is PostgreSQL's")
def test_relevance_ranks_the_newest_matches_when_there_are_more_than_the_window(client_for, buyer_us, monkeypatch):
    monkeypatch.setattr(catalogue, "SEARCH_WINDOW", 2)
    _published("Retail oldest", days_ago=9)
    _published("Newest", description="retail", days_ago=1)
    _published("Retail middle", days_ago=2)
    _published("Unrelated", days_ago=0)
    buyer = client_for(buyer_us)

    body = buyer.get(LIST, {"q": "retail"}).json()
    second = buyer.get(LIST, {"q": "retail", "page_size": 1, "page": 2}).json()

    assert [row["title"] for row in body["results"]] == ["Retail middle", "Newest"]
    assert (body["count"], body["count_capped"], body["next"]) == (2, True, None)
    assert [row["title"] for row in second["results"]] == ["Newest"]
    assert (second["count"], second["count_capped"], second["next"]) == (2, True, None)
    assert buyer.get(LIST, {"q": "retail", "page_size": 1, "page": 3}).status_code == 404
    # an explicit ordering is exact over every match
    assert _titles(client_for(buyer_us), "q=retail&ordering=title") == ["Newest", "Retail middle", "Retail oldest"]


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["price_min=1", "price_max=100", "price_min=1&price_max=2"])
def test_price_filters_need_a_currency(client_for, buyer_us, query):
    response = client_for(buyer_us).get(f"{LIST}?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "currency_required" and "currency" in response.json()["fields"]


def test_price_filters_compare_within_one_currency(client_for, buyer_us):
    _published("Euro", price=Decimal("50.00"), currency="EUR")
    _published("Yen", price=Decimal("5000.00"), currency="JPY")

    assert _titles(client_for(buyer_us), "price_min=40&currency=eur") == ["Euro"]
    assert _titles(client_for(buyer_us), "price_min=40&currency=JPY") == ["Yen"]


@pytest.mark.parametrize("query", ["q=" + "x" * 201, "ordering=" + "x" * 201, "q=" + "x" * 201 + "&currency=EUR"])
def test_overlong_search_or_ordering_is_a_400_naming_the_field(client_for, buyer_us, query):
    response = client_for(buyer_us).get(f"{LIST}?{query}")

    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) & {"q", "ordering"}


def test_mine_is_read_the_same_with_or_without_other_filters(client_for, provider_eu):
    DatasetFactory(provider=provider_eu.organisation, title="My draft", status=Dataset.Status.DRAFT)
    _published("Theirs")
    me = client_for(provider_eu)

    for value, expected in (("true", ["My draft"]), ("1", ["My draft"]), ("false", ["Theirs"]), ("no", ["Theirs"])):
        assert _titles(me, f"mine={value}") == expected
        assert _titles(me, f"mine={value}&classification=personal") == expected


# --- pagination and counts ----------------------------------------------------------------------


def test_pages_link_to_each_other_and_past_the_end_is_404(client_for, buyer_us):
    for n in range(5):
        _published(f"D{n}", days_ago=n)
    buyer = client_for(buyer_us)

    first = buyer.get(LIST, {"page_size": 2}).json()
    second = buyer.get(first["next"]).json()
    last = buyer.get(LIST, {"page_size": 2, "page": 3}).json()

    assert (first["count"], first["count_capped"], first["previous"]) == (5, False, None)
    assert [r["title"] for r in first["results"] + second["results"] + last["results"]] == [f"D{n}" for n in range(5)]
    assert "page=" not in second["previous"] and last["next"] is None
    assert buyer.get(LIST, {"page_size": 2, "page": 4}).status_code == 404
    assert buyer.get(LIST, {"page": "x"}).status_code == 404


def test_counts_past_the_cap_are_capped_and_the_pages_go_on(client_for, buyer_us, monkeypatch):
    monkeypatch.setattr(catalogue, "COUNT_CAP", 3)
    for n in range(5):
        _published(f"D{n}", days_ago=n)
    buyer = client_for(buyer_us)

    body = buyer.get(LIST, {"page_size": 2, "page": 2}).json()
    beyond = buyer.get(LIST, {"page_size": 2, "page": 3}).json()

    assert (body["count"], body["count_capped"]) == (3, True) and body["next"]
    assert [r["title"] for r in beyond["results"]] == ["D4"] and beyond["next"] is None


# --- statements and the serializer fast path ----------------------------------------------------


@pytest.mark.parametrize("query", [
    "", "page_size=50", "q=retail", "q=etail", "q=zzzz", "ordering=price&currency=EUR&price_min=1",
    "mine=true", "jurisdiction=DE&category=contact&page=2&page_size=5",
])
def test_a_catalogue_page_is_at_most_three_statements(client_for, provider_eu, query):
    for n in range(12):
        _published(f"Retail {n}", provider=OrganisationFactory(), days_ago=n)
    DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT)
    client = client_for(provider_eu)
    client.get("/api/v1/me/")  # the session verified once, as a real client's is (config/auth_cache.py)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{LIST}?{query}")

    assert response.status_code == 200, response.json()
    assert len(queries.captured_queries) <= 3, [q["sql"][:200] for q in queries.captured_queries]


def test_the_list_renders_exactly_what_the_dataset_serializer_does(client_for, buyer_us, provider_cn):
    provider_cn.organisation.exporter_flags = ["cn_ciio"]
    provider_cn.organisation.save()
    _published("Plain", days_ago=1)
    _published("Flags and licence", provider=provider_cn.organisation, exporter_flags=["cn_ftz", "cn_ciio"],
               subject_jurisdictions=["CN", "DE"], categories=[], flags=["gov_geofence"], price=Decimal("7"),
               currency="JPY", pricing="subscription", licence={"term_days": 30, "resale": True, "terms": "x"})
    _published("Odd licence", licence={"terms": None, "unknown": 1}, description="")
    _published("Empty licence", licence={}, de_identified=True, subjects=0)

    listed = client_for(buyer_us).get(LIST).json()["results"]
    expected = [
        DatasetSerializer(d).data for d in Dataset.objects.select_related("provider").order_by("-published_at", "-id")
    ]
    rows = list(Dataset.objects.order_by("-published_at", "-id").values(*DATASET_LIST_COLUMNS))

    assert listed == [dict(e) for e in expected]
    assert [dataset_list_item(r) for r in rows] == listed
