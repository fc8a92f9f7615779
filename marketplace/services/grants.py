"""Access grants: what a buyer may download, issued at settlement. (Implemented with issue 4.)"""

from marketplace.models import Trade


def grant_issue(*, trade: Trade) -> None:
    """Issue the buyer's access grant for a trade that is settling (called inside its transaction)."""


def grant_revoke_for_trade(*, trade: Trade, actor: object | None, reason: str) -> None:
    """Revoke the grant a trade issued, if any (refunds)."""
