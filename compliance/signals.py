"""Signals compliance sends so other apps can react without compliance importing them."""

from django.dispatch import Signal

# Sent once a rule-pack version's activation has committed, with `pack_id` (str). Marketplace
# listens to re-screen open trades and live grants (marketplace/receivers.py).
rulepack_activated = Signal()
