"""Party screening against real list formats: import snapshots, match names (exact, transliterated,
suffix-varied), decide through the sanctions pack (SAN-LIST-1 / SAN-LIST-2), reviewed false positives,
and re-screening of live grants when a new list version is imported."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from compliance.models import AuditEvent, SanctionsEntry, SanctionsList
from compliance.sanctions.formats import parse_eu_fsf_csv, parse_ofac_sdn
from compliance.sanctions.matching import normalise
from compliance.selectors.references import references_current
from compliance.selectors.rulepacks import rulepacks_compiled
from compliance.services.checks import compliance_evaluate
from marketplace.models import AccessGrant, GrantFlag, Trade
from marketplace.services.rescreening import rescreen_after_list_import
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trade_facts import transfer_facts
from marketplace.services.trades import trade_create
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory
from tests.organisations.sanctions import FIXTURES, import_eu, import_ofac

pytestmark = pytest.mark.django_db


# --- formats --------------------------------------------------------------------------------


def test_ofac_files_parse_with_aliases_addresses_and_nulls():
    folder = FIXTURES / "ofac-v2"
    parsed = parse_ofac_sdn(
        sdn=(folder / "sdn.csv").read_bytes(),
        alt=(folder / "alt.csv").read_bytes(),
        add=(folder / "add.csv").read_bytes(),
    )

    by_id = {e.entry_id: e for e in parsed.entries}
    assert by_id["90001"].name == "NORTHWIND TRADING LLC" and by_id["90001"].aliases == ["SEVERNY VETER OOO"]
    assert by_id["90001"].party_type == "entity" and by_id["90001"].programmes == [
        "RUSSIA-EO14024"
    ]  # "-0-" type: an entity
    assert by_id["90002"].party_type == "individual" and by_id["90002"].countries == ["Russia"]
    assert by_id["36"].remarks == "Havana, Cuba."


def test_eu_csv_groups_rows_by_logical_id():
    parsed = parse_eu_fsf_csv((FIXTURES / "eu" / "eu_fsf.csv").read_bytes())

    by_id = {e.entry_id: e for e in parsed.entries}
    assert str(parsed.published_on) == "2026-11-27"
    assert by_id["990001"].name == "Pavel Andreevich VOLKOV" and by_id["990001"].aliases == ["Павел Андреевич ВОЛКОВ"]
    assert by_id["990002"].reference == "EU.9002.34" and by_id["990002"].programmes == ["RUS"]


def test_normalisation_strips_company_forms_and_transliterates():
    assert normalise("Northwind Trading L.L.C.") == normalise("NORTHWIND TRADING LLC") == "northwind trading"
    assert normalise("ООО Северный Ветер") == "severnyy veter"
    assert normalise("北京星辰科技有限公司") == "beijingxingchenkeji"


# --- import as snapshots ----------------------------------------------------------------------


def test_import_keeps_a_versioned_snapshot_and_is_idempotent():
    out = StringIO()
    call_command("import_sanctions_list", str(FIXTURES / "ofac-v1"), source="ofac_sdn", stdout=out)
    call_command("import_sanctions_list", str(FIXTURES / "ofac-v1"), source="ofac_sdn", stdout=out)

    snapshot = SanctionsList.objects.get()
    assert out.getvalue().splitlines()[1].startswith("unchanged")
    assert snapshot.entries_count == 3 == SanctionsEntry.objects.filter(sanctions_list=snapshot).count()
    assert len(snapshot.checksum) == 64 and [f["name"] for f in snapshot.files] == ["sdn.csv", "alt.csv", "add.csv"]
    assert AuditEvent.objects.filter(kind="sanctions_list.imported").count() == 1

    import_ofac("ofac-v2")
    assert SanctionsList.objects.filter(source="ofac_sdn").count() == 2  # the old snapshot is kept


def test_a_broken_or_empty_file_is_refused_and_the_current_snapshot_stays(tmp_path):
    import_ofac("ofac-v1")
    (tmp_path / "sdn.csv").write_text('"not a number","X"\n')
    with pytest.raises(CommandError, match="entry number"):
        call_command("import_sanctions_list", str(tmp_path), source="ofac_sdn")
    (tmp_path / "sdn.csv").write_text("\n")
    with pytest.raises(CommandError):
        call_command("import_sanctions_list", str(tmp_path), source="ofac_sdn")
    assert SanctionsList.objects.count() == 1


# --- screening decides trades -----------------------------------------------------------------


def _decide(buyer_org, dataset) -> dict:
    facts = transfer_facts(
        dataset=dataset, buyer=buyer_org, purpose="resale", mechanisms=[], trade_date=timezone.localdate()
    )
    return compliance_evaluate(raw_facts=facts).as_dict()


@pytest.mark.parametrize(
    ("name", "aliases", "outcome", "rule"),
    [
        ("Northwind Trading LLC", [], "deny", "SAN-LIST-1"),  # listed name, exactly
        ("Northwind Trading GmbH", [], "deny", "SAN-LIST-1"),  # another company form
        ("Baltic Data OÜ", ["ООО Северный Ветер"], "deny", "SAN-LIST-1"),  # a Cyrillic alias of the listed alias
        ("Northwinds Trade GmbH", [], "review", "SAN-LIST-2"),  # probable
    ],
)
def test_a_listed_buyer_is_denied_or_reviewed_naming_the_entry(rulepacks, eu_public, name, aliases, outcome, rule):
    import_ofac("ofac-v2")
    buyer = OrganisationFactory(name=name, aliases=aliases, jurisdiction="DE")

    decision = _decide(buyer, eu_public)

    assert decision["outcome"] == outcome
    finding = next(f for f in decision["findings"] if f["rule"] == rule)
    assert (
        "entry 90001 'NORTHWIND TRADING LLC'" in finding["explanation"] and "RUSSIA-EO14024" in finding["explanation"]
    )
    assert finding["rulepack"] == "sanctions@2026.11.27"


def test_owners_on_the_eu_list_holding_half_block_the_buyer(rulepacks, eu_public):
    import_eu()
    owners = [
        {"name": "Pavel Andreevich Volkov", "jurisdiction": "CY", "share": 30, "kind": "owner"},
        {"name": "Orlov, Ivan Sergeyevich", "jurisdiction": "CY", "share": 20, "kind": "owner"},
    ]
    buyer = OrganisationFactory(name="Limassol Analytics Ltd", jurisdiction="CY", owners=owners)

    decision = _decide(buyer, eu_public)

    assert decision["outcome"] == "deny", decision
    explanation = next(f for f in decision["findings"] if f["rule"] == "SAN-LIST-1")["explanation"]
    assert "listed owners hold 50 % of the buyer together" in explanation
    assert "entry 990003 'Ivan Sergeyevich ORLOV'" in explanation and "holding 20 %" in explanation

    buyer.owners = owners[:1]
    assert _decide(buyer, eu_public)["outcome"] == "review"  # 30 %: not owned, but an officer must look
    buyer.owners = [{**owners[0], "name": "Pavel Volkov", "share": 60}]  # without the patronymic: probable only
    decision = _decide(buyer, eu_public)
    assert decision["outcome"] == "review" and "score 90" in decision["findings"][0]["explanation"]


def test_an_unlisted_buyer_is_clear_and_the_facts_name_the_lists_and_versions(rulepacks, eu_public, buyer_eu):
    import_ofac("ofac-v2")
    facts = transfer_facts(
        dataset=eu_public, buyer=buyer_eu.organisation, purpose="resale", mechanisms=[], trade_date=timezone.localdate()
    )

    assert facts["parties"]["list_matches"] == []
    assert facts["parties"]["lists"] == [SanctionsList.objects.get().ref]
    assert facts["parties"]["records"]["buyer"] == f"org:{buyer_eu.organisation.id}@v0"
    assert compliance_evaluate(raw_facts=facts).outcome == "allow"


def test_a_listed_provider_cannot_sell(rulepacks, buyer_eu):
    import_ofac("ofac-v2")
    provider = OrganisationFactory(name="Beijing Xingchen Keji Co., Ltd.", jurisdiction="DE")
    dataset = DatasetFactory(provider=provider, classification="public", categories=["statistics"], subjects=0)

    trade = trade_check_compliance(trade_id=trade_create(membership=buyer_eu, dataset_id=dataset.id).id)

    assert trade.status == Trade.Status.REJECTED
    assert (
        "exporter 'Beijing Xingchen Keji Co., Ltd.' matches ofac_sdn@"
        in trade.decision.decision["findings"][0]["explanation"]
    )


def test_the_workers_one_read_names_the_newest_snapshot_of_each_list_and_the_packs_in_force(rulepacks):
    import_ofac("ofac-v1")
    newest_ofac, eu = import_ofac("ofac-v2"), import_eu()

    references = references_current()

    assert [s.ref for s in references.sanctions] == [newest_ofac.ref, eu.ref]
    assert [s.pk for s in references.sanctions] == [newest_ofac.pk, eu.pk]
    assert references.rulepacks is rulepacks_compiled()  # the same compiled set, from the same cache


def test_the_worker_that_would_settle_at_once_still_screens_the_exporter(rulepacks, buyer_eu):
    import_ofac("ofac-v2")
    provider = OrganisationFactory(name="Beijing Xingchen Keji Co., Ltd.", jurisdiction="DE")
    dataset = DatasetFactory(provider=provider, classification="public", categories=["statistics"], subjects=0)

    trade = trade_check_compliance(trade_id=trade_create(membership=buyer_eu, dataset_id=dataset.id).id, settle=True)

    assert trade.status == Trade.Status.REJECTED
    assert trade.decision.facts["parties"]["lists"] == [SanctionsList.objects.get(source="ofac_sdn").ref]
    assert not AccessGrant.objects.filter(trade_id=trade.id).exists()


# --- reviewed false positives -----------------------------------------------------------------


def test_an_officers_false_positive_is_not_raised_again_until_either_side_changes(
    rulepacks, client_for, officer, eu_public
):
    import_ofac("ofac-v2")
    buyer = OrganisationFactory(name="Northwinds Trade GmbH", jurisdiction="DE")
    assert _decide(buyer, eu_public)["outcome"] == "review"

    response = client_for(officer).post(
        "/api/v1/screening/false-positives/",
        {
            "organisation": str(buyer.id),
            "source": "ofac_sdn",
            "entry_id": "90001",
            "reason": "a Hamburg shipping broker since 1990",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["entry_name"] == "NORTHWIND TRADING LLC"
    assert _decide(buyer, eu_public)["outcome"] == "allow"
    assert client_for(officer).get(f"/api/v1/organisations/{buyer.id}/screening/").json()["matches"] == []
    buyer.aliases = ["Northwind Trading Hamburg"]  # the organisation's names change: screened afresh
    buyer.save()
    assert _decide(buyer, eu_public)["outcome"] != "allow"


def test_a_false_positive_needs_a_current_entry_and_a_reason(client_for, officer, buyer_eu):
    import_ofac("ofac-v1")
    client = client_for(officer)
    unknown = client.post(
        "/api/v1/screening/false-positives/",
        {"organisation": str(buyer_eu.organisation.id), "source": "ofac_sdn", "entry_id": "99999", "reason": "x"},
        format="json",
    )
    blank = client.post(
        "/api/v1/screening/false-positives/",
        {"organisation": str(buyer_eu.organisation.id), "source": "ofac_sdn", "entry_id": "36", "reason": ""},
        format="json",
    )

    assert unknown.status_code == 400 and unknown.json()["code"] == "sanctions_entry_unknown"
    assert blank.status_code == 400


# --- a new list version re-screens everyone ---------------------------------------------------


def test_importing_a_new_list_version_flags_and_suspends_an_existing_live_grant(rulepacks, eu_public):
    import_ofac("ofac-v1")  # Northwind is not listed yet
    buyer = MembershipFactory(organisation=OrganisationFactory(name="Northwind Trading Ltd", jurisdiction="DE"))
    trade = TradeFactory(dataset=eu_public, buyer=buyer.organisation, status=Trade.Status.APPROVED)
    trade_settle(trade_id=trade.id)
    grant = AccessGrant.objects.get(trade=trade)
    open_trade = trade_check_compliance(
        trade_id=trade_create(
            membership=buyer,
            dataset_id=DatasetFactory(
                provider=eu_public.provider, classification="sensitive_personal", categories=["health"], subjects=10
            ).id,
        ).id
    )
    assert open_trade.status == Trade.Status.IN_REVIEW  # for another reason (health data)
    Trade.objects.filter(pk=open_trade.pk).update(status_changed_at=timezone.now() - timezone.timedelta(minutes=5))

    snapshot = import_ofac("ofac-v2")
    counts = rescreen_after_list_import(list_id=snapshot.id)

    flag = GrantFlag.objects.get(grant=grant)
    assert flag.rulepack_ref == f"list:{snapshot.ref}" and flag.decision["outcome"] == "deny"
    assert "NORTHWIND TRADING LLC" in flag.reason or "SAN-LIST-1" in flag.reason
    grant.refresh_from_db()
    assert grant.suspended_at is not None
    assert Trade.objects.get(pk=open_trade.pk).status == Trade.Status.CHECKING  # goes back to the engine
    assert counts is not None and counts["grants_flagged"] == 1
    snapshot.refresh_from_db()
    assert snapshot.rescreened_at is not None
    assert rescreen_after_list_import(list_id=snapshot.id) is None  # idempotent


def test_officers_list_the_snapshots(client_for, officer, buyer_eu):
    import_eu()
    body = client_for(officer).get("/api/v1/sanctions-lists/").json()
    assert [(r["source"], r["entries_count"], r["published_on"]) for r in body["results"]] == [
        ("eu_fsf", 3, "2026-11-27")
    ]
    assert client_for(buyer_eu).get("/api/v1/sanctions-lists/").status_code == 403


def test_a_superseded_snapshots_late_run_flags_nothing_under_its_name(rulepacks, eu_public):
    older = import_ofac("ofac-v1")
    buyer = MembershipFactory(organisation=OrganisationFactory(name="Northwind Trading Ltd", jurisdiction="DE"))
    trade = TradeFactory(dataset=eu_public, buyer=buyer.organisation, status=Trade.Status.APPROVED)
    trade_settle(trade_id=trade.id)
    newer = import_ofac("ofac-v2")

    assert rescreen_after_list_import(list_id=older.id) is None  # its message arrived late: the newer run decides
    assert not GrantFlag.objects.exists()
    rescreen_after_list_import(list_id=newer.id)
    assert GrantFlag.objects.get().rulepack_ref == f"list:{newer.ref}"
