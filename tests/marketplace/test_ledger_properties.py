"""Property test: whatever sequence of deposits, purchases, cancellations, rejections, settlements
(duplicates included) and refunds happens, money is conserved, every transaction balances, no
balance goes negative, wallet balances equal their ledger lines, and each trade's hold is settled
or released exactly once, matching its status."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from config.errors import ApplicationError
from marketplace.models import LedgerEntry, LedgerTransaction, Trade, Wallet
from marketplace.services.deposits import deposit_record
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from marketplace.services.trades import trade_cancel, trade_create, trade_refund, trade_review
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

OPEN = {"checking", "needs_documents", "in_review", "approved"}


class Rollback(Exception):
    pass


def ledger_machine(officer):
    class Ledger(RuleBasedStateMachine):
        """Runs inside one database transaction, rolled back when the example ends."""

        @initialize()
        def setup(self) -> None:
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            self.provider = MembershipFactory.create(
                organisation=OrganisationFactory.create(jurisdiction="DE"), role="provider"
            )
            self.buyers = [
                MembershipFactory.create(
                    organisation=OrganisationFactory.create(jurisdiction="DE"), role="buyer", funded=False
                )
                for _ in range(2)
            ]
            self.datasets = [
                DatasetFactory.create(provider=self.provider.organisation, price=p) for p in ("10.00", "33.33", "0.00")
            ]
            self.trades: list[str] = []

        def teardown(self) -> None:
            if hasattr(self, "_atomic"):
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

        @rule(buyer=st.integers(0, 1), amount=st.decimals(min_value=1, max_value=100, places=2))
        def deposit(self, buyer: int, amount: Decimal) -> None:
            deposit_record(
                organisation=self.buyers[buyer].organisation, amount=amount, currency="EUR", actor_label="system:test"
            )

        @rule(buyer=st.integers(0, 1), dataset=st.integers(0, 2))
        def purchase(self, buyer: int, dataset: int) -> None:
            try:
                with transaction.atomic():
                    trade = trade_create(
                        membership=self.buyers[buyer], dataset_id=self.datasets[dataset].id, repeat=True
                    )
                    self.trades.append(str(trade.id))
            except ApplicationError as exc:
                assert exc.code == "insufficient_funds"

        def _pick(self, data: st.DataObject) -> str:
            return data.draw(st.sampled_from(self.trades))

        def _attempt(self, fn, **kwargs) -> None:
            try:
                with transaction.atomic():
                    fn(**kwargs)
            except ApplicationError as exc:  # a refused step changes nothing; that is checked by the invariants
                assert exc.status_code in (400, 409), exc

        @precondition(lambda self: self.trades)
        @rule(data=st.data(), to=st.sampled_from(["approved", "in_review", "needs_documents"]))
        def engine_decides(self, data: st.DataObject, to: str) -> None:
            self._attempt(trade_transition, trade_id=self._pick(data), to=to, actor_label="system:test")

        @precondition(lambda self: self.trades)
        @rule(data=st.data(), times=st.integers(1, 3))
        def settle(self, data: st.DataObject, times: int) -> None:
            trade_id = self._pick(data)
            for _ in range(times):  # duplicate deliveries
                self._attempt(trade_settle, trade_id=trade_id)

        @precondition(lambda self: self.trades)
        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            trade_id = self._pick(data)
            buyer = Trade.objects.get(pk=trade_id).buyer_user
            self._attempt(trade_cancel, trade_id=trade_id, actor=buyer)

        @precondition(lambda self: self.trades)
        @rule(data=st.data(), approve=st.booleans())
        def officer_reviews(self, data: st.DataObject, approve: bool) -> None:
            self._attempt(
                trade_review, trade_id=self._pick(data), officer=officer.user, approve=approve, reason="property test"
            )

        @precondition(lambda self: self.trades)
        @rule(data=st.data())
        def refund(self, data: st.DataObject) -> None:
            self._attempt(trade_refund, trade_id=self._pick(data), officer=officer.user, reason="property test")

        @invariant()
        def money_is_conserved_and_every_transaction_balances(self) -> None:
            if not hasattr(self, "_atomic"):
                return
            # Summed in Python from exact Decimals (SQLite's SUM over decimals is floating point).
            per_txn: dict[object, Decimal] = defaultdict(Decimal)
            for txn_id, amount in LedgerEntry.objects.values_list("transaction_id", "amount"):
                per_txn[txn_id] += amount
            assert sum(per_txn.values(), Decimal(0)) == 0
            assert all(total == 0 for total in per_txn.values())

        @invariant()
        def balances_are_never_negative_and_match_the_ledger(self) -> None:
            if not hasattr(self, "_atomic"):
                return
            sums: dict[tuple[object, str], Decimal] = defaultdict(Decimal)
            for wallet_id, account, amount in LedgerEntry.objects.filter(wallet__isnull=False).values_list(
                "wallet_id", "account", "amount"
            ):
                sums[(wallet_id, account)] += amount
            for wallet in Wallet.objects.all():
                assert wallet.available >= 0 and wallet.held >= 0
                assert (wallet.available, wallet.held) == (sums[(wallet.id, "available")], sums[(wallet.id, "held")])

        @invariant()
        def each_hold_is_settled_or_released_exactly_once(self) -> None:
            if not hasattr(self, "_atomic"):
                return
            kinds: dict[object, list[str]] = defaultdict(list)
            for trade_id, kind in LedgerTransaction.objects.filter(trade__isnull=False).values_list("trade_id", "kind"):
                kinds[trade_id].append(kind)
            for trade in Trade.objects.all():
                k = sorted(kinds[trade.id])
                if trade.price == 0:
                    assert k == []
                elif trade.status in OPEN:
                    assert k == ["hold"]
                elif trade.status in ("rejected", "cancelled"):
                    assert k == ["hold", "release"]
                elif trade.status == "settled":
                    assert k == ["hold", "settle"]
                else:
                    assert trade.status == "refunded" and k == ["hold", "refund", "settle"]

    return Ledger


def test_ledger_invariants_hold_under_any_sequence(officer):
    run_state_machine_as_test(
        ledger_machine(officer),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]),
    )
