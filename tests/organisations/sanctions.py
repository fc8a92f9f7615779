"""Helpers: import the fixture lists (tests/fixtures/sanctions/, in the publishers' formats)."""

from datetime import date
from pathlib import Path

from django.core.management import call_command

from compliance.models import SanctionsList

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sanctions"


def import_ofac(version: str = "ofac-v2") -> SanctionsList:
    call_command("import_sanctions_list", str(FIXTURES / version), source="ofac_sdn", published_on=date(2026, 11, 28))
    latest = SanctionsList.objects.filter(source="ofac_sdn").order_by("-imported_at").first()
    assert latest is not None
    return latest


def import_eu() -> SanctionsList:
    call_command("import_sanctions_list", str(FIXTURES / "eu" / "eu_fsf.csv"), source="eu_fsf")
    latest = SanctionsList.objects.filter(source="eu_fsf").order_by("-imported_at").first()
    assert latest is not None
    return latest
