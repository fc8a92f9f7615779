"""Marketplace models, one module per sub-domain; import them from here. Each module lists its
models in __all__."""

from marketplace.models.access import *  # noqa: F403
from marketplace.models.api_keys import *  # noqa: F403
from marketplace.models.compute import *  # noqa: F403
from marketplace.models.core import *  # noqa: F403
from marketplace.models.idempotency import *  # noqa: F403
from marketplace.models.ledger import *  # noqa: F403
from marketplace.models.organisations import *  # noqa: F403
from marketplace.models.refunds import *  # noqa: F403
from marketplace.models.rescreening import *  # noqa: F403
from marketplace.models.review_queue import *  # noqa: F403
from marketplace.models.webhooks import *  # noqa: F403
