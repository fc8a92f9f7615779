"""What every check reads before it decides: the active rule-pack versions and the newest snapshot
of each sanctions list, in one statement (the worker's check used to read them in two)."""

from dataclasses import dataclass

from django.db.models import DateField, IntegerField, OuterRef, Subquery, Value

from compliance.engine import CompiledPack
from compliance.models import RulePack, SanctionsList
from compliance.selectors.rulepacks import rulepacks_compiled

# the columns a snapshot is built from, in the model's field order (Model.from_db fills the rest in
# lazily: nothing else is read while screening)
_SNAPSHOT_FIELDS = ("id", "source", "published_on", "checksum")


@dataclass(frozen=True)
class References:
    rulepacks: list[CompiledPack]  # every active version, compiled (cached per process by content)
    sanctions: list[SanctionsList]  # the newest snapshot of each source, in SOURCE_FILES order


def references_current() -> References:
    """The rule packs in force and the sanctions snapshots to screen against, read together: one
    UNION ALL of the active packs' (id, checksum, status) and each source's newest snapshot."""
    from compliance.services.sanctions_lists import SOURCE_FILES

    packs = (
        RulePack.objects.filter(status=RulePack.Status.ACTIVE)
        .annotate(src=Value(0, output_field=IntegerField()), day=Value(None, output_field=DateField()))
        .order_by().values_list("src", "id", "status", "day", "checksum")
    )
    newest = SanctionsList.objects.filter(source=OuterRef("source")).order_by("-imported_at", "-id").values("pk")[:1]
    lists = (
        SanctionsList.objects.filter(source__in=list(SOURCE_FILES), pk=Subquery(newest))
        .annotate(src=Value(1, output_field=IntegerField()))
        .order_by().values_list("src", "id", "source", "published_on", "checksum")
    )
    key_rows: list[tuple[object, str, str]] = []
    found: dict[str, SanctionsList] = {}
    for src, pk, text, day, checksum in packs.union(lists, all=True):
        if src == 0:
            key_rows.append((pk, checksum, text))
        else:
            found[text] = SanctionsList.from_db(lists.db, list(_SNAPSHOT_FIELDS), [pk, text, day, checksum])
    return References(
        rulepacks=rulepacks_compiled(key_rows=key_rows),
        sanctions=[found[src] for src in SOURCE_FILES if src in found],
    )
