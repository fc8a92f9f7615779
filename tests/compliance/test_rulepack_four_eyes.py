"""Segregation of duties on rule packs: activation needs a recent backtest of exactly the draft's
content and the approval of an officer who neither created nor edited it.

The running example is the one that matters most: a sanctions pack with every embargo list
emptied. One officer alone cannot switch the screen off, the backtest says in so many words what
it would open up, and only with a second officer's approval does it take effect."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from compliance.errors import SecondOfficerRequiredError
from compliance.models import RulePack, RulePackBacktest
from compliance.services.backtests import rulepack_backtest
from compliance.services.rulepacks import rulepack_activate, rulepack_draft_create
from marketplace.models import Membership
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.engine.conftest import base_facts
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

RULEPACKS = "/api/v1/rulepacks/"


def today() -> str:
    return timezone.localdate().isoformat()


@pytest.fixture
def author(client_for, officer):
    return client_for(officer)


@pytest.fixture
def second(client_for, second_officer):
    return client_for(second_officer)


@pytest.fixture
def editor_officer(operator) -> Membership:
    return MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)


def eu_draft(api) -> dict[str, Any]:
    base = RulePack.objects.get(regime="EU", version="2026.11.27")
    draft = api.post(RULEPACKS, {"based_on": str(base.id), "version": "2026.12.01"}, format="json").json()
    content = {**draft["content"], "effective_from": today()}
    content["parameters"] = {
        **content["parameters"],
        "full_adequacy": [c for c in content["parameters"]["full_adequacy"] if c != "CH"],
    }
    edited = api.patch(f"{RULEPACKS}{draft['id']}/", {"content": content}, format="json")
    assert edited.status_code == 200, edited.json()
    return edited.json()


def backtest(api, pack_id: str) -> dict[str, Any]:
    response = api.post(f"{RULEPACKS}{pack_id}/backtest/", {"scope": "period", "from": today()}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def activate(api, pack_id: str):
    return api.post(f"{RULEPACKS}{pack_id}/activate/", {"effective_from": today()}, format="json")


def test_activation_without_a_backtest_is_refused(author, second, rulepacks):
    draft = eu_draft(author)

    response = activate(second, draft["id"])
    approval = second.post(f"{RULEPACKS}{draft['id']}/approve/")

    assert response.status_code == 409 and response.json()["code"] == "backtest_required"
    assert "never been backtested" in response.json()["message"]
    assert approval.status_code == 409 and approval.json()["code"] == "backtest_required"
    assert RulePack.objects.get(pk=draft["id"]).status == "draft"


def test_a_backtest_of_earlier_content_does_not_count(author, second, rulepacks):
    draft = eu_draft(author)
    backtest(author, draft["id"])
    author.patch(
        f"{RULEPACKS}{draft['id']}/",
        {"content": {**draft["content"], "title": "EU, Switzerland dropped"}},
        format="json",
    )

    response = activate(second, draft["id"])

    assert response.status_code == 409 and response.json()["code"] == "backtest_required"
    assert "edited after its last backtest" in response.json()["message"]
    backtest(author, draft["id"])
    assert activate(second, draft["id"]).status_code == 200


def test_a_stale_backtest_does_not_count(settings, author, second, rulepacks):
    settings.ELEMENTA_BACKTEST_MAX_AGE_HOURS = 24
    draft = eu_draft(author)
    report = backtest(author, draft["id"])
    RulePackBacktest.objects.filter(pk=report["id"]).update(created_at=timezone.now() - timedelta(hours=25))

    response = activate(second, draft["id"])

    assert response.status_code == 409 and response.json()["code"] == "backtest_required"
    assert "25.0 hours old" in response.json()["message"] and "24 hours" in response.json()["message"]
    settings.ELEMENTA_BACKTEST_MAX_AGE_HOURS = 48
    assert activate(second, draft["id"]).status_code == 200


def test_neither_the_author_nor_an_editor_may_approve_or_activate_alone(
    client_for, author, second, editor_officer, second_officer, rulepacks
):
    draft = eu_draft(author)
    editor = client_for(editor_officer)
    editor.patch(f"{RULEPACKS}{draft['id']}/", {"content": {**draft["content"], "title": "EU, edited"}}, format="json")
    backtest(author, draft["id"])

    by_author = author.post(f"{RULEPACKS}{draft['id']}/approve/")
    by_editor = editor.post(f"{RULEPACKS}{draft['id']}/approve/")
    alone = activate(author, draft["id"])
    editor_alone = activate(editor, draft["id"])

    assert by_author.status_code == 409 and by_author.json()["code"] == "author_cannot_approve"
    assert by_editor.status_code == 409 and by_editor.json()["code"] == "author_cannot_approve"
    assert alone.status_code == 409 and alone.json()["code"] == "second_officer_required"
    assert editor_alone.status_code == 409 and editor_alone.json()["code"] == "second_officer_required"
    assert RulePack.objects.get(pk=draft["id"]).status == "draft"

    approved = second.post(f"{RULEPACKS}{draft['id']}/approve/")
    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert (
        body["approved_by"] == second_officer.user.username
        and body["approval_current"] is True
        and body["status"] == "draft"
    )
    assert set(body["editors"]) == {author_name(author), editor_officer.user.username}

    activated = activate(author, draft["id"])  # approved: the author may now put it in force
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    kinds = [e["kind"] for e in second.get(f"/api/v1/audit/?subject_id={draft['id']}").json()["results"]]
    assert kinds.index("rulepack.approved") < kinds.index("rulepack.activated")


def author_name(api) -> str:
    return api.get("/api/v1/me/").json()["username"]


def test_editing_after_approval_voids_it(author, second, rulepacks):
    draft = eu_draft(author)
    backtest(author, draft["id"])
    assert second.post(f"{RULEPACKS}{draft['id']}/approve/").status_code == 200

    edited = author.patch(
        f"{RULEPACKS}{draft['id']}/",
        {"content": {**draft["content"], "title": "EU, changed after approval"}},
        format="json",
    ).json()
    backtest(author, draft["id"])
    response = activate(author, draft["id"])

    assert edited["approved_by"] == "" and edited["approval_current"] is False
    assert response.status_code == 409 and response.json()["code"] == "second_officer_required"
    notes_only = author.patch(f"{RULEPACKS}{draft['id']}/", {"notes": "why"}, format="json")
    assert notes_only.status_code == 200
    assert second.post(f"{RULEPACKS}{draft['id']}/approve/").status_code == 200
    assert activate(author, draft["id"]).status_code == 200


def test_the_system_cannot_activate_a_draft_alone(rulepacks, officer):
    draft = rulepack_draft_create(actor=None, content=RulePack.objects.get(regime="EU", version="2026.11.27").content
                                  | {"version": "2026.12.01", "effective_from": today()})
    rulepack_backtest(pack_id=draft.id, actor=officer.user)

    with pytest.raises(SecondOfficerRequiredError):
        rulepack_activate(pack_id=draft.id, effective_from=timezone.localdate(), actor=None)


# --- the sanctions screen switched off ---------------------------------------------------------


def sanctions_emptied(api) -> dict[str, Any]:
    base = RulePack.objects.get(regime="SANCTIONS", version="2025.07.01")
    draft = api.post(RULEPACKS, {"based_on": str(base.id), "version": "2026.12.01"}, format="json").json()
    params: dict[str, list[Any]] = {name: [] for name in draft["content"]["parameters"]}
    content = {**draft["content"], "parameters": params, "effective_from": today()}
    edited = api.patch(f"{RULEPACKS}{draft['id']}/", {"content": content}, format="json")
    assert edited.status_code == 200, edited.json()
    return edited.json()


def test_emptying_the_embargo_lists_shows_in_the_backtest_and_needs_a_second_officer(
    client_for, author, second, rulepacks, officer, second_officer, buyer_ir, eu_public,
):
    denied = trade_check_compliance(trade_id=trade_create(membership=buyer_ir, dataset_id=eu_public.id).id)
    assert denied is not None and denied.decision.outcome == "deny"
    draft = sanctions_emptied(author)

    alone_without_backtest = activate(author, draft["id"])
    report = backtest(author, draft["id"])
    alone_with_backtest = activate(author, draft["id"])

    assert alone_without_backtest.status_code == 409 and alone_without_backtest.json()["code"] == "backtest_required"
    assert alone_with_backtest.status_code == 409 and alone_with_backtest.json()["code"] == "second_officer_required"
    widened = report["widened"]
    assert widened["widens"] is True and widened["compared_with"] == "sanctions@2026.11.27"
    assert {"IR", "CU", "KP", "SY", "RU"} <= set(widened["jurisdictions_removed"])
    assert "IR" in widened["lists"]["comprehensive_embargo"]
    assert widened["trades_less_restrictive"] == 1
    listed = author.get(f"{RULEPACKS}{draft['id']}/backtests/").json()["results"][0]
    assert listed["widened"]["jurisdictions_removed"] == widened["jurisdictions_removed"]

    def evaluate() -> Any:
        return author.post(
            "/api/v1/compliance/evaluate/", base_facts(buyer__jurisdiction="IR", trade_date=today()), format="json"
        )

    assert evaluate().json()["outcome"] == "deny"

    assert second.post(f"{RULEPACKS}{draft['id']}/approve/").status_code == 200
    activated = activate(author, draft["id"])

    assert activated.status_code == 200 and activated.json()["approved_by"] == second_officer.user.username
    after = evaluate().json()  # two officers did it, on the record: the embargo no longer denies
    assert after["outcome"] != "deny" and "SAN-US-1" not in {f["rule"] for f in after["findings"]}
    assert "sanctions@2026.12.01" in after["rulepacks"]
    again = trade_check_compliance(trade_id=trade_create(membership=buyer_ir, dataset_id=eu_public.id).id)
    assert again is not None and again.decision.outcome == "allow"
    approved = second.get(f"/api/v1/audit/?subject_id={draft['id']}&kind=rulepack.approved").json()["results"][0]
    assert approved["actor_label"] == second_officer.user.username and approved["data"]["widened"] is True


def test_a_narrowing_pack_does_not_claim_to_widen(author, rulepacks):
    draft = eu_draft(author)  # drops Switzerland from the adequacy list: stricter, not wider

    widened = backtest(author, draft["id"])["widened"]

    assert widened["widens"] is False and widened["jurisdictions_removed"] == [] and widened["rules_toward_allow"] == []
