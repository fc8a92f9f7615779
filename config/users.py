"""The signed-in user of a request, typed as the `User` model the services take.

`request.user` is `User | AnonymousUser` to the type checker; behind an authentication or role
permission it is always a `User`. `request_user` states that once instead of at every call.
"""

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request


def request_user(request: Request | HttpRequest) -> User:
    """The request's user; PermissionDenied (403) for an anonymous one, which a view behind
    IsAuthenticated, a role permission or the admin's staff check never sees."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user
