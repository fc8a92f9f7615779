"""Import a sanctions list from the files its publisher distributes (see docs/sanctions.md)."""

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.errors import SanctionsListInvalidError
from compliance.services.sanctions_lists import SOURCE_FILES, sanctions_list_import


class Command(BaseCommand):
    help = (
        "Import a sanctions-list snapshot. OFAC SDN: --source ofac_sdn PATH, a folder holding sdn.csv (and alt.csv, "
        "add.csv). EU: --source eu_fsf PATH, the consolidated list's CSV file. The same files twice import nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, choices=list(SOURCE_FILES))
        parser.add_argument("path", help="a folder (OFAC) or a CSV file (EU)")
        parser.add_argument(
            "--published-on",
            type=date.fromisoformat,
            default=None,
            help="the list's publication date (default: the file's own, else today)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source, path = options["source"], Path(options["path"])
        names = SOURCE_FILES[source]
        files: dict[str, bytes] = {}
        if path.is_dir():
            present = {p.name.lower(): p for p in path.iterdir() if p.is_file()}
            files = {name: present[name].read_bytes() for name in names if name in present}
        elif path.is_file():
            files = {names[0]: path.read_bytes()}
        else:
            raise CommandError(f"{path} does not exist")
        try:
            snapshot, created = sanctions_list_import(
                source=source, files=files, origin=str(path), published_on=options["published_on"]
            )
        except SanctionsListInvalidError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        verb = "imported" if created else "unchanged"
        self.stdout.write(f"{verb} {snapshot.ref}: {snapshot.entries_count} entries")
