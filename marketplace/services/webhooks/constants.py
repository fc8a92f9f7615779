"""What the webhook modules share: the event kinds and the delivery limits."""

from datetime import timedelta

EVENT_KINDS = (
    "trade.status_changed", "trade.decided", "grant.issued", "grant.revoked",
    "grant.suspended", "grant.reinstated", "grant.revocation_requested", "grant.revocation_decided",
    "evidence.accepted", "evidence.rejected",
)
PING = "ping"  # sent by the test button, whatever the endpoint chose

SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between Elementa-Timestamp and its clock
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 10
# An attempt in flight holds the delivery for this long (claimed by moving next_attempt_at ahead):
# longer than one attempt can take (the task's hard time limit is 60 s), so a duplicate message
# finds it not due, and short enough that a crashed worker's delivery is swept again soon after.
LEASE = timedelta(seconds=90)
EARLY_SLACK = timedelta(seconds=1)  # a countdown task may arrive a moment before next_attempt_at
SWEEP_GRACE = timedelta(seconds=15)  # the sweeper leaves a just-due delivery to its countdown task
MAX_ENDPOINTS_PER_ORGANISATION = 20
HTTPS_ONLY = "it must use https"
USER_AGENT = "Elementa-Webhooks/1"
