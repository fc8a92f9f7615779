"""Every service that writes leaves an audit record, or is listed here with the reason it need not.

Reads the service modules' source: a function writes if it is `@transaction.atomic` or calls the
ORM's write methods; it is audited if it calls `audit_record`, `event_emit`, `trade_event_emit` or
`trade_apply_transition`, or (transitively) a service that does. A new writing service fails this
test until it audits or is added to EXEMPT with a reason a reviewer can check.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICE_DIRS = ("marketplace/services", "compliance/services")
AUDITING = {"audit_record", "audit_record_many", "audit_deferred", "event_emit", "trade_event_emit",
            "trade_events_emit", "trade_apply_transition", "trade_apply_transitions"}
ORM_WRITES = {"save", "create", "update", "delete", "bulk_create", "bulk_update", "update_or_create", "get_or_create"}

EXEMPT = {
    "deposit_request": "a member's request moves no money; the Deposit row keeps requested_by, and approval or "
                       "rejection is audited",
    "ledger_post": "posts ledger legs only inside audited actions (settlement, refund, deposit credit)",
    "wallet_get_or_create": "creates an empty wallet inside audited money actions",
    "ledger_pay_provider": "pays the provider inside settlement, which audits trade.status_changed (settled)",
    "ledger_hold": "holds a purchase's price inside trade_open, which audits trade.status_changed",
    "_escrow_debit": "the wallet side of ledger_hold",
    "_fanout": "the delivery side of event_emit (webhook_fanout), which has audited the event already",
    "webhook_endpoint_ping": "queues a test ping to the organisation's own endpoint: no rights, money or facts change",
    "webhook_fanout": "the delivery side of event_emit, which has audited the event already",
    "webhook_delivery_redeliver": "sends an already-audited event again to the organisation's own endpoint",
    "grant_download_finish": "completes the download record whose start is audited (grant.downloaded)",
    "audit_chain": "links audit events themselves",
    "compliance_check_perform": "stores a decision inside trade_check_compliance, which emits trade.decided",
    "export_lock": "a lock row, inside an audited compliance check",
    "export_reserve": "counts a transfer inside an audited compliance check",
    "export_commit": "counts a transfer as settled inside audited settlement",
    "export_release": "stops counting a transfer inside an audited rejection, cancellation or re-check",
    "session_create": "a login: the session row itself records who and when; not audited, or every pipeline login "
                      "would flood the chain",
    "session_revoke_token": "logging out the session the request came with: no rights change (ending other sessions "
                            "is audited)",
    "compute_grant_setup": "completes a compute grant inside grant_issue, whose grant.issued event records the "
                           "delivery and queries",
    "notify": "writes e-mails to the outbox inside the audited action that causes them (the audit record is the event)",
    "notifications_grants_expiring": "a reminder that an already-audited grant ends on its recorded date; no rights "
                                     "change",
    "notifications_digest": "a summary e-mail of waiting items; nothing else changes",
    "notification_send": "marks an outbox e-mail sent; the action it tells of is audited",
    "notifications_send": "marks an action's outbox e-mails sent; the action they tell of is audited",
    "notifications_drain": "sends what the outbox holds (notifications_send); the actions they tell of are audited",
    "trade_check_request": "claims the check drain in the shared cache (a key, not a row) and publishes it; the "
                           "check it asks for is audited",
    "upload_digest": "hashes an upload (hashlib's update, not the ORM's); writes nothing",
    "evidence_store_file": "attaches an upload to an unsaved document or mechanism; the caller saves it and audits "
                           "evidence.added / mechanism.added",
}


def _called(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


def _services() -> dict[str, tuple[bool, set[str], str]]:
    found: dict[str, tuple[bool, set[str], str]] = {}
    for folder in SERVICE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef):
                    atomic = any("atomic" in ast.unparse(d) for d in node.decorator_list)
                    found[node.name] = (atomic, _called(node), f"{folder}/{path.name}")
    return found


def test_every_writing_service_is_audited_or_exempt_with_a_reason():
    services = _services()
    audited = set(AUDITING)
    grew = True
    while grew:  # a service that calls an audited service is audited
        grew = False
        for name, (_, calls, _) in services.items():
            if name not in audited and calls & audited:
                audited.add(name)
                grew = True
    writers = {name: where for name, (atomic, calls, where) in services.items()
               if not name.startswith("_") and (atomic or calls & ORM_WRITES)}

    unaudited = sorted(
        f"{where}: {name}" for name, where in writers.items() if name not in audited and name not in EXEMPT
    )

    assert unaudited == [], (
        "these services write without an audit record; audit them or add them to EXEMPT with a reason"
    )
    assert {
        "dataset_create",
        "dataset_update",
        "dataset_publish",
        "dataset_withdraw",
        "dataset_file_upload",
        "dataset_file_store",
        "dataset_sample_upload",
        "dataset_sample_delete",
        "dataset_sample_download_record",
        "deposit_reject",
        "webhook_endpoint_create",
        "webhook_endpoint_update",
        "webhook_endpoint_delete",
        "webhook_secret_rotate",
        "api_key_create",
        "api_key_revoke",
        "password_change",
        "sessions_revoke_all",
        "session_revoke",
    } <= audited


def test_every_exemption_still_names_a_writing_service():
    services = _services()
    stale = sorted(name for name in EXEMPT if name not in services)
    assert stale == [], "exempt services that no longer exist: remove them from EXEMPT"
