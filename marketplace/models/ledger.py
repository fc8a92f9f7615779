"""Wallets and the double-entry ledger."""

__all__: list[str] = []
