"""The compliance gate attacked the way a hostile buyer, provider or officer would, through the HTTP API.

Each test names the attack. Those that once worked are fixed in the services; the rest pin down
that the gate holds."""

import datetime
import threading

import pytest
from django.db import connection

from compliance.errors import SecondOfficerRequiredError
from marketplace.errors import EvidenceNotPendingError
from marketplace.models import Membership, OrganisationMechanism, Trade, TradeDocument
from marketplace.services.evidence_review import trade_document_review
from marketplace.services.trade_facts import trade_transfer_facts
from tests.conftest import wait_for_status
from tests.evidence import accept_document, accept_mechanism, evidence_payload, upload_document, upload_mechanism
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory

OPEN = {"settled", "rejected", "cancelled", "needs_documents", "in_review"}


def waiting_trade(buyer: Membership, dataset, status: str = Trade.Status.NEEDS_DOCUMENTS) -> Trade:
    return TradeFactory.create(dataset=dataset, buyer=buyer.organisation, status=status)


@pytest.fixture
def second_officer(operator) -> Membership:
    return MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)


@pytest.fixture
def operator_buyer(operator) -> Membership:
    """The operator's own procurement desk buys data too: its officers are then a party."""
    return MembershipFactory.create(organisation=operator, role=Membership.Role.BUYER)


# --- holes that were open -------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.ADMIN, Membership.Role.OFFICER])
def test_an_officer_or_admin_outside_the_operator_has_no_officer_powers(
    client_for, buyer_us, provider_eu, officer, eu_personal, role
):
    """Attack: the seller's admin (admin counted as an officer anywhere) accepts the buyer's SCC for its own
    sale, approves it, and reads every other organisation's trades and evidence."""
    insider = MembershipFactory(organisation=provider_eu.organisation, role=role)
    other = TradeFactory(
        dataset=DatasetFactory(), buyer=MembershipFactory().organisation, status=Trade.Status.IN_REVIEW
    )
    trade = waiting_trade(buyer_us, eu_personal)
    scc = upload_document(client_for(buyer_us), trade.id, "eu_scc")
    client = client_for(insider)

    assert client.post(f"/api/v1/documents/{scc['id']}/accept/", {"reason": "fine"}, format="json").status_code == 403
    assert client.post(f"/api/v1/trades/{other.id}/approve/", {"reason": "fine"}, format="json").status_code in (
        403,
        404,
    )
    assert client.get("/api/v1/reviews/").status_code == 403
    assert client.get("/api/v1/documents/").status_code == 403
    assert client.get(f"/api/v1/trades/{other.id}/").status_code == 404
    assert TradeDocument.objects.get().status == "pending"
    assert accept_document(client_for(officer), scc["id"])["status"] == "accepted"  # an operator's officer may


@pytest.mark.django_db
def test_officers_decide_nothing_of_their_own_organisations_trade(
    client_for, operator_buyer, officer, second_officer, eu_personal
):
    """Attack: the operator buys; a colleague officer accepts its evidence and approves the trade."""
    trade = waiting_trade(operator_buyer, eu_personal)
    scc = upload_document(client_for(operator_buyer), trade.id, "eu_scc")
    mechanism = upload_mechanism(client_for(operator_buyer), "eu_tia")

    for url in (f"/api/v1/documents/{scc['id']}/accept/", f"/api/v1/mechanisms/{mechanism['id']}/accept/"):
        refused = client_for(officer).post(url, {"reason": "fine"}, format="json")
        assert refused.status_code == 403 and refused.json()["code"] == "own_organisation"
    Trade.objects.filter(pk=trade.pk).update(status=Trade.Status.IN_REVIEW)
    for verdict in ("approve", "reject"):
        refused = client_for(second_officer).post(
            f"/api/v1/trades/{trade.id}/{verdict}/", {"reason": "ours"}, format="json"
        )
        assert refused.status_code == 403 and refused.json()["code"] == "own_organisation"
    trade.refresh_from_db()
    assert trade.status == Trade.Status.IN_REVIEW
    assert set(TradeDocument.objects.values_list("status", flat=True)) | set(
        OrganisationMechanism.objects.values_list("status", flat=True)
    ) == {"pending"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_withdrawing_an_accepted_standing_mechanism_rechecks_the_trades_that_relied_on_it(
    celery_worker, rulepacks, client_for, officer, eu_personal,
):
    """Attack: get the SCC accepted on file, let the re-check clear the requirement, delete the SCC,
    and have an officer approve on the stale decision."""
    buyer_ru = MembershipFactory(
        organisation=OrganisationFactory(name="Volga Data", jurisdiction="RU"), role=Membership.Role.BUYER
    )
    buyer = client_for(buyer_ru)
    trade_id = buyer.post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json").json()["id"]
    assert wait_for_status(trade_id, OPEN).decision.decision["requirements"] == [["eu_scc"], ["eu_tia"]]
    scc, tia = upload_mechanism(buyer, "eu_scc"), upload_mechanism(buyer, "eu_tia")
    accept_mechanism(client_for(officer), scc["id"])
    wait_for_status(trade_id, {"in_review"})
    accept_mechanism(client_for(officer), tia["id"])
    assert wait_for_status(trade_id, {"in_review"}).decision.decision["requirements"] == []

    assert buyer.delete(f"/api/v1/mechanisms/{scc['id']}/").status_code == 204

    assert wait_for_status(trade_id, {"in_review"}).decision.decision["requirements"] == [["eu_scc"]]
    refused = client_for(officer).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "cleared"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "requirements_outstanding"


# --- attacks the gate holds against ---------------------------------------------------------

@pytest.mark.django_db
def test_status_and_reviewer_cannot_be_sent_with_evidence(client_for, buyer_us, officer, eu_personal):
    """Mass assignment: `status=accepted`, a reviewer and a first acceptance in the multipart form. Each
    is refused by name (400 `unknown_field`) and nothing is stored."""
    trade = waiting_trade(buyer_us, eu_personal)
    forged = {"status": "accepted", "reviewed_by": officer.user.username, "first_accepted_by": str(officer.user.pk),
              "organisation": str(eu_personal.provider_id), "trade": str(waiting_trade(buyer_us, eu_personal).id)}
    client = client_for(buyer_us)

    document = client.post(f"/api/v1/trades/{trade.id}/documents/", evidence_payload("eu_scc", **forged),
                           format="multipart")
    mechanism = client.post("/api/v1/mechanisms/", evidence_payload("eu_scc", **forged), format="multipart")

    for refused in (document, mechanism):
        assert refused.status_code == 400 and refused.json()["code"] == "unknown_field", refused.json()
        assert set(refused.json()["fields"]) == set(forged)
        assert refused.json()["fields"]["status"] == ["read-only field"]
    assert not TradeDocument.objects.exists() and not OrganisationMechanism.objects.exists()
    assert trade_transfer_facts(trade=trade, trade_date=trade.created_at.date())["mechanisms"] == []


@pytest.mark.django_db
def test_evidence_has_no_edit_path_once_submitted(client_for, buyer_us, officer, eu_personal):
    """Swap the file or the dates after acceptance: there is no PUT or PATCH anywhere."""
    trade = waiting_trade(buyer_us, eu_personal)
    document = upload_document(client_for(buyer_us), trade.id, "eu_scc")
    mechanism = upload_mechanism(client_for(buyer_us), "eu_tia")
    accept_document(client_for(officer), document["id"])
    accept_mechanism(client_for(officer), mechanism["id"])

    change = {"valid_until": "2099-12-31", "code": "cn_security_assessment"}
    for who in (buyer_us, officer):
        for method in ("put", "patch"):
            for url in (f"/api/v1/documents/{document['id']}/", f"/api/v1/mechanisms/{mechanism['id']}/"):
                assert getattr(client_for(who), method)(url, change, format="json").status_code in (403, 405)
        assert client_for(who).delete(f"/api/v1/documents/{document['id']}/").status_code in (403, 405)
    again = client_for(buyer_us).post(
        f"/api/v1/trades/{trade.id}/documents/", evidence_payload("eu_scc"), format="multipart"
    )
    assert (
        again.status_code == 201 and again.json()["status"] == "pending"
    )  # a replacement is new evidence, reviewed anew
    assert TradeDocument.objects.get(pk=document["id"]).valid_until is None


@pytest.mark.django_db
def test_a_document_accepted_for_one_trade_counts_for_no_other(client_for, buyer_us, officer, eu_personal):
    first, second = waiting_trade(buyer_us, eu_personal), waiting_trade(buyer_us, eu_personal)
    accept_document(client_for(officer), upload_document(client_for(buyer_us), first.id, "eu_scc")["id"])

    assert [m["code"] for m in trade_transfer_facts(trade=first, trade_date=first.created_at.date())["mechanisms"]] == [
        "eu_scc"
    ]
    assert trade_transfer_facts(trade=second, trade_date=second.created_at.date())["mechanisms"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["EU_SCC", " eu_scc", "eu_scc ", "eu-scc", "Eu_Scc"])
def test_case_and_spacing_variants_of_a_code_are_refused(client_for, buyer_us, eu_personal, code):
    """A variant might dodge the two-officer rule (CN_SECURITY_ASSESSMENT) or match a requirement loosely."""
    trade = waiting_trade(buyer_us, eu_personal)

    document = client_for(buyer_us).post(
        f"/api/v1/trades/{trade.id}/documents/", {**evidence_payload("x"), "code": code}, format="multipart"
    )
    mechanism = client_for(buyer_us).post(
        "/api/v1/mechanisms/", {**evidence_payload("x"), "code": code.upper()}, format="multipart"
    )

    assert (document.status_code, mechanism.status_code) == (400, 400)
    assert not TradeDocument.objects.exists() and not OrganisationMechanism.objects.exists()


@pytest.mark.django_db
def test_parties_cannot_read_evidence_through_the_officers_endpoint(
    client_for, buyer_us, buyer_eu, provider_eu, eu_personal
):
    trade = waiting_trade(buyer_us, eu_personal)
    document = upload_document(client_for(buyer_us), trade.id, "eu_scc")

    for member in (buyer_us, buyer_eu, provider_eu):
        assert client_for(member).get(f"/api/v1/documents/{document['id']}/").status_code == 403
        assert client_for(member).get(f"/api/v1/documents/?trade={trade.id}").status_code == 403
    assert client_for(buyer_eu).get(f"/api/v1/trades/{trade.id}/documents/").status_code == 404


@pytest.mark.django_db
def test_a_regulators_approval_rejected_after_its_first_acceptance_never_counts(
    client_for, provider_cn, buyer_us, officer, second_officer, cn_personal,
):
    """The first acceptor changes its mind, or a second officer disagrees: the evidence ends rejected, once."""
    trade = waiting_trade(buyer_us, cn_personal)
    for who_rejects in (officer, second_officer):
        document = upload_document(client_for(provider_cn), trade.id, "cn_security_assessment")
        assert accept_document(client_for(officer), document["id"])["awaiting"] == "second_officer"
        rejected = client_for(who_rejects).post(
            f"/api/v1/documents/{document['id']}/reject/", {"reason": "forged seal"}, format="json"
        )
        assert rejected.json()["status"] == "rejected"
        late = client_for(second_officer).post(
            f"/api/v1/documents/{document['id']}/accept/", {"reason": "ok"}, format="json"
        )
        assert late.status_code == 409 and late.json()["code"] == "evidence_not_pending"
    trade.refresh_from_db()
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS
    assert trade_transfer_facts(trade=trade, trade_date=trade.created_at.date())["mechanisms"] == []


@pytest.mark.django_db
def test_a_mechanism_dated_in_the_future_satisfies_nothing_today(client_for, rulepacks, buyer_us, officer, eu_personal):
    buyer = client_for(buyer_us)
    accept_mechanism(client_for(officer), upload_mechanism(buyer, "eu_scc", approved_on="2099-01-01")["id"])
    accept_mechanism(client_for(officer), upload_mechanism(buyer, "eu_tia")["id"])

    preview = buyer.get(f"/api/v1/datasets/{eu_personal.id}/compliance-preview/").json()

    assert preview["requirements"] == [["eu_scc"]]


@pytest.mark.django_db
def test_claims_sent_with_a_purchase_are_not_facts(client_for, rulepacks, buyer_us, eu_personal):
    """`status`, `facts`, `declared_destinations`, a buyer jurisdiction and claimed mechanisms in POST /trades/."""
    body = {
        "dataset": str(eu_personal.id),
        "status": "approved",
        "buyer": str(eu_personal.provider_id),
        "facts": {"buyer": {"jurisdiction": "DE"}, "mechanisms": [{"code": "eu_scc"}]},
        "declared_destinations": ["DE"],
        "jurisdiction": "DE",
        "mechanisms": [{"code": "eu_scc"}, {"code": "eu_tia"}],
    }

    refused = client_for(buyer_us).post("/api/v1/trades/", body, format="json")

    assert refused.status_code == 400 and refused.json()["code"] == "unknown_field"
    assert set(refused.json()["fields"]) == {"status", "buyer", "facts", "declared_destinations", "jurisdiction"}
    assert not Trade.objects.exists()

    # The claims the endpoint does accept (intended mechanisms) are attestations, not facts.
    created = client_for(buyer_us).post(
        "/api/v1/trades/", {"dataset": body["dataset"], "mechanisms": body["mechanisms"]}, format="json"
    )
    assert created.status_code == 201
    trade = Trade.objects.get(pk=created.json()["id"])
    facts = trade_transfer_facts(trade=trade, trade_date=trade.created_at.date())
    assert (trade.status, trade.buyer_id, trade.destination) == (Trade.Status.CHECKING, buyer_us.organisation_id, "US")
    assert facts["buyer"]["jurisdiction"] == "US" and "declared_destinations" not in facts["buyer"]
    assert facts["mechanisms"] == []


def _race(fns: list) -> list[BaseException]:
    """Each fn in its own thread and connection, all released at once; what they raised."""
    barrier, errors = threading.Barrier(len(fns)), []

    def run(fn) -> None:
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_officer_racing_itself_cannot_be_both_acceptors_of_a_regulators_approval(
    no_trade_work, provider_cn, buyer_us, officer, second_officer, cn_personal,
):
    """Attack: the same officer fires many acceptances of a CAC assessment at once, hoping two land as
    the first and the second; then two officers race and exactly one pair of acceptances decides it."""
    trade = waiting_trade(buyer_us, cn_personal)
    document = TradeDocument.objects.create(
        trade=trade,
        organisation=provider_cn.organisation,
        uploaded_by=provider_cn.user,
        code="cn_security_assessment",
        reference="CAC-2026-1",
        approved_on=datetime.date(2026, 1, 5),
        sha256="0" * 64,
        size=1,
        content_type="application/pdf",
    )

    def accept(member: Membership):
        return lambda: trade_document_review(
            document_id=document.id, officer=member.user, accept=True, reason="checked"
        )

    errors = _race([accept(officer)] * 10)
    document.refresh_from_db()
    assert (document.status, document.first_accepted_by_id) == ("pending", officer.user.pk)
    assert len(errors) == 9 and {type(e) for e in errors} == {SecondOfficerRequiredError}

    errors = _race([accept(second_officer)] * 5 + [accept(officer)] * 5)
    document.refresh_from_db()
    assert (document.status, document.reviewed_by_id) == ("accepted", second_officer.user.pk)
    assert len(errors) == 9 and {type(e) for e in errors} <= {SecondOfficerRequiredError, EvidenceNotPendingError}
    trade.refresh_from_db()
    assert trade.status == Trade.Status.CHECKING
