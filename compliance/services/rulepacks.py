"""Loading rule packs: reviewed files in the repository become immutable database versions."""

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from compliance.engine import RulePackError, compile_pack
from compliance.errors import RulePackImmutableError, RulePackInvalidError
from compliance.models import RulePack
from compliance.services.audit import audit_record


def _canonical(content: Any) -> str:
    return json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))


@transaction.atomic
def rulepack_load(*, content: Any, source: str = "") -> tuple[RulePack, bool]:
    """Validate a pack's data and store it as a new version. Loading the same version again with
    identical content is a no-op; with different content it is refused (versions are immutable)."""
    try:
        compiled = compile_pack(content)
    except RulePackError as exc:
        raise RulePackInvalidError(str(exc), fields={exc.path: [str(exc)]}) from exc
    stored = json.loads(json.dumps(content, default=str))  # dates → ISO strings, file order kept
    checksum = hashlib.sha256(_canonical(stored).encode()).hexdigest()
    existing = RulePack.objects.select_for_update().filter(regime=compiled.regime, version=compiled.version).first()
    if existing is not None:
        if existing.checksum != checksum:
            raise RulePackImmutableError(f"{existing.ref} is already loaded with different content.")
        return existing, False
    pack = RulePack.objects.create(
        regime=compiled.regime, version=compiled.version, title=compiled.title, kind=compiled.kind,
        effective_from=compiled.effective_from, effective_to=compiled.effective_to,
        content=stored, checksum=checksum, source=source,
    )
    audit_record(kind="rulepack.loaded", subject_type="rulepack", subject_id=pack.id, actor_label="system:load_rulepacks",
                 data={"ref": pack.ref, "checksum": checksum, "source": source, "effective_from": pack.effective_from})
    return pack, True


def rulepack_files(directory: Path | None = None) -> list[Path]:
    return sorted(Path(directory or settings.ELEMENTA_RULEPACK_DIR).glob("*.yaml"))


def rulepack_load_shipped(*, directory: Path | None = None) -> list[tuple[RulePack, bool]]:
    """Load every reviewed pack file shipped in compliance/rulepacks/ (idempotent)."""
    results = []
    for path in rulepack_files(directory):
        content = yaml.safe_load(path.read_text())
        results.append(rulepack_load(content=content, source=f"compliance/rulepacks/{path.name}"))
    return results
