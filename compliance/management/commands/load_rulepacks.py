"""Load the reviewed rule-pack files into the database as immutable versions (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from compliance.services.rulepacks import rulepack_load_shipped


class Command(BaseCommand):
    help = "Load compliance/rulepacks/*.yaml; a version already loaded with other content is refused."

    def handle(self, *args: Any, **options: Any) -> None:
        for pack, created in rulepack_load_shipped():
            self.stdout.write(f"{'loaded ' if created else 'present'} {pack.ref:<28} effective {pack.effective_from}")
