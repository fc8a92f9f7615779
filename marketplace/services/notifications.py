"""E-mail notifications: people who must act are told, through a transactional outbox.

A notification is written in the transaction of the action that causes it (so a rolled-back
action tells nobody) and sent by a Celery task after commit; a sweep re-sends what a lost message
left unsent. Each user can turn kinds off (NotificationPreference). The same events stay
available as webhooks (marketplace/services/webhooks.py).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Case, F, TextField, Value, When
from django.utils import timezone

from config.enqueue import enqueue
from marketplace.models import Membership, Notification, NotificationPreference
from marketplace.trade_lifecycle import UNANNOUNCED

logger = logging.getLogger(__name__)

# Kind → who it is for and what it is about; users choose among these.
KINDS = {
    "onboarding_waiting": "officers: an organisation's application or change of legal facts waits for verification",
    "review_waiting": "officers: a trade or a re-screened grant waits for review",
    "evidence_waiting": "officers: evidence (a trade document or a mechanism on file) waits for review",
    "four_eyes_waiting": "officers: a first approval waits for a second officer",
    "digest": "officers: daily digest of items waiting longer than ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS",
    "trade_status": "parties: a trade of your organisation changed status",
    "evidence_decided": "parties: evidence your organisation filed was accepted or rejected",
    "grant_changed": "parties: an access grant was suspended, revoked or is about to expire",
    "invitation": "the invitation to join an organisation (always sent)",
}
ALWAYS = frozenset({"invitation"})


def officer_user_ids() -> list[int]:
    return list(
        Membership.objects.filter(
            organisation__is_operator=True,
            role__in=(Membership.Role.OFFICER, Membership.Role.ADMIN),
            user__is_active=True,
        ).values_list("user_id", flat=True)
    )


def member_user_ids(organisation_ids: list[UUID]) -> list[int]:
    return list(
        Membership.objects.filter(organisation_id__in=organisation_ids, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )


DRAIN_KEY = "elementa:notifications:drain"


def _enqueue(notification_ids: list[str]) -> None:
    """After an action commits: have its notifications sent.

    With ELEMENTA_NOTIFY_DRAIN_SECONDS > 0 (the default, 10), one drain task stands for every action
    until it starts: the first action claims the drain in the shared cache (an atomic add) and
    publishes it; the actions after it publish nothing, because the drain releases the claim before
    it reads the outbox, so their rows (committed before they saw the claim) are read by it. A
    worker that is behind batches more: trades settled at 40 a second share a drain between them.
    The claim expires after ELEMENTA_NOTIFY_DRAIN_SECONDS, so a drain message lost with a broker
    delays the next e-mails no longer than that; notifications_sweep sends anything left. 0: one
    task per action, with its ids. No countdown: a task held back by an ETA sat unacknowledged in
    the worker, and an acknowledgement lost while the broker was frozen stopped that worker from
    taking more (bench/faults.py, scenario 4). The shared cache down: each process claims in memory."""
    from config.outage import guarded_cache

    interval = settings.ELEMENTA_NOTIFY_DRAIN_SECONDS
    if interval <= 0:
        if len(notification_ids) == 1:
            enqueue("marketplace.notification_send", notification_ids[0])
        elif notification_ids:
            enqueue("marketplace.notifications_send", notification_ids)
        return
    if guarded_cache.add(DRAIN_KEY, "1", timeout=interval) and not enqueue("marketplace.notifications_drain"):
        guarded_cache.delete(DRAIN_KEY)  # the next action may try to publish at once


def notifications_drain(*, batch: int = 500, rounds: int = 20) -> int:
    """Release the drain claim, then send what the outbox holds unsent (notifications_send, `batch`
    at a time, oldest first) until it is empty, a round sends nothing new (the rest is being sent by
    a concurrent drain, which holds their locks), or `rounds` are done (the next action publishes
    another drain, and the sweep sends anything left). Returns how many were marked sent."""
    from config.outage import guarded_cache

    guarded_cache.delete(DRAIN_KEY)  # from here on, an action that commits publishes a drain of its own
    done = 0
    for _ in range(rounds):
        ids = [str(pk) for pk in Notification.objects.filter(sent_at__isnull=True).order_by("created_at", "id")
               .values_list("id", flat=True)[:batch]]
        if not ids:
            break
        marked = notifications_send(notification_ids=ids, count_marked=True)
        done += marked
        if marked == 0 or len(ids) < batch:
            break
    return done


def members_wanting(kind: str, organisation_ids: list[UUID]) -> list[int]:
    """The active members of the organisations who have not muted `kind`: one query (membership,
    user and preference joined) where member_user_ids and notify's preference check take two."""
    from marketplace.services.recipients import recipients_prefetched_for

    prefetched = recipients_prefetched_for(organisation_ids)
    rows = prefetched.members if prefetched is not None else Membership.objects.filter(
        organisation_id__in=organisation_ids, user__is_active=True
    ).values_list("user_id", "user__notification_preference__muted")
    return [uid for uid, muted in rows if kind in ALWAYS or kind not in (muted or ())]


# Inside notifications_batched(): the rows of the block, by (collapse key or row id, user, email).
_batch: ContextVar[dict[tuple[str, int | None, str], Notification] | None] = ContextVar(
    "elementa_notification_batch", default=None
)


@contextmanager
def notifications_batched() -> Iterator[None]:
    """Inside it, notify() collects its rows; when the block ends without an error they are written
    with one INSERT and sent by one task after commit. A row with the `collapse` key of an earlier
    row for the same person replaces it: a trade that is approved and settled in one transaction
    tells each member once, that it settled. Nested blocks join the outermost one."""
    if _batch.get() is not None:
        yield
        return
    rows: dict[tuple[str, int | None, str], Notification] = {}
    token = _batch.set(rows)
    try:
        yield
    finally:
        _batch.reset(token)
    _write(list(rows.values()))


def _write(rows: list[Notification]) -> list[Notification]:
    created = Notification.objects.bulk_create(rows) if rows else []
    ids = [str(n.id) for n in created]
    if ids:
        transaction.on_commit(partial(_enqueue, ids))
    return created


def notify(
    *, kind: str, user_ids: list[int], subject: str, body: str, email: str = "", preferences_checked: bool = False,
    collapse: str = "",
) -> list[Notification]:
    """Write one notification per user who wants this kind (or one to `email`, for an invitation),
    in the caller's transaction; each is sent after commit. `preferences_checked`: the ids come
    from members_wanting, which already left out those who muted the kind. `collapse`: inside
    notifications_batched(), a later row with the same key for the same person replaces this one."""
    assert kind in KINDS, kind
    muted = set() if preferences_checked else {
        p.user_id
        for p in NotificationPreference.objects.filter(user_id__in=user_ids)
        if kind in p.muted and kind not in ALWAYS
    }
    rows = [
        Notification(kind=kind, user_id=uid, subject=subject[:200], body=body)
        for uid in dict.fromkeys(user_ids)
        if uid not in muted
    ]
    if email:
        rows.append(Notification(kind=kind, email=email, subject=subject[:200], body=body))
    batch = _batch.get()
    if batch is None:
        return _write(rows)
    for row in rows:
        key = (f"{kind}:{collapse}" if collapse else str(row.id), row.user_id, row.email)
        batch.pop(key, None)  # re-inserted last: the batch keeps the order the latest rows were written in
        batch[key] = row
    return rows


def notify_officers(*, kind: str, subject: str, body: str) -> list[Notification]:
    return notify(kind=kind, user_ids=officer_user_ids(), subject=subject, body=body)


def notification_send(*, notification_id: UUID | str) -> bool:
    """Send one notification if it has not been (idempotent: a duplicate message finds it sent).
    True if it went to an address."""
    return notifications_send(notification_ids=[str(notification_id)]) > 0


def notifications_send(*, notification_ids: list[str], count_marked: bool = False) -> int:
    """Send an action's notifications (one task message): the unsent ones are locked together
    (a duplicate message running beside this one skips them), sent over one mail connection and
    marked sent with one UPDATE. Idempotent as notification_send is. If the mail server fails
    part-way, those sent before the failure are marked sent and the error is raised, so Celery's
    retry sends only the rest. Returns how many had an address (with `count_marked`, how many were
    marked sent, addressed or not)."""
    failure: Exception | None = None
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("user")
            .filter(pk__in=notification_ids, sent_at__isnull=True)
            .order_by("created_at", "id")
        )
        if not rows:
            return 0
        done: list[Notification] = []
        no_address: list[object] = []
        with get_connection() as mail:
            for notification in rows:
                address = notification.email or (notification.user.email if notification.user else "")
                try:
                    if address:
                        EmailMessage(f"[Elementa] {notification.subject}", notification.body,
                                     settings.DEFAULT_FROM_EMAIL, [address], connection=mail).send()
                except Exception as exc:
                    failure = exc
                    break
                done.append(notification)
                if not address:
                    no_address.append(notification.pk)
        if done:
            Notification.objects.filter(pk__in=[n.pk for n in done]).update(
                sent_at=timezone.now(),
                skipped=Case(When(pk__in=no_address, then=Value(True)), default=Value(False)),
                # an invitation's link is a credential: keep no copy once it is sent
                body=Case(When(kind="invitation", then=Value("(invitation link sent; not kept)")), default=F("body"),
                          output_field=TextField()),
            )
    if failure is not None:
        raise failure
    return len(done) if count_marked else len(done) - len(no_address)


def notifications_sweep(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Send what is still unsent a while after it was written (a lost task message); for beat."""
    due = Notification.objects.filter(sent_at__isnull=True, created_at__lt=timezone.now() - older_than).values_list(
        "id", flat=True
    )[:500]
    return notifications_send(notification_ids=[str(pk) for pk in due])


# --- preferences ------------------------------------------------------------------------------


def notification_preferences_get(*, user: Any) -> dict[str, Any]:
    pref = NotificationPreference.objects.filter(user=user).first()
    muted = set(pref.muted if pref else [])
    return {"kinds": [{"kind": k, "about": about, "enabled": k not in muted} for k, about in KINDS.items()]}


@transaction.atomic
def notification_preferences_set(*, user: Any, enabled: Any) -> dict[str, Any]:
    """`enabled` maps kinds to true/false; kinds not named keep their setting."""
    from compliance.services.audit import audit_record
    from config.errors import InvalidInputError

    if not isinstance(enabled, dict) or not all(k in KINDS and isinstance(v, bool) for k, v in enabled.items()):
        raise InvalidInputError(fields={"enabled": [f"maps notification kinds ({', '.join(KINDS)}) to true or false"]})
    pref, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    muted = set(pref.muted)
    for kind, on in enabled.items():
        (muted.discard if on else muted.add)(kind)
    pref.muted = sorted(muted - ALWAYS)
    pref.save()
    audit_record(
        kind="notifications.preferences_changed",
        subject_type="user",
        subject_id=user.pk,
        actor=user,
        data={"muted": pref.muted},
    )
    return notification_preferences_get(user=user)


# --- from domain events -----------------------------------------------------------------------


def _parties_of(subject_type: str, subject_id: str) -> list[UUID]:
    from marketplace.models import AccessGrant, OrganisationMechanism, Trade, TradeDocument

    if subject_type == "trade":
        row = Trade.objects.filter(pk=subject_id).values_list("buyer_id", "provider_id").first()
        return list(row or [])
    if subject_type == "grant":
        row = AccessGrant.objects.filter(pk=subject_id).values_list("trade__buyer_id", "trade__provider_id").first()
        return list(row or [])
    if subject_type in ("document", "evidence"):
        doc = TradeDocument.objects.filter(pk=subject_id).values_list("trade__buyer_id", "trade__provider_id").first()
        return list(doc or [])
    if subject_type == "mechanism":
        org = OrganisationMechanism.objects.filter(pk=subject_id).values_list("organisation_id", flat=True).first()
        return [org] if org else []
    return []


FOUR_EYES_EVENTS = (
    "evidence.first_acceptance",
    "review.first_approval",
    "organisation.first_acceptance",
    "trade.refund_requested",
    "deposit.credit_requested",
)


def _notify_status(*, subject_id: str, to: str, data: dict[str, Any]) -> None:
    """The trade's parties' members who want it are told of its new status (one message per
    member per transaction: the collapse key keeps the last)."""
    # trade events carry their parties (events.trade_event_emit): no need to read the trade again
    parties = [data["buyer"], data["provider"]] if data.get("buyer") and data.get("provider") else (
        _parties_of("trade", subject_id)
    )
    notify(
        kind="trade_status",
        user_ids=members_wanting("trade_status", parties),
        preferences_checked=True,
        subject=f"Trade {subject_id[:8]} is now {to}",
        body=f"Trade {subject_id} changed from {data.get('from') or 'new'} to {to}: "
        f"{data.get('reason', '')}".strip(),
        collapse=f"trade:{subject_id}",
    )


def notify_for_event(*, kind: str, subject_type: str, subject_id: str, data: dict[str, Any]) -> None:
    """Map an audited domain event to the notifications it causes (called in its transaction)."""
    what = f"{subject_type} {subject_id}"
    if kind == "trade.status_changed":
        to = data.get("to", "")
        if to not in UNANNOUNCED:
            _notify_status(subject_id=subject_id, to=to, data=data)
        if to == "in_review":
            notify_officers(
                kind="review_waiting",
                subject=f"Trade {subject_id[:8]} waits for review",
                body=f"Trade {subject_id} went to review: {data.get('reason', '')}. See /api/v1/reviews/.",
            )
    elif kind == "grant.flagged":
        notify_officers(
            kind="review_waiting",
            subject=f"Grant {subject_id[:8]} was flagged by re-screening",
            body=f"Re-screening flagged the live grant {subject_id}: {data.get('reason', '')}. "
            "See /api/v1/reviews/grants/.",
        )
    elif kind in ("evidence.added", "mechanism.added"):
        notify_officers(
            kind="evidence_waiting",
            subject=f"New evidence waits for review ({data.get('code', subject_type)})",
            body=f"{what} was filed and waits for an officer's review. See /api/v1/documents/ or /api/v1/mechanisms/.",
        )
    elif kind in FOUR_EYES_EVENTS:
        notify_officers(
            kind="four_eyes_waiting",
            subject=f"A second officer is needed ({kind})",
            body=f"{kind} on {what}: a different officer must confirm it.",
        )
    elif kind in ("evidence.accepted", "evidence.rejected"):
        parties = _parties_of(subject_type, subject_id)
        verdict = kind.split(".")[1]
        notify(
            kind="evidence_decided",
            user_ids=member_user_ids(parties),
            subject=f"Evidence {verdict}",
            body=f"{what} was {verdict}. {data.get('reason') or ''}".strip(),
        )
    elif kind in ("grant.suspended", "grant.revoked"):
        parties = _parties_of("grant", subject_id)
        verdict = kind.split(".")[1]
        notify(
            kind="grant_changed",
            user_ids=member_user_ids(parties),
            subject=f"Access grant {subject_id[:8]} {verdict}",
            body=f"The access grant {subject_id} was {verdict}: {data.get('reason', '')}".strip(),
        )


# --- scheduled --------------------------------------------------------------------------------


def _waiting_items(before: Any) -> list[str]:
    from marketplace.models import (
        EvidenceStatus,
        GrantFlag,
        OrganisationFacts,
        OrganisationMechanism,
        Trade,
        TradeDocument,
    )

    lines = []
    counts = {
        "trades in review": Trade.objects.filter(status=Trade.Status.IN_REVIEW, waiting_since__lt=before).count(),
        "trade documents pending": TradeDocument.objects.filter(
            status=EvidenceStatus.PENDING, created_at__lt=before
        ).count(),
        "mechanisms pending": OrganisationMechanism.objects.filter(
            status=EvidenceStatus.PENDING, created_at__lt=before
        ).count(),
        "legal facts awaiting verification": OrganisationFacts.objects.filter(
            status=OrganisationFacts.Status.PENDING, requested_at__lt=before
        ).count(),
        "flagged grants": GrantFlag.objects.filter(status=GrantFlag.Status.OPEN, created_at__lt=before).count(),
    }
    for label, count in counts.items():
        if count:
            lines.append(f"- {count} {label}")
    return lines


@transaction.atomic
def notifications_digest() -> int:
    """The officers' daily digest of items waiting longer than ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS;
    nothing is sent when nothing waits that long."""
    hours = settings.ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS
    lines = _waiting_items(timezone.now() - timedelta(hours=hours))
    if not lines:
        return 0
    return len(
        notify_officers(
            kind="digest",
            subject=f"Items waiting more than {hours:g} hours",
            body="Waiting for an officer for more than {:g} hours:\n{}".format(hours, "\n".join(lines)),
        )
    )


@transaction.atomic
def notifications_grants_expiring(*, within: timedelta = timedelta(days=7)) -> int:
    """Tell the parties of each live grant that expires within `within`, once per grant."""
    from marketplace.models import AccessGrant

    now = timezone.now()
    sent = 0
    grants = AccessGrant.objects.filter(
        AccessGrant.active_q(),
        valid_until__isnull=False,
        valid_until__lte=now + within,
        expiry_notified_at__isnull=True,
    ).select_related("trade")
    for grant in grants.select_for_update(of=("self",)):
        assert grant.valid_until is not None
        notify(
            kind="grant_changed",
            user_ids=member_user_ids([grant.trade.buyer_id, grant.trade.provider_id]),
            subject=f"Access grant {str(grant.id)[:8]} expires on {grant.valid_until:%Y-%m-%d}",
            body=f"The access grant {grant.id} for trade {grant.trade_id} expires at {grant.valid_until.isoformat()}.",
        )
        AccessGrant.objects.filter(pk=grant.pk).update(expiry_notified_at=now)
        sent += 1
    return sent
