"""`Authorization: Bearer <token>` on every /api/v1/ call, backed by DRF's token table.

Its own module: DRF imports authentication classes while rest_framework.views is still loading,
so this must not import the views (config.api does).
"""

from typing import TYPE_CHECKING, Any, cast

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

if TYPE_CHECKING:  # the model is not imported at run time: see above
    from rest_framework.authtoken.models import Token


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """DRF's check, with the user's membership and organisation in the same query: nearly every
        endpoint asks for them next (role checks, tenancy), so this saves two queries a request."""
        model = cast("type[Token]", self.get_model())  # DRF's Token: this class sets no other model
        try:
            token = model.objects.select_related("user__membership__organisation").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
