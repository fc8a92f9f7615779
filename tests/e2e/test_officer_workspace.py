"""End to end in a real browser: an officer logs in to the admin workspace, opens a trade from the
review queue, approves it with a reason, and watches the worker settle it.

Headless Chromium (Debian's `chromium`, which .ci/run installs) driven by Playwright; the Django
app runs in pytest-django's live server and the worker is the suite's real Celery process, both on
the test database. Skips, saying why, where Chromium or the playwright package is missing.
"""

import os
import time
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import Review
from marketplace.models import Membership, Trade
from marketplace.services.evidence_review import trade_document_review
from marketplace.services.trade_documents import trade_document_add
from marketplace.services.trades import trade_create
from tests.conftest import wait_for_status
from tests.factories import PASSWORD, MembershipFactory

CHROMIUM = Path(os.environ.get("ELEMENTA_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's `chromium` (.ci/run does) to run the browser test",
                allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install -r requirements.txt)"
)

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Headless in a container, as root, with no network beyond the live server.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
REASON = "Art. 9(2)(a): explicit consent records and the signed SCC with TIA checked"
SETTLE_TIMEOUT = 30.0  # seconds; the worker settles an approved trade in well under one


@pytest.fixture
def officer_at_desk(operator) -> Membership:
    """An officer with admin access (staff), not a superuser: what seed_demo makes of `officer`."""
    return MembershipFactory.create(
        organisation=operator, role=Membership.Role.OFFICER, user__username="officer-e2e", user__is_staff=True
    )


@pytest.fixture
def health_trade_in_review(celery_worker, rulepacks, operator, buyer_us, eu_health) -> Trade:
    """A US buyer's purchase of German health data: GDPR Art. 9 sends it to a person (EU-ART9-1)
    and the transfer needs SCCs and a TIA. The buyer files the signed documents, another officer
    accepts them, and the re-checked trade waits in review with every requirement met."""
    trade = trade_create(membership=buyer_us, dataset_id=eu_health.id)
    assert wait_for_status(trade.id, {"in_review", "needs_documents", "settled", "rejected"}).status == "in_review"
    reviewer = MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)
    for code, reference, text in [
        ("eu_scc", "SCC-2026-0415", b"Standard contractual clauses (Module 1), signed 2026-04-15\n"),
        ("eu_tia", "TIA-2026-0415", b"Transfer impact assessment: positive, 2026-04-15\n"),
    ]:
        document = trade_document_add(
            trade_id=trade.id,
            membership=buyer_us,
            code=code,
            reference=reference,
            approved_on=date(2026, 4, 15),
            upload=SimpleUploadedFile(f"{code}.txt", text),
        )
        trade_document_review(document_id=document.id, officer=reviewer.user, accept=True, reason="signed copy checked")
    rechecked = wait_for_status(trade.id, {"in_review", "needs_documents", "settled", "rejected"})
    assert (
        rechecked.status == "in_review"
        and rechecked.decision is not None
        and rechecked.decision.decision["requirements"] == []
    )
    return trade


def test_officer_approves_a_trade_in_review_and_sees_it_settle(
    live_server, officer_at_desk, health_trade_in_review, eu_health
):
    trade = health_trade_in_review
    username, title = officer_at_desk.user.username, eu_health.title
    screenshot = Path(settings.VAR_DIR) / "e2e-trade.png"
    screenshot.unlink(missing_ok=True)

    # No ORM calls inside this block: Playwright's sync API runs an event loop in this thread, and
    # Django refuses database access from async contexts. The live server answers from its own thread.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        try:
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.get_by_role("link", name="Review queue").first.click()
            page.get_by_role("link", name=title).click()  # the queue row opens the trade page

            status = page.locator("#trade-status")
            sync_api.expect(status).to_have_text("in_review")
            sync_api.expect(page.locator("#findings")).to_contain_text("EU-ART9-1")
            sync_api.expect(page.locator("#findings")).to_contain_text("GDPR Art. 9(1)")
            sync_api.expect(page.locator("#evidence")).to_contain_text("SCC-2026-0415")
            page.fill("textarea[name=reason]", REASON)
            page.screenshot(
                path=str(screenshot.with_name("e2e-review.png")), full_page=True
            )  # the form, before deciding
            page.get_by_role("button", name="Approve").click()
            sync_api.expect(page.locator("ul.messagelist")).to_contain_text("Approved")

            deadline = time.monotonic() + SETTLE_TIMEOUT
            while status.inner_text() != "settled":
                assert time.monotonic() < deadline, (
                    f"the trade page still shows {status.inner_text()!r} after {SETTLE_TIMEOUT}s"
                )
                time.sleep(0.5)
                page.reload()
            sync_api.expect(page.locator("#events")).to_contain_text(REASON)
            sync_api.expect(page.locator("#reviews")).to_contain_text(username)
            page.screenshot(path=str(screenshot), full_page=True)
        except Exception:
            page.screenshot(path=str(screenshot.with_name("e2e-failure.png")), full_page=True)
            raise
        finally:
            browser.close()

    settled = Trade.objects.get(pk=trade.pk)
    assert settled.status == "settled" and settled.settled_at is not None
    review = Review.objects.get(subject_id=trade.pk)
    assert (review.verdict, review.officer_id, review.reason) == ("approve", officer_at_desk.user_id, REASON)
    assert screenshot.stat().st_size > 10_000
