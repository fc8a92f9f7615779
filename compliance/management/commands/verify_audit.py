"""Verify the audit trail's hash chain; exit status 1 if any link is broken."""

import sys
from typing import Any

from django.core.management.base import BaseCommand

from compliance.services.audit import audit_verify


class Command(BaseCommand):
    help = "Recompute every audit event's hash in order and report the first broken link."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_verify()
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.events} events"))
            return
        self.stderr.write(self.style.ERROR(f"audit chain broken at event #{report.broken_at} "
                                           f"({report.events} events verified before it): {report.reason}"))
        sys.exit(1)
