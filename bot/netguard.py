"""Refuse HTTP requests to internal addresses unless the operator trusts the host.

Result URLs and reference links come from providers and members, so a hostile answer could point the
bot at ``http://127.0.0.1:...``, a cloud metadata service or a router page, and the bot would post what
it fetched in a public channel. The guard is an httpx request hook: httpx runs request hooks before
every hop, redirects included, so one check covers the first URL and each ``Location`` it is sent to.

A host is trusted when the operator named it: the hosts of the configured provider and Discord base
URLs (this is also how the bundled fakes on 127.0.0.1 keep working) and ``[imagine] trusted_hosts``.
Any other host is resolved and refused if any address it resolves to is not a public one.

The connection resolves the name again, and a DNS server may answer differently the second time (DNS
rebinding: a public address for the check, 127.0.0.1 for the connection). So the transport resolves
through ``GuardedResolver``, which applies the same rule to the addresses actually connected to; a
client built with it (``guarded_client``'s default) leaves names to it and checks only schemes and
literal addresses in the hook.

Behind a proxy from the environment (HTTP_PROXY, HTTPS_PROXY) the resolver sees only the proxy's name: the
proxy resolves the target's. So for a request that goes through a proxy the hook resolves the target's name
itself and refuses it by the same rule. A name that does not resolve here is sent on: behind an egress proxy
that does the DNS, nothing resolves here, and refusing threw away every image made on an untrusted host. That
check cannot be made exact: the proxy looks the name up again, and a DNS server that answers a
public address to the bot and an internal one to the proxy (rebinding) is not seen here. Only the proxy can
close that (refusing internal targets itself); a name the operator trusts skips the check as always.

A link with a user name or password (``http://user:pass@host/``) is refused whatever its host: httpx makes an
Authorization header of them, which aiohttp then refuses to send (a ValueError no caller expected), and no
provider or image host the bot calls wants them.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import httpx

from bot.http_terms import NO_COMPRESSION, ForbiddenAddressError
from bot.transport import MAX_CONNECTIONS, AiohttpTransport, CookielessClient, FailureHook, Gate, RefusedHost

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

WEB_SCHEMES = frozenset({"http", "https"})
# Redirect hops a download may take; a loop ends here instead of at httpx's default of 20.
MAX_REDIRECTS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_of(url: str) -> str | None:
    """The lower-cased host of ``url`` (IPv6 literals without brackets), or None."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


# IPv6 prefixes whose last 32 bits are an IPv4 address the packet reaches: NAT64's well-known prefix (RFC 6052),
# which a host on an IPv6-only network behind NAT64 routes to that IPv4 address (64:ff9b::a9fe:a9fe is the cloud
# metadata service); the translated form (RFC 2765); and the old IPv4-compatible form (RFC 4291). Python 3.11
# calls all of them global.
_CARRYING_IPV4 = tuple(ipaddress.IPv6Network(prefix) for prefix in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
# Never public, yet called global by 3.11: NAT64's local-use prefix (RFC 8215: a network's own translator, the
# IPv4 address placed by a prefix length only that network knows) and site-local addresses (RFC 3879 deprecated
# them, but a network may still route them).
_LOCAL_ONLY = tuple(ipaddress.IPv6Network(prefix) for prefix in ("64:ff9b:1::/48", "fec0::/10"))


def is_public(address: IPAddress) -> bool:
    """Routable on the internet: not loopback, private, link-local, multicast, reserved or unspecified, nor an
    IPv6 address that carries an IPv4 address that is (judged as that IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 reaches 127.0.0.1; judge the IPv4 address it carries.
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and any(address in prefix for prefix in _CARRYING_IPV4):
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if mapped is not None:
            return is_public(mapped)
        if any(address in prefix for prefix in _LOCAL_ONLY):
            return False
    return address.is_global and not address.is_multicast


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# The characters of an IPv4 address written as numbers in any of the forms inet_aton reads.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


def unusual_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``host`` means when it writes one otherwise than as a.b.c.d (``127.1``, ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``0``, ``127.0.0.1.``), or None. C's inet_aton, and with it many
    resolvers and clients, reads these as addresses; aiohttp and httpx refuse to send them, and the member
    read "an unusable scheme 'http'" (or the download was tried six times), so they are named here."""
    if _is_address(host) or not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.removesuffix(".")))
    except OSError:
        return None


def _normalised(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(h.strip().lower().strip("[]") for h in hosts if h and h.strip())


class AddressGuard:
    """An httpx request hook; raises ForbiddenAddressError for internal or non-web targets.

    ``resolve_names`` False: a name is left to the transport's GuardedResolver, which checks the addresses
    the connection uses (resolving it here too would cost a second lookup per download); the scheme and
    an address written in the URL, which no resolver sees, are still checked here. ``proxied`` (the
    transport's): whether a URL goes through a proxy, which resolves the name instead of that resolver;
    such a name is resolved and checked here (see the module docstring).
    """

    def __init__(
        self,
        trusted_hosts: Iterable[str],
        *,
        resolve_names: bool = True,
        proxied: Callable[[httpx.URL], bool] | None = None,
    ) -> None:
        self.trusted = _normalised(trusted_hosts)
        self.resolve_names = resolve_names
        self._proxied = proxied

    async def __call__(self, request: httpx.Request) -> None:
        url = request.url
        if url.scheme not in WEB_SCHEMES:
            raise ForbiddenAddressError(
                f"refused {url.scheme}: URL", request=request, reason=f"a {url.scheme}: address"
            )
        if url.userinfo:
            # Never the user name or password in the message: only that there were some.
            raise ForbiddenAddressError(
                "refused a link carrying a user name or password",
                request=request,
                reason="a link carrying a user name or password",
            )
        host = url.host.lower()
        if host in self.trusted:
            return
        if (written := unusual_ipv4(host)) is not None:
            _refuse_unusual(request, host, written)
        proxied = self._proxied is not None and self._proxied(url)
        if not self.resolve_names and not proxied and not _is_address(host):
            return
        addresses = await self._addresses(host, url.port or (443 if url.scheme == "https" else 80))
        if proxied and not addresses:
            # Only the proxy can resolve it (an egress proxy that does the DNS): sent on, as before this check
            # existed, the proxy's own policy the guard there. Refusing threw away images made and paid for.
            log.debug("%s does not resolve here; left to the proxy", host[:80])
            return
        for address in addresses:
            if not is_public(address):
                log.warning("refused a request to %s (resolves to internal address %s)", host, address)
                raise ForbiddenAddressError(
                    f"refused internal address {address} for host {host}",
                    request=request,
                    reason="an internal network address",
                )

    @staticmethod
    async def _addresses(host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            # Unresolvable: the connection attempt fails the same way and reports it as a network error.
            return []
        found: list[IPAddress] = []
        for info in infos:
            try:
                found.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            except ValueError:
                continue
        return found


def _refuse_unusual(request: httpx.Request, host: str, address: ipaddress.IPv4Address) -> None:
    """Refuse ``host``, an IPv4 address in an unusual form, saying what it is: internal, or only odd."""
    log.warning("refused a request to %s (an unusual way to write the address %s)", host[:80], address)
    reason = "an internal network address" if not is_public(address) else "an address written in an unusual form"
    raise ForbiddenAddressError(f"refused address {address} written as {host[:80]}", request=request, reason=reason)


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's resolver, refusing a host none of whose addresses may be fetched: the check at connect
    time, on the very addresses the connection will use (AddressGuard's rule, trusted hosts alike)."""

    def __init__(self, trusted_hosts: Iterable[str], inner: aiohttp.abc.AbstractResolver | None = None) -> None:
        self.trusted = _normalised(trusted_hosts)
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if host.lower().strip("[]") in self.trusted:
            return found
        for info in found:
            try:
                address = ipaddress.ip_address(str(info["host"]).split("%", 1)[0])
            except ValueError:
                continue
            if not is_public(address):
                log.warning("refused to connect to %s (resolved to internal address %s)", host, address)
                message = f"refused internal address {address} for host {host}"
                raise RefusedHost(message, functools.partial(_refused_internal, message))
        return found

    async def close(self) -> None:
        await self._inner.close()


def _refused_internal(message: str, request: httpx.Request) -> ForbiddenAddressError:
    return ForbiddenAddressError(message, request=request, reason="an internal network address")


def guarded_transport(
    trusted_hosts: Iterable[str], *, answer_gate: Gate | None = None, max_connections: int = MAX_CONNECTIONS
) -> AiohttpTransport:
    """The bot's transport, resolving through GuardedResolver; ``answer_gate`` bounds the answers carrying
    images read at once (bot/transport.py LARGE_ANSWER)."""
    hosts = list(trusted_hosts)
    return AiohttpTransport(
        resolver=lambda: GuardedResolver(hosts), answer_gate=answer_gate, max_connections=max_connections
    )


RequestHook = Callable[[httpx.Request], Awaitable[None]]
ResponseHook = Callable[[httpx.Response], Awaitable[None]]


def guarded_client(
    trusted_hosts: Iterable[str],
    *,
    request_hooks: Sequence[RequestHook] = (),
    response_hooks: Sequence[ResponseHook] = (),
    failure_hooks: Sequence[FailureHook] = (),
    answer_gate: Gate | None = None,
    max_connections: int = MAX_CONNECTIONS,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An AsyncClient whose every request, and every redirect hop, passes the AddressGuard first (then
    ``request_hooks``, e.g. the per-provider request budget), over the guarded transport unless given one;
    ``failure_hooks`` hear of each request that got no answer."""
    hosts = list(trusted_hosts)
    checked_at_connect = "transport" not in kwargs
    proxied = None
    if checked_at_connect:
        transport = guarded_transport(hosts, answer_gate=answer_gate, max_connections=max_connections)
        kwargs["transport"], proxied = transport, transport.proxied
    guard = AddressGuard(hosts, resolve_names=not checked_at_connect, proxied=proxied)
    hooks: dict[str, list[Any]] = {
        "request": [guard, *request_hooks],
        "response": list(response_hooks),
    }
    # No compressed answers: httpx would inflate one without a bound (bot/transport.py refuses what
    # comes compressed anyway). Images are compressed already and API answers are small.
    kwargs["headers"] = {**NO_COMPRESSION, **kwargs.get("headers", {})}
    return CookielessClient(event_hooks=hooks, failure_hooks=failure_hooks, max_redirects=MAX_REDIRECTS, **kwargs)


def trusted_hosts_for(settings: Settings) -> list[str]:
    """Hosts the operator chose: every provider's and Discord's base URL, plus ``[imagine] trusted_hosts``."""
    urls = [settings.discord.api_base_url, settings.discord.gateway_url]
    for name in type(settings.providers).model_fields:
        urls.append(getattr(settings.providers, name).base_url)
    hosts = [host for url in urls if (host := host_of(url))]
    return [*hosts, *settings.imagine.trusted_hosts]
