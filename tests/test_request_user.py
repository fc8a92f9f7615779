"""config.users.request_user: the signed-in User of a request, or 403 for an anonymous one."""

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from config.users import request_user


def test_a_signed_in_request_gives_its_user() -> None:
    request = RequestFactory().get("/")
    user = User(username="someone")
    request.user = user
    assert request_user(request) is user


def test_an_anonymous_request_is_refused() -> None:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with pytest.raises(PermissionDenied):
        request_user(request)
