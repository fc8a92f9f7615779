"""Where a webhook may be sent: parsing, resolving once, and the address deny list (SSRF)."""

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from marketplace.errors import (
    WebhookUrlInvalidError,
    WebhookUrlNotAllowedError,
)
from marketplace.services.webhooks.constants import HTTPS_ONLY

logger = logging.getLogger(__name__)


#
# A member chooses the URL, and our server makes the request: without care that is a way into our
# own network (the database, Redis, cloud metadata at 169.254.169.254, the admin of a router). So
# the host is resolved and EVERY address must be public; the same check runs at registration and
# again at each attempt, where the one resolution that was checked is also the address connected
# to (a name that resolves elsewhere a moment later, "DNS rebinding", changes nothing). The
# networks below are refused by name; anything else the standard library does not call global is
# refused too. IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
# are refused whole: a public receiver has a plain address of either family.

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple((ipaddress.ip_network(net), what) for net, what in (
    ("0.0.0.0/8", "an unspecified (this-network) address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata services live there)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/32", "a Teredo address"),
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", "a 6to4 address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
))


_CARRY_IPV4 = frozenset(
    ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "::/96", "64:ff9b::/96", "2001::/32", "2002::/16")
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the forms that carry one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in ipaddress.IPv6Network("64:ff9b::/96") or ip in ipaddress.IPv6Network("::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def webhook_address_denial(address: IPAddress) -> str | None:
    """Why a webhook must not be sent to `address` ("a loopback address", …), or None if it is public."""
    for network, what in _DENIED:
        if address.version == network.version and address in network:
            if network in _CARRY_IPV4 and isinstance(address, ipaddress.IPv6Address):
                inner = _embedded_ipv4(address)
                if inner is not None:
                    inner_why = webhook_address_denial(inner)
                    return f"{what} (carrying {inner}{', ' + inner_why if inner_why else ''})"
            return what
    flags = (address.is_private, address.is_loopback, address.is_link_local, address.is_multicast, address.is_reserved,
             address.is_unspecified, getattr(address, "is_site_local", False))
    if not address.is_global or any(flags):
        return "not a public address"
    return None


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL taken apart: where to connect and what to say. `host` is the ASCII (IDNA) name
    or the bare IP literal; `path` includes the query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port == {"https": 443, "http": 80}[self.scheme] else f"{shown}:{self.port}"


def _allow_list() -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """ELEMENTA_WEBHOOK_ALLOWED_HOSTS: host names, and IP addresses or networks, exempt from the
    address check and allowed plain http (local development receivers). Empty by default."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in getattr(settings, "ELEMENTA_WEBHOOK_ALLOWED_HOSTS", ()) or ():
        entry = str(entry).strip().lower().strip("[]")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(networks)


def webhook_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order, once each.
    OSError if it does not resolve."""
    found: list[IPAddress] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OSError(f"{host} has no address")
    return found


def webhook_target_refusal(target: WebhookTarget, addresses: list[IPAddress]) -> str | None:
    """Why a request to `target` at these resolved addresses must not be made, or None. Refused if
    ANY address is denied (unless the allow-list covers the host or that address), and plain http
    unless the allow-list covers the host or every address."""
    names, networks = _allow_list()
    named = target.host.rstrip(".") in names
    allowed = [named or any(a.version == n.version and a in n for n in networks) for a in addresses]
    for address, exempt in zip(addresses, allowed, strict=True):
        why = None if exempt else webhook_address_denial(address)
        if why:
            if target.literal is not None:
                return f"{address} is {why}"
            return f"{target.host} resolves to {address}, {why}"
    if target.scheme != "https" and not (named or (addresses and all(allowed))):
        return HTTPS_ONLY
    return None


def webhook_target_parse(*, url: str) -> WebhookTarget:
    """The URL taken apart, or WebhookUrlInvalidError (400): http(s), no credentials, no fragment,
    at most 500 characters. Says nothing yet about where it points."""

    def invalid(reason: str) -> WebhookUrlInvalidError:
        return WebhookUrlInvalidError(f"The webhook URL is not valid: {reason}.", fields={"url": [reason]})

    url = (url or "").strip()
    if len(url) > 500:
        raise invalid("at most 500 characters")
    try:
        URLValidator(schemes=["http", "https"])(url)
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
        host = (parts.hostname or "").lower().encode("idna").decode("ascii")
    except (ValidationError, ValueError, UnicodeError):
        raise invalid("not a valid http(s) URL") from None
    if not host:
        raise invalid("not a valid http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise invalid("credentials in the URL are not accepted")
    if parts.fragment:
        raise invalid("a fragment (#…) is not sent to servers")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, path=path)


def webhook_url_validate(*, url: str) -> str:
    """The URL, stripped, if a webhook may be registered for it. WebhookUrlInvalidError (400) for a
    malformed URL or plain http; WebhookUrlNotAllowedError (400) if the host is, or resolves to, an
    address that is not public (see webhook_address_denial) and not in ELEMENTA_WEBHOOK_ALLOWED_HOSTS.
    A name that does not resolve (yet) is accepted: every attempt resolves and checks it again,
    and that check is the one that protects."""
    target = webhook_target_parse(url=url)
    try:
        addresses = webhook_resolve(target.host, target.port)
    except (OSError, UnicodeError):
        addresses = []
    refusal = webhook_target_refusal(target, addresses)
    if refusal == HTTPS_ONLY:
        raise WebhookUrlInvalidError(f"The webhook URL is not valid: {refusal}.", fields={"url": [refusal]})
    if refusal:
        raise WebhookUrlNotAllowedError(f"The webhook URL is not allowed: {refusal}.", fields={"url": [refusal]})
    return url.strip()
