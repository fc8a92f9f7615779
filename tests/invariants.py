"""Money and trade invariants after any fault: one function for the tests and bench/faults.py
(which calls it through `manage.py shell`), so both check the same thing."""

from collections import Counter
from collections.abc import Iterable

from django.db.models import Count

from marketplace.models import LedgerTransaction, Settlement, Trade, TradeEvent
from marketplace.selectors.ledger import ledger_verify


def invariant_violations(trade_ids: Iterable[object] | None = None) -> list[str]:
    """Every violation found, as a sentence; empty when all hold.

    Ledger-wide: `marketplace.selectors.ledger.ledger_verify` (every transaction balances, every
    wallet equals its entries and is never negative, each priced settled trade paid once). Per trade (those given, or
    all): at most
    one posting of each kind (a settled trade has one Settlement, and one `settle` if it had a `hold`), and its
    status events form one chain with no transition recorded twice."""
    problems = ledger_verify()  # the money invariants, stated once (also `manage.py verify_ledger`)
    trades = Trade.objects.all() if trade_ids is None else Trade.objects.filter(pk__in=list(trade_ids))
    postings = Counter(LedgerTransaction.objects.filter(trade__in=trades).values_list("trade_id", "kind"))
    problems += [f"trade {t}: {n} `{kind}` ledger transactions" for (t, kind), n in postings.items() if n > 1]
    settlements = dict(Settlement.objects.filter(trade__in=trades).values("trade_id").annotate(n=Count("id"))
                       .values_list("trade_id", "n"))
    events: dict[object, list[tuple[str, str]]] = {}
    for trade_id, from_s, to_s in TradeEvent.objects.filter(trade__in=trades).order_by("at", "id").values_list(
            "trade_id", "from_status", "to_status"):
        events.setdefault(trade_id, []).append((from_s, to_s))
    for trade_id, status in trades.values_list("id", "status"):
        expected_settle = postings.get((trade_id, "hold"), 0)  # a free trade (or one made without escrow) posts none
        if status == Trade.Status.SETTLED and (postings.get((trade_id, "settle"), 0) != expected_settle
                                               or settlements.get(trade_id, 0) != 1):
            problems.append(
                f"trade {trade_id} is settled with {postings.get((trade_id, 'settle'), 0)} settle transactions "
                f"and {settlements.get(trade_id, 0)} Settlements"
            )
        chain = events.get(trade_id, [])
        if any(n > 1 for n in Counter(chain).values()) or any(
            chain[i][0] != chain[i - 1][1] for i in range(1, len(chain))
        ):
            problems.append(f"trade {trade_id}: status events {chain} repeat a transition or break the chain")
    return problems
