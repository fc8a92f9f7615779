"""API-key scopes: the closed set, which routes each one opens, and which roles may hand it out.

Deny by default: a request made with an API key reaches only the routes its scopes list here (by URL
name and method); everything else (sessions, API keys themselves, money, reviews, rule packs, …) is
a 403 `api_key_scope`, whatever the key's role would otherwise allow. Within an allowed route the
ordinary role and tenancy checks still apply to the key's machine account.

No Django model imports: config.authentication uses this while DRF is still loading.
"""

from typing import Final

PROVIDER, BUYER = "provider", "buyer"

# scope → (roles that may create a key with it, the (method, URL name) pairs it opens)
SCOPES: Final[dict[str, tuple[frozenset[str], frozenset[tuple[str, str]]]]] = {
    "catalogue:read": (
        frozenset({PROVIDER, BUYER}),
        frozenset(
            {
                ("GET", "dataset-list"),
                ("GET", "dataset-detail"),
                ("GET", "dataset-files"),
                ("GET", "dcat-catalogue"),
                ("GET", "dcat-dataset"),
                ("GET", "dataset-policy"),
            }
        ),
    ),
    "catalogue:write": (
        frozenset({PROVIDER}),
        frozenset(
            {
                ("POST", "dataset-list"),
                ("PATCH", "dataset-detail"),
                ("POST", "dataset-publish"),
                ("POST", "dataset-withdraw"),
            }
        ),
    ),
    "files:upload": (
        frozenset({PROVIDER}),
        frozenset(
            {
                ("POST", "dataset-files"),
                ("GET", "dataset-files"),
            }
        ),
    ),
    "trades:read": (
        frozenset({PROVIDER, BUYER}),
        frozenset(
            {
                ("GET", "trade-list"),
                ("GET", "trade-detail"),
                ("GET", "trade-documents"),
                ("GET", "grant-list"),
                ("GET", "grant-detail"),
                ("GET", "grant-downloads"),
                ("GET", "grant-download"),
                ("GET", "trade-agreement"),
            }
        ),
    ),
    "trades:write": (
        frozenset({BUYER}),
        frozenset(
            {
                ("POST", "trade-list"),
                ("POST", "trade-cancel"),
                ("POST", "trade-renew"),
                ("POST", "trade-documents"),
            }
        ),
    ),
}
# Open to every key: who am I (the machine account, its organisation and role).
ANY_KEY: Final[frozenset[tuple[str, str]]] = frozenset({("GET", "me")})


def scope_allows(scopes: list[str], *, method: str, url_name: str | None) -> bool:
    method = "GET" if method in ("HEAD", "OPTIONS") else method
    route = (method, url_name or "")
    if route in ANY_KEY:
        return True
    return any(route in SCOPES[s][1] for s in scopes if s in SCOPES)


def scopes_for_role(role: str | None) -> list[str]:
    return sorted(s for s, (roles, _) in SCOPES.items() if role in roles)
