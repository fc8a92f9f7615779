"""Machine API keys for an organisation's pipelines (docs/authentication.md).

A key acts as its own machine account: a user with no usable password and a membership in the key's
organisation with the creating member's role. Its scopes (config/scopes.py) decide which routes it
may call at all; inside them the ordinary role and tenancy checks apply to that account. The secret
is returned once by `api_key_create`; only its SHA-512 digest is stored.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from compliance.services.audit import audit_record
from config.errors import ApiKeyScopeInvalidError, InvalidInputError, NotFoundError, PermissionDeniedError
from config.scopes import SCOPES, scopes_for_role
from marketplace.models import ApiKey, Membership

MAX_KEYS_PER_ORGANISATION = 50


def _audit(*, kind: str, key: ApiKey, actor: Any) -> None:
    audit_record(
        kind=kind,
        subject_type="api_key",
        subject_id=key.prefix,
        actor=actor,
        data={
            "organisation": str(key.organisation_id),
            "name": key.name,
            "scopes": list(key.scopes),
            "expires": key.expiry_date.isoformat() if key.expiry_date else None,
        },
    )


def api_key_list(*, membership: Membership) -> QuerySet[ApiKey]:
    """The organisation's keys, revoked ones included (so members can see what was revoked and when)."""
    return ApiKey.objects.filter(organisation_id=membership.organisation_id).select_related("created_by", "revoked_by")


@transaction.atomic
def api_key_create(
    *,
    membership: Membership,
    name: str,
    scopes: Iterable[str],
    expires: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key of the member's organisation: (row, secret). Audited as `api_key.created` (never the secret).
    Providers may hand out catalogue and upload scopes, buyers catalogue reads and trades; officers none."""
    allowed = scopes_for_role(membership.role)
    if not allowed:
        raise PermissionDeniedError(
            "Only providers and buyers create API keys; officers' powers are not given to machines."
        )
    chosen = sorted(set(scopes))
    bad = [s for s in chosen if s not in allowed]
    if not chosen or bad:
        known = ", ".join(sorted(SCOPES))
        raise ApiKeyScopeInvalidError(
            fields={
                "scopes": [
                    f"choose one or more of {', '.join(allowed)} (your role: {membership.role}; all scopes: {known})"
                    + (f"; not allowed: {', '.join(bad)}" if bad else ""),
                ]
            }
        )
    if expires is not None and expires <= timezone.now():
        raise InvalidInputError(fields={"expires": ["must be in the future"]})
    if (
        ApiKey.objects.filter(organisation_id=membership.organisation_id, revoked=False).count()
        >= MAX_KEYS_PER_ORGANISATION
    ):
        raise InvalidInputError(
            f"An organisation may hold at most {MAX_KEYS_PER_ORGANISATION} active API keys; revoke one first."
        )
    key = ApiKey(
        organisation_id=membership.organisation_id,
        name=name,
        scopes=chosen,
        expiry_date=expires,
        created_by=membership.user,
    )
    secret = ApiKey.objects.assign_key(key)
    user = get_user_model().objects.create_user(username=f"apikey-{key.prefix}", password=None)  # unusable password
    Membership.objects.create(user=user, organisation_id=membership.organisation_id, role=membership.role)
    key.user = user
    key.save()
    _audit(kind="api_key.created", key=key, actor=membership.user)
    return key, secret


@transaction.atomic
def api_key_revoke(*, membership: Membership, prefix: str) -> ApiKey:
    """Revoke a key of the member's organisation (another organisation's: 404). The next request made
    with it is a 401. Idempotent. Audited as `api_key.revoked`."""
    key = ApiKey.objects.select_for_update().filter(organisation_id=membership.organisation_id, prefix=prefix).first()
    if key is None:
        raise NotFoundError("No such API key.")
    if key.revoked:
        return key
    key.revoked, key.revoked_at, key.revoked_by = True, timezone.now(), membership.user
    key.save(update_fields=["revoked", "revoked_at", "revoked_by"])
    get_user_model().objects.filter(pk=key.user_id).update(is_active=False)
    _audit(kind="api_key.revoked", key=key, actor=membership.user)
    return key
