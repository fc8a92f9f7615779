"""`Authorization: Bearer <token>` (design §3), backed by DRF's token table.

Its own module: DRF imports authentication classes while rest_framework.views is still loading,
so this must not import the views (config.api does).
"""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"
