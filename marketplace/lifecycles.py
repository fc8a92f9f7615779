"""Which status may follow which, for the marketplace's other records (the trade's is
`trade_lifecycle.py`). Pure data and one check; the services call it before every status change."""

from marketplace.errors import DatasetTransitionNotAllowedError, DepositNotPendingError
from marketplace.models import Dataset, Deposit

D = Dataset.Status
DATASET_TRANSITIONS: dict[str, frozenset[str]] = {
    D.DRAFT: frozenset({D.PUBLISHED, D.WITHDRAWN}),
    D.PUBLISHED: frozenset({D.WITHDRAWN}),  # legal facts are frozen once published: a new draft, not a re-publication
    D.WITHDRAWN: frozenset(),
}

P = Deposit.Status
DEPOSIT_TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.CREDITED, P.REJECTED}),
    P.CREDITED: frozenset(),
    P.REJECTED: frozenset(),
}


def dataset_ensure_transition(*, current: str, target: str) -> None:
    if target not in DATASET_TRANSITIONS[current]:
        raise DatasetTransitionNotAllowedError(f"A {current} dataset cannot become {target}.")


def deposit_ensure_transition(*, current: str, target: str) -> None:
    if target not in DEPOSIT_TRANSITIONS[current]:
        raise DepositNotPendingError(f"The deposit is {current}.")
