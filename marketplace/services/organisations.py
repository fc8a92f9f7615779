"""Onboarding and legal facts with history.

An organisation applies with its legal facts (version 1) and an administrator account; a later
change of jurisdiction, headquarters, owners, kind or certifications is a new version. An officer
verifies each version (a second, different officer when party screening found a possible list
match or an owner or controlling party is linked to an embargoed or sanctioned jurisdiction);
the verified version is copied onto the organisation, which trades on it, and the earlier one
ends (`valid_to`). A verified change screens the organisation's open trades and live grants again.
"""

import hashlib
import json
import re
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from compliance.engine import vocabulary as v
from compliance.engine.jurisdictions import country_of, is_jurisdiction
from compliance.errors import SecondOfficerRequiredError
from compliance.models import SanctionsList
from compliance.selectors.rulepacks import sanctioned_jurisdictions
from compliance.services.audit import audit_record
from compliance.services.sanctions_lists import ListMatch, ScreenedName, sanctions_screen
from config.enqueue import enqueue
from config.errors import InvalidInputError, NotFoundError, UnknownFieldError
from marketplace.errors import (
    OrganisationFactsDecidedError,
    OrganisationFactsPendingError,
    OrganisationNameTakenError,
    OrganisationNotVerifiedError,
)
from marketplace.models import Membership, Organisation, OrganisationFacts, ScreeningFalsePositive

MAX_OWNERS = 50
MAX_ALIASES = 20
MAX_CERTIFICATIONS = 20
MAX_DOCUMENTS = 20
CONTROL_SHARE = 50  # an owner holding this share or more: its jurisdiction is an owner jurisdiction of the organisation
FACT_FIELDS = (
    "legal_name",
    "registration_number",
    "register",
    "jurisdiction",
    "headquarters",
    "owners",
    "kind",
    "certifications",
    "aliases",
    "contact",
    "documents",
)


# --- validation -------------------------------------------------------------------------------


def _text(raw: Any, path: str, errors: dict[str, list[str]], *, required: bool = False, limit: int = 200) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            errors.setdefault(path, []).append("this field is required")
        return ""
    if not isinstance(raw, str) or len(raw) > limit:
        errors.setdefault(path, []).append(f"must be text of at most {limit} characters")
        return ""
    return raw.strip()


def _list(raw: Any, path: str, errors: dict[str, list[str]], limit: int) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > limit:
        errors.setdefault(path, []).append(f"must be a list of at most {limit}")
        return []
    return raw


def facts_validate(raw: Any) -> dict[str, Any]:
    """An application's or change's legal facts, checked and normalised; InvalidInputError names each bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, dict):
        raise InvalidInputError(fields={"organisation": ["must be an object"]})
    unknown = [key for key in raw if key not in FACT_FIELDS]
    if unknown:  # refused before anything else, with the code every write uses for this
        raise UnknownFieldError(fields={f"organisation.{key}": ["unknown field"] for key in unknown})
    facts: dict[str, Any] = {
        "legal_name": _text(raw.get("legal_name"), "legal_name", errors, required=True),
        "registration_number": _text(
            raw.get("registration_number"), "registration_number", errors, required=True, limit=80
        ),
        "register": _text(raw.get("register"), "register", errors, required=True),
    }
    for key in ("jurisdiction", "headquarters"):
        value = raw.get(key)
        if value is None and key == "headquarters":
            value = raw.get("jurisdiction")
        if not is_jurisdiction(value):
            errors.setdefault(key, []).append("an ISO 3166-1 alpha-2 code or an ISO 3166-2 subdivision is required")
        facts[key] = value if isinstance(value, str) else ""
    owners: list[dict[str, Any]] = []
    for i, item in enumerate(_list(raw.get("owners"), "owners", errors, MAX_OWNERS)):
        path = f"owners[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "jurisdiction", "share", "kind"}:
            errors.setdefault(path, []).append("an object with name, jurisdiction, share, kind (owner or controller)")
            continue
        kind = item.get("kind", "owner")
        share = item.get("share", 0)
        if kind not in ("owner", "controller"):
            errors.setdefault(f"{path}.kind", []).append("owner or controller")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100:
            errors.setdefault(f"{path}.share", []).append("a percentage from 0 to 100")
            share = 0
        if not is_jurisdiction(item.get("jurisdiction")):
            errors.setdefault(f"{path}.jurisdiction", []).append("an ISO 3166 code is required")
        owners.append(
            {
                "name": _text(item.get("name"), f"{path}.name", errors, required=True),
                "jurisdiction": item.get("jurisdiction"),
                "share": float(share),
                "kind": kind,
            }
        )
    if sum(o["share"] for o in owners if o["kind"] == "owner") > 100:
        errors.setdefault("owners", []).append("the owners' shares add up to more than 100 %")
    facts["owners"] = owners
    kind = raw.get("kind", "company")
    if kind not in v.BUYER_KINDS:
        errors.setdefault("kind", []).append(f"one of: {', '.join(v.BUYER_KINDS)}")
    facts["kind"] = kind
    certifications: list[dict[str, Any]] = []
    for i, item in enumerate(_list(raw.get("certifications"), "certifications", errors, MAX_CERTIFICATIONS)):
        path = f"certifications[{i}]"
        if not isinstance(item, dict) or set(item) - {"code", "evidence", "valid_until"}:
            errors.setdefault(path, []).append("an object with code, evidence and valid_until")
            continue
        if item.get("code") not in v.CERTIFICATIONS:
            errors.setdefault(f"{path}.code", []).append(f"one of: {', '.join(v.CERTIFICATIONS)}")
        try:
            until = date.fromisoformat(str(item.get("valid_until")))
        except ValueError:
            errors.setdefault(f"{path}.valid_until", []).append("the date it lapses (YYYY-MM-DD) is required")
            until = None
        certifications.append(
            {
                "code": item.get("code"),
                "evidence": _text(item.get("evidence"), f"{path}.evidence", errors, required=True, limit=500),
                "valid_until": until.isoformat() if until else None,
            }
        )
    facts["certifications"] = certifications
    facts["aliases"] = [
        _text(a, f"aliases[{i}]", errors, required=True)
        for i, a in enumerate(_list(raw.get("aliases"), "aliases", errors, MAX_ALIASES))
    ]
    contact = raw.get("contact") or {}
    if not isinstance(contact, dict) or set(contact) - {"name", "email", "phone"}:
        errors.setdefault("contact", []).append("an object with name, email, phone")
        contact = {}
    email = _text(contact.get("email"), "contact.email", errors, required=True, limit=254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.setdefault("contact.email", []).append("a valid e-mail address is required")
    facts["contact"] = {
        "name": _text(contact.get("name"), "contact.name", errors),
        "email": email,
        "phone": _text(contact.get("phone"), "contact.phone", errors, limit=40),
    }
    documents = []
    for i, item in enumerate(_list(raw.get("documents"), "documents", errors, MAX_DOCUMENTS)):
        if not isinstance(item, dict) or set(item) - {"title", "reference", "sha256"}:
            errors.setdefault(f"documents[{i}]", []).append(
                "an object with title, reference (where it is kept) and sha256"
            )
            continue
        sha = _text(item.get("sha256"), f"documents[{i}].sha256", errors, limit=64)
        if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
            errors.setdefault(f"documents[{i}].sha256", []).append("64 lower-case hex digits")
        documents.append(
            {
                "title": _text(item.get("title"), f"documents[{i}].title", errors, required=True),
                "reference": _text(
                    item.get("reference"), f"documents[{i}].reference", errors, required=True, limit=500
                ),
                "sha256": sha,
            }
        )
    facts["documents"] = documents
    if errors:
        raise InvalidInputError(fields=errors)
    return facts


# --- screening --------------------------------------------------------------------------------


def screened_names(
    *, name: str, aliases: list[str], owners: list[dict[str, Any]], party: str = "buyer"
) -> list[ScreenedName]:
    names = [ScreenedName(party, "name", name), *(ScreenedName(party, "alias", a) for a in aliases)]
    names += [
        ScreenedName(party, o.get("kind") or "owner", o["name"], float(o.get("share") or 0))
        for o in owners
        if o.get("name")
    ]
    return names


def names_fingerprint(names: list[ScreenedName]) -> str:
    """What screening reads of an organisation; a false positive holds while it stays the same."""
    return hashlib.sha256(json.dumps(sorted([n.subject, n.name] for n in names)).encode()).hexdigest()


def _without_false_positives(
    matches: list[ListMatch], *, organisation_id: UUID | None, fingerprint: str
) -> list[ListMatch]:
    if organisation_id is None or not matches:
        return matches
    cleared = {
        (fp.source, fp.entry_id, fp.entry_fingerprint)
        for fp in ScreeningFalsePositive.objects.filter(
            organisation_id=organisation_id, organisation_fingerprint=fingerprint
        )
    }
    return [m for m in matches if (m.source, m.entry_id, m.entry_fingerprint) not in cleared]


def organisation_screen(
    *, organisation: Organisation, party: str = "buyer", snapshots: list[SanctionsList] | None = None
) -> tuple[list[ListMatch], list[str]]:
    """The organisation's name, aliases, owners and controlling parties against the current lists
    (or `snapshots` of them a caller already read), less the matches an officer found to be false
    positives (while neither side changed)."""
    names = screened_names(
        name=organisation.name, aliases=list(organisation.aliases), owners=list(organisation.owners), party=party
    )
    matches, lists = sanctions_screen(names=names, snapshots=snapshots)
    return _without_false_positives(
        matches, organisation_id=organisation.id, fingerprint=names_fingerprint(names)
    ), lists


def facts_screen(*, facts: dict[str, Any], organisation_id: UUID | None) -> list[ListMatch]:
    names = screened_names(
        name=facts["legal_name"], aliases=facts.get("aliases") or [], owners=facts.get("owners") or []
    )
    matches, _ = sanctions_screen(names=names)
    return _without_false_positives(matches, organisation_id=organisation_id, fingerprint=names_fingerprint(names))


def second_officer_reasons(*, facts: dict[str, Any], matches: list[ListMatch], day: date) -> list[str]:
    """Why verifying these facts needs a second officer: any list match, or an owner or controlling
    party (or the organisation itself) linked to a jurisdiction the sanctions screen names."""
    reasons = [
        f"possible list match: {m.screened.subject} '{m.screened.name}' ~ {m.list_ref} entry {m.entry_id} "
        f"'{m.entry_name}' (score {m.score})"
        for m in matches
    ]
    sanctioned = sanctioned_jurisdictions(day=day)
    places = [("jurisdiction", facts["jurisdiction"]), ("headquarters", facts["headquarters"])]
    places += [(f"{o['kind']} '{o['name']}'", o["jurisdiction"]) for o in facts.get("owners") or []]
    for what, place in places:
        if place in sanctioned or country_of(place) in sanctioned:
            reasons.append(f"{what} is in {place}, under embargo or sanctions measures")
    return reasons


# --- applying and changing --------------------------------------------------------------------


def _version_create(
    *, organisation: Organisation, kind: str, facts: dict[str, Any], user: User | None
) -> OrganisationFacts:
    matches = facts_screen(facts=facts, organisation_id=organisation.id)
    number = (OrganisationFacts.objects.filter(organisation=organisation).aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            version = OrganisationFacts.objects.create(
                organisation=organisation,
                number=number,
                kind=kind,
                facts=facts,
                requested_by=user,
                screening=[m.as_dict() for m in matches],
                second_officer_reasons=second_officer_reasons(facts=facts, matches=matches, day=timezone.localdate()),
            )
    except IntegrityError:
        raise OrganisationFactsPendingError() from None
    return version


def _notify_officers_waiting(version: OrganisationFacts) -> None:
    from marketplace.services.notifications import notify_officers

    what = (
        "applied to join" if version.kind == OrganisationFacts.Kind.APPLICATION else "asked to change its legal facts"
    )
    notify_officers(
        kind="onboarding_waiting",
        subject=f"{version.facts['legal_name']} {what}",
        body=f"{version.facts['legal_name']} {what} (version {version.number}); it waits for an officer's "
        f"verification at /api/v1/organisation-facts/{version.id}/."
        + (
            f"\nTwo officers must verify it: {'; '.join(version.second_officer_reasons)}."
            if version.second_officer_reasons
            else ""
        ),
    )


@transaction.atomic
def organisation_apply(*, facts_raw: Any, admin_raw: Any) -> tuple[Organisation, OrganisationFacts, Membership]:
    """A new organisation applies: it is created `applied` (it cannot trade), with its administrator's
    account and its legal facts as version 1, waiting for an officer."""
    facts = facts_validate(facts_raw)
    admin = admin_raw if isinstance(admin_raw, dict) else {}
    errors: dict[str, list[str]] = {}
    username = _text(admin.get("username"), "admin.username", errors, required=True, limit=150)
    email = _text(admin.get("email"), "admin.email", errors, required=True, limit=254)
    raw_password = admin.get("password")
    password = raw_password if isinstance(raw_password, str) else ""
    user_model = get_user_model()
    if username and user_model.objects.filter(username__iexact=username).exists():
        errors.setdefault("admin.username", []).append("this username is taken")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.setdefault("admin.email", []).append("a valid e-mail address is required")
    try:
        validate_password(password, user=user_model(username=username, email=email))
    except ValidationError as exc:
        errors.setdefault("admin.password", []).extend(exc.messages)
    if errors:
        raise InvalidInputError(fields=errors)
    if Organisation.objects.filter(name__iexact=facts["legal_name"]).exists():
        raise OrganisationNameTakenError(fields={"legal_name": ["already registered"]})
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(
                name=facts["legal_name"],
                status="applied",
                jurisdiction=facts["jurisdiction"],
                headquarters=facts["headquarters"],
                registration_number=facts["registration_number"],
                register=facts["register"],
                aliases=facts["aliases"],
                owners=facts["owners"],
                kind=facts["kind"],
                contact_name=facts["contact"]["name"],
                contact_email=facts["contact"]["email"],
            )
            user = user_model.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:  # a concurrent application took the name or the username first
        raise OrganisationNameTakenError("The legal name or the username was taken a moment ago.") from None
    membership = Membership.objects.create(user=user, organisation=organisation, role=Membership.Role.ADMIN)
    version = _version_create(
        organisation=organisation, kind=OrganisationFacts.Kind.APPLICATION, facts=facts, user=user
    )
    audit_record(
        kind="organisation.applied",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=user,
        data={
            "facts": str(version.id),
            "legal_name": facts["legal_name"],
            "jurisdiction": facts["jurisdiction"],
            "list_matches": len(version.screening),
            "second_officer_reasons": version.second_officer_reasons,
        },
    )
    _notify_officers_waiting(version)  # into the outbox, in this transaction
    return organisation, version, membership


@transaction.atomic
def organisation_facts_change(*, membership: Membership, facts_raw: Any) -> OrganisationFacts:
    """The organisation's administrator asks to change its legal facts: a new version waits for an
    officer; until then the organisation trades on the verified one."""
    organisation = Organisation.objects.select_for_update().get(pk=membership.organisation_id)
    if not organisation.is_verified:
        raise OrganisationNotVerifiedError(
            "The application has not been decided yet; wait for it before asking for a change."
        )
    facts = facts_validate(facts_raw)
    clash = Organisation.objects.filter(name__iexact=facts["legal_name"]).exclude(pk=organisation.pk).exists()
    if clash:
        raise OrganisationNameTakenError(fields={"legal_name": ["already registered"]})
    version = _version_create(
        organisation=organisation, kind=OrganisationFacts.Kind.CHANGE, facts=facts, user=membership.user
    )
    audit_record(
        kind="organisation.facts_requested",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=membership.user,
        data={
            "facts": str(version.id),
            "number": version.number,
            "second_officer_reasons": version.second_officer_reasons,
        },
    )
    _notify_officers_waiting(version)  # into the outbox, in this transaction
    return version


def current_certifications(facts: dict[str, Any], *, day: date) -> list[str]:
    """Certification codes whose evidence is valid on `day` (they lapse after valid_until)."""
    return list(
        dict.fromkeys(
            c["code"]
            for c in facts.get("certifications") or []
            if c.get("valid_until") and date.fromisoformat(c["valid_until"]) >= day
        )
    )


def _apply(organisation: Organisation, facts: dict[str, Any], number: int) -> None:
    organisation.name = facts["legal_name"]
    organisation.registration_number = facts["registration_number"]
    organisation.register = facts["register"]
    organisation.jurisdiction = facts["jurisdiction"]
    organisation.headquarters = facts["headquarters"]
    organisation.owners = facts["owners"]
    organisation.owner_jurisdictions = list(
        dict.fromkeys(
            o["jurisdiction"] for o in facts["owners"] if o["kind"] == "owner" and o["share"] >= CONTROL_SHARE
        )
    )
    organisation.kind = facts["kind"]
    organisation.certifications = current_certifications(facts, day=timezone.localdate())
    organisation.aliases = facts["aliases"]
    organisation.contact_name = facts["contact"]["name"]
    organisation.contact_email = facts["contact"]["email"]
    organisation.facts_version = number
    organisation.status = "verified"


def _rescreen_organisation(organisation_id: str, ref: str, since: datetime) -> None:
    enqueue("marketplace.rescreen_organisation", organisation_id, ref, since.isoformat())


@transaction.atomic
def organisation_facts_decide(*, facts_id: UUID, officer: Membership, accept: bool, reason: str) -> OrganisationFacts:
    """An officer verifies or rejects a version. Screening runs again first (a list may have
    changed since the request); with any list match or sanctioned jurisdiction, the first
    acceptance is recorded and a second, different officer's acceptance verifies it."""
    version = OrganisationFacts.objects.select_for_update().filter(pk=facts_id).first()
    if version is None:
        raise NotFoundError("No such legal facts.")
    if version.status != OrganisationFacts.Status.PENDING:
        raise OrganisationFactsDecidedError(
            f"Version {version.number} was {version.status} by {version.decided_by_label}."
        )
    reason = (reason or "").strip()
    user, now = officer.user, timezone.now()
    organisation = Organisation.objects.select_for_update().get(pk=version.organisation_id)
    if not accept:
        if not reason:
            raise InvalidInputError("A reason is required to reject.", fields={"reason": ["this field is required"]})
        version.status, version.decided_by, version.decided_by_label, version.decided_at, version.reason = (
            OrganisationFacts.Status.REJECTED,
            user,
            user.get_username(),
            now,
            reason,
        )
        version.save()
        if version.kind == OrganisationFacts.Kind.APPLICATION:
            organisation.status = "rejected"
            organisation.save(update_fields=["status"])
        audit_record(
            kind="organisation.facts_rejected",
            subject_type="organisation",
            subject_id=organisation.id,
            actor=user,
            data={"facts": str(version.id), "number": version.number, "reason": reason},
        )
        return version
    matches = facts_screen(facts=version.facts, organisation_id=organisation.id)
    version.screening = [m.as_dict() for m in matches]
    version.second_officer_reasons = second_officer_reasons(
        facts=version.facts, matches=matches, day=timezone.localdate()
    )
    if version.second_officer_reasons and (
        version.first_accepted_by_id is None or version.first_accepted_by_id == user.pk
    ):
        if version.first_accepted_by_id == user.pk:
            raise SecondOfficerRequiredError("You accepted these facts already; a different officer must verify them.")
        version.first_accepted_by, version.first_accepted_at = user, now
        version.save()
        audit_record(
            kind="organisation.first_acceptance",
            subject_type="organisation",
            subject_id=organisation.id,
            actor=user,
            data={"facts": str(version.id), "number": version.number, "reasons": version.second_officer_reasons},
        )
        return version
    clash = Organisation.objects.filter(name__iexact=version.facts["legal_name"]).exclude(pk=organisation.pk).exists()
    if clash:
        raise OrganisationNameTakenError(fields={"legal_name": ["already registered by another organisation"]})
    OrganisationFacts.objects.filter(
        organisation=organisation, status=OrganisationFacts.Status.VERIFIED, valid_to__isnull=True
    ).update(valid_to=now)
    version.status, version.decided_by, version.decided_by_label, version.decided_at, version.reason = (
        OrganisationFacts.Status.VERIFIED,
        user,
        user.get_username(),
        now,
        reason,
    )
    version.valid_from = now
    version.save()
    was_verified = organisation.is_verified
    _apply(organisation, version.facts, version.number)
    organisation.save()
    audit_record(
        kind="organisation.facts_verified",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=user,
        data={
            "facts": str(version.id),
            "number": version.number,
            "kind": version.kind,
            "reason": reason,
            "first_accepted_by": version.first_accepted_by.get_username() if version.first_accepted_by else "",
        },
    )
    if was_verified:  # a change: what it trades on now differs
        transaction.on_commit(partial(_rescreen_organisation, str(organisation.id), version.ref, now))
    return version


def organisation_require_verified(*, organisation: Organisation) -> None:
    if not organisation.is_verified:
        raise OrganisationNotVerifiedError(fields={"organisation": [f"{organisation.name} is {organisation.status}"]})


# --- certifications lapse ---------------------------------------------------------------------


def organisation_certifications_lapse(*, day: date | None = None) -> int:
    """Drop certifications whose evidence expired from every organisation whose facts are
    versioned, and screen its trades and grants again (for beat, daily; idempotent)."""
    day = day or timezone.localdate()
    lapsed = 0
    versions = OrganisationFacts.objects.filter(
        status=OrganisationFacts.Status.VERIFIED, valid_to__isnull=True
    ).select_related("organisation")
    for version in versions.iterator():
        current = current_certifications(version.facts, day=day)
        if sorted(current) == sorted(version.organisation.certifications):
            continue
        with transaction.atomic():
            organisation = Organisation.objects.select_for_update().get(pk=version.organisation_id)
            gone = sorted(set(organisation.certifications) - set(current))
            organisation.certifications = current
            organisation.save(update_fields=["certifications"])
            audit_record(
                kind="organisation.certifications_lapsed",
                subject_type="organisation",
                subject_id=organisation.id,
                actor_label="system:certifications",
                data={"lapsed": gone, "on": day.isoformat()},
            )
            transaction.on_commit(
                partial(
                    _rescreen_organisation,
                    str(organisation.id),
                    f"{version.ref}:lapsed@{day.isoformat()}",
                    timezone.now(),
                )
            )
        lapsed += 1
    return lapsed


# --- reviewed false positives -----------------------------------------------------------------


@transaction.atomic
def screening_false_positive_record(
    *, officer: Membership, organisation_id: UUID, source: str, entry_id: str, reason: str
) -> ScreeningFalsePositive:
    """An officer records that a current list entry is not this organisation (nor an owner): the
    match is left out of its screening while neither the entry nor the organisation's names change."""
    from compliance.models import SanctionsEntry
    from compliance.services.sanctions_lists import sanctions_list_current
    from marketplace.errors import SanctionsEntryUnknownError

    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        raise NotFoundError("No such organisation.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError(fields={"reason": ["this field is required"]})
    snapshot = sanctions_list_current(source=source) if isinstance(source, str) else None
    entry = SanctionsEntry.objects.filter(sanctions_list=snapshot, entry_id=str(entry_id)).first() if snapshot else None
    if entry is None:
        raise SanctionsEntryUnknownError(fields={"entry_id": [f"not in the current {source} list"]})
    names = screened_names(name=organisation.name, aliases=list(organisation.aliases), owners=list(organisation.owners))
    record = ScreeningFalsePositive.objects.create(
        organisation=organisation,
        source=source,
        entry_id=entry.entry_id,
        entry_name=entry.name,
        entry_fingerprint=entry.fingerprint,
        organisation_fingerprint=names_fingerprint(names),
        reason=reason,
        recorded_by=officer.user,
        recorded_by_label=officer.user.get_username(),
    )
    audit_record(
        kind="screening.false_positive",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=officer.user,
        data={
            "source": source,
            "entry": entry.entry_id,
            "entry_name": entry.name,
            "list": snapshot.ref if snapshot else "",
            "reason": reason,
        },
    )
    return record
