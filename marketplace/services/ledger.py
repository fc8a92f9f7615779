"""The ledger: every movement is one balanced transaction, applied to wallet rows in a fixed order.

Exactly once: a trade has at most one transaction of each kind (a unique constraint), and each
operation checks, under the trade's row lock held by its caller, that its predecessor exists and
that nothing has already consumed the hold. Balances never go negative: decreases are conditional
updates (`... WHERE available >= x`) with a CHECK constraint behind them.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import ConflictError
from marketplace.errors import AmountOutOfRangeError, InsufficientFundsError, RefundNotCoveredError
from marketplace.models import Deposit, LedgerEntry, LedgerTransaction, Trade, Wallet
from marketplace.money import AMOUNT_MAX, fee_of, quantum

A = LedgerEntry.Account
K = LedgerTransaction.Kind


@dataclass(frozen=True)
class Leg:
    account: str
    amount: Decimal
    wallet: Wallet | None = None


def wallet_get_or_create(*, organisation_id: UUID, currency: str) -> Wallet:
    try:
        with transaction.atomic():
            wallet, _ = Wallet.objects.get_or_create(organisation_id=organisation_id, currency=currency)
    except IntegrityError:  # created by a concurrent request in between
        wallet = Wallet.objects.get(organisation_id=organisation_id, currency=currency)
    return wallet


def _overflow(wallet: Wallet) -> AmountOutOfRangeError:
    return AmountOutOfRangeError(f"The {wallet.currency} wallet would hold more than {AMOUNT_MAX:,}.",
                                 fields={"amount": [f"the balance would exceed {AMOUNT_MAX:,}"]})


def _apply(wallet: Wallet, available: Decimal, held: Decimal, error: type[ConflictError]) -> None:
    """Change one wallet row by deltas; a decrease that would go below zero changes nothing and raises
    `error`, an increase past NUMERIC(16,2) changes nothing and raises AmountOutOfRangeError (400)."""
    if connection.vendor == "sqlite":
        # SQLite does decimal arithmetic in binary floating point (0.1 + 0.2 - 0.3 = 5.5e-17, which
        # a CHECK (available >= 0) can trip over). Its IMMEDIATE transactions already serialise
        # writers, so read, compute in Decimal and write the exact result instead.
        row = Wallet.objects.filter(pk=wallet.pk).values("available", "held").get()
        new_available, new_held = row["available"] + available, row["held"] + held
        if new_available < 0 or new_held < 0:
            raise error()
        if new_available > AMOUNT_MAX or new_held > AMOUNT_MAX:
            raise _overflow(wallet)
        Wallet.objects.filter(pk=wallet.pk).update(available=new_available, held=new_held)
        return
    qs = Wallet.objects.filter(pk=wallet.pk)
    if available < 0:
        qs = qs.filter(available__gte=-available)
    elif available > 0:
        qs = qs.filter(available__lte=AMOUNT_MAX - available)
    if held < 0:
        qs = qs.filter(held__gte=-held)
    elif held > 0:
        qs = qs.filter(held__lte=AMOUNT_MAX - held)
    if qs.update(available=F("available") + available, held=F("held") + held) != 1:
        row = Wallet.objects.filter(pk=wallet.pk).values("available", "held").get()
        if row["available"] + available > AMOUNT_MAX or row["held"] + held > AMOUNT_MAX:
            raise _overflow(wallet)
        raise error()


def ledger_check_credit(*, organisation_id: UUID, currency: str, amount: Decimal) -> None:
    """Refuse (400 amount_out_of_range) a credit the organisation's wallet could not hold today."""
    balance = (
        Wallet.objects.filter(organisation_id=organisation_id, currency=currency)
        .values_list("available", flat=True)
        .first()
    )
    if amount > AMOUNT_MAX or (balance or 0) + amount > AMOUNT_MAX:
        raise AmountOutOfRangeError(f"The {currency} wallet would hold more than {AMOUNT_MAX:,}.",
                                    fields={"amount": [f"the balance would exceed {AMOUNT_MAX:,}"]})


@transaction.atomic(savepoint=False)  # all or nothing with its caller's transaction: no savepoint of its own
def ledger_post(
    *,
    kind: str,
    currency: str,
    legs: list[Leg],
    trade: Trade | None = None,
    deposit: Deposit | None = None,
    memo: str = "",
    shortfall: type[ConflictError] = InsufficientFundsError,
) -> LedgerTransaction:
    """Record one balanced transaction and move the wallet balances it touches."""
    if sum((leg.amount for leg in legs), Decimal(0)) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {legs}")
    legs = [leg for leg in legs if leg.amount != 0]
    txn = LedgerTransaction.objects.create(kind=kind, currency=currency, trade=trade, deposit=deposit, memo=memo)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(transaction=txn, wallet=leg.wallet, account=leg.account, currency=currency, amount=leg.amount)
        for leg in legs
    )
    deltas: dict[object, list] = {}
    for leg in legs:
        if leg.wallet is not None:
            row = deltas.setdefault(leg.wallet.pk, [leg.wallet, Decimal(0), Decimal(0)])
            row[1 if leg.account == A.AVAILABLE else 2] += leg.amount
    # Always in the same order (by wallet id), so two transactions touching the same two wallets
    # (X buys from Y while Y buys from X) cannot deadlock.
    for pk in sorted(deltas, key=str):
        wallet, available, held = deltas[pk]
        _apply(wallet, available, held, shortfall)
    return txn


def _has(trade: Trade, *kinds: str) -> bool:
    return LedgerTransaction.objects.filter(trade=trade, kind__in=kinds).exists()


class EscrowMissingError(RuntimeError):
    """A priced trade reached settlement without its hold: a bug, never a client's error."""


def _escrow_refusal(*, organisation_id: UUID, currency: str, amount: Decimal) -> None:
    """Why a hold changed nothing: the held balance would overflow (400), else too little available (409)."""
    held = Wallet.objects.filter(organisation_id=organisation_id, currency=currency).values_list("held", flat=True)
    if held and held[0] + amount > AMOUNT_MAX:
        raise AmountOutOfRangeError(f"The {currency} wallet would hold more than {AMOUNT_MAX:,}.")
    raise InsufficientFundsError()


def _escrow_debit(*, organisation_id: UUID, currency: str, amount: Decimal) -> UUID:
    """Move `amount` from the organisation's available funds to held; the wallet's id, or
    InsufficientFundsError (409) when it has no wallet in the currency or not enough in it.
    Exact Decimal arithmetic in Python (see _apply); SQLite's IMMEDIATE transactions serialise writers."""
    wallet = Wallet.objects.filter(organisation_id=organisation_id, currency=currency).values(
        "id", "available", "held").first()
    if wallet is None or wallet["available"] < amount:
        raise InsufficientFundsError()
    if wallet["held"] + amount > AMOUNT_MAX:
        _escrow_refusal(organisation_id=organisation_id, currency=currency, amount=amount)
    Wallet.objects.filter(pk=wallet["id"]).update(available=wallet["available"] - amount, held=wallet["held"] + amount)
    return UUID(str(wallet["id"]))


_HOLD_SQL = """
WITH w AS (
    UPDATE {wallet} SET available = available - %(amount)s, held = held + %(amount)s, updated_at = %(now)s
    WHERE organisation_id = %(organisation)s AND currency = %(currency)s
      AND available >= %(amount)s AND held <= %(held_max)s
    RETURNING id
), t AS (
    INSERT INTO {txn} (id, kind, currency, trade_id, deposit_id, memo, created_at)
    SELECT %(txn_id)s, %(kind)s, %(currency)s, %(trade)s, NULL, %(memo)s, %(now)s FROM w
    RETURNING id
)
INSERT INTO {entry} (transaction_id, wallet_id, account, currency, amount, created_at)
SELECT t.id, w.id, e.account, %(currency)s, e.amount, %(now)s
FROM t, w, (VALUES (%(available)s, %(debit)s::numeric), (%(held)s, %(amount)s::numeric)) AS e (account, amount)
RETURNING wallet_id
"""


def ledger_hold(*, trade: Trade) -> LedgerTransaction | None:
    """Move the trade's price from the buyer's available funds into escrow (at purchase). Not enough
    funds (or no wallet in the currency) → 409 insufficient_funds, and nothing changed.

    The hottest write of the API (every purchase), so on PostgreSQL it is one statement: the
    conditional wallet UPDATE (`... WHERE available >= price`), the ledger transaction and its two
    entries, chained in one WITH query that inserts nothing when the UPDATE matched no row. Elsewhere
    (SQLite): _escrow_debit, then the two inserts."""
    if trade.price == 0:
        return None
    memo = f"escrow for trade {trade.id}"
    if connection.vendor == "postgresql":
        now, txn_id = timezone.now(), uuid4()
        sql = _HOLD_SQL.format(wallet=Wallet._meta.db_table, txn=LedgerTransaction._meta.db_table,
                               entry=LedgerEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(sql, {
                "amount": trade.price, "debit": -trade.price, "now": now, "organisation": trade.buyer_id,
                "currency": trade.currency, "held_max": AMOUNT_MAX - trade.price, "txn_id": txn_id, "kind": K.HOLD,
                "trade": trade.id, "memo": memo, "available": A.AVAILABLE, "held": A.HELD,
            })
            inserted = cursor.fetchall()
        if len(inserted) != 2:
            _escrow_refusal(organisation_id=trade.buyer_id, currency=trade.currency, amount=trade.price)
        return LedgerTransaction(id=txn_id, kind=K.HOLD, currency=trade.currency, trade=trade, memo=memo,
                                 created_at=now)
    wallet_id = _escrow_debit(organisation_id=trade.buyer_id, currency=trade.currency, amount=trade.price)
    txn = LedgerTransaction.objects.create(kind=K.HOLD, currency=trade.currency, trade=trade, memo=memo)
    LedgerEntry.objects.bulk_create([
        LedgerEntry(transaction=txn, wallet_id=wallet_id, account=A.AVAILABLE, currency=trade.currency,
                    amount=-trade.price),
        LedgerEntry(transaction=txn, wallet_id=wallet_id, account=A.HELD, currency=trade.currency, amount=trade.price),
    ])
    return txn


def ledger_release(*, trade: Trade) -> LedgerTransaction | None:
    """Give the held price back to the buyer (rejected or cancelled). A no-op if nothing is held."""
    if not _has(trade, K.HOLD) or _has(trade, K.RELEASE, K.SETTLE):
        return None
    wallet = Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency)
    return ledger_post(
        kind=K.RELEASE, currency=trade.currency, trade=trade, memo=f"escrow released for trade {trade.id}",
        legs=[Leg(A.HELD, -trade.price, wallet), Leg(A.AVAILABLE, trade.price, wallet)],
    )


def ledger_settle(*, trade: Trade) -> tuple[Decimal, Decimal]:
    """Pay the provider from escrow, less the platform fee. Returns (fee, provider's share)."""
    fee = fee_of(trade.price, settings.ELEMENTA_PLATFORM_FEE, trade.currency)
    if trade.price == 0:
        return fee, trade.price - fee
    kinds = set(LedgerTransaction.objects.filter(trade=trade).values_list("kind", flat=True))  # one query, not two
    if kinds & {K.RELEASE, K.SETTLE}:  # already settled (a duplicate) or released
        return fee, trade.price - fee
    if K.HOLD not in kinds:
        raise EscrowMissingError(f"trade {trade.id} has no escrow hold: refusing to pay the provider from nothing")
    wallets = {
        w.organisation_id: w
        for w in Wallet.objects.filter(organisation_id__in=[trade.buyer_id, trade.provider_id], currency=trade.currency)
    }
    buyer = wallets.get(trade.buyer_id)
    if buyer is None:
        raise Wallet.DoesNotExist(f"trade {trade.id}: the buyer has no {trade.currency} wallet")
    provider = wallets.get(trade.provider_id) or wallet_get_or_create(
        organisation_id=trade.provider_id, currency=trade.currency
    )
    ledger_post(
        kind=K.SETTLE, currency=trade.currency, trade=trade, memo=f"settlement of trade {trade.id}",
        legs=[Leg(A.HELD, -trade.price, buyer), Leg(A.AVAILABLE, trade.price - fee, provider), Leg(A.REVENUE, fee)],
    )
    return fee, trade.price - fee


_SETTLE_LOCK_SQL = """
SELECT w.id, w.organisation_id, (SELECT string_agg(t.kind, ',') FROM {txn} t WHERE t.trade_id = %(trade)s)
FROM {wallet} w WHERE w.organisation_id IN (%(buyer)s, %(provider)s) AND w.currency = %(currency)s
ORDER BY w.id FOR UPDATE
"""

_SETTLE_SQL = """
WITH b AS (
    UPDATE {wallet} SET held = held - %(price)s, updated_at = %(now)s
    WHERE id = %(buyer_wallet)s AND held >= %(price)s
    RETURNING id
), p AS (
    UPDATE {wallet} SET available = available + %(share)s, updated_at = %(now)s
    WHERE id = %(provider_wallet)s AND available <= %(available_max)s
    RETURNING id
), t AS (
    INSERT INTO {txn} (id, kind, currency, trade_id, deposit_id, memo, created_at)
    SELECT %(txn_id)s, %(kind)s, %(currency)s, %(trade)s, NULL, %(memo)s, %(now)s FROM b, p
    RETURNING id
), e AS (
    INSERT INTO {entry} (transaction_id, wallet_id, account, currency, amount, created_at)
    SELECT t.id, legs.wallet_id, legs.account, %(currency)s, legs.amount, %(now)s
    FROM t, (VALUES (%(buyer_wallet)s::uuid, %(held)s, %(debit)s::numeric),
                    (%(provider_wallet)s::uuid, %(available)s, %(share)s::numeric),
                    (NULL::uuid, %(revenue)s, %(fee)s::numeric)) AS legs (wallet_id, account, amount)
    WHERE legs.amount <> 0
    RETURNING 1
), s AS (
    INSERT INTO {settlement} (id, trade_id, amount, currency, platform_fee, provider_amount, created_at)
    SELECT %(settlement_id)s, %(trade)s, %(price)s, %(currency)s, %(fee)s, %(share)s, %(now)s FROM t
    RETURNING 1
)
SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM p), (SELECT count(*) FROM s), (SELECT count(*) FROM e)
"""


def ledger_pay_provider(*, trade: Trade) -> None:
    """Settlement's money and its record: the escrow goes to the provider less the platform fee
    (ledger_settle's transaction) and the trade's Settlement row is written.

    On PostgreSQL, for a priced trade whose two wallets exist, two statements instead of seven:
    the wallets locked in id order (the order ledger_post keeps) with the trade's ledger kinds read
    alongside, then one WITH query for the conditional wallet updates, the ledger transaction, its
    entries and the Settlement row, which writes nothing unless both updates matched. Every other
    case (SQLite, a free trade, a provider with no wallet yet, a duplicate) takes the general path."""
    from marketplace.models import Settlement

    if connection.vendor == "postgresql" and trade.price > 0 and trade.buyer_id != trade.provider_id:
        tables = {"wallet": Wallet._meta.db_table, "txn": LedgerTransaction._meta.db_table,
                  "entry": LedgerEntry._meta.db_table, "settlement": Settlement._meta.db_table}
        with connection.cursor() as cursor:
            cursor.execute(_SETTLE_LOCK_SQL.format(**tables), {
                "trade": trade.id, "buyer": trade.buyer_id, "provider": trade.provider_id, "currency": trade.currency})
            locked = cursor.fetchall()
            wallets = {organisation_id: wallet_id for wallet_id, organisation_id, _kinds in locked}
            kinds = set((locked[0][2] or "").split(",")) if locked else set()
            if len(wallets) == 2 and kinds == {K.HOLD}:
                fee = fee_of(trade.price, settings.ELEMENTA_PLATFORM_FEE, trade.currency)
                share = trade.price - fee
                cursor.execute(_SETTLE_SQL.format(**tables), {
                    "price": trade.price, "debit": -trade.price, "fee": fee, "share": share, "now": timezone.now(),
                    "buyer_wallet": wallets[trade.buyer_id], "provider_wallet": wallets[trade.provider_id],
                    "available_max": AMOUNT_MAX - share, "txn_id": uuid4(), "kind": K.SETTLE,
                    "currency": trade.currency, "trade": trade.id, "memo": f"settlement of trade {trade.id}",
                    "held": A.HELD, "available": A.AVAILABLE, "revenue": A.REVENUE, "settlement_id": uuid4(),
                })
                buyer_updated, provider_updated, settled, _entries = cursor.fetchone()
                # A wallet update that matched nothing wrote nothing else; the other may have applied,
                # so raise: the caller's transaction rolls back.
                if not buyer_updated:
                    raise EscrowMissingError(f"trade {trade.id}: the buyer's held funds do not cover its price")
                if not provider_updated:
                    raise _overflow(Wallet.objects.get(pk=wallets[trade.provider_id]))
                assert settled == 1
                return
    fee, share = ledger_settle(trade=trade)
    Settlement.objects.create(
        trade=trade, amount=trade.price, currency=trade.currency, platform_fee=fee, provider_amount=share
    )


def ledger_refund(*, trade: Trade) -> LedgerTransaction | None:
    """Reverse a settlement: the provider's share and the platform's fee go back to the buyer."""
    settle = LedgerTransaction.objects.filter(trade=trade, kind=K.SETTLE).prefetch_related("entries").first()
    if settle is None or _has(trade, K.REFUND):
        return None
    buyer = Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency)
    legs = [Leg(A.AVAILABLE, trade.price, buyer)]
    for entry in settle.entries.all():
        if entry.account == A.AVAILABLE:
            legs.append(Leg(A.AVAILABLE, -entry.amount, entry.wallet))
        elif entry.account == A.REVENUE:
            legs.append(Leg(A.REVENUE, -entry.amount))
    return ledger_post(
        kind=K.REFUND,
        currency=trade.currency,
        trade=trade,
        memo=f"refund of trade {trade.id}",
        legs=legs,
        shortfall=RefundNotCoveredError,
    )


def ledger_refund_split(*, trade: Trade, amount: Decimal) -> tuple[Decimal, Decimal]:
    """How a partial refund of `amount` is shared between the provider and the platform, in the
    proportion settlement credited them: the platform gives back its fee × amount / price (rounded
    half up to the minor unit, as the fee was), the provider the rest, and neither gives back more
    than settlement gave it. Returns (provider's part, platform's part); they add up to `amount`."""
    settle = LedgerTransaction.objects.filter(trade=trade, kind=K.SETTLE).prefetch_related("entries").first()
    if settle is None or trade.price == 0:
        return Decimal(0), Decimal(0)
    entries = list(settle.entries.all())
    fee = sum((e.amount for e in entries if e.account == A.REVENUE), Decimal(0))
    share = sum((e.amount for e in entries if e.account == A.AVAILABLE), Decimal(0))
    platform = (fee * amount / trade.price).quantize(quantum(trade.currency), rounding=ROUND_HALF_UP)
    provider = min(amount - platform, share)
    return provider, amount - provider


def ledger_refund_partial(*, trade: Trade, amount: Decimal, memo: str = "") -> LedgerTransaction | None:
    """Give the buyer `amount` (0 < amount <= price) of a settled trade back: the provider's wallet
    and the platform's revenue are debited in the proportion settlement credited them
    (ledger_refund_split). One refund per trade, partial or full (the ledger's one-kind-per-trade
    constraint): None if the trade was never settled or was refunded already. A provider whose
    available balance does not cover its part gets RefundNotCoveredError (409) and nothing moves."""
    settle = LedgerTransaction.objects.filter(trade=trade, kind=K.SETTLE).prefetch_related("entries").first()
    if settle is None or _has(trade, K.REFUND):
        return None
    if not (0 < amount <= trade.price):
        raise ValueError(f"a partial refund must be above 0 and at most the price, not {amount}")
    provider_part, platform_part = ledger_refund_split(trade=trade, amount=amount)
    provider_wallet = next(
        (e.wallet for e in settle.entries.all() if e.account == A.AVAILABLE), None
    )  # none: the fee took it all
    buyer = Wallet.objects.get(organisation_id=trade.buyer_id, currency=trade.currency)
    legs = [
        Leg(A.AVAILABLE, amount, buyer),
        Leg(A.AVAILABLE, -provider_part, provider_wallet),
        Leg(A.REVENUE, -platform_part),
    ]
    return ledger_post(
        kind=K.REFUND,
        currency=trade.currency,
        trade=trade,
        memo=memo or f"partial refund of trade {trade.id}",
        legs=legs,
        shortfall=RefundNotCoveredError,
    )


def ledger_deposit_credit(*, deposit: Deposit) -> LedgerTransaction:
    wallet = wallet_get_or_create(organisation_id=deposit.organisation_id, currency=deposit.currency)
    return ledger_post(
        kind=K.DEPOSIT,
        currency=deposit.currency,
        deposit=deposit,
        memo=f"deposit {deposit.provider} {deposit.provider_reference}".strip(),
        legs=[Leg(A.DEPOSITS, -deposit.amount), Leg(A.AVAILABLE, deposit.amount, wallet)],
    )
