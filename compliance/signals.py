"""Signals compliance sends so other apps can react without compliance importing them."""

from django.dispatch import Signal

# Sent once a rule-pack version's activation has committed, with `pack_id` (str). Marketplace
# listens to re-screen open trades and live grants (marketplace/receivers.py).
rulepack_activated = Signal()

# Sent once a new sanctions-list snapshot's import has committed, with `list_id` (str): marketplace
# screens every organisation's open trades and live grants against it again.
sanctions_list_imported = Signal()

# Sent in the transaction of every audit record, with kind, subject_type, subject_id and data:
# marketplace turns the events people must act on into notifications (written to an outbox in the
# same transaction, so a rolled-back action notifies nobody).
audit_recorded = Signal()
