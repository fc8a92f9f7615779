"""Members of an organisation: its administrator invites people by e-mail and manages their roles.

Roles: provider, buyer and admin (the organisation's administrator) in any organisation; officer
only in the platform operator's, whose administrators create officers the same way. An invitation
carries a signed token (django.core.signing.TimestampSigner) that expires after
ELEMENTA_INVITATION_MAX_AGE_HOURS and is used once.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from compliance.services.audit import audit_record
from config.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from marketplace.errors import InvitationInvalidError, LastAdministratorError, RoleNotAllowedError
from marketplace.models import Invitation, Membership
from marketplace.services.notifications import notify

SALT = "elementa.invitation"


def roles_allowed(*, is_operator: bool) -> tuple[str, ...]:
    if is_operator:
        return (Membership.Role.OFFICER, Membership.Role.ADMIN)
    return (Membership.Role.PROVIDER, Membership.Role.BUYER, Membership.Role.ADMIN)


def require_admin(membership: Membership | None) -> Membership:
    if membership is None or membership.role != Membership.Role.ADMIN:
        raise PermissionDeniedError("Only the organisation's administrator may manage its members.")
    return membership


def _check_role(role: object, *, is_operator: bool) -> str:
    allowed = roles_allowed(is_operator=is_operator)
    if role not in allowed:
        raise RoleNotAllowedError(fields={"role": [f"one of: {', '.join(allowed)}"]})
    return str(role)


def invitation_token(invitation: Invitation) -> str:
    return signing.TimestampSigner(salt=SALT).sign(str(invitation.id))


@transaction.atomic
def invitation_create(*, membership: Membership, email: str, role: str) -> tuple[Invitation, str]:
    """Invite `email` into the administrator's organisation as `role`; the e-mail with the link is sent after commit."""
    require_admin(membership)
    organisation = membership.organisation
    role = _check_role(role, is_operator=organisation.is_operator)
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInputError(fields={"email": ["a valid e-mail address is required"]}) from None
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        role=role,
        invited_by=membership.user,
        expires_at=timezone.now() + timedelta(hours=settings.ELEMENTA_INVITATION_MAX_AGE_HOURS),
    )
    token = invitation_token(invitation)
    audit_record(
        kind="invitation.created",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=membership.user,
        data={"invitation": str(invitation.id), "email": email, "role": role},
    )
    notify(
        kind="invitation",
        user_ids=[],
        email=email,
        subject=f"You are invited to join {organisation.name} on Elementa",
        body=f"{membership.user.get_username()} invites you to join {organisation.name} as {role}.\n"
        f"Accept within {settings.ELEMENTA_INVITATION_MAX_AGE_HOURS:g} hours: "
        f"{settings.ELEMENTA_INVITATION_URL}{token}\n"
        "(POST the token with a username and password to /api/v1/invitations/accept/.)",
    )
    return invitation, token


@transaction.atomic
def invitation_accept(*, token: str, username: str, password: str) -> Membership:
    """Create the invited person's account and membership; the token works once, until it expires."""
    max_age = timedelta(hours=settings.ELEMENTA_INVITATION_MAX_AGE_HOURS)
    try:
        invitation_id = signing.TimestampSigner(salt=SALT).unsign(str(token or ""), max_age=max_age)
    except signing.BadSignature:  # also SignatureExpired
        raise InvitationInvalidError() from None
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.accepted_at or invitation.revoked_at or invitation.expires_at <= timezone.now():
        raise InvitationInvalidError()
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    username = (username or "").strip() if isinstance(username, str) else ""
    if not username or len(username) > 150:
        errors["username"] = ["this field is required (at most 150 characters)"]
    elif user_model.objects.filter(username__iexact=username).exists():
        errors["username"] = ["this username is taken"]
    try:
        validate_password(
            password if isinstance(password, str) else "", user=user_model(username=username, email=invitation.email)
        )
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise InvalidInputError(fields=errors)
    user = user_model.objects.create_user(username=username, email=invitation.email, password=password)
    membership = Membership.objects.create(user=user, organisation=invitation.organisation, role=invitation.role)
    invitation.accepted_at, invitation.accepted_user = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_user"])
    audit_record(
        kind="invitation.accepted",
        subject_type="organisation",
        subject_id=invitation.organisation_id,
        actor=user,
        data={"invitation": str(invitation.id), "role": invitation.role},
    )
    return membership


@transaction.atomic
def member_role_change(*, membership: Membership, user_id: int, role: str) -> Membership:
    """The administrator changes a member's role (or removes the member's access with role "none")."""
    require_admin(membership)
    target = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(organisation_id=membership.organisation_id, user_id=user_id)
        .first()
    )
    if target is None:
        raise NotFoundError("No such member.")
    new_role = _check_role(role, is_operator=membership.organisation.is_operator)
    if target.role == Membership.Role.ADMIN and new_role != Membership.Role.ADMIN:
        admins = Membership.objects.filter(
            organisation_id=membership.organisation_id, role=Membership.Role.ADMIN, user__is_active=True
        )
        if admins.count() <= 1:
            raise LastAdministratorError()
    old = target.role
    target.role = new_role
    target.save(update_fields=["role"])
    audit_record(
        kind="member.role_changed",
        subject_type="organisation",
        subject_id=membership.organisation_id,
        actor=membership.user,
        data={"user": target.user.get_username(), "from": old, "to": new_role},
    )
    return target
