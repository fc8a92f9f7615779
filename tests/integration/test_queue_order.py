"""Queue order through a real worker: a re-check (a document) resets status_changed_at but not
waiting_since, so a trade waiting since the morning stays ahead of one from a minute ago."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.models import Trade
from tests.conftest import wait_for_status
from tests.evidence import accept_document, upload_document
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def buy(client, dataset) -> str:
    response = client.post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_a_recheck_keeps_a_trade_s_place_in_the_queue(
    celery_worker, rulepacks, client_for, officer, buyer_us, eu_personal
):
    other_us = MembershipFactory(
        organisation=OrganisationFactory(name="Austin Analytics", jurisdiction="US"), role="buyer"
    )
    morning, recent = buy(client_for(buyer_us), eu_personal), buy(client_for(other_us), eu_personal)
    wait_for_status(morning, {"needs_documents"})
    wait_for_status(recent, {"needs_documents"})
    now = timezone.now()
    six_hours_ago, a_minute_ago = now - timedelta(hours=6), now - timedelta(minutes=1)
    Trade.objects.filter(pk=morning).update(waiting_since=six_hours_ago, status_changed_at=six_hours_ago)
    Trade.objects.filter(pk=recent).update(waiting_since=a_minute_ago, status_changed_at=a_minute_ago)

    # the morning trade's buyer files its SCCs: a re-check by the worker, still missing the TIA
    # and an officer accepts them
    filed = upload_document(client_for(buyer_us), morning, "eu_scc", reference="SCC-1")
    accept_document(client_for(officer), filed["id"])
    rechecked = wait_for_status(morning, {"needs_documents"})  # the request moved it to checking; the worker back
    assert rechecked.waiting_since == six_hours_ago and rechecked.status_changed_at > a_minute_ago

    api = client_for(officer)
    queue = api.get("/api/v1/reviews/?waiting=true").json()["results"]

    assert [t["id"] for t in queue] == [morning, recent]
    assert (
        queue[0]["waiting_since"] == six_hours_ago.isoformat().replace("+00:00", "Z") and queue[0]["waiting_hours"] >= 6
    )
    an_hour_ago = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert [
        t["id"]
        for t in api.get("/api/v1/reviews/", {"waiting": "true", "waiting_since_before": an_hour_ago}).json()["results"]
    ] == [morning]
    assert [
        t["id"]
        for t in api.get("/api/v1/reviews/", {"waiting": "true", "waiting_since_after": an_hour_ago}).json()["results"]
    ] == [recent]
    assert [t["id"] for t in api.get("/api/v1/reviews/?waiting=true&older_than_hours=2").json()["results"]] == [morning]
