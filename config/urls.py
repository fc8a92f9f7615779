"""URL map: /api/v1/ (the versioned REST API), OpenAPI and Swagger UI, /healthz and the admin."""

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from compliance.apis.audit import AuditEventViewSet, AuditVerifyApi
from compliance.apis.views import EvaluateApi, RulePackViewSet
from config import openapi  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
from config.api import error_body
from config.health import healthz
from marketplace.apis.access import DatasetFileListApi, GrantViewSet
from marketplace.apis.account import MeApi
from marketplace.apis.auth import ApiKeyViewSet, LogoutAllApi, LogoutApi, PasswordChangeApi, SessionViewSet, TokenApi
from marketplace.apis.catalogue import DatasetViewSet
from marketplace.apis.compute import ComputeQueryViewSet, ComputeReviewPolicyApi, DatasetComputeOfferApi
from marketplace.apis.dcat import CatalogueApi, CatalogueDatasetApi, DatasetPolicyApi, TradeAgreementApi
from marketplace.apis.evidence import MechanismViewSet, TradeDocumentViewSet
from marketplace.apis.organisations import (
    ApplyApi,
    FalsePositiveViewSet,
    InvitationAcceptApi,
    MemberRoleApi,
    NotificationPreferencesApi,
    OrganisationFactsViewSet,
    OrganisationViewSet,
    SanctionsListViewSet,
)
from marketplace.apis.rescreening import GrantFlagViewSet, RulePackBacktestApi
from marketplace.apis.reviews import ReviewQueueApi
from marketplace.apis.revocations import RevocationRequestViewSet
from marketplace.apis.samples import DatasetSampleApi
from marketplace.apis.trades import TradeViewSet
from marketplace.apis.wallet import DepositViewSet, LedgerEntryApi, PayoutReportApi, PlatformWalletApi, WalletApi
from marketplace.apis.webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("trades", TradeViewSet, basename="trade")
router.register("reviews/grants", GrantFlagViewSet, basename="grant-flag")  # before "reviews": its URLs must win
router.register("reviews", ReviewQueueApi, basename="review")
router.register("rulepacks", RulePackViewSet, basename="rulepack")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("mechanisms", MechanismViewSet, basename="mechanism")
router.register("documents", TradeDocumentViewSet, basename="document")
router.register("grants", GrantViewSet, basename="grant")
router.register("queries", ComputeQueryViewSet, basename="compute-query")
router.register("revocation-requests", RevocationRequestViewSet, basename="revocation-request")
router.register("wallet/entries", LedgerEntryApi, basename="wallet-entry")
router.register("wallet/deposits", DepositViewSet, basename="wallet-deposit")
router.register("webhooks/deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("auth/sessions", SessionViewSet, basename="session")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("organisation-facts", OrganisationFactsViewSet, basename="organisation-facts")
router.register("sanctions-lists", SanctionsListViewSet, basename="sanctions-list")
router.register("screening/false-positives", FalsePositiveViewSet, basename="screening-false-positive")

api_v1 = [
    path("auth/token/", TokenApi.as_view(), name="auth-token"),
    path("auth/logout/", LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", LogoutAllApi.as_view(), name="auth-logout-all"),
    path("auth/password/", PasswordChangeApi.as_view(), name="auth-password"),
    path("me/", MeApi.as_view(), name="me"),
    path("me/notifications/", NotificationPreferencesApi.as_view(), name="me-notifications"),
    path("organisations/apply/", ApplyApi.as_view(), name="organisation-apply"),
    path("organisations/<uuid:pk>/members/<int:user_id>/", MemberRoleApi.as_view(), name="organisation-member"),
    path("invitations/accept/", InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("compliance/evaluate/", EvaluateApi.as_view(), name="compliance-evaluate"),
    path("rulepacks/<uuid:pk>/backtest/", RulePackBacktestApi.as_view(), name="rulepack-backtest"),
    path("audit/verify/", AuditVerifyApi.as_view(), name="audit-verify"),
    path("datasets/<uuid:dataset_id>/files/", DatasetFileListApi.as_view(), name="dataset-files"),
    path("datasets/<uuid:dataset_id>/sample/", DatasetSampleApi.as_view(), name="dataset-sample"),
    path("datasets/<uuid:dataset_id>/compute-offer/", DatasetComputeOfferApi.as_view(), name="dataset-compute-offer"),
    path(
        "datasets/<uuid:dataset_id>/compute-offer/review-policy/",
        ComputeReviewPolicyApi.as_view(),
        name="dataset-compute-review-policy",
    ),
    # The catalogue as linked data, DCAT-AP 3 and ODRL 2.2 (docs/dcat.md).
    path("catalogue/", CatalogueApi.as_view(), name="dcat-catalogue"),
    path("catalogue/datasets/<uuid:dataset_id>/", CatalogueDatasetApi.as_view(), name="dcat-dataset"),
    path("datasets/<uuid:dataset_id>/policy/", DatasetPolicyApi.as_view(), name="dataset-policy"),
    path("trades/<uuid:trade_id>/agreement/", TradeAgreementApi.as_view(), name="trade-agreement"),
    path("wallet/", WalletApi.as_view(), name="wallet"),
    path("wallet/platform/", PlatformWalletApi.as_view(), name="wallet-platform"),
    path("wallet/payouts.csv", PayoutReportApi.as_view(), name="wallet-payouts"),
    *router.urls,
]

def _json_error(status: int, code: str, message: str) -> Callable[..., JsonResponse]:
    def view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return JsonResponse(error_body(code, message), status=status)

    return view


# Unknown URLs and unhandled errors answer in the API's error shape, not Django's HTML pages.
handler404 = _json_error(404, "not_found", "No such endpoint.")
handler500 = _json_error(500, "server_error", "Internal error; it has been logged.")

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
