"""Every action that changes rights, money or facts leaves an audit event naming who acted and on
what, visible to officers through the audit API, and the chain still verifies afterwards."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import AuditEvent, RulePack
from tests.factories import DatasetFactory, upload_file

pytestmark = pytest.mark.django_db

LISTING = {
    "title": "Shanghai retail panel 2026", "description": "Loyalty-card shoppers",
    "subject_jurisdictions": ["CN"], "storage_jurisdiction": "CN", "classification": "personal",
    "categories": ["contact"], "subjects": 50000, "price": "1200.00", "currency": "USD",
}


def audit_of(client, subject_type: str, subject_id: object) -> list[dict]:
    response = client.get(f"/api/v1/audit/?subject_type={subject_type}&subject_id={subject_id}&page_size=100")
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def assert_chain_verifies(client) -> None:
    report = client.get("/api/v1/audit/verify/").json()
    assert report["ok"] is True and report["events"] >= 1, report


def test_a_listing_s_life_is_audited_with_its_author(client_for, provider_cn, officer):
    provider, auditor = client_for(provider_cn), client_for(officer)
    dataset_id = provider.post("/api/v1/datasets/", LISTING, format="json").json()["id"]
    assert (
        provider.patch(
            f"/api/v1/datasets/{dataset_id}/",
            {"subjects": 60000, "pi_duties_attested": True, "title": "Shanghai panel"},
            format="json",
        ).status_code
        == 200
    )
    assert upload_file(provider, dataset_id).status_code == 201
    assert provider.post(f"/api/v1/datasets/{dataset_id}/publish/").status_code == 200
    assert provider.post(f"/api/v1/datasets/{dataset_id}/withdraw/").status_code == 200

    events = audit_of(auditor, "dataset", dataset_id)

    assert [e["kind"] for e in events] == [
        "dataset.created",
        "dataset.updated",
        "dataset.file_uploaded",
        "dataset.published",
        "dataset.withdrawn",
    ]
    assert {e["actor_label"] for e in events} == {provider_cn.user.username}
    created, updated, uploaded, published, withdrawn = (e["data"] for e in events)
    assert published["file"] == {"version": 1, "sha256": uploaded["sha256"], "size": uploaded["size"]}
    assert created["provider"] == str(provider_cn.organisation_id)
    assert created["facts"]["subjects"] == 50000 and created["facts"]["classification"] == "personal"
    assert created["terms"]["price"] == "1200.00"
    assert updated["changes"] == {
        "subjects": {"from": 50000, "to": 60000},
        "pi_duties_attested": {"from": False, "to": True},
        "title": {"from": "Shanghai retail panel 2026", "to": "Shanghai panel"},
    }
    assert published["attestation"] == {"pi_duties_attested": True, "required": True}
    assert published["facts"]["subjects"] == 60000
    assert withdrawn["from"] == "published"
    assert_chain_verifies(auditor)


def test_refused_changes_and_no_op_repeats_record_nothing(client_for, provider_cn, provider_eu, officer):
    provider = client_for(provider_cn)
    dataset_id = provider.post("/api/v1/datasets/", LISTING, format="json").json()["id"]
    assert provider.post(f"/api/v1/datasets/{dataset_id}/publish/").json()["code"] == "attestation_required"
    assert client_for(provider_eu).patch(
        f"/api/v1/datasets/{dataset_id}/", {"title": "mine now"}, format="json"
    ).status_code in (403, 404)
    assert (
        provider.patch(f"/api/v1/datasets/{dataset_id}/", {"subjects": 50000}, format="json").status_code == 200
    )  # unchanged

    published = DatasetFactory(provider=provider_cn.organisation, subject_jurisdictions=["CN"])
    locked = provider.patch(f"/api/v1/datasets/{published.id}/", {"subjects": 1}, format="json")
    assert locked.status_code == 409 and locked.json()["code"] == "dataset_facts_locked"
    assert provider.post(f"/api/v1/datasets/{published.id}/publish/").status_code == 200  # already published

    assert [e["kind"] for e in audit_of(client_for(officer), "dataset", dataset_id)] == ["dataset.created"]
    assert [e["kind"] for e in audit_of(client_for(officer), "dataset", published.id)] == [
        "dataset.file_uploaded"  # the factory's upload before publishing; nothing since
    ]


def test_an_officer_withdrawing_in_the_admin_is_audited(client, provider_eu, officer, eu_personal):
    officer.user.is_staff = True
    officer.user.save()
    client.force_login(officer.user)

    response = client.post(
        "/admin/marketplace/dataset/", {"action": "withdraw_listings", "_selected_action": [str(eu_personal.id)]}
    )

    assert response.status_code == 302
    eu_personal.refresh_from_db()
    assert eu_personal.status == "withdrawn"
    event = AuditEvent.objects.get(subject_type="dataset", subject_id=str(eu_personal.id), kind="dataset.withdrawn")
    assert event.actor_label == officer.user.username


def test_webhook_endpoint_changes_are_audited_without_the_secret(client_for, buyer_eu, officer):
    member, auditor = client_for(buyer_eu), client_for(officer)
    created = member.post(
        "/api/v1/webhooks/",
        {"url": "https://hooks.example.com/elementa", "events": ["trade.status_changed"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    endpoint_id, secrets = created.json()["id"], [created.json()["secret"]]
    assert (
        member.patch(
            f"/api/v1/webhooks/{endpoint_id}/", {"url": "https://hooks.example.com/v2"}, format="json"
        ).status_code
        == 200
    )
    rotated = member.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret/", {"keep_previous_hours": 2}, format="json")
    assert rotated.status_code == 200
    secrets.append(rotated.json()["secret"])
    assert member.delete(f"/api/v1/webhooks/{endpoint_id}/").status_code == 204

    events = audit_of(auditor, "webhook_endpoint", endpoint_id)

    assert [e["kind"] for e in events] == [
        "webhook.endpoint_created",
        "webhook.endpoint_updated",
        "webhook.secret_rotated",
        "webhook.endpoint_deleted",
    ]
    assert {e["actor_label"] for e in events} == {buyer_eu.user.username}
    assert events[0]["data"]["organisation"] == str(buyer_eu.organisation_id)
    assert events[1]["data"]["changes"] == {"url": {"from": "https://hooks.example.com/elementa", "to": "https://hooks.example.com/v2"}}
    assert events[2]["data"]["previous_secret_valid_until"]
    assert events[3]["data"]["url"] == "https://hooks.example.com/v2"
    everything = json.dumps(auditor.get("/api/v1/audit/?page_size=1000").json())
    assert all(secret not in everything for secret in secrets)
    assert_chain_verifies(auditor)


def test_a_rejected_deposit_is_audited_with_the_operator(client_for, buyer_eu, officer):
    deposit_id = (
        client_for(buyer_eu)
        .post("/api/v1/wallet/deposits/", {"amount": "500.00", "currency": "EUR"}, format="json")
        .json()["id"]
    )

    rejected = client_for(officer).post(
        f"/api/v1/wallet/deposits/{deposit_id}/reject/", {"note": "no transfer arrived"}, format="json"
    )

    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    events = [
        e
        for e in audit_of(client_for(officer), "organisation", buyer_eu.organisation_id)
        if e["kind"] == "deposit.rejected"
    ]
    assert len(events) == 1
    assert events[0]["actor_label"] == officer.user.username
    assert events[0]["data"] == {
        **events[0]["data"],
        "deposit": deposit_id,
        "amount": "500.00",
        "currency": "EUR",
        "note": "no transfer arrived",
    }
    again = client_for(officer).post(f"/api/v1/wallet/deposits/{deposit_id}/reject/", {"note": "twice"}, format="json")
    assert again.status_code == 409
    assert_chain_verifies(client_for(officer))


def test_only_officers_read_the_audit_trail(client_for, provider_cn, buyer_eu):
    client_for(provider_cn).post("/api/v1/datasets/", LISTING, format="json")

    for member in (provider_cn, buyer_eu):
        assert client_for(member).get("/api/v1/audit/?subject_type=dataset").status_code == 403


def test_a_new_data_file_is_audited_with_its_hash(client_for, provider_eu, officer, eu_personal, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    uploaded = client_for(provider_eu).post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("customers.csv", b"id,email\n1,a@example.com\n")},
        format="multipart",
    )
    assert uploaded.status_code == 201, uploaded.json()

    first, event = audit_of(client_for(officer), "dataset", eu_personal.id)  # the factory uploaded version 1
    assert (first["kind"], first["actor_label"]) == ("dataset.file_uploaded", "system")
    assert (event["kind"], event["actor_label"]) == ("dataset.file_uploaded", provider_eu.user.username)
    assert event["data"]["version"] == 2 and event["data"]["sha256"] == uploaded.json()["sha256"]


def test_editing_a_rule_pack_draft_is_audited(client_for, rulepacks, officer):
    api = client_for(officer)
    draft = api.post("/api/v1/rulepacks/", {"based_on": _active_pack_id(), "version": "2099.01.01"},
                     format="json").json()

    assert api.patch(f"/api/v1/rulepacks/{draft['id']}/", {"notes": "tightened"}, format="json").status_code == 200

    kinds = [(e["kind"], e["actor_label"]) for e in audit_of(api, "rulepack", draft["id"])]
    assert kinds == [("rulepack.drafted", officer.user.username), ("rulepack.draft_updated", officer.user.username)]


def _active_pack_id() -> str:
    pack = RulePack.objects.filter(status=RulePack.Status.ACTIVE, regime="EU").order_by("-effective_from").first()
    assert pack is not None
    return str(pack.id)
