"""Machine API keys: an organisation's credential for its pipelines, limited to a few scopes.

The key's secret is shown once at creation; only its SHA-512 digest is stored (djangorestframework-api-key's
key generator and hasher). Each key authenticates as its own machine account: a user with no usable
password and a membership in the key's organisation with the creating member's role, so every existing
role and tenancy check applies to it unchanged, and the audit trail names the key (`apikey-<prefix>`).
"""

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

__all__ = ["ApiKey"]


class ApiKey(AbstractAPIKey):
    organisation = models.ForeignKey("marketplace.Organisation", on_delete=models.PROTECT, related_name="api_keys")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_key",
        help_text="The machine account the key acts as (inactive once the key is revoked).",
    )
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(AbstractAPIKey.Meta):
        abstract = False
        verbose_name = "API key"
        verbose_name_plural = "API keys"
