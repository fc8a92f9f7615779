"""Dataset files and access grants: immutable numbered versions, grants issued at settlement with
the licence's validity, downloads that stream the exact bytes (ranges too) while a grant is active,
revocation, and a record of every download."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.errors import RangeNotSatisfiableError
from marketplace.models import AccessGrant, Dataset, DatasetFile, GrantDownload, Membership, Trade
from marketplace.services.dataset_files import dataset_file_content_type, dataset_file_upload
from marketplace.services.downloads import DownloadStream, byte_range_parse, grant_download_open
from marketplace.services.grants import grant_issue, grant_revoke_for_trade
from marketplace.services.settlement import trade_settle
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory

pytestmark = pytest.mark.django_db

CSV_V1 = b"customer_id,city,spend\n" + b"".join(b"%d,Berlin,%d.50\n" % (i, i * 7) for i in range(2000))
CSV_V2 = CSV_V1 + b"2000,Hamburg,13.00\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test stores its files in its own folder, through the default storage."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eu_personal(provider_eu: Membership) -> Dataset:
    """A listing with no file version yet, so these tests number versions from 1 themselves (publishing
    needs a file now; a listing published before that rule can still have none, and grants and
    downloads must handle it)."""
    return DatasetFactory.create(
        provider=provider_eu.organisation, title="German retail customers", classification="personal",
        subjects=50000, with_file=False,
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_version(provider: Membership, dataset: Dataset, content: bytes, name: str = "customers.csv") -> DatasetFile:
    return dataset_file_upload(dataset_id=dataset.id, membership=provider, upload=SimpleUploadedFile(name, content))


def settled(
    dataset: Dataset,
    buyer: Membership,
    *,
    pricing: str = "one_time",
    licence: dict | None = None,
    renews: Trade | None = None,
) -> Trade:
    """A trade taken through the real settlement service (which issues the grant)."""
    trade = TradeFactory.create(
        dataset=dataset,
        buyer=buyer.organisation,
        status=Trade.Status.APPROVED,
        pricing=pricing,
        licence=licence or {},
        renews=renews,
    )
    trade_settle(trade_id=trade.id)
    trade.refresh_from_db()
    return trade


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


# --- files and versions -----------------------------------------------------------------------


def test_each_upload_is_a_new_numbered_version_with_its_checksum(client_for, provider_eu, eu_personal):
    client = client_for(provider_eu)

    first = client.post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("customers.csv", CSV_V1)},
        format="multipart",
    )
    second = client.post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("customers.csv", CSV_V2)},
        format="multipart",
    )

    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    assert [(r.json()["version"], r.json()["sha256"], r.json()["size"]) for r in (first, second)] == [
        (1, sha(CSV_V1), len(CSV_V1)), (2, sha(CSV_V2), len(CSV_V2)),
    ]
    assert second.json()["content_type"] == "text/csv" and second.json()["uploaded_by"] == provider_eu.user.username
    v1, v2 = DatasetFile.objects.get(version=1), DatasetFile.objects.get(version=2)
    assert v1.file.name != v2.file.name  # same original name, two stored objects
    with v1.file.open("rb") as f:
        assert f.read() == CSV_V1  # the first version is untouched by the second upload
    listed = client.get(f"/api/v1/datasets/{eu_personal.id}/files/").json()
    assert [f["version"] for f in listed["results"]] == [2, 1]


def test_a_stored_version_cannot_be_changed(provider_eu, eu_personal):
    version = add_version(provider_eu, eu_personal, CSV_V1)

    version.sha256 = "0" * 64
    with pytest.raises(ValueError, match="immutable"):
        version.save()

    assert DatasetFile.objects.get().sha256 == sha(CSV_V1)


@pytest.mark.parametrize(("name", "expected"), [
    ("customers.csv", "text/csv"),
    ("customers.json", "application/json"),
    ("customers.csv.gz", "application/gzip"),  # served as what is on the wire
    ("README", "application/octet-stream"),
])
def test_the_content_type_comes_from_the_file_name(name, expected):
    assert dataset_file_content_type(name) == expected


@pytest.mark.parametrize(("content", "limit", "message"), [
    (b"", None, "the file is empty"),
    (b"x" * 11, 10, "at most 10 bytes"),
])
def test_empty_or_oversized_uploads_are_refused_and_nothing_is_stored(
    client_for, provider_eu, eu_personal, settings, media, content, limit, message
):
    if limit is not None:
        settings.ELEMENTA_MAX_DATASET_FILE_BYTES = limit

    response = client_for(provider_eu).post(f"/api/v1/datasets/{eu_personal.id}/files/",
                                            {"file": SimpleUploadedFile("x.csv", content)}, format="multipart")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "upload_rejected" and response.json()["fields"]["file"] == [message]
    assert not DatasetFile.objects.exists()
    assert not any(p.is_file() for p in media.rglob("*")) if media.exists() else True


def test_only_the_datasets_provider_uploads(client_for, provider_cn, buyer_us, eu_personal, provider_eu):
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT, with_file=False)

    def post(member, dataset):
        return client_for(member).post(
            f"/api/v1/datasets/{dataset.id}/files/", {"file": SimpleUploadedFile("a.csv", b"a")}, format="multipart"
        )

    assert post(buyer_us, eu_personal).status_code == 403           # not a provider
    assert post(provider_cn, eu_personal).status_code == 403        # visible in the catalogue, not theirs
    assert post(provider_cn, draft).status_code == 404              # a draft they cannot see
    assert not DatasetFile.objects.exists()


def test_who_sees_a_datasets_files(client_for, provider_eu, buyer_us, buyer_eu, officer, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    settled(eu_personal, buyer_us)  # one-time: covers version 1
    add_version(provider_eu, eu_personal, CSV_V2)

    def versions(member):
        response = client_for(member).get(f"/api/v1/datasets/{eu_personal.id}/files/")
        return response.status_code, [f["version"] for f in response.json().get("results", [])]

    assert versions(provider_eu) == (200, [2, 1])
    assert versions(officer) == (200, [2, 1])
    assert versions(buyer_us) == (200, [1])        # what its grant covers
    assert versions(buyer_eu) == (403, [])         # sees the listing, bought nothing
    assert client_for(buyer_eu).get(f"/api/v1/datasets/{eu_personal.id}/files/").json()["code"] == "grant_required"


# --- grants at settlement ---------------------------------------------------------------------


def test_a_one_time_purchase_with_a_term_is_granted_the_latest_version_for_the_term(provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    add_version(provider_eu, eu_personal, CSV_V2)

    trade = settled(eu_personal, buyer_us, licence={"term_days": 30, "resale": False})

    grant = trade.grant
    assert (grant.buyer, grant.dataset, grant.destination) == (buyer_us.organisation, eu_personal, trade.destination)
    assert grant.valid_from == trade.settled_at
    assert grant.valid_until == trade.settled_at + timedelta(days=30)
    assert grant.max_version == 2 and grant.status_at() == AccessGrant.Status.ACTIVE


def test_without_a_term_the_grant_does_not_expire_and_covers_the_first_upload_if_none_yet(buyer_us, eu_personal):
    trade = settled(eu_personal, buyer_us)

    assert (trade.grant.valid_until, trade.grant.max_version) == (None, 1)


def test_grant_issue_is_idempotent(buyer_us, eu_personal):
    trade = settled(eu_personal, buyer_us)

    assert grant_issue(trade=trade) == trade.grant
    assert AccessGrant.objects.count() == 1


def test_a_subscription_renewal_starts_when_the_current_term_ends(buyer_us, eu_personal):
    first = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30})

    renewal = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30}, renews=first)

    assert first.grant.max_version is None  # subscriptions cover every version
    assert renewal.grant.valid_from == first.grant.valid_until
    assert renewal.grant.valid_until == first.grant.valid_until + timedelta(days=30)
    assert renewal.grant.status_at() == AccessGrant.Status.PENDING


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_a_renewal_of_an_ended_term_starts_at_settlement(buyer_us, eu_personal, how):
    first = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30})
    past = timezone.now() - timedelta(days=40)
    if how == "expired":
        AccessGrant.objects.filter(pk=first.grant.pk).update(valid_from=past, valid_until=past + timedelta(days=30))
    else:
        grant_revoke_for_trade(trade=first, actor="system:refund", reason="refunded")

    renewal = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30}, renews=first)

    assert renewal.grant.valid_from == renewal.settled_at
    assert renewal.grant.status_at() == AccessGrant.Status.ACTIVE


# --- downloads --------------------------------------------------------------------------------


def test_a_valid_grant_streams_the_exact_bytes_and_records_the_download(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1, name="Kunden März.csv")
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/")

    assert response.status_code == 200
    body = body_of(response)
    assert sha(body) == sha(CSV_V1)
    assert response["Content-Length"] == str(len(CSV_V1))
    assert response["Content-Type"] == "text/csv"
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{sha(CSV_V1)}"'
    assert (
        response["Content-Disposition"].startswith("attachment;")
        and "Kunden%20M%C3%A4rz.csv" in response["Content-Disposition"]
    )
    download = GrantDownload.objects.get()
    assert (download.grant, download.version, download.user, download.username) == (
        grant,
        1,
        buyer_us.user,
        buyer_us.user.username,
    )
    assert (download.first_byte, download.last_byte, download.length, download.bytes_sent) == (
        0,
        len(CSV_V1) - 1,
        len(CSV_V1),
        len(CSV_V1),
    )
    assert download.completed_at is not None


def test_each_download_is_recorded_and_listed_for_the_provider(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    for range_header in ("", "bytes=0-99"):
        body_of(client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/", HTTP_RANGE=range_header))

    listed = client_for(provider_eu).get(f"/api/v1/grants/{grant.id}/downloads/").json()

    assert listed["count"] == 2
    assert [(d["range"], d["length"], d["bytes_sent"]) for d in listed["results"]] == [
        ("bytes=0-99", 100, 100),
        ("", len(CSV_V1), len(CSV_V1)),
    ]


def test_a_one_time_grant_serves_the_versions_it_covers(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant  # covers versions 1…1
    add_version(provider_eu, eu_personal, CSV_V2)
    client = client_for(buyer_us)

    default = client.get(f"/api/v1/grants/{grant.id}/download/")
    newer = client.get(f"/api/v1/grants/{grant.id}/download/?version=2")

    assert default.status_code == 200 and body_of(default) == CSV_V1 and default["X-Dataset-Version"] == "1"
    assert newer.status_code == 403 and newer.json()["code"] == "version_not_covered"
    assert client.get(f"/api/v1/grants/{grant.id}/").json()["download_version"] == 1


def test_a_subscription_serves_every_version(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30}).grant
    add_version(provider_eu, eu_personal, CSV_V2)
    client = client_for(buyer_us)

    assert body_of(client.get(f"/api/v1/grants/{grant.id}/download/")) == CSV_V2
    assert body_of(client.get(f"/api/v1/grants/{grant.id}/download/?version=1")) == CSV_V1
    missing = client.get(f"/api/v1/grants/{grant.id}/download/?version=9")
    assert missing.status_code == 404 and missing.json()["code"] == "dataset_file_not_found"
    assert client.get(f"/api/v1/grants/{grant.id}/download/?version=0").status_code == 400


def test_nothing_to_download_before_the_first_upload(client_for, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/")

    assert response.status_code == 404 and response.json()["code"] == "dataset_file_not_found"
    assert not GrantDownload.objects.exists()


SIZE = len(CSV_V1)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-9", 0, 9),
    ("bytes=100-", 100, SIZE - 1),
    ("bytes=-5", SIZE - 5, SIZE - 1),
    (f"bytes=10-{SIZE * 2}", 10, SIZE - 1),  # clipped to the file
    (f"bytes=-{SIZE * 2}", 0, SIZE - 1),      # a suffix longer than the file is the whole file
    (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
])
def test_a_range_request_gets_206_with_those_bytes(client_for, provider_eu, buyer_us, eu_personal, header, first, last):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/", HTTP_RANGE=header)

    assert response.status_code == 206
    assert body_of(response) == CSV_V1[first:last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response["Content-Length"] == str(last - first + 1)
    assert GrantDownload.objects.get().range_header == header


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=-0"])
def test_a_range_outside_the_file_is_416_and_not_recorded(client_for, provider_eu, buyer_us, eu_personal, header):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(
        f"/api/v1/grants/{grant.id}/download/", HTTP_RANGE=header, HTTP_ACCEPT="application/octet-stream"
    )

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response.json()["code"] == "range_not_satisfiable"
    assert not GrantDownload.objects.exists()


@pytest.mark.parametrize("headers", [
    {"HTTP_RANGE": "bytes=0-1,5-6"},                               # several ranges: the whole file
    {"HTTP_RANGE": "items=0-1"},                                   # another unit
    {"HTTP_RANGE": "bytes=9-2"},                                   # malformed
    {"HTTP_RANGE": "bytes=0-9", "HTTP_IF_RANGE": '"not-the-etag"'},  # the client's copy is another version
])
def test_ranges_the_server_ignores_get_the_whole_file(client_for, provider_eu, buyer_us, eu_personal, headers):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/", **headers)

    assert response.status_code == 200 and body_of(response) == CSV_V1 and "Content-Range" not in response


def test_if_range_with_the_current_etag_gets_the_range(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).get(
        f"/api/v1/grants/{grant.id}/download/", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{sha(CSV_V1)}"'
    )

    assert response.status_code == 206 and body_of(response) == CSV_V1[:10]


def test_head_answers_the_headers_and_records_nothing(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).head(f"/api/v1/grants/{grant.id}/download/")

    assert (
        response.status_code == 200 and response["Content-Length"] == str(SIZE) and response["Accept-Ranges"] == "bytes"
    )
    assert not GrantDownload.objects.exists()


def test_an_interrupted_download_records_what_was_sent(provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    stream = DownloadStream(grant_download_open(grant_id=grant.id, membership=buyer_us))
    stream.chunk_size = 1000

    next(stream)
    stream.close()  # the client went away

    download = GrantDownload.objects.get()
    assert (download.length, download.bytes_sent, download.completed_at) == (SIZE, 1000, None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", None),
        ("bytes=0-0", (0, 0)),
        ("bytes= 2 - 4", (2, 4)),
        ("BYTES=1-", (1, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=abc", None),
    ],
)
def test_byte_range_parse(header, expected):
    assert byte_range_parse(header, size=10) == expected


def test_byte_range_parse_unsatisfiable():
    with pytest.raises(RangeNotSatisfiableError) as raised:
        byte_range_parse("bytes=10-", size=10)
    assert raised.value.size == 10


# --- when a download is refused ---------------------------------------------------------------


def test_an_expired_grant_is_403(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us, licence={"term_days": 30}).grant
    start = timezone.now() - timedelta(days=31)
    AccessGrant.objects.filter(pk=grant.pk).update(valid_from=start, valid_until=start + timedelta(days=30))

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/")

    assert response.status_code == 403
    assert response.json()["code"] == "grant_inactive" and "expired on" in response.json()["message"]
    assert not GrantDownload.objects.exists()


def test_a_pending_renewal_is_403_until_its_term_starts(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    first = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30})
    renewal = settled(eu_personal, buyer_us, pricing="subscription", licence={"term_days": 30}, renews=first)

    response = client_for(buyer_us).get(f"/api/v1/grants/{renewal.grant.id}/download/")

    assert response.status_code == 403 and "starts on" in response.json()["message"]
    assert client_for(buyer_us).get(f"/api/v1/grants/{first.grant.id}/download/").status_code == 200


def test_a_revoked_grant_is_403_with_the_reason(client_for, provider_eu, officer, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "licence breach: resold", "refund": "none"}, format="json"
    )

    response = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/")

    assert response.status_code == 403
    assert response.json()["code"] == "grant_inactive" and "licence breach: resold" in response.json()["message"]


def test_another_organisations_user_gets_404(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    stranger = MembershipFactory(
        organisation=OrganisationFactory(name="Other Buyer", jurisdiction="US"), role=Membership.Role.BUYER
    )
    client = client_for(stranger)

    for response in (client.get(f"/api/v1/grants/{grant.id}/download/"), client.get(f"/api/v1/grants/{grant.id}/"),
                     client.post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "x"}, format="json")):
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_colleague_in_the_buying_organisation_may_download(client_for, provider_eu, buyer_us, eu_personal):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    colleague = MembershipFactory(organisation=buyer_us.organisation, role=Membership.Role.BUYER)

    assert client_for(colleague).get(f"/api/v1/grants/{grant.id}/download/").status_code == 200


@pytest.mark.parametrize("who", ["provider_eu", "officer"])
def test_the_provider_and_officers_see_a_grant_but_do_not_download_under_it(
    client_for, provider_eu, buyer_us, eu_personal, request, who
):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant
    client = client_for(request.getfixturevalue(who))

    assert client.get(f"/api/v1/grants/{grant.id}/").status_code == 200
    assert client.get(f"/api/v1/grants/{grant.id}/download/").status_code == 403


# --- revocation -------------------------------------------------------------------------------


def test_an_officer_revokes_with_a_reason_and_a_refund_decision(client_for, officer, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": " sanctions hit ", "refund": "none"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["grant_status"], body["refund"], body["decision_reason"], body["decided_by"]) == (
        "revoked", "revoked", "none", "sanctions hit", officer.user.username)
    grant.refresh_from_db()
    assert grant.revoked_by == officer.user and grant.revoked_at is not None and grant.revoked_reason == "sanctions hit"
    shown = client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/").json()
    assert (shown["status"], shown["revoked_reason"], shown["revocation_requests"][0]["refund"]) == (
        "revoked",
        "sanctions hit",
        "none",
    )


def test_an_officer_must_say_what_happens_to_the_money(client_for, officer, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(officer).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "sanctions hit"}, format="json"
    )

    assert response.status_code == 400 and "refund" in response.json()["fields"]
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_the_provider_only_asks_and_access_stays_until_an_officer_decides(
    client_for, provider_eu, buyer_us, eu_personal
):
    add_version(provider_eu, eu_personal, CSV_V1)
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(provider_eu).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": " licence breach "}, format="json"
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["grant_status"], body["reason"], body["requested_by"]) == (
        "pending",
        "active",
        "licence breach",
        provider_eu.user.username,
    )
    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert client_for(buyer_us).get(f"/api/v1/grants/{grant.id}/download/").status_code == 200


def test_the_buyer_cannot_revoke(client_for, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(buyer_us).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "changed my mind"}, format="json"
    )

    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.revoked_at is None


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "   "}])
def test_revoking_needs_a_reason(client_for, provider_eu, buyer_us, eu_personal, payload):
    grant = settled(eu_personal, buyer_us).grant

    response = client_for(provider_eu).post(f"/api/v1/grants/{grant.id}/revoke/", payload, format="json")

    assert response.status_code == 400 and "reason" in response.json()["fields"]


def test_a_revoked_grant_cannot_be_revoked_again(client_for, provider_eu, officer, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant
    client = client_for(officer)
    client.post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "first", "refund": "none"}, format="json")

    again = client.post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "second", "refund": "none"}, format="json")
    asked = client_for(provider_eu).post(f"/api/v1/grants/{grant.id}/revoke/", {"reason": "third"}, format="json")

    assert again.status_code == 409 and again.json()["code"] == "grant_already_revoked"
    assert asked.status_code == 409 and asked.json()["code"] == "grant_already_revoked"
    grant.refresh_from_db()
    assert grant.revoked_reason == "first"


def test_revoking_for_a_refunded_trade(provider_eu, buyer_us, eu_personal):
    grant = settled(eu_personal, buyer_us).grant

    grant_revoke_for_trade(trade=grant.trade, actor=provider_eu.user, reason="refunded: file was corrupt")
    grant_revoke_for_trade(trade=grant.trade, actor=None, reason="again")  # already revoked: the first reason stands
    grant_revoke_for_trade(
        trade=TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation), actor=None, reason="no grant"
    )  # no-op

    grant.refresh_from_db()
    assert (grant.revoked_reason, grant.revoked_by, grant.revoked_by_label) == (
        "refunded: file was corrupt",
        provider_eu.user,
        provider_eu.user.username,
    )


# --- listing ----------------------------------------------------------------------------------


def test_who_sees_which_grants(
    client_for, provider_eu, provider_cn, buyer_us, buyer_eu, officer, eu_personal, cn_personal
):
    eu_to_us = settled(eu_personal, buyer_us).grant
    cn_to_eu = settled(cn_personal, buyer_eu).grant

    def ids(member, query=""):
        return {g["id"] for g in client_for(member).get(f"/api/v1/grants/{query}").json()["results"]}

    assert ids(buyer_us) == {str(eu_to_us.id)}
    assert ids(buyer_eu) == {str(cn_to_eu.id)}
    assert ids(provider_eu) == {str(eu_to_us.id)}
    assert ids(provider_cn) == {str(cn_to_eu.id)}
    assert ids(officer) == {str(eu_to_us.id), str(cn_to_eu.id)}
    assert ids(officer, f"?dataset={cn_personal.id}") == {str(cn_to_eu.id)}


def test_the_active_filter(client_for, buyer_us, eu_personal, eu_public):
    active = settled(eu_personal, buyer_us).grant
    revoked = settled(eu_public, buyer_us).grant
    grant_revoke_for_trade(trade=revoked.trade, actor=None, reason="refunded")
    client = client_for(buyer_us)

    assert [g["id"] for g in client.get("/api/v1/grants/?active=true").json()["results"]] == [str(active.id)]
    assert [g["id"] for g in client.get("/api/v1/grants/?active=false").json()["results"]] == [str(revoked.id)]
    listed = {g["id"]: g for g in client.get("/api/v1/grants/").json()["results"]}
    assert (listed[str(active.id)]["status"], listed[str(revoked.id)]["status"]) == ("active", "revoked")


def test_the_grant_list_costs_the_same_queries_for_1_or_20_grants(client_for, provider_eu, buyer_us):
    def make(n):
        for _ in range(n):
            dataset = DatasetFactory(provider=provider_eu.organisation)
            trade = TradeFactory(
                dataset=dataset, buyer=buyer_us.organisation, status=Trade.Status.SETTLED, settled_at=timezone.now()
            )
            grant_issue(trade=trade)

    def queries():
        client = client_for(buyer_us)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/v1/grants/")
        assert response.status_code == 200
        return len(ctx.captured_queries), response.json()["count"]

    make(1)
    one, count_one = queries()
    make(19)
    twenty, count_twenty = queries()

    assert (count_one, count_twenty) == (1, 20)
    assert one == twenty


# --- concurrency (PostgreSQL row locks) -------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_get_consecutive_versions(provider_eu, eu_personal):
    from tests.integration.test_concurrency import race

    errors = race([lambda i=i: add_version(provider_eu, eu_personal, b"version %d\n" % i) for i in range(8)])

    assert errors == []
    assert sorted(DatasetFile.objects.values_list("version", flat=True)) == list(range(1, 9))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_settlements_issue_one_grant(buyer_us, eu_personal):
    from tests.integration.test_concurrency import race

    trade = TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation, status=Trade.Status.APPROVED)

    errors = race([lambda: trade_settle(trade_id=trade.id)] * 10)

    assert errors == []
    assert AccessGrant.objects.filter(trade=trade).count() == 1
