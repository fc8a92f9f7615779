"""The officers' review queue as its own admin page: a proxy of Trade (no table of its own)."""

from marketplace.models.core import Trade

__all__ = ["ReviewItem"]


class ReviewItem(Trade):
    """A trade waiting for an officer. Only the admin workspace uses it, to list the queue
    separately from every trade; status still changes only through the trade services."""

    class Meta:
        proxy = True
        verbose_name = "review queue item"
        verbose_name_plural = "review queue"
