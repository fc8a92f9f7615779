"""Marketplace's reactions to other apps' signals (connected in MarketplaceConfig.ready)."""

from typing import Any

from marketplace.services.rescreening import rescreen_enqueue


def on_rulepack_activated(sender: Any, *, pack_id: str, **kwargs: Any) -> None:
    """A rule-pack version was activated (sent after commit): re-screen in the worker, not here,
    so the officer's request returns at once."""
    rescreen_enqueue(pack_id)
