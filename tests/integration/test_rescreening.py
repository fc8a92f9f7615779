"""Re-screening end to end: an officer activates a rule-pack version over HTTP, and a
real Celery worker re-checks the open trades and flags the live grants it affects; a grant whose
trade would now be denied is suspended at once, and both parties are told by webhook.

Here rather than in tests/compliance because the worker is session-wide: once started, it takes
every task enqueued after it, which the direct-call concurrency tests must not see.
"""


import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import AuditEvent
from marketplace.models import GrantFlag, Membership, Rescreening, Trade
from tests.compliance.test_rulepack_lifecycle import (
    RULEPACKS,
    activate,
    backtested,
    draft_without_switzerland,
    eu_current,
    today,
)
from tests.conftest import wait_for_status
from tests.factories import MembershipFactory, OrganisationFactory
from tests.waiting import eventually


@pytest.fixture
def buyer_ch(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Zürich Analytics AG", jurisdiction="CH"),
        role=Membership.Role.BUYER,
    )


def wait_for(predicate, timeout: float = 30.0):
    return eventually(predicate, timeout=timeout, message="timed out waiting for the worker")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_activation_re_screens_through_the_worker(
    celery_worker, rulepacks, client_for, officer, second_officer, buyer_ch, buyer_us, eu_personal
):
    """HTTP activation → commit → signal → re-screening task → open trade re-checked by the worker,
    live grant flagged; no eager mode anywhere."""

    def purchase(buyer: Membership) -> str:
        response = client_for(buyer).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    to_swiss, to_us = purchase(buyer_ch), purchase(buyer_us)
    wait_for_status(to_swiss, {"settled"})
    wait_for_status(to_us, {"needs_documents"})
    api = client_for(officer)
    draft = draft_without_switzerland(api)
    backtested(api, draft["id"])

    # the author backtested it; a second officer, who wrote none of it, approves it by activating it
    activated = client_for(second_officer).post(
        f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": today()}, format="json"
    )

    assert activated.status_code == 200, activated.json()
    flag = wait_for(lambda: GrantFlag.objects.filter(grant__trade_id=to_swiss).first())
    assert flag.rulepack_ref == "eu@2026.12.01" and flag.decision["outcome"] == "needs_mechanism"
    run = wait_for(lambda: Rescreening.objects.filter(rulepack_id=draft["id"], finished_at__isnull=False).first())
    assert run.trades_rechecked == 1 and run.grants_flagged == 1

    def rechecked() -> bool:
        trade = Trade.objects.get(pk=to_us)
        return (trade.status == "needs_documents" and trade.decision is not None
                and trade.decision.rulepacks == ["sanctions@2026.11.27", "eu@2026.12.01"])

    wait_for(rechecked)
    moves = [(e.from_status, e.to_status, e.reason) for e in Trade.objects.get(pk=to_us).events.order_by("at", "id")]
    assert ("needs_documents", "checking", "rule pack eu@2026.12.01 activated") in moves
    assert moves[-1][:2] == ("checking", "needs_documents")
    assert [f["id"] for f in api.get("/api/v1/reviews/grants/").json()["results"]] == [str(flag.id)]


# --- a rule change that denies a live grant suspends it at once ---------------------------------


def draft_with_rule(api, rule: dict) -> dict:
    """An officer's draft of the EU pack with one more rule in front, in force today."""
    created = api.post(RULEPACKS, {"based_on": str(eu_current().id), "version": "2026.12.01"}, format="json")
    assert created.status_code == 201, created.json()
    draft = created.json()
    content = {**draft["content"], "effective_from": today(), "rules": [rule, *draft["content"]["rules"]]}
    edited = api.patch(f"{RULEPACKS}{draft['id']}/", {"content": content}, format="json")
    assert edited.status_code == 200, edited.json()
    return edited.json()


SWISS_DENIED = {"id": "EU-CH-SUSP", "outcome": "deny", "when": {"in": ["buyer.country", ["CH"]]},
                "citation": "Commission Decision (test) suspending the Swiss adequacy finding",
                "explanation": "transfers to {buyer.jurisdiction} are suspended"}
SWISS_REVIEWED = {
    "id": "EU-CH-REV",
    "outcome": "review",
    "continue": True,
    "when": {"in": ["buyer.country", ["CH"]]},
    "citation": "Commission notice (test)",
    "explanation": "transfers to {buyer.jurisdiction} need an officer's look",
}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def receiver(settings):
    from tests.marketplace.test_webhooks import Receiver

    # A local receiver, allowed as in development (the worker has the same setting).
    settings.ELEMENTA_WEBHOOK_ALLOWED_HOSTS = ("127.0.0.1",)
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def settled_swiss_purchase(client_for, provider_eu, buyer_ch, eu_personal) -> tuple[str, str]:
    """Buyer CH buys over HTTP; the worker checks and settles it. Returns (trade id, grant id)."""
    uploaded = client_for(provider_eu).post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("customers.csv", b"id,city\n1,Berlin\n")},
        format="multipart",
    )
    assert uploaded.status_code == 201, uploaded.json()
    bought = client_for(buyer_ch).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")
    assert bought.status_code == 201, bought.json()
    trade_id = bought.json()["id"]
    wait_for_status(trade_id, {"settled"})
    grant_id = client_for(buyer_ch).get(f"/api/v1/grants/?dataset={eu_personal.id}").json()["results"][0]["id"]
    return trade_id, grant_id


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_rule_change_that_denies_suspends_the_grant_and_tells_both_parties(
    celery_worker, rulepacks, media, receiver, client_for, officer, second_officer, provider_eu, buyer_ch, eu_personal,
):
    trade_id, grant_id = settled_swiss_purchase(client_for, provider_eu, buyer_ch, eu_personal)
    buyer, provider, api = client_for(buyer_ch), client_for(provider_eu), client_for(officer)
    for party in (buyer, provider):
        hook = party.post(
            "/api/v1/webhooks/", {"url": receiver.url, "events": ["grant.suspended", "grant.reinstated"]}, format="json"
        )
        assert hook.status_code == 201, hook.json()
    assert buyer.get(f"/api/v1/grants/{grant_id}/download/").status_code == 200

    draft = draft_with_rule(api, SWISS_DENIED)
    assert activate(api, client_for(second_officer), draft["id"], today()).status_code == 200

    wait_for(lambda: Rescreening.objects.filter(rulepack_id=draft["id"], finished_at__isnull=False).exists())
    download = buyer.get(f"/api/v1/grants/{grant_id}/download/")
    assert download.status_code == 403 and download.json()["code"] == "grant_suspended"
    assert buyer.get(f"/api/v1/datasets/{eu_personal.id}/files/").json()["code"] == "grant_suspended"
    grant = buyer.get(f"/api/v1/grants/{grant_id}/").json()
    assert (
        grant["status"] == "suspended"
        and grant["suspended_by"] == "system:rescreening"
        and "EU-CH-SUSP" in grant["suspended_reason"]
    )
    assert Trade.objects.get(pk=trade_id).status == "settled"  # nothing about the money changed
    # Both parties' endpoints are told, by the worker, after the suspension committed.
    delivered = [(r.json()["event"], r.json()["grant"]) for r in receiver.wait_for(2)]
    assert delivered == [("grant.suspended", grant_id)] * 2
    suspended = AuditEvent.objects.get(kind="grant.suspended", subject_id=grant_id)
    assert suspended.actor_label == "system:rescreening"
    # Officers find it in their queue: the flag and the suspended-grants list.
    assert [g["id"] for g in api.get("/api/v1/grants/?suspended=true").json()["results"]] == [grant_id]
    [flag] = api.get("/api/v1/reviews/grants/?status=open").json()["results"]
    assert flag["grant"] == grant_id and flag["grant_status"] == "suspended" and flag["decision"]["outcome"] == "deny"
    refused = api.post(f"/api/v1/reviews/grants/{flag['id']}/resolve/", {"note": "fine"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "grant_flag_suspended"

    # Neither party may lift it; an officer reinstates with a reason and downloads work again.
    for party in (buyer, provider):
        assert party.post(f"/api/v1/grants/{grant_id}/reinstate/", {"reason": "mine"}, format="json").status_code == 403
    no_reason = api.post(f"/api/v1/grants/{grant_id}/reinstate/", {}, format="json")
    reinstated = api.post(
        f"/api/v1/grants/{grant_id}/reinstate/", {"reason": "SCCs signed with the Swiss buyer"}, format="json"
    )
    again = api.post(f"/api/v1/grants/{grant_id}/reinstate/", {"reason": "twice"}, format="json")

    assert no_reason.status_code == 400 and "reason" in no_reason.json()["fields"]
    assert (
        reinstated.status_code == 200
        and reinstated.json()["status"] == "active"
        and reinstated.json()["suspended_at"] is None
    )
    assert again.status_code == 409 and again.json()["code"] == "grant_not_suspended"
    assert buyer.get(f"/api/v1/grants/{grant_id}/download/").status_code == 200
    assert api.get(f"/api/v1/reviews/grants/{flag['id']}/").json()["status"] == "resolved"
    assert sorted(r.json()["event"] for r in receiver.wait_for(4)[2:]) == ["grant.reinstated"] * 2
    back = AuditEvent.objects.get(kind="grant.reinstated", subject_id=grant_id)
    assert back.actor_label == officer.user.username and back.data["reason"] == "SCCs signed with the Swiss buyer"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_rule_change_that_only_needs_review_flags_without_suspending(
    celery_worker, rulepacks, media, client_for, officer, second_officer, provider_eu, buyer_ch, eu_personal,
):
    _trade_id, grant_id = settled_swiss_purchase(client_for, provider_eu, buyer_ch, eu_personal)
    api = client_for(officer)

    draft = draft_with_rule(api, SWISS_REVIEWED)
    assert activate(api, client_for(second_officer), draft["id"], today()).status_code == 200

    flag = wait_for(lambda: GrantFlag.objects.filter(grant_id=grant_id).first())
    assert flag.decision["outcome"] == "review"
    wait_for(lambda: Rescreening.objects.filter(rulepack_id=draft["id"], finished_at__isnull=False).exists())
    assert client_for(buyer_ch).get(f"/api/v1/grants/{grant_id}/").json()["status"] == "active"
    assert client_for(buyer_ch).get(f"/api/v1/grants/{grant_id}/download/").status_code == 200
    assert not AuditEvent.objects.filter(kind="grant.suspended").exists()
