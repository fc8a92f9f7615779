"""Running the engine: the dry run on explicit facts, and recorded checks of a subject."""

from datetime import date
from typing import Any

from django.utils import timezone

from compliance.engine import ENGINE_VERSION, Decision, FactsError, TransferFacts, evaluate, parse_facts
from compliance.errors import InvalidFactsError
from compliance.models import ComplianceCheck
from compliance.selectors.rulepacks import rulepacks_compiled


def facts_parse(*, raw: Any, today: date | None = None) -> TransferFacts:
    """Contract-shaped facts → TransferFacts, or InvalidFactsError (400) naming each bad field."""
    try:
        return parse_facts(raw, today=today or timezone.localdate())
    except FactsError as exc:
        raise InvalidFactsError(fields=exc.errors) from exc


def compliance_evaluate(*, raw_facts: Any) -> Decision:
    """The dry run: no side effects."""
    return evaluate(facts_parse(raw=raw_facts), rulepacks_compiled())


def compliance_check_perform(*, subject_type: str, subject_id: object, raw_facts: dict[str, Any]) -> ComplianceCheck:
    """Evaluate and record a decision about a subject. Runs inside the caller's transaction."""
    decision = evaluate(facts_parse(raw=raw_facts), rulepacks_compiled())
    return ComplianceCheck.objects.create(
        subject_type=subject_type, subject_id=subject_id, facts=raw_facts,
        outcome=str(decision.outcome), decision=decision.as_dict(), rulepacks=list(decision.rulepacks),
        engine_version=ENGINE_VERSION,
    )
