"""Refuse HTTP requests to internal addresses unless the operator trusts the host.

Result URLs and reference links come from providers and members, so a hostile answer could point the
bot at ``http://127.0.0.1:...``, a cloud metadata service or a router page, and the bot would post what
it fetched in a public channel. The guard is an httpx request hook: httpx runs request hooks before
every hop, redirects included, so one check covers the first URL and each ``Location`` it is sent to.

A host is trusted when the operator named it: the hosts of the configured provider and Discord base
URLs (this is also how the bundled fakes on 127.0.0.1 keep working) and ``[imagine] trusted_hosts``.
Any other host is resolved and refused if any address it resolves to is not a public one.

What stays open: the name is resolved again by the connection itself, so a DNS server that answers
differently within milliseconds (DNS rebinding) could still slip through; closing that would need
connecting to the checked address ourselves, below httpx's transport.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from bot.transport import CookielessClient

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

WEB_SCHEMES = frozenset({"http", "https"})
# Redirect hops a download may take; a loop ends here instead of at httpx's default of 20.
MAX_REDIRECTS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenAddressError(httpx.UnsupportedProtocol):
    """The request was refused before connecting: the target is internal or not http(s).

    A subclass of httpx's own "this URL will not be sent" error, so every caller that already treats
    that as "nothing was sent, retrying cannot help" (the provider retry loop included) does the right
    thing without knowing about this guard.
    """

    def __init__(self, message: str, *, request: httpx.Request, reason: str) -> None:
        super().__init__(message, request=request)
        self.reason = reason


def host_of(url: str) -> str | None:
    """The lower-cased host of ``url`` (IPv6 literals without brackets), or None."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def is_public(address: IPAddress) -> bool:
    """Routable on the internet: not loopback, private, link-local, multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 reaches 127.0.0.1; judge the IPv4 address it carries.
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not address.is_multicast


class AddressGuard:
    """An httpx request hook; raises ForbiddenAddressError for internal or non-web targets."""

    def __init__(self, trusted_hosts: Iterable[str]) -> None:
        self.trusted = frozenset(h.strip().lower().strip("[]") for h in trusted_hosts if h and h.strip())

    async def __call__(self, request: httpx.Request) -> None:
        url = request.url
        if url.scheme not in WEB_SCHEMES:
            raise ForbiddenAddressError(
                f"refused {url.scheme}: URL", request=request, reason=f"a {url.scheme}: address"
            )
        host = url.host.lower()
        if host in self.trusted:
            return
        for address in await self._addresses(host, url.port or (443 if url.scheme == "https" else 80)):
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


RequestHook = Callable[[httpx.Request], Awaitable[None]]
ResponseHook = Callable[[httpx.Response], Awaitable[None]]


def guarded_client(
    trusted_hosts: Iterable[str],
    *,
    request_hooks: Sequence[RequestHook] = (),
    response_hooks: Sequence[ResponseHook] = (),
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An AsyncClient whose every request, and every redirect hop, passes the AddressGuard first (then
    ``request_hooks``, e.g. the per-provider request budget)."""
    hooks: dict[str, list[Any]] = {
        "request": [AddressGuard(trusted_hosts), *request_hooks],
        "response": list(response_hooks),
    }
    return CookielessClient(event_hooks=hooks, max_redirects=MAX_REDIRECTS, **kwargs)


def trusted_hosts_for(settings: Settings) -> list[str]:
    """Hosts the operator chose: every provider's and Discord's base URL, plus ``[imagine] trusted_hosts``."""
    urls = [settings.discord.api_base_url, settings.discord.gateway_url]
    for name in type(settings.providers).model_fields:
        urls.append(getattr(settings.providers, name).base_url)
    hosts = [host for url in urls if (host := host_of(url))]
    return [*hosts, *settings.imagine.trusted_hosts]
