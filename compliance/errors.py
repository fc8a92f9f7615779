"""Compliance errors a client may branch on."""

from config.errors import ApplicationError, ConflictError


class InvalidFactsError(ApplicationError):
    code = "invalid_facts"
    status_code = 400
    default_message = "The transfer facts are invalid."


class RulePackInvalidError(ApplicationError):
    code = "rulepack_invalid"
    status_code = 400
    default_message = "The rule pack does not validate."


class RulePackImmutableError(ConflictError):
    code = "rulepack_immutable"
    default_message = "A rule-pack version, once loaded, never changes; give the new rules a new version."
