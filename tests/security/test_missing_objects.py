"""An object that disappears while a request is handled is 404 `not_found`, never a 500.

The view finds the row, then it is deleted (by another request) before the service locks it: the
service's own "no such trade" and a Model.DoesNotExist from an ORM `.get()` both reach the client
as the standard error shape with code `not_found`."""

import uuid
from typing import Any

import pytest
from rest_framework.test import APIRequestFactory

from config.api import exception_handler
from config.errors import NotFoundError
from marketplace.models import Dataset, Trade
from marketplace.services import datasets as dataset_services
from marketplace.services import trades as trade_services
from marketplace.services.evidence_review import mechanism_review, trade_document_review
from marketplace.services.refunds import trade_refund_request
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory, TradeFactory

pytestmark = pytest.mark.django_db


def _deleted_first(model: type[Any], original: Any, key: str) -> Any:
    """Wrap a service so the row is gone by the time it runs, as if another request deleted it."""

    def service(**kwargs: Any) -> Any:
        model.objects.filter(pk=kwargs[key]).delete()
        return original(**kwargs)

    return service


def test_a_dataset_deleted_before_its_publication_is_404_not_found(client_for, provider_eu, monkeypatch):
    # No file version: a dataset with one cannot be deleted (its versions protect it).
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT, with_file=False)
    # dataset_publish reads the row with `.get()`: the model's DoesNotExist escapes the service.
    monkeypatch.setattr(
        dataset_services, "dataset_publish", _deleted_first(Dataset, dataset_services.dataset_publish, "dataset_id")
    )

    response = client_for(provider_eu).post(f"/api/v1/datasets/{draft.id}/publish/")

    assert response.status_code == 404, response.content
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_a_trade_deleted_before_its_cancellation_is_404_not_found(client_for, buyer_eu, eu_personal, monkeypatch):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, price=0)  # nothing held: deletable
    # trade_cancel locks the trade and finds nothing: the service raises the catalogue's NotFoundError.
    monkeypatch.setattr(trade_services, "trade_cancel", _deleted_first(Trade, trade_services.trade_cancel, "trade_id"))

    response = client_for(buyer_eu).post(
        f"/api/v1/trades/{trade.id}/cancel/", {"reason": "changed my mind"}, format="json"
    )

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found" and set(response.json()) == {"code", "message", "fields"}


@pytest.mark.parametrize("exc", [Trade.DoesNotExist("no trade 42"), Dataset.DoesNotExist()])
def test_the_error_renderer_maps_does_not_exist_to_404_not_found(exc):
    request = APIRequestFactory().get("/api/v1/anything/")
    response = exception_handler(exc, {"view": None, "request": request})

    assert response is not None and response.status_code == 404
    # The model's name and the internal message stay on the server.
    assert response.data == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_services_say_not_found_with_the_catalogue_error_not_the_models(officer, buyer_eu):
    missing = uuid.uuid4()
    calls = [
        lambda: trade_services.trade_renew(trade_id=missing, membership=buyer_eu),
        lambda: trade_services.trade_refund(trade_id=missing, officer=officer.user, reason="x"),
        lambda: trade_services.trade_cancel(trade_id=missing, actor=officer.user, reason="x"),
        lambda: trade_services.trade_review(trade_id=missing, officer=officer.user, approve=True, reason="x"),
        lambda: trade_refund_request(trade_id=missing, officer=officer.user, reason="x"),
        lambda: trade_transition(trade_id=missing, to=Trade.Status.CANCELLED, actor=officer.user),
        lambda: trade_document_review(document_id=missing, officer=officer.user, accept=True, reason="x"),
        lambda: mechanism_review(mechanism_id=missing, officer=officer.user, accept=True, reason="x"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as raised:
            call()
        assert raised.value.code == "not_found" and raised.value.status_code == 404
