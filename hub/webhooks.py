"""The rules of webhook endpoints, shared by every way one is made (REST, Zapier and
Power Automate subscriptions, the CLI): http(s) URLs without credentials that lead
outside the hub's own networks, subscribed events, a fresh secret each; and the address
policy that deliveries check again on every connection they open."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from hub.errors import Rejected
from hub.events import parse_event_types
from hub.ids import new_id
from hub.model import WebhookEndpoint

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64
MAX_URL = 2048
MAX_ENDPOINTS = 50  # per account: each one multiplies every event

# Beyond what the ipaddress flags cover: shared address space (carrier-grade NAT), and
# the NAT64 and 6to4 ranges that can wrap a private IPv4 address.
_EXTRA = [ipaddress.ip_network(n) for n in ("100.64.0.0/10", "64:ff9b::/96",
                                             "64:ff9b:1::/48", "2002::/16")]


class ForbiddenTarget(Rejected):
    """An endpoint the hub will not call: bad URL, or an address of its own networks."""

    def __init__(self, reason: str) -> None:
        super().__init__("forbidden_url", reason)


def parse_networks(values: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def why_forbidden(address: Address, allowed: Sequence[Network]) -> str | None:
    """None if a webhook may connect to `address`, else what kind of address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allowed):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_private or any(address in net for net in _EXTRA):
        return "a private address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a unicast address"
    return None


def check_url(url: str, allowed: Sequence[Network]) -> str:
    """Refuse (ForbiddenTarget) a URL that is not plain http(s) to a host, carries
    credentials, or names a forbidden address literally; return it unchanged."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise ForbiddenTarget(f"not a usable URL (at most {MAX_URL} characters, no spaces)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ForbiddenTarget(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenTarget("the URL must be http:// or https:// with a host name")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenTarget("the URL must not carry credentials; verify our signature "
                              "instead")
    if port == 0:
        raise ForbiddenTarget("port 0 cannot be connected to")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if (why := why_forbidden(literal, allowed)) is not None:
        raise ForbiddenTarget(f"the URL's host is {why}")
    return url


def check_resolved(host: str, infos: Iterable[str], allowed: Sequence[Network]) -> list[str]:
    """The addresses a host resolved to, or ForbiddenTarget if any is forbidden: one bad
    address among good ones is how DNS rebinding starts."""
    found = []
    for text in infos:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if (why := why_forbidden(address, allowed)) is not None:
            raise ForbiddenTarget(f"the host {host} resolves to {why}")
        found.append(text)
    return found


def check_host(url: str, allowed: Sequence[Network]) -> None:
    """Resolve the URL's host now (blocking: callers run it on a thread) and refuse it
    if it cannot be resolved or leads somewhere forbidden."""
    parts = urlsplit(check_url(url, allowed))
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ForbiddenTarget(f"the host {host} cannot be resolved") from exc
    check_resolved(host, (str(i[4][0]) for i in infos), allowed)


def new_endpoint(account_id: int, url: str, events: Iterable[str], allowed: Sequence[Network],
                 now: datetime, *, kind: str = "webhook",
                 description: str = "") -> WebhookEndpoint:
    """A checked endpoint with a fresh secret (the caller resolves the host first with
    `check_host`, off the event loop). Rejected('invalid_field') for bad events."""
    check_url(url, allowed)
    try:
        types = parse_event_types(events)
    except ValueError as exc:
        raise Rejected("invalid_field", str(exc)) from exc
    if len(description) > 200:
        raise Rejected("invalid_field", "description: at most 200 characters")
    return WebhookEndpoint(id=new_id(), account_id=account_id, url=url,
                           events=frozenset(t.value for t in types), secret=new_secret(),
                           created_at=now, kind=kind, description=description)
