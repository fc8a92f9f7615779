"""Who the caller is: `GET /me/`."""


from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.apis import serializers as s
from marketplace.selectors.members import membership_of


class MeApi(APIView):
    """Who am I: user, organisation and role."""

    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(), "role": serializers.CharField(allow_null=True),
        "organisation": s.OrganisationSerializer(allow_null=True),
    }))
    def get(self, request: Request) -> Response:
        membership = membership_of(request.user)
        return Response({
            "username": request.user.get_username(),
            "role": membership.role if membership else None,
            "organisation": s.OrganisationSerializer(membership.organisation).data if membership else None,
        })
