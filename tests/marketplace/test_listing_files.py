"""Listings tell the truth about their data: publishing needs a file version, a listing shows its
versions' facts to anyone who can see it, and a provider may attach a small free sample."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import AuditEvent
from marketplace.models import Dataset, DatasetSample
from tests.factories import DatasetFactory, upload_file

pytestmark = pytest.mark.django_db

SAMPLE = b"customer_id,city\n1,Berlin\n2,Hamburg\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def post_sample(client, dataset_id, content: bytes = SAMPLE, name: str = "sample.csv", **fields):
    data = {"file": SimpleUploadedFile(name, content), "contains_personal_data": "false", **fields}
    return client.post(f"/api/v1/datasets/{dataset_id}/sample/", data, format="multipart")


# --- publishing needs a file --------------------------------------------------------------------


def test_a_draft_without_a_file_cannot_be_published_and_nothing_changes(client_for, provider_eu, buyer_eu):
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT, with_file=False)
    provider = client_for(provider_eu)

    refused = provider.post(f"/api/v1/datasets/{draft.id}/publish/")

    assert refused.status_code == 409
    assert refused.json()["code"] == "dataset_has_no_file" and "files" in refused.json()["fields"]
    draft.refresh_from_db()
    assert draft.status == Dataset.Status.DRAFT and draft.published_at is None
    assert not AuditEvent.objects.filter(subject_id=str(draft.id), kind="dataset.published").exists()
    assert client_for(buyer_eu).get(f"/api/v1/datasets/{draft.id}/").status_code == 404

    assert upload_file(provider, draft.id).status_code == 201
    published = provider.post(f"/api/v1/datasets/{draft.id}/publish/")
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert client_for(buyer_eu).get(f"/api/v1/datasets/{draft.id}/").status_code == 200


def test_a_draft_offered_only_for_computation_also_needs_its_file(client_for, provider_cn):
    draft = DatasetFactory(
        provider=provider_cn.organisation, status=Dataset.Status.DRAFT, with_file=False, subject_jurisdictions=["CN"],
        pi_duties_attested=True, currency="USD",
    )
    offer = {"table_name": "orders", "columns": [{"name": "city", "role": "dimension"}], "min_group_size": 10,
             "max_result_rows": 100, "price": "800.00", "currency": "USD", "pricing": "per_period", "term_days": 30}
    provider = client_for(provider_cn)
    offered = provider.put(f"/api/v1/datasets/{draft.id}/compute-offer/", offer, format="json")
    assert offered.status_code in (200, 400), offered.json()  # whatever the offer's own checks say

    refused = provider.post(f"/api/v1/datasets/{draft.id}/publish/")

    assert refused.status_code == 409 and refused.json()["code"] == "dataset_has_no_file"


# --- a listing shows its versions ---------------------------------------------------------------


def test_anyone_who_sees_the_listing_sees_its_versions_facts_but_not_the_file(client_for, provider_eu, buyer_us):
    dataset = DatasetFactory(provider=provider_eu.organisation, with_file=False)
    provider = client_for(provider_eu)
    v1 = b"id,city\n1,Berlin\n"
    v2 = b"id,city\n1,Berlin\n2,Hamburg\n"
    assert upload_file(provider, dataset.id, name="Kunden.csv", content=v1).status_code == 201
    assert upload_file(provider, dataset.id, name="kunden.csv.gz", content=v2).status_code == 201

    buyer = client_for(buyer_us)  # holds no grant
    detail = buyer.get(f"/api/v1/datasets/{dataset.id}/").json()

    assert detail["files"] == {
        "count": 2,
        "formats": ["text/csv", "application/gzip"],
        "total_bytes": len(v1) + len(v2),
        "latest_version": 2,
        "latest_uploaded_at": detail["versions"][0]["uploaded_at"],
    }
    assert [
        {k: v for k, v in version.items() if k != "uploaded_at"} for version in detail["versions"]
    ] == [
        {"version": 2, "content_type": "application/gzip", "format": "csv.gz", "size": len(v2),
         "sha256": hashlib.sha256(v2).hexdigest()},
        {"version": 1, "content_type": "text/csv", "format": "csv", "size": len(v1),
         "sha256": hashlib.sha256(v1).hexdigest()},
    ]
    assert all(v["uploaded_at"] for v in detail["versions"])
    assert "Kunden" not in str(detail)  # facts, not the provider's file names
    assert detail["sample"] is None
    listed = next(d for d in buyer.get("/api/v1/datasets/").json()["results"] if d["id"] == str(dataset.id))
    assert listed["files"] == detail["files"] and "versions" not in listed
    # The file itself still needs a grant.
    assert buyer.get(f"/api/v1/datasets/{dataset.id}/files/").json()["code"] == "grant_required"


def test_a_listing_without_data_says_so(client_for, provider_eu):
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT, with_file=False)

    detail = client_for(provider_eu).get(f"/api/v1/datasets/{draft.id}/").json()

    assert detail["files"] == {"count": 0, "formats": [], "total_bytes": 0, "latest_version": None,
                               "latest_uploaded_at": None}
    assert detail["versions"] == []


def test_the_list_costs_the_same_statements_however_many_listings_have_files_and_samples(
    client_for, provider_eu, buyer_us
):
    buyer, provider = client_for(buyer_us), client_for(provider_eu)
    first = DatasetFactory(provider=provider_eu.organisation)
    assert post_sample(provider, first.id).status_code == 201
    buyer.get("/api/v1/datasets/")  # warm: the session lookup is cached after the first request

    def statements() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert buyer.get("/api/v1/datasets/").status_code == 200
        return len(ctx.captured_queries)

    few = statements()
    for _ in range(4):
        dataset = DatasetFactory(provider=provider_eu.organisation)
        upload_file(provider, dataset.id)
        assert post_sample(provider, dataset.id).status_code == 201

    assert statements() == few


# --- samples ------------------------------------------------------------------------------------


def test_anyone_who_sees_the_listing_downloads_the_sample_without_buying(client_for, provider_eu, buyer_us, officer):
    dataset = DatasetFactory(provider=provider_eu.organisation)

    uploaded = post_sample(client_for(provider_eu), dataset.id)

    assert uploaded.status_code == 201, uploaded.json()
    digest = hashlib.sha256(SAMPLE).hexdigest()
    assert uploaded.json()["sha256"] == digest and uploaded.json()["size"] == len(SAMPLE)
    assert uploaded.json()["contains_personal_data"] is False
    buyer = client_for(buyer_us)
    listed = buyer.get(f"/api/v1/datasets/{dataset.id}/").json()["sample"]
    assert listed["sha256"] == digest and listed["format"] == "csv"
    assert listed["download"] == f"/api/v1/datasets/{dataset.id}/sample/"

    response = buyer.get(listed["download"], HTTP_ACCEPT="application/octet-stream")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == SAMPLE
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Length"] == str(len(SAMPLE))
    assert response["ETag"] == f'"{digest}"'
    assert "attachment" in response["Content-Disposition"] and "sample.csv" in response["Content-Disposition"]
    assert buyer.get(listed["download"], HTTP_IF_NONE_MATCH=f'"{digest}"').status_code == 304
    head = buyer.head(listed["download"])
    assert head.status_code == 200 and head["Content-Length"] == str(len(SAMPLE))
    downloads = AuditEvent.objects.filter(subject_id=str(dataset.id), kind="dataset.sample_downloaded")
    assert [e.actor_label for e in downloads] == [buyer_us.user.username]  # HEAD and 304 send nothing
    assert client_for(officer).get(listed["download"]).status_code == 200


def test_a_replaced_sample_serves_the_new_bytes_and_a_deleted_one_is_gone(client_for, provider_eu, buyer_us, media):
    dataset = DatasetFactory(provider=provider_eu.organisation)
    provider, buyer = client_for(provider_eu), client_for(buyer_us)
    assert post_sample(provider, dataset.id).status_code == 201
    replaced = post_sample(provider, dataset.id, content=b"a,b\n1,2\n", name="v2.csv")
    assert replaced.status_code == 201
    assert DatasetSample.objects.filter(dataset=dataset).count() == 1
    assert b"".join(buyer.get(f"/api/v1/datasets/{dataset.id}/sample/").streaming_content) == b"a,b\n1,2\n"

    assert provider.delete(f"/api/v1/datasets/{dataset.id}/sample/").status_code == 204

    gone = buyer.get(f"/api/v1/datasets/{dataset.id}/sample/")
    assert gone.status_code == 404 and gone.json()["code"] == "dataset_sample_not_found"
    assert buyer.get(f"/api/v1/datasets/{dataset.id}/").json()["sample"] is None
    again = provider.delete(f"/api/v1/datasets/{dataset.id}/sample/")
    assert again.status_code == 404 and again.json()["code"] == "dataset_sample_not_found"
    kinds = list(
        AuditEvent.objects.filter(subject_id=str(dataset.id), kind__startswith="dataset.sample_")
        .order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["dataset.sample_uploaded", "dataset.sample_uploaded", "dataset.sample_downloaded",
                     "dataset.sample_deleted"]


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"contains_personal_data": "true"}, "sample_personal_data_refused", "contains_personal_data"),
    ({"contains_personal_data": ""}, None, "contains_personal_data"),
])
def test_a_sample_declared_personal_or_undeclared_is_refused_and_nothing_is_stored(
    client_for, provider_eu, media, fields, code, field
):
    dataset = DatasetFactory(provider=provider_eu.organisation)  # personal data: the sample must say it is not

    response = post_sample(client_for(provider_eu), dataset.id, **fields)

    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    if code:
        assert response.json()["code"] == code
    assert not DatasetSample.objects.exists()
    assert not (media / "samples").exists()


def test_the_declaration_is_required(client_for, provider_eu):
    dataset = DatasetFactory(provider=provider_eu.organisation)
    response = client_for(provider_eu).post(
        f"/api/v1/datasets/{dataset.id}/sample/", {"file": SimpleUploadedFile("s.csv", SAMPLE)}, format="multipart"
    )
    assert response.status_code == 400 and "contains_personal_data" in response.json()["fields"]
    assert not DatasetSample.objects.exists()


def test_a_sample_over_the_cap_or_empty_is_refused(client_for, provider_eu, settings):
    settings.ELEMENTA_SAMPLE_MAX_BYTES = 10
    dataset = DatasetFactory(provider=provider_eu.organisation)
    provider = client_for(provider_eu)

    too_big = post_sample(provider, dataset.id, content=b"x" * 11)
    empty = post_sample(provider, dataset.id, content=b"")

    assert too_big.status_code == 400 and too_big.json()["code"] == "upload_rejected"
    assert too_big.json()["fields"]["file"] == ["at most 10 bytes"]
    assert empty.status_code == 400 and empty.json()["code"] == "upload_rejected"
    assert not DatasetSample.objects.exists()


def test_only_the_datasets_provider_changes_its_sample(client_for, provider_eu, provider_cn, buyer_us):
    published = DatasetFactory(provider=provider_eu.organisation)
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT)
    own = client_for(provider_eu)
    assert post_sample(own, published.id).status_code == 201
    assert post_sample(own, draft.id).status_code == 201  # a draft may have a sample before publishing

    other_provider, buyer = client_for(provider_cn), client_for(buyer_us)
    assert post_sample(other_provider, published.id).status_code == 403  # visible, not theirs
    assert other_provider.delete(f"/api/v1/datasets/{published.id}/sample/").status_code == 403
    assert post_sample(buyer, published.id).status_code == 403  # not a provider
    assert buyer.delete(f"/api/v1/datasets/{published.id}/sample/").status_code == 403
    assert post_sample(other_provider, draft.id).status_code == 404  # a draft they cannot see
    assert other_provider.delete(f"/api/v1/datasets/{draft.id}/sample/").status_code == 404
    assert DatasetSample.objects.filter(dataset=published).get().sha256 == hashlib.sha256(SAMPLE).hexdigest()
    assert DatasetSample.objects.filter(dataset=draft).exists()


def test_a_drafts_sample_is_not_visible_to_others(client_for, provider_eu, provider_cn, buyer_us):
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT)
    assert post_sample(client_for(provider_eu), draft.id).status_code == 201

    for member in (buyer_us, provider_cn):
        response = client_for(member).get(f"/api/v1/datasets/{draft.id}/sample/")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client_for(provider_eu).get(f"/api/v1/datasets/{draft.id}/sample/").status_code == 200
    assert client_for(None).get(f"/api/v1/datasets/{draft.id}/sample/").status_code == 401
    assert not AuditEvent.objects.filter(kind="dataset.sample_downloaded", actor_label=buyer_us.user.username).exists()
