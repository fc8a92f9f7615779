"""Continuous re-screening: when a rule-pack version comes into force, open trades are re-checked
and live grants re-evaluated; grants whose trade would now be denied, or need something its
decision did not, are flagged to officers; a grant whose trade would now be DENIED is also
suspended at once, in the transaction that records the flag (downloads answer 403
`grant_suspended` until an officer reinstates or revokes it: see grant_revocations). Also the marketplace side of
backtesting a version
against open trades and live grants (compliance cannot tell which trades are open).

Every step is idempotent, so a redelivered task or the due-sweep can run it again:
- a trade is sent back to `checking` only if its status was set before the version came into force
  (a later status came from a check that already used the version);
- a grant is flagged at most once per version (unique constraint), and screening is read-only;
- the run's record (Rescreening) is finished last.
"""

import logging
from datetime import datetime, time
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from compliance.engine import Decision, Outcome
from compliance.models import RulePack, RulePackBacktest, SanctionsList
from compliance.selectors.rulepacks import rulepacks_due_for_rescreening
from compliance.services.audit import audit_record
from compliance.services.backtests import rulepack_backtest
from compliance.services.checks import compliance_evaluate
from config.enqueue import enqueue
from config.errors import InvalidInputError, NotFoundError
from marketplace.errors import GrantAlreadyRevokedError, GrantFlagResolvedError, GrantFlagSuspendedError
from marketplace.models import AccessGrant, GrantFlag, Membership, Rescreening, Trade
from marketplace.services.grant_revocations import grant_flag_close, grant_revoke_by_officer, grant_suspend
from marketplace.services.trade_facts import trade_transfer_facts
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock
from marketplace.trade_lifecycle import CLOSED

logger = logging.getLogger(__name__)

ACTOR = "system:rescreening"
RECHECKED = (Trade.Status.NEEDS_DOCUMENTS, Trade.Status.IN_REVIEW)


# --- backtest against what is open now ---------------------------------------------------------


def rulepack_backtest_open(*, pack_id: UUID, actor: User | None) -> RulePackBacktest:
    """Backtest a version against every open trade and every trade with a live grant, as of the
    day it would take effect (or today)."""
    open_ids = [str(i) for i in Trade.objects.exclude(status__in=CLOSED).values_list("id", flat=True)]
    granted_ids = [
        str(i) for i in AccessGrant.objects.filter(AccessGrant.active_q()).values_list("trade_id", flat=True)
    ]
    return rulepack_backtest(
        pack_id=pack_id, scope=RulePackBacktest.Scope.OPEN, subject_ids=list(dict.fromkeys([*open_ids, *granted_ids])),
        subject_type="trade", actor=actor, context={"open_trades": len(open_ids), "live_grants": len(granted_ids)},
    )


# --- re-screening after an activation ----------------------------------------------------------


def _in_force_at(pack: RulePack) -> datetime:
    """The moment the version started deciding checks: its activation, or the start of its
    effective day if that is later."""
    assert pack.effective_from is not None and pack.activated_at is not None
    start = timezone.make_aware(datetime.combine(pack.effective_from, time.min))
    return max(pack.activated_at, start)


@transaction.atomic
def _recheck_trade(*, trade_id: UUID, before: datetime, reason: str) -> bool:
    trade = trade_lock(trade_id=trade_id)
    if trade is None or trade.status not in RECHECKED or trade.status_changed_at >= before:
        return False  # gone, moved on, or already decided under the new version
    trade_apply_transition(trade=trade, to=Trade.Status.CHECKING, actor_label=ACTOR, reason=reason)
    return True


def _why_flag(original: dict[str, Any], now: Decision) -> str:
    """Why a live grant needs an officer's eye, or "" if it does not."""
    def rules(outcomes: set[Outcome]) -> str:
        return ", ".join(f"{f.rule} in {f.rulepack}" for f in now.findings if f.outcome in outcomes)

    if now.outcome == Outcome.DENY:
        return f"would now be denied ({rules({Outcome.DENY})})"
    had = [list(group) for group in original.get("requirements") or []]
    new = [group for group in now.requirements if list(group) not in had]
    if new:
        needs = " and ".join(" or ".join(group) for group in new)
        return (
            f"would now need {needs} ({rules({Outcome.NEEDS_FILING, Outcome.NEEDS_MECHANISM, Outcome.NEEDS_APPROVAL})})"
        )
    if now.outcome == Outcome.REVIEW and original.get("outcome") != Outcome.REVIEW:
        return f"would now go to an officer's review ({rules({Outcome.REVIEW})})"
    return ""


def grant_screen(
    *, grant: AccessGrant, pack: RulePack | None = None, ref: str = "", list_ref: str = "",
) -> GrantFlag | None:
    """Re-evaluate a live grant's trade with the active versions, on today's facts; flag it if it
    would now be denied or need something its decision did not. Returns the (possibly existing) flag.

    `ref` names what prompted the screening, once per grant: a rule-pack version (its ref, the
    default), a sanctions-list snapshot or a verified change of an organisation's legal facts."""
    ref = ref or (pack.ref if pack is not None else "")
    assert ref, "a re-screening needs a reason"
    trade = grant.trade
    facts = trade_transfer_facts(trade=trade, trade_date=timezone.localdate())
    if list_ref and list_ref not in facts["parties"]["lists"]:
        return None  # a newer snapshot replaced it meanwhile: that snapshot's own run flags under its name
    now = compliance_evaluate(raw_facts=facts)
    original = trade.decision.decision if trade.decision is not None else {"outcome": "allow", "requirements": []}
    reason = _why_flag(original, now)
    if not reason:
        return None
    try:
        with transaction.atomic():
            flag, created = GrantFlag.objects.get_or_create(
                grant=grant, rulepack_ref=ref, defaults={"rulepack": pack, "decision": now.as_dict(), "reason": reason},
            )
            if created:
                audit_record(
                    kind="grant.flagged",
                    subject_type="grant",
                    subject_id=grant.id,
                    actor_label=ACTOR,
                    data={"flag": str(flag.id), "rulepack": ref, "outcome": str(now.outcome), "reason": reason},
                )
                if now.outcome == Outcome.DENY:  # the law now forbids the transfer: stop access before anyone looks
                    grant_suspend(grant_id=grant.id, reason=f"re-screening under {ref}: {reason}", actor_label=ACTOR,
                                  data={"flag": str(flag.id), "rulepack": ref, "outcome": str(now.outcome)})
    except IntegrityError:  # a concurrent run flagged it first
        flag = GrantFlag.objects.get(grant=grant, rulepack_ref=ref)
    return flag


def rescreen_after_activation(*, pack_id: UUID | str) -> Rescreening | None:
    """Re-screen once a version is in force: (a) trades in needs_documents or in_review go back
    to `checking` (the worker re-checks them with the new version); trades in `checking` will be
    checked with it anyway; (b) live grants are re-evaluated and flagged where needed.

    A version that takes effect later is left for the due-sweep (rescreen_due) on that day.
    Each trade and each flag is its own short transaction: a run over thousands of rows holds no
    long lock, and a crash part-way is finished by running it again."""
    pack = RulePack.objects.filter(pk=pack_id, status=RulePack.Status.ACTIVE, activated_at__isnull=False).first()
    if pack is None or pack.effective_from is None:
        return None
    if pack.effective_from > timezone.localdate():
        logger.info("%s takes effect on %s: re-screening then", pack.ref, pack.effective_from)
        return None
    run, _ = Rescreening.objects.get_or_create(rulepack=pack, defaults={"rulepack_ref": pack.ref})
    if run.finished_at is not None:
        return run
    before, reason = _in_force_at(pack), f"rule pack {pack.ref} activated"

    rechecked = 0
    for trade_id in Trade.objects.filter(status__in=RECHECKED, status_changed_at__lt=before).values_list(
        "id", flat=True
    ):
        rechecked += _recheck_trade(trade_id=trade_id, before=before, reason=reason)

    screened = 0
    grants = AccessGrant.objects.filter(AccessGrant.active_q()).select_related(
        "trade__dataset__provider", "trade__buyer", "trade__decision").order_by("created_at")
    for grant in grants.iterator(chunk_size=200):
        grant_screen(grant=grant, pack=pack)
        screened += 1
    flagged = GrantFlag.objects.filter(rulepack_ref=pack.ref).count()

    Rescreening.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(), trades_rechecked=rechecked, grants_screened=screened, grants_flagged=flagged,
    )
    run.refresh_from_db()
    logger.info(
        "re-screening for %s: %s trades re-checked, %s grants screened, %s flagged",
        pack.ref,
        rechecked,
        screened,
        flagged,
    )
    return run


def rescreen_enqueue(pack_id: str) -> None:
    """Publish the re-screening task; if the broker is down, the due-sweep re-drives it."""
    enqueue("marketplace.rescreen_after_activation", str(pack_id))  # if the broker is down, rescreen_due re-drives it


def rescreen_due() -> int:
    """Enqueue re-screening for every activated version in force today whose run has not finished:
    versions that took effect today after a future-dated activation, and runs whose message was
    lost. Meant for Celery beat (e.g. hourly); harmless to run any time."""
    finished = Rescreening.objects.filter(finished_at__isnull=False).values("rulepack_id")
    due = list(
        rulepacks_due_for_rescreening(today=timezone.localdate()).exclude(pk__in=finished).values_list("id", flat=True)
    )
    for pack_id in due:
        rescreen_enqueue(str(pack_id))
    return len(due)


# --- re-screening after a new sanctions list or a verified change of legal facts ----------------


def rescreen_parties(
    *, ref: str, since: datetime, organisation_ids: list[UUID | str] | None = None, list_ref: str = "",
) -> dict[str, int]:
    """Screen again, on today's facts, the open trades and live grants of the given organisations
    (as buyer or provider; everyone when None): trades waiting for documents or review whose status
    was set before `since` go back to `checking`, live grants are re-evaluated and flagged under
    `ref` where needed (a deny suspends at once). Idempotent like rescreen_after_activation."""
    trades = Trade.objects.filter(status__in=RECHECKED, status_changed_at__lt=since)
    grants = AccessGrant.objects.filter(AccessGrant.active_q())
    if organisation_ids is not None:
        trades = trades.filter(Q(buyer_id__in=organisation_ids) | Q(provider_id__in=organisation_ids))
        grants = grants.filter(Q(trade__buyer_id__in=organisation_ids) | Q(trade__provider_id__in=organisation_ids))
    rechecked = 0
    for trade_id in trades.values_list("id", flat=True):
        rechecked += _recheck_trade(trade_id=trade_id, before=since, reason=f"re-screening: {ref}")
    screened = 0
    grants = grants.select_related("trade__dataset__provider", "trade__buyer", "trade__decision").order_by("created_at")
    for grant in grants.iterator(chunk_size=200):
        grant_screen(grant=grant, ref=ref, list_ref=list_ref)
        screened += 1
    flagged = GrantFlag.objects.filter(rulepack_ref=ref).count()
    logger.info("re-screening %s: %s trades re-checked, %s grants screened, %s flagged",
                ref, rechecked, screened, flagged)
    return {"trades_rechecked": rechecked, "grants_screened": screened, "grants_flagged": flagged}


def rescreen_after_list_import(*, list_id: UUID | str) -> dict[str, int] | None:
    """Everyone against a newly imported sanctions-list snapshot; recorded on the snapshot."""
    snapshot = SanctionsList.objects.filter(pk=list_id).first()
    if snapshot is None or snapshot.rescreened_at is not None:
        return None
    newest = (SanctionsList.objects.filter(source=snapshot.source).order_by("-imported_at", "-id")
              .values_list("id", flat=True).first())
    if newest != snapshot.id:  # superseded before this run: screening uses the newer one, whose own run covers everyone
        SanctionsList.objects.filter(pk=snapshot.pk).update(rescreened_at=timezone.now())
        logger.info("re-screening for %s skipped: superseded by a newer snapshot", snapshot.ref)
        return None
    counts = rescreen_parties(ref=f"list:{snapshot.ref}", since=snapshot.imported_at, list_ref=snapshot.ref)
    SanctionsList.objects.filter(pk=snapshot.pk).update(rescreened_at=timezone.now())
    return counts


def rescreen_lists_due() -> int:
    """Enqueue re-screening for snapshots whose run never finished (a lost message); for beat."""
    due = [str(i) for i in SanctionsList.objects.filter(rescreened_at__isnull=True).values_list("id", flat=True)]
    for list_id in due:
        enqueue("marketplace.rescreen_after_list_import", list_id)
    return len(due)


# --- officers resolve flags --------------------------------------------------------------------


@transaction.atomic
def grant_flag_resolve(*, flag_id: UUID, membership: Membership, note: str, revoke: bool) -> GrantFlag:
    """Close a flag with a note; with `revoke`, revoke the grant too, without a refund (same
    transaction; for a refund use POST /grants/{id}/revoke/). A grant revoked meanwhile by someone
    else is not an error: the flag is closed and says so. A suspended grant is resolved with
    reinstate or revoke instead (409 `grant_flag_suspended`)."""
    # The trade first, as every grant decision locks (trade, grant, flags): no lock-order deadlock.
    trade_id = GrantFlag.objects.filter(pk=flag_id).values_list("grant__trade_id", flat=True).first()
    if trade_id is not None:
        trade_lock(trade_id=trade_id)
    flag = GrantFlag.objects.select_for_update().filter(pk=flag_id).first()
    if flag is None:
        raise NotFoundError("No such flag.")
    if flag.status != GrantFlag.Status.OPEN:
        raise GrantFlagResolvedError(
            f"The flag was resolved by {flag.resolved_by_label} on {flag.resolved_at:%Y-%m-%d}."
        )
    note = (note or "").strip()
    if not note:
        raise InvalidInputError("A note is required.", fields={"note": ["this field is required"]})
    if AccessGrant.objects.filter(pk=flag.grant_id, suspended_at__isnull=False, revoked_at__isnull=True).exists():
        raise GrantFlagSuspendedError()
    revoked = False
    if revoke:
        try:
            # Recorded like every officer revocation, with its refund decision (none: access ends, money stays).
            grant_revoke_by_officer(grant_id=flag.grant_id, officer=membership, refund="none",
                                    reason=f"re-screening under {flag.rulepack_ref}: {note}")
            revoked = True
        except GrantAlreadyRevokedError:
            note += " (the grant was already revoked)"
    return grant_flag_close(flag=flag, user=membership.user, note=note, revoked=revoked)
