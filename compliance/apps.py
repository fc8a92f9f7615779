"""Compliance app: rule packs, the engine, checks and reviews."""

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    default_auto_field = "django.db.models.BigAutoField"
