"""The trade state machine as data: which status may follow which. Pure."""

from marketplace.errors import TradeTransitionNotAllowedError
from marketplace.models import Trade

S = Trade.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.CHECKING: frozenset({S.NEEDS_DOCUMENTS, S.IN_REVIEW, S.APPROVED, S.REJECTED, S.CANCELLED}),
    # No approval from here: a requirement is met by accepted evidence and a re-check, never by an officer's say-so.
    S.NEEDS_DOCUMENTS: frozenset({S.CHECKING, S.REJECTED, S.CANCELLED}),
    S.IN_REVIEW: frozenset({S.CHECKING, S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SETTLED, S.CANCELLED}),
    S.SETTLED: frozenset({S.REFUNDED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
TERMINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)
# No more compliance work or evidence: settled (money moved) or ended.
CLOSED = TERMINAL | {S.SETTLED}
# Statuses the system itself moves a trade out of within moments (the engine's check): nobody waits
# on them, so members are not e-mailed on entering one (webhooks and the trade's events still show
# them); the next status, which usually follows in under a second, is what they are told.
UNANNOUNCED = frozenset({S.CHECKING})
CANCELLABLE = frozenset(status for status, nexts in TRANSITIONS.items() if S.CANCELLED in nexts)

# What the engine's outcome does to a trade in `checking`: allow and allow_flagged approve it, needs_* waits
# in needs_documents for the missing filings, mechanisms or approvals, review goes to an officer, deny rejects it
# (the mapping below).
STATUS_FOR_OUTCOME: dict[str, str] = {
    "allow": S.APPROVED,
    "allow_flagged": S.APPROVED,
    "needs_filing": S.NEEDS_DOCUMENTS,
    "needs_mechanism": S.NEEDS_DOCUMENTS,
    "needs_approval": S.NEEDS_DOCUMENTS,
    "review": S.IN_REVIEW,
    "deny": S.REJECTED,
}


def ensure_transition_allowed(*, current: str, target: str) -> None:
    if target not in TRANSITIONS[current]:
        raise TradeTransitionNotAllowedError(f"A trade cannot go from {current} to {target}.")
