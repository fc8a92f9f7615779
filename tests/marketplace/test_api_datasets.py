"""Datasets over HTTP: providers list with the legal facts; buyers browse; nobody sees another's drafts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Dataset
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, upload_file

pytestmark = pytest.mark.django_db

VALID = {
    "title": "Shanghai retail panel 2026", "description": "Loyalty-card shoppers",
    "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "personal",
    "categories": ["contact", "purchase_history"], "subjects": 50000, "price": "1200.00", "currency": "USD",
    "pricing": "one_time", "licence": {"term_days": 365, "resale": False},
}


def test_provider_creates_a_draft_then_publishes_it(client_for, provider_cn, buyer_us):
    provider = client_for(provider_cn)

    created = provider.post("/api/v1/datasets/", VALID, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "draft" and body["provider"] == str(provider_cn.organisation_id)
    assert client_for(buyer_us).get(f"/api/v1/datasets/{body['id']}/").status_code == 404

    unattested = provider.post(f"/api/v1/datasets/{body['id']}/publish/")
    assert unattested.status_code == 409 and unattested.json()["code"] == "attestation_required"
    assert (
        provider.patch(f"/api/v1/datasets/{body['id']}/", {"pi_duties_attested": True}, format="json").status_code
        == 200
    )
    fileless = provider.post(f"/api/v1/datasets/{body['id']}/publish/")
    assert fileless.status_code == 409 and fileless.json()["code"] == "dataset_has_no_file"
    assert upload_file(provider, body["id"]).status_code == 201
    published = provider.post(f"/api/v1/datasets/{body['id']}/publish/")
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert client_for(buyer_us).get(f"/api/v1/datasets/{body['id']}/").status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"subject_jurisdictions": ["ZZ"]}, "subject_jurisdictions"),
    ({"classification": "secret"}, "classification"),
    ({"categories": ["dna"]}, "categories"),
    ({"price": "-1.00"}, "price"),
    ({"currency": "XYZ"}, "currency"),
    ({"subjects": -5}, "subjects"),
    ({"licence": {"term_days": 0}}, "licence"),
    ({"licence": {"exclusive": True}}, "licence.exclusive"),
    ({"subject_jurisdictions": []}, "subject_jurisdictions"),
    ({"exporter_flags": ["cn_secret_zone"]}, "exporter_flags"),
])
def test_bad_fields_are_a_400_naming_them_and_create_nothing(client_for, provider_cn, change, field):
    response = client_for(provider_cn).post("/api/v1/datasets/", {**VALID, **change}, format="json")

    assert response.status_code == 400
    code = "unknown_field" if field == "licence.exclusive" else "invalid"  # a licence term there is no such thing as
    assert response.json()["code"] == code and field in response.json()["fields"]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"classification": "personal", "subjects": 0}, "subjects"),
    ({"classification": "public", "categories": ["health"], "subjects": 0}, "categories"),
    ({"classification": "non_personal", "de_identified": True, "subjects": 0}, "de_identified"),
    ({"classification": "personal", "categories": ["health"]}, "classification"),
    ({"flags": ["gov_geofence"]}, "flags"),
])
def test_inconsistent_facts_are_refused(client_for, provider_cn, change, field):
    response = client_for(provider_cn).post("/api/v1/datasets/", {**VALID, **change}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "dataset_inconsistent" and field in response.json()["fields"]
    assert not Dataset.objects.exists()


def test_malformed_json_is_a_400_not_a_500(client_for, provider_cn):
    response = client_for(provider_cn).post("/api/v1/datasets/", "{not json", content_type="application/json")

    assert response.status_code == 400 and response.json()["code"] == "parse_error"


def test_buyers_cannot_list_datasets_for_sale(client_for, buyer_us):
    response = client_for(buyer_us).post("/api/v1/datasets/", VALID, format="json")

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_providers_cannot_touch_another_organisations_dataset(client_for, provider_cn, provider_eu, eu_personal):
    other = client_for(provider_cn)
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT)

    assert other.patch(f"/api/v1/datasets/{eu_personal.id}/", {"price": "1.00"}, format="json").status_code == 403
    assert other.post(f"/api/v1/datasets/{eu_personal.id}/withdraw/").status_code == 403
    assert other.patch(f"/api/v1/datasets/{draft.id}/", {"price": "1.00"}, format="json").status_code == 404
    assert other.post(f"/api/v1/datasets/{draft.id}/publish/").status_code == 404
    eu_personal.refresh_from_db()
    assert eu_personal.status == "published" and str(eu_personal.price) == "100.00"


def test_published_facts_are_locked_but_price_may_change(client_for, provider_eu, eu_personal):
    provider = client_for(provider_eu)

    locked = provider.patch(
        f"/api/v1/datasets/{eu_personal.id}/", {"classification": "public", "subjects": 0}, format="json"
    )
    repriced = provider.patch(f"/api/v1/datasets/{eu_personal.id}/", {"price": "150.00"}, format="json")

    assert locked.status_code == 409 and locked.json()["code"] == "dataset_facts_locked"
    assert repriced.status_code == 200 and repriced.json()["price"] == "150.00"
    eu_personal.refresh_from_db()
    assert eu_personal.classification == "personal"


def test_catalogue_search_and_filters(client_for, buyer_us, provider_eu, provider_cn):
    DatasetFactory(
        provider=provider_eu.organisation,
        title="Berlin footfall",
        classification="non_personal",
        subjects=0,
        categories=["telemetry"],
    )
    DatasetFactory(
        provider=provider_cn.organisation, title="Shanghai shoppers", categories=["purchase_history"], price="900.00"
    )
    DatasetFactory(provider=provider_cn.organisation, title="Hidden draft shoppers", status=Dataset.Status.DRAFT)
    buyer = client_for(buyer_us)

    def titles(query: str) -> set[str]:
        response = buyer.get(f"/api/v1/datasets/?{query}")
        assert response.status_code == 200, response.json()
        return {d["title"] for d in response.json()["results"]}

    assert titles("q=shoppers") == {"Shanghai shoppers"}
    assert titles("jurisdiction=cn") == {"Shanghai shoppers"}
    assert titles("classification=non_personal") == {"Berlin footfall"}
    assert titles("category=purchase_history") == {"Shanghai shoppers"}
    assert titles("price_min=500&currency=eur") == {"Shanghai shoppers"}
    assert titles("price_max=500&currency=EUR") == {"Berlin footfall"}
    assert buyer.get("/api/v1/datasets/?classification=secret").status_code == 400


def test_catalogue_list_costs_the_same_queries_for_1_or_30_datasets(client_for, buyer_us):
    buyer = client_for(buyer_us)
    buyer.get("/api/v1/me/")  # the session is verified (and cached) once, as for any client
    DatasetFactory()
    with CaptureQueriesContext(connection) as one:
        buyer.get("/api/v1/datasets/")
    for _ in range(29):
        DatasetFactory(provider=OrganisationFactory())
    with CaptureQueriesContext(connection) as thirty:
        response = buyer.get("/api/v1/datasets/?page_size=50")

    assert response.json()["count"] == 30
    assert len(thirty.captured_queries) == len(one.captured_queries) <= 5


def test_user_without_an_organisation_sees_only_the_published_catalogue(client_for, eu_personal):
    loner = MembershipFactory.build()
    loner.user.save()
    from rest_framework.test import APIClient

    from marketplace.services.sessions import session_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_create(user=loner.user)[1]}")

    assert client.get("/api/v1/datasets/").json()["count"] == 1
    assert client.post("/api/v1/datasets/", VALID, format="json").status_code == 403


def test_dataset_shows_the_exporter_facts_the_check_uses(client_for, provider_cn):
    provider_cn.organisation.exporter_flags = ["cn_ciio"]
    provider_cn.organisation.save()

    body = (
        client_for(provider_cn).post("/api/v1/datasets/", {**VALID, "exporter_flags": ["cn_ftz"]}, format="json").json()
    )

    assert body["exporter"] == {"jurisdiction": "CN", "flags": ["cn_ciio", "cn_ftz"]}


def test_publishing_a_withdrawn_listing_is_409_dataset_transition_not_allowed(client_for, provider_eu):
    withdrawn = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.WITHDRAWN)

    response = client_for(provider_eu).post(f"/api/v1/datasets/{withdrawn.id}/publish/")

    assert response.status_code == 409 and response.json()["code"] == "dataset_transition_not_allowed"
    withdrawn.refresh_from_db()
    assert withdrawn.status == Dataset.Status.WITHDRAWN
