"""Check the money invariants (`ledger_verify`); exit status 1 if any is broken."""

import sys
from typing import Any

from django.core.management.base import BaseCommand

from marketplace.selectors.ledger import ledger_verify


class Command(BaseCommand):
    help = "Check that every ledger transaction balances, wallets equal their entries, and each trade paid once."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_verify()
        if not problems:
            self.stdout.write(
                self.style.SUCCESS("ledger sound: every transaction balances, every wallet matches its entries")
            )
            return
        for problem in problems:
            self.stderr.write(self.style.ERROR(problem))
        sys.exit(1)
