"""Rule-pack versions: shipped files loaded as active versions, and the officers' lifecycle
(draft → validate → backtest → approve → activate). Active versions never change.

Segregation of duties: activating a draft needs (a) a stored backtest of exactly its current
content, no older than ELEMENTA_BACKTEST_MAX_AGE_HOURS, and (b) the approval of an officer who
neither created nor edited it, bound to the content's checksum (an edit voids it). Shipped files
(rulepack_load) are reviewed in the repository and load as active without officers."""

import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.engine import RulePackError, compile_pack, pack_problems
from compliance.errors import (
    AuthorCannotApproveError,
    BacktestRequiredError,
    RulePackImmutableError,
    RulePackInvalidError,
    RulePackNotDraftError,
    RulePackNotFoundError,
    RulePackVersionTakenError,
    SecondOfficerRequiredError,
)
from compliance.models import RulePack, RulePackBacktest
from compliance.services.audit import audit_record
from compliance.signals import rulepack_activated
from config.errors import InvalidInputError
from config.parsers import check_structure

logger = logging.getLogger(__name__)


# Which status may follow which: a draft becomes an active version, and an active version never
# changes again (a correction is a new version; what it supersedes stays for the dates it covered).
RULEPACK_TRANSITIONS: dict[str, frozenset[str]] = {
    RulePack.Status.DRAFT: frozenset({RulePack.Status.ACTIVE}),
    RulePack.Status.ACTIVE: frozenset(),
}


def rulepack_ensure_transition(*, pack: RulePack, target: str) -> None:
    if target not in RULEPACK_TRANSITIONS[pack.status]:
        raise RulePackNotDraftError(f"{pack.ref} is already {pack.status}.")


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
    # Drafts are officers' work in progress, not versions: a file never collides with one.
    existing = (RulePack.objects.select_for_update().exclude(status=RulePack.Status.DRAFT)
                .filter(regime=compiled.regime, version=compiled.version).first())
    if existing is not None:
        if existing.checksum != checksum:
            raise RulePackImmutableError(f"{existing.ref} is already loaded with different content.")
        return existing, False
    pack = RulePack.objects.create(
        regime=compiled.regime, version=compiled.version, title=compiled.title, kind=compiled.kind,
        effective_from=compiled.effective_from, effective_to=compiled.effective_to,
        content=stored, checksum=checksum, source=source, status=RulePack.Status.ACTIVE,
    )
    audit_record(
        kind="rulepack.loaded",
        subject_type="rulepack",
        subject_id=pack.id,
        actor_label="system:load_rulepacks",
        data={"ref": pack.ref, "checksum": checksum, "source": source, "effective_from": pack.effective_from},
    )
    return pack, True


def rulepack_files(directory: Path | None = None) -> list[Path]:
    return sorted(Path(directory or settings.ELEMENTA_RULEPACK_DIR).glob("*.yaml"))


def rulepack_load_shipped(*, directory: Path | None = None) -> list[tuple[RulePack, bool]]:
    """Load every reviewed pack file shipped in compliance/rulepacks/ (idempotent)."""
    results = []
    for path in rulepack_files(directory):
        content = _read_pack_file(str(path), path.stat().st_mtime_ns)
        results.append(rulepack_load(content=copy.deepcopy(content), source=f"compliance/rulepacks/{path.name}"))
    return results


@lru_cache(maxsize=256)
def _read_pack_file(path: str, mtime_ns: int) -> Any:
    """A pack file's parsed YAML, parsed once per process and content (parsing is most of the cost
    of loading the shipped packs; the test suite loads them for every test that needs them)."""
    return yaml.safe_load(Path(path).read_text())


# --- the officers' lifecycle: draft → validate → backtest → activate ---------------------------

# A pack is a few kilobytes (the largest shipped file is 10 KB); this only stops abuse.
MAX_CONTENT_BYTES = 256 * 1024
# A placeholder date for compiling a draft that does not say when it takes effect yet: the date
# plays no part in whether the rules are well-formed.
PROBE_DATE = "2000-01-01"


@dataclass(frozen=True)
class RulePackProblem:
    """One reason a draft cannot be activated, at the dotted path of the offending part."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def _stored(content: Any) -> dict[str, Any]:
    """JSON-ready content (dates → ISO strings, key order kept), or 400 if it is no object."""
    if not isinstance(content, Mapping):
        raise RulePackInvalidError(
            "A rule pack is an object (a YAML mapping).", fields={"content": ["must be an object"]}
        )
    stored = json.loads(json.dumps(content, default=str))
    if len(_canonical(stored).encode()) > MAX_CONTENT_BYTES:
        raise RulePackInvalidError(fields={"content": [f"at most {MAX_CONTENT_BYTES // 1024} KiB"]})
    return stored


class _PackLoader(yaml.SafeLoader):
    """Safe YAML without aliases: `*name` would let a few KiB of text expand into gigabytes of JSON."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a rule pack", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


def rulepack_parse_yaml(*, text: str) -> dict[str, Any]:
    """YAML text → pack content; a syntax error is a 400 naming the line. Aliases and nesting deeper
    than request bodies may have (config/parsers.py) are refused too."""
    if len(text.encode()) > MAX_CONTENT_BYTES:
        raise RulePackInvalidError(fields={"yaml": [f"at most {MAX_CONTENT_BYTES // 1024} KiB"]})
    try:
        content = yaml.load(text, Loader=_PackLoader)
    except RecursionError:
        raise RulePackInvalidError("The YAML is nested too deeply.", fields={"yaml": ["nested too deeply"]}) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise RulePackInvalidError(
            "The YAML does not parse.", fields={"yaml": [f"{where}{getattr(exc, 'problem', None) or exc}"]}
        ) from exc
    check_structure(content)
    return _stored(content)


def _optional_date(raw: Any) -> date | None:
    try:
        return raw if isinstance(raw, date) else date.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def _apply_content(pack: RulePack, content: dict[str, Any]) -> None:
    """Set a pack's content and the columns derived from it. A draft's content may not compile, so
    the columns are best effort; activation only happens once it does."""
    pack.content = content
    pack.checksum = hashlib.sha256(_canonical(content).encode()).hexdigest()
    pack.regime = str(content.get("regime") or "").strip()[:32]
    pack.version = str(content.get("version") or "").strip()[:32]
    pack.title = str(content.get("title") or "").strip()[:200]
    pack.kind = str(content.get("kind") or "regime")[:16]
    pack.effective_from = _optional_date(content.get("effective_from"))
    pack.effective_to = _optional_date(content.get("effective_to"))


def _label(actor: User | None) -> str:
    return actor.get_username()[:150] if actor is not None else "system"


def _add_editor(pack: RulePack, actor: User | None) -> None:
    if actor is None:
        return
    editors = list(pack.editors or [])
    if all(e.get("id") != actor.pk for e in editors):
        editors.append({"id": actor.pk, "username": _label(actor)})
    pack.editors = editors


def rulepack_is_author(*, pack: RulePack, user: User) -> bool:
    """Whether `user` created the draft or wrote any of its content."""
    return _is_author_id(pack=pack, user_id=user.pk)


def _is_author_id(*, pack: RulePack, user_id: int) -> bool:
    return (pack.created_by_id is not None and pack.created_by_id == user_id) or any(
        e.get("id") == user_id for e in pack.editors or []
    )


def _lock(pack_id: UUID) -> RulePack:
    pack = RulePack.objects.select_for_update().filter(pk=pack_id).first()
    if pack is None:
        raise RulePackNotFoundError()
    return pack


def rulepack_content_problems(content: Mapping[str, Any]) -> list[RulePackProblem]:
    """Everything the compiler refuses, each at its real path (the compiler collects them all)."""
    problems: list[RulePackProblem] = []
    if not content.get("effective_from"):
        problems.append(RulePackProblem("pack.effective_from", "required: the date this version takes effect"))
        content = {**content, "effective_from": PROBE_DATE}
    for exc in pack_problems(content):
        problem = RulePackProblem(exc.path, str(exc)[len(exc.path) + 2:])
        if problem not in problems:
            problems.append(problem)
    return problems


def _compiles(content: Mapping[str, Any]) -> bool:
    try:
        compile_pack(content)
    except (RulePackError, TypeError, ValueError, AttributeError, KeyError):
        return False
    return True


def _problems(content: Mapping[str, Any], *, pack_id: UUID) -> list[RulePackProblem]:
    """Content problems, then the version's place among the others: regime@version is not taken
    by a published version, no active version of the regime takes effect the same day (the engine
    could not choose between them), and effective_to comes after effective_from."""
    problems = rulepack_content_problems(content)
    regime, version = str(content.get("regime") or "").strip(), str(content.get("version") or "").strip()
    if regime and version:
        taken = (
            RulePack.objects.exclude(pk=pack_id)
            .exclude(status=RulePack.Status.DRAFT)
            .filter(regime=regime, version=version)
            .first()
        )
        if taken is not None:
            problems.append(
                RulePackProblem(
                    "pack.version", f"{taken.ref} already exists ({taken.status}); give this draft a new version"
                )
            )
    start, end = _optional_date(content.get("effective_from")), _optional_date(content.get("effective_to"))
    if regime and start:
        same_day = (
            RulePack.objects.exclude(pk=pack_id)
            .filter(status=RulePack.Status.ACTIVE, regime=regime, effective_from=start)
            .first()
        )
        if same_day is not None:
            problems.append(
                RulePackProblem("pack.effective_from", f"{same_day.ref} already takes effect on {start.isoformat()}")
            )
    if start and end and end <= start:
        problems.append(RulePackProblem("pack.effective_to", "must be after effective_from"))
    return problems


def rulepack_warnings(*, pack: RulePack) -> list[RulePackProblem]:
    """What is allowed but probably not meant: an effective date in the past (activation refuses
    it), or a later active version of the regime that would supersede this one from its own date."""
    warnings: list[RulePackProblem] = []
    start = _optional_date(pack.content.get("effective_from"))
    if start is None or not pack.regime:
        return warnings
    if pack.status == RulePack.Status.DRAFT and start < timezone.localdate():
        warnings.append(
            RulePackProblem("pack.effective_from", "is in the past: activation needs today or a later date")
        )
    later = (
        RulePack.objects.exclude(pk=pack.id)
        .filter(status=RulePack.Status.ACTIVE, regime=pack.regime, effective_from__gt=start)
        .first()
    )
    if later is not None and later.effective_from is not None:
        warnings.append(
            RulePackProblem(
                "pack.effective_from",
                f"{later.ref} takes effect on {later.effective_from.isoformat()} and supersedes this version from "
                "then on",
            )
        )
    return warnings


@transaction.atomic
def rulepack_draft_create(
    *, actor: User | None, content: Any = None, yaml_text: str | None = None, based_on: UUID | None = None,
    version: str | None = None, notes: str = "",
) -> RulePack:
    """A new draft from content (JSON), YAML text, or a copy of another version's content with a
    new `version` (the copy's effective dates are cleared: the new version needs its own).
    The content need not validate yet: rulepack_validate says what is wrong."""
    given = [
        name
        for name, value in (("content", content), ("yaml", yaml_text), ("based_on", based_on))
        if value not in (None, "")
    ]
    if len(given) != 1:
        raise InvalidInputError(
            "Give exactly one of content, yaml or based_on.",
            fields={"non_field_errors": ["give exactly one of content, yaml, based_on"]},
        )
    if based_on is not None:
        base = RulePack.objects.filter(pk=based_on).first()
        if base is None:
            raise InvalidInputError(fields={"based_on": ["no such rule pack"]})
        version = (version or "").strip()
        if not version:
            raise InvalidInputError(fields={"version": ["required with based_on: the new version's name"]})
        stored = copy.deepcopy(base.content)
        stored["version"] = version
        stored.pop("effective_from", None)
        stored.pop("effective_to", None)
        notes = notes or f"Based on {base.ref}."
    elif yaml_text is not None:
        stored = rulepack_parse_yaml(text=yaml_text)
    else:
        stored = _stored(content)
    if version and based_on is None:
        stored["version"] = version.strip()
    pack = RulePack(status=RulePack.Status.DRAFT, created_by=actor, created_by_label=_label(actor), notes=notes)
    _apply_content(pack, stored)
    _add_editor(pack, actor)
    pack.save()
    audit_record(
        kind="rulepack.drafted",
        subject_type="rulepack",
        subject_id=pack.id,
        actor=actor,
        actor_label=_label(actor),
        data={"ref": pack.ref, "checksum": pack.checksum, "based_on": str(based_on) if based_on else None},
    )
    return pack


@transaction.atomic
def rulepack_draft_update(
    *, pack_id: UUID, actor: User | None, content: Any = None, yaml_text: str | None = None, notes: str | None = None,
) -> RulePack:
    """Replace a draft's content (and/or notes). Active versions never change (409).
    Audited as `rulepack.draft_updated` with the new checksum."""
    pack = _lock(pack_id)
    if pack.status != RulePack.Status.DRAFT:
        raise RulePackImmutableError(
            f"{pack.ref} is {pack.status}; an active version never changes. Create a new draft based on it."
        )
    if content is not None and yaml_text is not None:
        raise InvalidInputError(
            "Give content or yaml, not both.", fields={"non_field_errors": ["give content or yaml, not both"]}
        )
    before = pack.checksum
    if yaml_text is not None:
        _apply_content(pack, rulepack_parse_yaml(text=yaml_text))
    elif content is not None:
        _apply_content(pack, _stored(content))
    if yaml_text is not None or content is not None:
        _add_editor(pack, actor)  # whoever writes the rules can no longer approve them
    voided = bool(pack.approved_checksum) and pack.approved_checksum != pack.checksum
    if voided:
        audit_record(
            kind="rulepack.approval_voided",
            subject_type="rulepack",
            subject_id=pack.id,
            actor=actor,
            actor_label=_label(actor),
            data={
                "ref": pack.ref,
                "approved_by": pack.approved_by_label,
                "approved_checksum": pack.approved_checksum,
                "checksum": pack.checksum,
            },
        )
        pack.approved_by, pack.approved_by_label, pack.approved_at, pack.approved_checksum = None, "", None, ""
    if notes is not None:
        pack.notes = notes
    pack.save()
    audit_record(
        kind="rulepack.draft_updated",
        subject_type="rulepack",
        subject_id=pack.id,
        actor=actor,
        actor_label=_label(actor),
        data={
            "ref": pack.ref,
            "checksum": pack.checksum,
            "previous_checksum": before,
            "content_changed": pack.checksum != before,
        },
    )
    return pack


def rulepack_validate(*, pack_id: UUID) -> list[RulePackProblem]:
    """Why this version could not be activated as it stands; empty means it could."""
    pack = RulePack.objects.filter(pk=pack_id).first()
    if pack is None:
        raise RulePackNotFoundError()
    return _problems(pack.content, pack_id=pack.id)


def rulepack_problems_as_fields(problems: list[RulePackProblem]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for problem in problems:
        fields.setdefault(problem.path, []).append(problem.message)
    return fields


def _send_activated(pack_id: str) -> None:
    for receiver, result in rulepack_activated.send_robust(sender=RulePack, pack_id=pack_id):
        if isinstance(result, Exception):
            logger.error("rulepack_activated receiver %r failed for %s", receiver, pack_id, exc_info=result)


def rulepack_fresh_backtest(*, pack: RulePack) -> RulePackBacktest:
    """The newest stored backtest of exactly the pack's current content, if it is recent enough;
    otherwise 409 backtest_required saying why."""
    max_age = timedelta(hours=settings.ELEMENTA_BACKTEST_MAX_AGE_HOURS)
    latest = pack.backtests.order_by("-created_at").first()
    if latest is None:
        raise BacktestRequiredError(f"{pack.ref} has never been backtested: POST /rulepacks/{pack.id}/backtest/ first.")
    same = pack.backtests.filter(rulepack_checksum=pack.checksum).order_by("-created_at").first()
    if same is None:
        raise BacktestRequiredError(
            f"The draft was edited after its last backtest (checksum {latest.rulepack_checksum[:12]}…, now "
            f"{pack.checksum[:12]}…): backtest this content."
        )
    age = timezone.now() - same.created_at
    if age > max_age:
        hours = settings.ELEMENTA_BACKTEST_MAX_AGE_HOURS
        raise BacktestRequiredError(
            f"The latest backtest of this content is {age.total_seconds() / 3600:.1f} hours old; "
            f"activation needs one from the last {hours:g} hours."
        )
    return same


def _approval_valid(pack: RulePack) -> bool:
    return (pack.approved_by_id is not None and pack.approved_checksum == pack.checksum
            and not _is_author_id(pack=pack, user_id=pack.approved_by_id))


def _approve(*, pack: RulePack, actor: Any, backtest: Any, on_activation: bool = False) -> None:
    """Record the second officer's approval of the pack's current content (the caller saves it)."""
    pack.approved_by, pack.approved_by_label = actor, _label(actor)
    pack.approved_at, pack.approved_checksum = timezone.now(), pack.checksum
    data: dict[str, Any] = {"ref": pack.ref, "checksum": pack.checksum, "backtest": str(backtest.id)}
    if on_activation:
        data["on_activation"] = True
    data["widened"] = (backtest.report.get("widened") or {}).get("widens", False)
    data["editors"] = [e.get("username") for e in pack.editors or []]
    audit_record(kind="rulepack.approved", subject_type="rulepack", subject_id=pack.id, actor=actor,
                 actor_label=_label(actor), data=data)


@transaction.atomic
def rulepack_approve(*, pack_id: UUID, actor: User) -> RulePack:
    """A second officer's approval of a draft's current content, so that it may be activated.

    The approver must not have created or edited the draft (409 author_cannot_approve) and there
    must be a fresh backtest of exactly this content (409 backtest_required): the approver sees
    what it would change. The approval is bound to the content's checksum: an edit voids it."""
    pack = _lock(pack_id)
    rulepack_ensure_transition(pack=pack, target=RulePack.Status.ACTIVE)
    if rulepack_is_author(pack=pack, user=actor):
        raise AuthorCannotApproveError()
    backtest = rulepack_fresh_backtest(pack=pack)
    _approve(pack=pack, actor=actor, backtest=backtest)
    pack.save(update_fields=["approved_by", "approved_by_label", "approved_at", "approved_checksum", "updated_at"])
    return pack


@transaction.atomic
def rulepack_activate(*, pack_id: UUID, effective_from: date, actor: User | None) -> RulePack:
    """Make a draft an active, immutable version, in force from `effective_from` (today or later).

    Needs a fresh backtest of the draft's current content (409 backtest_required) and a second
    officer: either an approval of this content by an officer who neither created nor edited it
    (rulepack_approve), or the caller is such an officer, and their activation is the approval.
    Otherwise 409 second_officer_required.

    Older active versions of the regime stay active: the engine picks, per trade date, the latest
    version in force, so they keep deciding trades dated before this one takes effect. Once the
    transaction commits, `compliance.signals.rulepack_activated` is sent (marketplace re-screens)."""
    pack = _lock(pack_id)
    rulepack_ensure_transition(pack=pack, target=RulePack.Status.ACTIVE)
    today = timezone.localdate()
    if effective_from < today:
        raise InvalidInputError(
            "A version cannot take effect in the past: decisions already recorded were made under the versions then "
            "in force.",
            fields={"effective_from": [f"must be {today.isoformat()} or later"]},
        )
    content = {**pack.content, "effective_from": effective_from.isoformat()}
    problems = _problems(content, pack_id=pack.id)
    if problems:
        raise RulePackInvalidError("The draft does not validate.", fields=rulepack_problems_as_fields(problems))
    backtest = rulepack_fresh_backtest(pack=pack)
    if not _approval_valid(pack):
        if actor is None or rulepack_is_author(pack=pack, user=actor):
            raise SecondOfficerRequiredError(
                f"{pack.ref} needs the approval of an officer who neither created nor edited it "
                f"(POST /rulepacks/{pack.id}/approve/, or that officer activates it).")
        _approve(pack=pack, actor=actor, backtest=backtest, on_activation=True)
    _apply_content(pack, content)
    pack.status = RulePack.Status.ACTIVE
    pack.activated_at = timezone.now()
    pack.activated_by = actor
    pack.activated_by_label = _label(actor)
    try:
        with transaction.atomic():
            pack.save()
    except IntegrityError as exc:  # a concurrent activation took the same regime@version
        raise RulePackVersionTakenError(f"{pack.ref} was activated meanwhile.") from exc
    audit_record(
        kind="rulepack.activated",
        subject_type="rulepack",
        subject_id=pack.id,
        actor=actor,
        actor_label=_label(actor),
        data={
            "ref": pack.ref,
            "checksum": pack.checksum,
            "effective_from": effective_from,
            "backtest": str(backtest.id),
            "approved_by": pack.approved_by_label,
            "approved_checksum": pack.approved_checksum,
        },
    )
    transaction.on_commit(partial(_send_activated, str(pack.id)), robust=True)
    return pack


def rulepack_export_yaml(*, pack: RulePack) -> str:
    """The version as a pack file that `load_rulepacks` accepts with the same checksum (so
    officers' versions can be exported back to files)."""
    header = f"# {pack.ref} ({pack.status}), exported from Elementa; sha256 of the canonical JSON: {pack.checksum}\n"
    return header + yaml.safe_dump(pack.content, sort_keys=False, allow_unicode=True, width=110)
