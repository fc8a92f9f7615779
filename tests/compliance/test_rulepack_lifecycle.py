"""The rule-pack lifecycle: officers draft a version, validate it, backtest it against past and
open trades, and a second officer (who did not write it) approves and activates it with an
effective date; activation re-screens open trades and live grants.

The running example: a draft of the EU pack that drops Switzerland from the full-adequacy list.
A settled sale to a Swiss buyer was allowed (EU-ADQ-1); under the draft it would need SCCs and a
TIA (EU-SCC-1). Sales inside the EU are unaffected.
"""

import uuid
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.utils import timezone

from compliance.models import RulePack
from compliance.selectors.rulepacks import rulepacks_compiled
from compliance.services.backtests import rulepack_backtest
from compliance.services.rulepacks import rulepack_activate, rulepack_draft_create, rulepack_load
from marketplace.models import AccessGrant, GrantFlag, Membership, Rescreening, Trade
from marketplace.services.rescreening import rescreen_after_activation, rescreen_due
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.engine.conftest import base_facts
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

RULEPACKS = "/api/v1/rulepacks/"


def today() -> str:
    return timezone.localdate().isoformat()


def days_from_today(n: int) -> str:
    return (timezone.localdate() + timedelta(days=n)).isoformat()


@pytest.fixture
def buyer_ch(db: None) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name="Zürich Analytics AG", jurisdiction="CH"),
        role=Membership.Role.BUYER,
    )


@pytest.fixture
def officer_api(client_for, officer):
    return client_for(officer)


@pytest.fixture
def second_api(client_for, second_officer):
    """The second pair of eyes: an officer who wrote none of the drafts."""
    return client_for(second_officer)


def backtested(api, draft_id: str) -> dict[str, Any]:
    response = api.post(f"{RULEPACKS}{draft_id}/backtest/", {"scope": "period", "from": today()}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def activate(officer_api, second_api, draft_id: str, effective_from: str):
    """Backtest (author), then activation by the second officer, whose activation is the approval."""
    backtested(officer_api, draft_id)
    return second_api.post(f"{RULEPACKS}{draft_id}/activate/", {"effective_from": effective_from}, format="json")


def activate_as_service(draft_id: str, *, author, second, effective_from) -> RulePack:
    pack_id = uuid.UUID(draft_id)
    rulepack_backtest(pack_id=pack_id, scope="period", period_from=timezone.localdate(), actor=author.user)
    return rulepack_activate(pack_id=pack_id, effective_from=effective_from, actor=second.user)


def eu_current() -> RulePack:
    return RulePack.objects.get(regime="EU", version="2026.11.27")


def without_switzerland(content: dict[str, Any], *, effective_from: str | None = None) -> dict[str, Any]:
    params = {
        **content["parameters"],
        "full_adequacy": [c for c in content["parameters"]["full_adequacy"] if c != "CH"],
    }
    out = {**content, "parameters": params}
    if effective_from:
        out["effective_from"] = effective_from
    return out


def draft_without_switzerland(api, *, effective_from: str | None = None) -> dict[str, Any]:
    """Through the API, the way an officer does it: copy the active EU pack, then edit the copy."""
    created = api.post(RULEPACKS, {"based_on": str(eu_current().id), "version": "2026.12.01"}, format="json")
    assert created.status_code == 201, created.json()
    draft = created.json()
    edited = api.patch(
        f"{RULEPACKS}{draft['id']}/",
        {"content": without_switzerland(draft["content"], effective_from=effective_from or today())},
        format="json",
    )
    assert edited.status_code == 200, edited.json()
    return edited.json()


def buy(buyer: Membership, dataset) -> Trade:
    """Open a trade and let the engine decide it, as the worker would."""
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id, repeat=True).id)
    assert trade is not None
    return trade


def settled(buyer: Membership, dataset) -> Trade:
    trade = buy(buyer, dataset)
    assert trade.status == Trade.Status.APPROVED, trade.decision and trade.decision.decision
    settled_trade = trade_settle(trade_id=trade.id)
    assert settled_trade is not None and settled_trade.status == Trade.Status.SETTLED
    return settled_trade


# --- draft, validate, edit ----------------------------------------------------------------------


BROKEN = {
    "regime": "EU",
    "version": "2026.12.01",
    "title": "Broken",
    "kind": "regime",
    "rules": [
        {"id": "X-1", "outcome": "maybe", "when": True, "citation": "c", "explanation": "e"},
        {
            "id": "X-2",
            "outcome": "allow",
            "when": {"in": ["buyer.planet", ["MARS"]]},
            "citation": "c",
            "explanation": "e",
        },
        {"id": "X-3", "outcome": "allow", "when": True, "citation": "c", "explanation": "e"},
    ],
}


def test_a_draft_may_hold_broken_rules_and_validation_lists_every_problem_with_its_path(
    officer_api, rulepacks, officer
):
    created = officer_api.post(RULEPACKS, {"content": BROKEN, "notes": "first try"}, format="json")

    assert created.status_code == 201
    draft = created.json()
    assert draft["status"] == "draft" and draft["ref"] == "eu@2026.12.01" and draft["effective_from"] is None
    assert draft["created_by"] == officer.user.username and draft["notes"] == "first try"

    report = officer_api.post(f"{RULEPACKS}{draft['id']}/validate/").json()

    assert report["ok"] is False
    paths = [p["path"] for p in report["problems"]]
    assert "pack.effective_from" in paths
    assert any(p.startswith("rules[0].outcome") for p in paths)
    assert any(p.startswith("rules[1].when") for p in paths)
    assert not any(p.startswith("rules[2]") for p in paths)  # the good rule is not blamed
    assert all(p["message"] for p in report["problems"])


def test_validation_survives_shapes_the_compiler_does_not_expect(officer_api, rulepacks):
    odd = {
        **BROKEN,
        "effective_from": today(),
        "rules": [{**BROKEN["rules"][2], "outcome": "needs_mechanism", "requires": 5}],
    }
    draft = officer_api.post(RULEPACKS, {"content": odd}, format="json").json()

    response = officer_api.post(f"{RULEPACKS}{draft['id']}/validate/")

    assert response.status_code == 200
    assert [p["path"] for p in response.json()["problems"]] == ["rules[0].requires"]  # the engine names the exact key


def test_an_edited_draft_validates_and_a_taken_version_is_a_problem(officer_api, rulepacks):
    draft = officer_api.post(RULEPACKS, {"content": BROKEN}, format="json").json()
    fixed = without_switzerland(eu_current().content, effective_from=days_from_today(3)) | {"version": "2026.12.01"}

    edited = officer_api.patch(f"{RULEPACKS}{draft['id']}/", {"yaml": yaml.safe_dump(fixed)}, format="json")
    report = officer_api.post(f"{RULEPACKS}{draft['id']}/validate/").json()

    assert edited.status_code == 200 and edited.json()["effective_from"] == days_from_today(3)
    assert report == {"ok": True, "problems": [], "warnings": []}

    officer_api.patch(f"{RULEPACKS}{draft['id']}/", {"content": fixed | {"version": "2026.11.27"}}, format="json")
    report = officer_api.post(f"{RULEPACKS}{draft['id']}/validate/").json()
    assert report["ok"] is False
    assert {
        "path": "pack.version",
        "message": "eu@2026.11.27 already exists (active); give this draft a new version",
    } in report["problems"]


def test_a_copy_takes_a_new_version_and_needs_its_own_effective_date(officer_api, rulepacks):
    base = eu_current()

    copy = officer_api.post(RULEPACKS, {"based_on": str(base.id), "version": "2026.12.01"}, format="json").json()
    missing_version = officer_api.post(RULEPACKS, {"based_on": str(base.id)}, format="json")

    assert copy["version"] == "2026.12.01" and copy["status"] == "draft" and "effective_from" not in copy["content"]
    assert copy["content"]["rules"] == base.content["rules"]
    assert missing_version.status_code == 400 and "version" in missing_version.json()["fields"]
    assert officer_api.post(RULEPACKS, {"yaml": "regime: [EU"}, format="json").json()["code"] == "rulepack_invalid"
    assert officer_api.post(RULEPACKS, {"content": ["not", "a", "pack"]}, format="json").status_code == 400


def test_the_list_filters_by_status_and_regime(officer_api, rulepacks):
    draft_without_switzerland(officer_api)

    drafts = officer_api.get(f"{RULEPACKS}?status=draft").json()["results"]
    eu = officer_api.get(f"{RULEPACKS}?regime=eu").json()["results"]

    assert [p["ref"] for p in drafts] == ["eu@2026.12.01"]
    assert {p["ref"] for p in eu} == {
        "eu@2026.12.01",
        "eu@2026.11.27",
        "eu@2026.01.26",
        "eu@2023.07.10",
        "eu@2021.12.17",
        "eu@2020.07.16",
        "eu@2019.01.23",
        "eu@2018.05.25",
    }
    assert {p["status"] for p in officer_api.get(f"{RULEPACKS}?status=active").json()["results"]} == {"active"}


def test_a_draft_is_invisible_to_the_engine(officer_api, rulepacks, buyer_ch):
    draft = draft_without_switzerland(officer_api, effective_from=days_from_today(-30))  # even dated in the past

    dry_run = officer_api.post(
        "/api/v1/compliance/evaluate/", base_facts(buyer__jurisdiction="CH", trade_date=today()), format="json"
    ).json()

    assert draft["ref"] not in {p.ref for p in rulepacks_compiled()}
    assert dry_run["outcome"] == "allow" and dry_run["rulepacks"] == ["sanctions@2026.11.27", "eu@2026.11.27"]


# --- backtest ----------------------------------------------------------------------------------


def test_a_period_backtest_reports_exactly_the_decisions_that_change(
    officer_api, rulepacks, buyer_ch, buyer_eu, buyer_us, eu_personal
):
    to_swiss = settled(buyer_ch, eu_personal)
    settled(buyer_eu, eu_personal)
    to_us = buy(buyer_us, eu_personal)
    assert to_us.status == Trade.Status.NEEDS_DOCUMENTS
    draft = draft_without_switzerland(officer_api)

    response = officer_api.post(
        f"{RULEPACKS}{draft['id']}/backtest/", {"scope": "period", "from": today(), "to": today()}, format="json"
    )

    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["totals"] == {"evaluated": 3, "changed": 1, "unchanged": 2, "errors": 0,
                                "transitions": [{"from": "allow", "to": "needs_mechanism", "count": 1}]}
    [item] = report["items"]
    assert (
        item["subject_type"] == "trade"
        and item["subject_id"] == str(to_swiss.id)
        and item["check_id"] == str(to_swiss.decision_id)
    )
    assert item["old"] == {"outcome": "allow", "requirements": []}
    assert item["new"] == {"outcome": "needs_mechanism", "requirements": [["eu_scc"], ["eu_tia"]]}
    changed = {f["rule"]: (f["old_outcome"], f["new_outcome"]) for f in item["changed_findings"]}
    assert changed == {"EU-SCC-1": (None, "needs_mechanism"), "EU-ADQ-1": ("allow", None)}
    scc = next(f for f in item["changed_findings"] if f["rule"] == "EU-SCC-1")
    assert scc["rulepack"] == "eu@2026.12.01" and "CH" in scc["explanation"]


def test_backtests_are_stored_and_shown_later(officer_api, rulepacks, buyer_ch, eu_personal):
    settled(buyer_ch, eu_personal)
    draft = draft_without_switzerland(officer_api)
    first = officer_api.post(f"{RULEPACKS}{draft['id']}/backtest/", {"from": today()}, format="json").json()
    empty = officer_api.post(
        f"{RULEPACKS}{draft['id']}/backtest/", {"from": days_from_today(-9), "to": days_from_today(-1)}, format="json"
    ).json()

    listed = officer_api.get(f"{RULEPACKS}{draft['id']}/backtests/").json()
    shown = officer_api.get(f"{RULEPACKS}{draft['id']}/backtests/{first['id']}/").json()

    assert empty["totals"]["evaluated"] == 0 and empty["items"] == []
    assert [b["id"] for b in listed["results"]] == [empty["id"], first["id"]]  # newest first
    assert listed["results"][1]["totals"]["changed"] == 1 and "items" not in listed["results"][1]
    assert shown["items"] == first["items"] and shown["params"]["from"] == today() and shown["stale"] is False

    officer_api.patch(f"{RULEPACKS}{draft['id']}/", {"notes": "only notes"}, format="json")
    officer_api.patch(
        f"{RULEPACKS}{draft['id']}/",
        {"content": eu_current().content | {"version": "2026.12.01", "effective_from": today()}},
        format="json",
    )
    assert officer_api.get(f"{RULEPACKS}{draft['id']}/backtests/{first['id']}/").json()["stale"] is True


def test_an_open_backtest_covers_open_trades_and_live_grants_as_of_today(
    officer_api, rulepacks, buyer_ch, buyer_us, eu_personal
):
    to_swiss = settled(buyer_ch, eu_personal)
    to_us = buy(buyer_us, eu_personal)
    draft = draft_without_switzerland(officer_api)

    report = officer_api.post(f"{RULEPACKS}{draft['id']}/backtest/", {"scope": "open"}, format="json").json()

    assert report["scope"] == "open"
    assert (
        report["params"]["open_trades"] == 1
        and report["params"]["live_grants"] == 1
        and report["params"]["as_of"] == today()
    )
    assert report["totals"]["evaluated"] == 2
    assert [i["subject_id"] for i in report["items"]] == [str(to_swiss.id)]
    assert str(to_us.id) not in [i["subject_id"] for i in report["items"]]


def test_a_broken_draft_cannot_be_backtested(officer_api, rulepacks):
    draft = officer_api.post(RULEPACKS, {"content": BROKEN}, format="json").json()

    response = officer_api.post(f"{RULEPACKS}{draft['id']}/backtest/", {"scope": "period"}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "rulepack_invalid"
    assert any(path.startswith("rules[0]") for path in response.json()["fields"])


# --- activation ----------------------------------------------------------------------------------


def test_activation_makes_the_version_decide_trades_dated_from_its_effective_date(
    officer_api, second_api, rulepacks, second_officer, buyer_ch, django_capture_on_commit_callbacks, monkeypatch,
):
    announced: list[str] = []
    monkeypatch.setattr("marketplace.receivers.rescreen_enqueue", announced.append)
    draft = draft_without_switzerland(officer_api, effective_from=days_from_today(20))
    backtested(officer_api, draft["id"])

    too_early = second_api.post(
        f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": days_from_today(-1)}, format="json"
    )
    with django_capture_on_commit_callbacks(execute=True):
        activated = second_api.post(f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": today()}, format="json")

    assert too_early.status_code == 400 and "effective_from" in too_early.json()["fields"]
    assert activated.status_code == 200, activated.json()
    body = activated.json()
    assert (
        body["status"] == "active"
        and body["effective_from"] == today()
        and body["content"]["effective_from"] == today()
    )
    assert body["activated_by"] == second_officer.user.username and body["activated_at"]
    assert body["approved_by"] == second_officer.user.username
    assert announced == [draft["id"]]  # compliance.signals.rulepack_activated, after commit

    def decide(day: str) -> dict[str, Any]:
        return officer_api.post(
            "/api/v1/compliance/evaluate/", base_facts(buyer__jurisdiction="CH", trade_date=day), format="json"
        ).json()

    before, on, after = decide(days_from_today(-1)), decide(today()), decide(days_from_today(30))
    assert before["outcome"] == "allow" and "eu@2026.11.27" in before["rulepacks"]
    assert on["outcome"] == "needs_mechanism" and "eu@2026.12.01" in on["rulepacks"]
    assert after["outcome"] == "needs_mechanism"
    assert RulePack.objects.get(regime="EU", version="2026.11.27").status == "active"  # kept: it decides earlier dates


def test_an_active_version_never_changes(officer_api, second_api, rulepacks):
    draft = draft_without_switzerland(officer_api)
    assert activate(officer_api, second_api, draft["id"], today()).status_code == 200

    edit = officer_api.patch(f"{RULEPACKS}{draft['id']}/", {"content": eu_current().content}, format="json")
    shipped = officer_api.patch(f"{RULEPACKS}{eu_current().id}/", {"notes": "tidy up"}, format="json")
    again = officer_api.post(f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": today()}, format="json")

    assert edit.status_code == 409 and edit.json()["code"] == "rulepack_immutable"
    assert shipped.status_code == 409 and shipped.json()["code"] == "rulepack_immutable"
    assert again.status_code == 409 and again.json()["code"] == "rulepack_not_draft"
    assert (
        RulePack.objects.get(pk=draft["id"]).content["parameters"]["full_adequacy"]
        == draft["content"]["parameters"]["full_adequacy"]
    )


def test_an_invalid_draft_is_not_activated(officer_api, second_api, rulepacks):
    draft = officer_api.post(RULEPACKS, {"content": BROKEN}, format="json").json()
    same_day = draft_without_switzerland(officer_api)
    assert activate(officer_api, second_api, same_day["id"], days_from_today(5)).status_code == 200
    rival = officer_api.post(
        RULEPACKS, {"based_on": str(eu_current().id), "version": "2026.12.02"}, format="json"
    ).json()

    broken = second_api.post(f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": today()}, format="json")
    clash = second_api.post(
        f"{RULEPACKS}{rival['id']}/activate/", {"effective_from": days_from_today(5)}, format="json"
    )

    assert broken.status_code == 400 and broken.json()["code"] == "rulepack_invalid"
    assert RulePack.objects.get(pk=draft["id"]).status == "draft"
    assert clash.status_code == 400 and "already takes effect" in clash.json()["fields"]["pack.effective_from"][0]


def test_an_activated_version_exports_to_a_file_that_loads_as_the_same_version(officer_api, second_api, rulepacks):
    draft = draft_without_switzerland(officer_api)
    assert activate(officer_api, second_api, draft["id"], today()).status_code == 200

    response = officer_api.get(f"{RULEPACKS}{draft['id']}/export/")
    pack, created = rulepack_load(
        content=yaml.safe_load(response.content.decode()), source="compliance/rulepacks/eu-2026.12.01.yaml"
    )

    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    assert 'filename="eu-2026.12.01.yaml"' in response["Content-Disposition"]
    assert not created and str(pack.id) == draft["id"]


def test_shipped_files_never_collide_with_drafts(rulepacks, officer):
    draft = rulepack_draft_create(actor=officer.user, content=eu_current().content | {"version": "2027.01.01"})
    shipped = eu_current().content | {"version": "2027.01.01", "effective_from": "2027-01-01"}

    pack, created = rulepack_load(content=shipped)

    assert created and pack.status == "active" and pack.id != draft.id
    assert RulePack.objects.get(pk=draft.id).status == "draft"


# --- re-screening ---------------------------------------------------------------------------------


def test_activation_sends_open_trades_back_to_checking_and_flags_live_grants(
    officer_api,
    rulepacks,
    officer,
    second_officer,
    buyer_ch,
    buyer_eu,
    buyer_us,
    eu_personal,
    eu_health,
    django_capture_on_commit_callbacks,
):
    to_swiss = settled(buyer_ch, eu_personal)
    inside_eu = settled(buyer_eu, eu_personal)
    waiting = buy(buyer_us, eu_personal)
    in_review = buy(buyer_eu, eu_health)
    assert (waiting.status, in_review.status) == (Trade.Status.NEEDS_DOCUMENTS, Trade.Status.IN_REVIEW)
    draft = draft_without_switzerland(officer_api)
    pack = activate_as_service(draft["id"], author=officer, second=second_officer, effective_from=timezone.localdate())

    with django_capture_on_commit_callbacks() as callbacks:
        run = rescreen_after_activation(pack_id=pack.id)

    assert run is not None and run.finished_at is not None
    assert (run.trades_rechecked, run.grants_screened, run.grants_flagged) == (2, 2, 1)
    for trade in (waiting, in_review):
        trade.refresh_from_db()
        assert trade.status == Trade.Status.CHECKING
        assert trade.events.order_by("-at", "-id").first().reason == "rule pack eu@2026.12.01 activated"
    assert len(callbacks) >= 2  # each re-check is enqueued after its commit
    [flag] = GrantFlag.objects.all()
    assert flag.grant.trade_id == to_swiss.id and flag.status == "open" and flag.rulepack_ref == "eu@2026.12.01"
    assert flag.decision["outcome"] == "needs_mechanism" and "eu_scc" in flag.reason and "EU-SCC-1" in flag.reason
    assert not GrantFlag.objects.filter(grant__trade=inside_eu).exists()

    # The worker re-checks them under the new version; nothing else changes for them.
    assert trade_check_compliance(trade_id=waiting.id).status == Trade.Status.NEEDS_DOCUMENTS
    assert trade_check_compliance(trade_id=in_review.id).status == Trade.Status.IN_REVIEW

    # Idempotent: a redelivered task finds the run finished; a crashed one redone flags nothing twice.
    assert rescreen_after_activation(pack_id=pack.id) == run
    Rescreening.objects.filter(pk=run.pk).update(finished_at=None)
    rerun = rescreen_after_activation(pack_id=pack.id)
    assert rerun is not None and rerun.trades_rechecked == 0 and GrantFlag.objects.count() == 1


def test_a_future_version_is_re_screened_when_it_takes_effect(
    officer_api, rulepacks, officer, second_officer, buyer_ch, eu_personal, monkeypatch
):
    settled(buyer_ch, eu_personal)
    draft = draft_without_switzerland(officer_api)
    pack = activate_as_service(
        draft["id"], author=officer, second=second_officer, effective_from=timezone.localdate() + timedelta(days=7)
    )
    enqueued: list[str] = []
    monkeypatch.setattr("marketplace.services.rescreening.rescreen_enqueue", enqueued.append)

    assert rescreen_after_activation(pack_id=pack.id) is None and not GrantFlag.objects.exists()
    assert rescreen_due() == 0

    a_week_later = timezone.localdate() + timedelta(days=7)
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: a_week_later)
    assert rescreen_due() == 1 and enqueued == [str(pack.id)]
    rescreen_after_activation(pack_id=pack.id)
    assert GrantFlag.objects.count() == 1 and rescreen_due() == 0


def test_officers_resolve_flags_and_may_revoke_the_grant(
    client_for, officer_api, rulepacks, officer, second_officer, buyer_ch, eu_personal
):
    first, second, third = (settled(buyer_ch, eu_personal) for _ in range(3))
    draft = draft_without_switzerland(officer_api)
    pack = activate_as_service(draft["id"], author=officer, second=second_officer, effective_from=timezone.localdate())
    rescreen_after_activation(pack_id=pack.id)
    flags = officer_api.get("/api/v1/reviews/grants/").json()["results"]
    assert [f["trade"] for f in flags] == [str(first.id), str(second.id), str(third.id)]  # oldest first
    assert (
        flags[0]["status"] == "open"
        and flags[0]["decision"]["outcome"] == "needs_mechanism"
        and flags[0]["rulepack"] == pack.ref
    )

    no_note = officer_api.post(f"/api/v1/reviews/grants/{flags[0]['id']}/resolve/", {"revoke": True}, format="json")
    revoked = officer_api.post(f"/api/v1/reviews/grants/{flags[0]['id']}/resolve/",
                               {"note": "no SCCs with the Swiss buyer on file", "revoke": True}, format="json")
    kept = officer_api.post(
        f"/api/v1/reviews/grants/{flags[1]['id']}/resolve/",
        {"note": "SCCs signed 2026-11-20, uploading"},
        format="json",
    )
    twice = officer_api.post(f"/api/v1/reviews/grants/{flags[1]['id']}/resolve/", {"note": "again"}, format="json")

    assert no_note.status_code == 400
    assert revoked.status_code == 200 and revoked.json()["status"] == "resolved" and revoked.json()["revoked"] is True
    assert revoked.json()["grant_status"] == "revoked" and revoked.json()["resolved_by"] == officer.user.username
    grant = AccessGrant.objects.get(trade=first)
    assert grant.revoked_at is not None and pack.ref in grant.revoked_reason and grant.revoked_by == officer.user
    [recorded] = client_for(officer).get(f"/api/v1/grants/{grant.id}/").json()["revocation_requests"]
    assert (recorded["status"], recorded["refund"], recorded["decided_by"]) == (
        "revoked",
        "none",
        officer.user.username,
    )
    assert kept.json()["revoked"] is False and AccessGrant.objects.get(trade=second).revoked_at is None
    assert twice.status_code == 409 and twice.json()["code"] == "grant_flag_resolved"

    # Open first, then oldest first.
    assert [f["trade"] for f in officer_api.get("/api/v1/reviews/grants/").json()["results"]] == [
        str(third.id),
        str(first.id),
        str(second.id),
    ]
    assert officer_api.get("/api/v1/reviews/grants/?status=open").json()["count"] == 1


# --- who may do it ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["buyer_us", "provider_eu"])
def test_only_officers_reach_the_lifecycle(request, client_for, rulepacks, officer, who):
    api = client_for(request.getfixturevalue(who))
    pack = rulepack_draft_create(actor=officer.user, content=eu_current().content | {"version": "2026.12.01"})
    flag_id = "00000000-0000-0000-0000-000000000000"
    calls = [
        ("get", RULEPACKS, None),
        ("post", RULEPACKS, {"content": BROKEN}),
        ("get", f"{RULEPACKS}{pack.id}/", None),
        ("patch", f"{RULEPACKS}{pack.id}/", {"notes": "x"}),
        ("post", f"{RULEPACKS}{pack.id}/validate/", None),
        ("post", f"{RULEPACKS}{pack.id}/backtest/", {"scope": "open"}),
        ("get", f"{RULEPACKS}{pack.id}/backtests/", None),
        ("post", f"{RULEPACKS}{pack.id}/approve/", None),
        ("post", f"{RULEPACKS}{pack.id}/activate/", {"effective_from": today()}),
        ("get", f"{RULEPACKS}{pack.id}/export/", None),
        ("get", "/api/v1/reviews/grants/", None),
        ("post", f"/api/v1/reviews/grants/{flag_id}/resolve/", {"note": "x"}),
    ]

    statuses = {
        (method, url): getattr(api, method)(url, body, format="json").status_code for method, url, body in calls
    }

    assert set(statuses.values()) == {403}, statuses
    assert RulePack.objects.get(pk=pack.id).status == "draft" and RulePack.objects.filter(status="draft").count() == 1

