"""The officer's workspace in the admin: who sees it, the queue and its filters, the trade page,
approve / reject through trade_review, and the rule-pack pages."""

from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import Review, RulePack, RulePackBacktest
from compliance.services.rulepacks import rulepack_draft_create
from marketplace.models import Membership, Trade
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trade_documents import trade_document_add
from marketplace.services.trades import trade_create
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

QUEUE = "/admin/marketplace/reviewitem/"


def page(trade: Trade) -> str:
    return f"/admin/marketplace/trade/{trade.pk}/change/"


def checked(buyer: Membership, dataset) -> Trade:
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id).id)
    assert trade is not None
    return trade


def staff(membership: Membership) -> Membership:
    membership.user.is_staff = True
    membership.user.save(update_fields=["is_staff"])
    return membership


def browser(membership: Membership, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(membership.user)
    return client


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def desk(officer: Membership) -> Client:
    """The officer, logged in to the admin (staff, not a superuser, no Django model permissions)."""
    return browser(staff(officer))


@pytest.fixture
def in_review(rulepacks, buyer_eu, eu_health) -> Trade:
    trade = checked(buyer_eu, eu_health)
    assert trade.status == "in_review"
    return trade


@pytest.fixture
def cn_important(provider_cn):
    """Notified important data: CN-IMP-1 needs a CAC security assessment (needs_approval)."""
    return DatasetFactory(provider=provider_cn.organisation, subject_jurisdictions=["CN"], classification="important",
                          categories=[], subjects=0, price="500.00", currency="USD")


# --- who sees it ------------------------------------------------------------------------------


def test_officers_see_the_workspace_without_being_superusers(desk, officer, in_review):
    assert not officer.user.is_superuser and not officer.user.user_permissions.exists()

    index = desk.get("/admin/")
    queue = desk.get(QUEUE)

    assert index.status_code == 200
    assert b"Review queue" in index.content and b"Rule packs" in index.content
    assert queue.status_code == 200
    assert [t.pk for t in queue.context["cl"].result_list] == [in_review.pk]
    assert desk.get(page(in_review)).status_code == 200
    assert desk.get("/admin/compliance/rulepack/").status_code == 200
    assert desk.get("/admin/marketplace/trade/").status_code == 200
    assert desk.get(f"/admin/marketplace/reviewitem/{in_review.pk}/change/")["Location"] == page(in_review)


@pytest.mark.parametrize("role", [Membership.Role.BUYER, Membership.Role.PROVIDER])
def test_other_staff_cannot_see_it(role, operator, in_review):
    outsider = browser(staff(MembershipFactory(role=role)))

    assert b"Review queue" not in outsider.get("/admin/").content
    assert outsider.get(QUEUE).status_code == 403
    assert outsider.get(page(in_review)).status_code == 403
    assert outsider.get(f"/admin/marketplace/trade/{in_review.pk}/evidence.json").status_code == 403
    assert (
        outsider.post(
            f"/admin/marketplace/trade/{in_review.pk}/review/", {"verdict": "approve", "reason": "x"}
        ).status_code
        == 403
    )
    assert Trade.objects.get(pk=in_review.pk).status == "in_review"


def test_an_officer_who_is_not_staff_is_sent_to_the_login(officer, in_review):
    response = browser(officer).get(QUEUE)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- the queue --------------------------------------------------------------------------------


def test_queue_filters(desk, rulepacks, buyer_eu, buyer_us, eu_health, eu_personal, provider_eu):
    old = checked(buyer_eu, eu_health)
    Trade.objects.filter(pk=old.pk).update(
        status_changed_at=timezone.now() - timedelta(days=3), waiting_since=timezone.now() - timedelta(days=3)
    )
    pricey = checked(buyer_eu, DatasetFactory(provider=provider_eu.organisation, classification="sensitive_personal",
                                              categories=["health"], subjects=10, price="9000.00"))
    waiting = checked(buyer_us, eu_personal)
    assert waiting.status == "needs_documents"

    def ids(query: str) -> list[object]:
        response = desk.get(f"{QUEUE}?{query}")
        assert response.status_code == 200
        return [t.pk for t in response.context["cl"].result_list]

    assert ids("") == [old.pk, pricey.pk]  # in review only, oldest first
    assert ids("queue=needs_documents") == [waiting.pk]
    assert ids("queue=all") == [old.pk, pricey.pk, waiting.pk]
    assert ids("regime=eu") == [old.pk, pricey.pk]
    assert ids("regime=cn") == []
    assert ids("outcome=review") == [old.pk, pricey.pk]
    assert ids("queue=all&outcome=needs_mechanism") == [waiting.pk]
    assert ids("destination=DE") == [old.pk, pricey.pk]
    assert ids("queue=all&destination=US") == [waiting.pk]
    assert ids("waiting=1d") == [old.pk]
    assert ids("waiting=7d") == []
    assert ids("amount=1k-10k") == [pricey.pk]
    assert ids("amount=lt1k") == [old.pk]
    assert desk.get(f"{QUEUE}?_facets=1&queue=all").status_code == 200  # "Show counts"


def test_queue_query_count_does_not_grow_with_rows(desk, rulepacks, buyer_eu, eu_health):
    checked(buyer_eu, eu_health)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert desk.get(QUEUE).status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for _ in range(4):
        checked(buyer_eu, eu_health)
    assert queries() == one


# --- the trade page ---------------------------------------------------------------------------


def test_trade_page_shows_facts_findings_with_citations_and_evidence(desk, in_review, buyer_eu):
    from django.core.files.uploadedfile import SimpleUploadedFile

    trade_document_add(
        trade_id=in_review.id,
        membership=buyer_eu,
        code="eu_scc",
        reference="CONSENT-2026-7",
        approved_on=date(2026, 1, 5),
        valid_until=None,
        upload=SimpleUploadedFile("consent.txt", b"explicit consent records\n"),
    )

    html = desk.get(page(in_review)).content.decode()

    assert "EU-ART9-1" in html and "GDPR Art. 9(1)" in html  # finding with its citation
    assert "sensitive_personal" in html and "health" in html  # facts
    assert "CONSENT-2026-7" in html  # evidence
    document = in_review.documents.get()
    assert document.sha256 in html
    download = desk.get(f"/admin/marketplace/trade/{in_review.pk}/documents/{document.pk}/file/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"explicit consent records\n"
    assert 'name="reason"' in html and 'value="approve"' in html and 'value="reject"' in html


def test_evidence_pack_download(desk, in_review):
    response = desk.get(f"/admin/marketplace/trade/{in_review.pk}/evidence.json")

    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    body = response.json()
    assert body["trade"]["id"] == str(in_review.pk)
    assert "EU-ART9-1" in [f["rule"] for f in body["decision"]["findings"]]


# --- approve and reject -----------------------------------------------------------------------


def test_approving_from_the_trade_page_records_the_review_through_the_service(desk, officer, in_review):
    response = desk.post(
        f"/admin/marketplace/trade/{in_review.pk}/review/",
        {"verdict": "approve", "reason": "Art. 9(2)(a) explicit consent checked", "grant_valid_days": "90"},
    )

    assert response.status_code == 302 and response["Location"] == page(in_review)
    trade = Trade.objects.get(pk=in_review.pk)
    assert trade.status == "approved"
    review = Review.objects.get(subject_id=trade.pk)
    assert (review.verdict, review.officer_id, review.reason, review.conditions) == (
        "approve", officer.user_id, "Art. 9(2)(a) explicit consent checked", {"grant_valid_days": 90})
    assert trade.events.last().reason == "Art. 9(2)(a) explicit consent checked"
    assert any(m.startswith("Approved") for m in texts(response))


def test_reject_requires_a_reason(desk, in_review):
    response = desk.post(f"/admin/marketplace/trade/{in_review.pk}/review/", {"verdict": "reject", "reason": "  "})

    assert response.status_code == 302
    assert Trade.objects.get(pk=in_review.pk).status == "in_review"
    assert not Review.objects.exists()
    assert any("Reason" in m and "required" in m for m in texts(response))


def test_reject_with_a_reason(desk, in_review):
    desk.post(
        f"/admin/marketplace/trade/{in_review.pk}/review/",
        {"verdict": "reject", "reason": "no Art. 9(2) condition for resale"},
    )

    assert Trade.objects.get(pk=in_review.pk).status == "rejected"


def test_a_service_error_is_shown_as_an_admin_message(desk, in_review):
    desk.post(f"/admin/marketplace/trade/{in_review.pk}/review/", {"verdict": "reject", "reason": "no"})

    again = desk.post(
        f"/admin/marketplace/trade/{in_review.pk}/review/", {"verdict": "approve", "reason": "changed my mind"}
    )

    assert any("trade_transition_not_allowed" in m and "rejected" in m for m in texts(again))
    assert Trade.objects.get(pk=in_review.pk).status == "rejected"


def test_the_review_form_is_csrf_protected(officer, in_review):
    client = browser(staff(officer), enforce_csrf_checks=True)

    response = client.post(f"/admin/marketplace/trade/{in_review.pk}/review/", {"verdict": "approve", "reason": "x"})

    assert response.status_code == 403
    assert Trade.objects.get(pk=in_review.pk).status == "in_review"


def test_a_finding_needing_a_regulators_approval_takes_two_different_officers(
    desk, operator, officer, rulepacks, provider_cn, cn_important
):
    """A Russian buyer of Chinese important data: the sanctions screen sends it to review, and the
    accepted CAC security assessment still marks the decision for four eyes."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from marketplace.services.evidence_review import trade_document_review

    buyer_ru = MembershipFactory(
        organisation=OrganisationFactory(name="Volga Data", jurisdiction="RU"), role=Membership.Role.BUYER
    )
    other = MembershipFactory(organisation=operator, role=Membership.Role.OFFICER)
    trade = checked(buyer_ru, cn_important)
    document = trade_document_add(
        trade_id=trade.id,
        membership=provider_cn,
        code="cn_security_assessment",
        reference="CAC-2026-441",
        approved_on=date(2026, 1, 5),
        upload=SimpleUploadedFile("cac.txt", b"CAC approval\n"),
    )
    for reviewer in (officer, other):
        trade_document_review(
            document_id=document.id, officer=reviewer.user, accept=True, reason="checked against the CAC register"
        )
    trade = trade_check_compliance(trade_id=trade.id)
    assert (trade.status, trade.decision.outcome, trade.decision.decision["requirements"]) == (
        "in_review",
        "review",
        [],
    )
    url = f"/admin/marketplace/trade/{trade.pk}/review/"
    assert "two different officers must approve" in desk.get(page(trade)).content.decode()

    first = desk.post(url, {"verdict": "approve", "reason": "sanctions screen cleared"})
    assert Trade.objects.get(pk=trade.pk).status == "in_review"
    assert any("second, different officer" in m for m in texts(first))
    same = desk.post(url, {"verdict": "approve", "reason": "again"})
    assert any("second_officer_required" in m for m in texts(same))

    browser(staff(other)).post(url, {"verdict": "approve", "reason": "confirmed"})
    assert Trade.objects.get(pk=trade.pk).status == "approved"


def test_a_trade_waiting_for_documents_cannot_be_approved_from_the_desk(desk, rulepacks, buyer_us, cn_important):
    trade = checked(buyer_us, cn_important)

    response = desk.post(f"/admin/marketplace/trade/{trade.pk}/review/", {"verdict": "approve", "reason": "urgent"})

    assert any("requirements_outstanding" in m for m in texts(response))
    assert Trade.objects.get(pk=trade.pk).status == "needs_documents"


# --- rule packs -------------------------------------------------------------------------------


def test_rule_pack_page_validates_backtests_and_shows_the_report(desk, officer, in_review):
    eu = RulePack.objects.get(regime="EU", version="2026.11.27")
    content = {**eu.content, "version": "2099.01.01", "effective_from": "2099-01-01",
               "rules": [r for r in eu.content["rules"] if r["id"] != "EU-ART9-1"]}
    draft = rulepack_draft_create(actor=officer.user, content=content)
    url = f"/admin/compliance/rulepack/{draft.pk}/"

    detail = desk.get(f"{url}change/").content.decode()
    assert "status" in detail and "draft" in detail and draft.checksum in detail
    assert "regime: EU" in detail  # the content as YAML
    validated = desk.post(f"{url}validate/")
    assert any(m.startswith(f"Validation of {draft.ref}: no problem") for m in texts(validated))
    backtested = desk.post(f"{url}backtest/", {"scope": "open"})
    assert any("1 would change" in m for m in texts(backtested))
    assert any("widens outcomes toward allow" in m and "EU-ART9-1" in m for m in texts(backtested))

    backtest = RulePackBacktest.objects.get(rulepack=draft)
    assert backtest.created_by_id == officer.user_id
    report = desk.get(f"{url}change/").content.decode()
    assert "EU-ART9-1" in report and str(in_review.pk)[:8] in report
    # Dropping a review rule moves outcomes toward allow: the report says so above the table.
    assert "This version widens outcomes toward allow" in report and "compared with eu@2026.11.27" in report
    assert officer.user.username in detail  # among those who wrote it (and so may not approve it)


def test_rule_pack_actions_from_the_list(desk, rulepacks):
    eu = RulePack.objects.get(regime="EU", version="2026.11.27")

    response = desk.post("/admin/compliance/rulepack/", {"action": "validate_packs", "_selected_action": [str(eu.pk)]})

    assert response.status_code == 302
    assert any("eu@2026.11.27" in m for m in texts(response))


def test_officers_accept_or_reject_evidence_from_the_trade_page(desk, officer, rulepacks, buyer_us, eu_personal):
    from django.core.files.uploadedfile import SimpleUploadedFile

    trade = checked(buyer_us, eu_personal)
    docs = [
        trade_document_add(
            trade_id=trade.id,
            membership=buyer_us,
            code=code,
            reference=f"{code}-1",
            approved_on=date(2026, 1, 5),
            upload=SimpleUploadedFile(f"{code}.txt", b"signed\n"),
        )
        for code in ("eu_scc", "eu_tia")
    ]
    html = desk.get(page(trade)).content.decode()
    assert html.count('class="evidence-decision"') == 2

    url = f"/admin/marketplace/trade/{trade.pk}/documents/{{}}/decide/"
    rejected = desk.post(url.format(docs[1].pk), {"verdict": "reject", "reason": "unsigned draft"})
    missing_reason = desk.post(url.format(docs[0].pk), {"verdict": "accept", "reason": ""})
    accepted = desk.post(url.format(docs[0].pk), {"verdict": "accept", "reason": "both signatures present"})

    assert any("Rejected" in m for m in texts(rejected)) and any(
        "reason is required" in m for m in texts(missing_reason)
    )
    assert any("Accepted" in m for m in texts(accepted))
    statuses = {d.code: (d.status, d.review_reason) for d in trade.documents.all()}
    assert statuses == {"eu_scc": ("accepted", "both signatures present"), "eu_tia": ("rejected", "unsigned draft")}
    assert Trade.objects.get(pk=trade.pk).status == "checking"  # the accepted SCC re-checks it
