"""Login sessions: each login is its own expiring, revocable token (django-rest-knox).

The token itself is returned once, at login; the table keeps its SHA-512 digest and its first 15
characters (`token_key`), which is also the session's id in the API. A password change, by any path
(the API, the admin, `changepassword`), revokes every session of the user (marketplace.receivers).
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from knox.models import AuthToken

from compliance.services.audit import audit_record
from config.errors import NotFoundError, PasswordIncorrectError, PasswordInvalidError


@transaction.atomic
def session_create(*, user: Any) -> tuple[AuthToken, str]:
    """A new session for the user: (row, token). Purges the user's expired sessions, and revokes the
    oldest ones beyond ELEMENTA_MAX_SESSIONS_PER_USER so repeated logins cannot grow the table."""
    now = timezone.now()
    AuthToken.objects.filter(user=user, expiry__lte=now).delete()
    row, token = AuthToken.objects.create(user=user)
    keep = settings.ELEMENTA_MAX_SESSIONS_PER_USER
    stale = list(
        AuthToken.objects.filter(user=user).order_by("-created", "-expiry").values_list("digest", flat=True)[keep:]
    )
    if stale:
        AuthToken.objects.filter(digest__in=stale).delete()
    return row, token


def session_list(*, user: Any) -> QuerySet[AuthToken]:
    """The user's sessions that still work, newest first."""
    return AuthToken.objects.filter(user=user, expiry__gt=timezone.now()).order_by("-created", "token_key")


@transaction.atomic
def session_revoke(*, user: Any, session_id: str) -> None:
    """Log one of the user's own sessions out; another user's (or an unknown id) is a 404.
    Audited as `user.session_revoked`."""
    deleted, _ = AuthToken.objects.filter(user=user, token_key=session_id).delete()
    if not deleted:
        raise NotFoundError("No such session.")
    audit_record(
        kind="user.session_revoked", subject_type="user", subject_id=user.pk, actor=user, data={"session": session_id}
    )


def session_revoke_token(*, token: AuthToken) -> None:
    """Log out the session the request came with."""
    AuthToken.objects.filter(digest=token.digest).delete()


@transaction.atomic
def sessions_revoke_all(*, user: Any, actor: Any, reason: str) -> int:
    """Log the user out everywhere (`reason`: logout_all, password_changed); returns how many sessions
    ended. Audited as `user.sessions_revoked` when there were any."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(
            kind="user.sessions_revoked",
            subject_type="user",
            subject_id=user.pk,
            actor=actor,
            data={"username": user.get_username(), "sessions": deleted, "reason": reason},
        )
    return deleted


@transaction.atomic
def password_change(*, user: Any, current: str, new: str) -> tuple[AuthToken, str]:
    """Check the current password, validate the new one with Django's password validators, set it,
    end every session (by the password_changed receiver, in this transaction), and open a new one
    for the caller. Audited as `user.password_changed` (never the passwords)."""
    if not user.check_password(current):
        raise PasswordIncorrectError(fields={"current_password": ["The current password is wrong."]})
    try:
        password_validation.validate_password(new, user)
    except ValidationError as exc:
        raise PasswordInvalidError(fields={"new_password": list(exc.messages)}) from None
    user.set_password(new)
    user.save(update_fields=["password"])
    audit_record(
        kind="user.password_changed",
        subject_type="user",
        subject_id=user.pk,
        actor=user,
        data={"username": user.get_username()},
    )
    return session_create(user=user)
