"""Idempotency-Key on POSTs that create something: a retry never acts twice."""

import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from marketplace.models import Deposit, IdempotencyRecord, LedgerTransaction, Trade
from tests.evidence import PDF, evidence_payload
from tests.factories import MembershipFactory, OrganisationFactory, fund

pytestmark = pytest.mark.django_db


def post(client, path, body, key):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retried_purchase_returns_the_first_response_and_holds_once(client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)

    first = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "order-42")
    again = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "order-42")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Trade.objects.count() == 1 and LedgerTransaction.objects.filter(kind="hold").count() == 1


def test_the_same_key_for_a_different_request_is_a_422(client_for, buyer_eu, eu_personal, eu_public):
    buyer = client_for(buyer_eu)
    post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "k-1")

    other = post(buyer, "/api/v1/trades/", {"dataset": str(eu_public.id)}, "k-1")

    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Trade.objects.count() == 1


def test_keys_are_scoped_to_the_caller(client_for, buyer_eu, buyer_us, eu_personal):
    first = post(client_for(buyer_eu), "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "shared-key")
    second = post(client_for(buyer_us), "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "shared-key")

    assert first.status_code == second.status_code == 201 and first.json()["id"] != second.json()["id"]


def test_a_refusal_is_replayed_too_and_changes_nothing(client_for, eu_personal):
    poor = MembershipFactory(organisation=OrganisationFactory(jurisdiction="DE"), role="buyer", funded=False)
    buyer = client_for(poor)

    first = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "broke")
    fund(poor.organisation, "500.00", ("EUR",))
    again = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "broke")
    fresh = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "broke-2")

    assert first.status_code == again.status_code == 409 and again.json()["code"] == "insufficient_funds"
    assert fresh.status_code == 201


def test_a_duplicate_while_the_first_is_running_is_a_409(client_for, buyer_eu, eu_personal):
    from rest_framework.parsers import JSONParser
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from marketplace.idempotency import _fingerprint

    body = {"dataset": str(eu_personal.id)}
    first = Request(APIRequestFactory().post("/api/v1/trades/", body, format="json"), parsers=[JSONParser()])
    IdempotencyRecord.objects.create(
        user=buyer_eu.user, key="busy", fingerprint=_fingerprint(first)
    )  # the first is still running

    response = post(client_for(buyer_eu), "/api/v1/trades/", body, "busy")

    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_in_use"
    assert not Trade.objects.exists()


def test_an_abandoned_claim_can_be_taken_over(client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)
    first = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "crashy")
    record = IdempotencyRecord.objects.get(key="crashy")
    # as if the request had died mid-way: its claim is left in progress
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status="in_progress", response_body=None, response_status=None
    )

    busy = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "crashy")
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    taken_over = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "crashy")

    assert first.status_code == 201
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_use"
    assert taken_over.status_code == 201


def test_keys_expire_after_their_retention(settings, client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)
    post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "old")
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.ELEMENTA_IDEMPOTENCY_TTL + 1)
    )

    again = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "old")

    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Trade.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_malformed_keys_are_400s(client_for, buyer_eu, eu_personal, key):
    response = post(client_for(buyer_eu), "/api/v1/trades/", {"dataset": str(eu_personal.id)}, key)

    assert response.status_code == 400 and response.json()["code"] == "idempotency_key_invalid"
    assert not Trade.objects.exists()


def test_deposits_documents_and_refunds_honour_keys_too(client_for, buyer_us, officer, eu_personal):
    from marketplace.services.settlement import trade_settle
    from marketplace.services.trade_transitions import trade_transition

    buyer = client_for(buyer_us)
    for _ in range(2):
        post(buyer, "/api/v1/wallet/deposits/", {"amount": "10.00", "currency": "EUR"}, "dep-1")
    assert Deposit.objects.filter(status="pending").count() == 1

    trade_id = post(buyer, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "t-1").json()["id"]
    trade_transition(trade_id=trade_id, to="needs_documents", actor_label="system:test")
    for _ in range(2):
        response = buyer.post(
            f"/api/v1/trades/{trade_id}/documents/",
            evidence_payload("eu_scc"),
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="doc-1",
        )
        assert response.status_code == 201
    assert Trade.objects.get(pk=trade_id).documents.count() == 1
    other_file = evidence_payload(
        "eu_scc", file=SimpleUploadedFile("eu_scc.pdf", PDF + b"%changed", content_type="application/pdf")
    )
    reused = buyer.post(
        f"/api/v1/trades/{trade_id}/documents/", other_file, format="multipart", HTTP_IDEMPOTENCY_KEY="doc-1"
    )
    assert reused.status_code == 422  # same key, same file name, other content: a different request

    Trade.objects.filter(pk=trade_id).update(status="approved")  # as if checked again and allowed
    trade_settle(trade_id=trade_id)
    replies = [
        post(client_for(officer), f"/api/v1/trades/{trade_id}/refund/", {"reason": "duplicate order"}, "ref-1")
        for _ in range(2)
    ]
    assert [r.status_code for r in replies] == [200, 200]
    assert LedgerTransaction.objects.filter(trade_id=trade_id, kind="refund").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_duplicates_create_one_trade(buyer_eu, eu_personal, no_trade_work):
    # The race is on the idempotency claim; the session's worker must not act on the trade meanwhile.
    from rest_framework.test import APIClient

    from marketplace.services.sessions import session_create

    _, token = session_create(user=buyer_eu.user)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def attempt() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        barrier.wait()
        statuses.append(post(client, "/api/v1/trades/", {"dataset": str(eu_personal.id)}, "same-click").status_code)
        connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert Trade.objects.count() == 1
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1
