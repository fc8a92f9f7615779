"""ExportTally's rows are few and each is updated by every export of its day, buyer and kind of data.

On PostgreSQL an update writes a new row version; with full pages (the default fillfactor) it lands
on another page and adds an entry to the tally's unique index, so a day of busy trading left the
index and the table full of dead versions that every check's tally read waded through (bench/history.py:
a read of 2,191 live rows went through 999,795 index entries and 15 ms of heap until a VACUUM). Half-full
pages let an update stay on its page without touching the index (a HOT update, pruned in place),
and autovacuum visits the table every thousand dead rows instead of at a fifth of its size. Existing
pages take the fillfactor as they are rewritten (VACUUM FULL); new ones at once. SQLite: nothing to do.
"""

from django.db import migrations

SETTINGS = ("fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, "
            "autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000")
RESET = ("fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, "
         "autovacuum_analyze_threshold")


def apply(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE compliance_exporttally SET ({SETTINGS})")


def revert(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE compliance_exporttally RESET ({RESET})")


class Migration(migrations.Migration):
    dependencies = [("compliance", "0011_pipe_export_tallies")]

    operations = [migrations.RunPython(apply, revert)]
