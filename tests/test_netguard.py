"""The address guard: which addresses count as internal, trust by configured name, and every hop checked."""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp.abc
import httpx
import pytest
from aiohttp import web

from bot.config import load_settings
from bot.errors import DeliveryError
from bot.fetch import download_to
from bot.netguard import (
    AddressGuard,
    ForbiddenAddressError,
    GuardedResolver,
    guarded_client,
    is_public,
    trusted_hosts_for,
)
from bot.transport import AiohttpTransport


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:0001::", False),  # 6to4 wrapping 127.0.0.1
        # NAT64 (an IPv6-only host reaches the IPv4 address in the last 32 bits), judged as that address; Python
        # 3.11 calls these global, and they were let through.
        ("64:ff9b::a9fe:a9fe", False),  # cloud metadata
        ("64:ff9b::a00:5", False),  # 10.0.0.5
        ("64:ff9b::808:808", True),  # 8.8.8.8
        ("64:ff9b:1::7f00:1", False),  # a network's own translator: local by definition
        ("64:ff9b:1::808:808", False),
        ("::ffff:0:7f00:1", False),  # translated form of 127.0.0.1
        ("::ffff:0:808:808", True),
        ("::127.0.0.1", False),  # IPv4-compatible form
        ("fec0::1", False),  # site-local
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "host", ["64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1", "::ffff:0:7f00:1", "::127.0.0.1", "fec0::1"]
)
async def test_an_ipv6_address_carrying_an_internal_ipv4_address_is_refused_before_connecting(host: str) -> None:
    """On an IPv6-only network behind NAT64, 64:ff9b::a9fe:a9fe reaches the cloud metadata service. These were
    tried (a connection, then retries) and the member read that the image "could not be delivered"."""
    async with guarded_client([]) as client:
        with pytest.raises(DeliveryError) as failed:
            await download_to(io.BytesIO(), client, f"http://[{host}]/latest/meta-data/", max_bytes=1000, timeout=3)
    assert "internal network address" in failed.value.user_message and not failed.value.retryable


async def guard_says(guard: AddressGuard, url: str) -> str | None:
    try:
        await guard(httpx.Request("GET", url))
    except ForbiddenAddressError as exc:
        return exc.reason
    return None


async def test_trust_is_by_configured_name() -> None:
    guard = AddressGuard(["127.0.0.1", "Images.Internal.Example"])
    assert await guard_says(guard, "http://127.0.0.1:9/x.png") is None
    assert await guard_says(guard, "http://images.internal.example/x.png") is None
    assert await guard_says(guard, "http://127.0.0.2:9/x.png") == "an internal network address"
    assert await guard_says(guard, "http://localhost:9/x.png") == "an internal network address"
    assert await guard_says(guard, "http://[::1]:9/x.png") == "an internal network address"
    assert await guard_says(guard, "http://8.8.8.8/x.png") is None


async def test_non_web_schemes_are_refused() -> None:
    guard = AddressGuard(["127.0.0.1"])
    assert await guard_says(guard, "ftp://127.0.0.1/x.png") == "a ftp: address"


def test_trusted_hosts_come_from_the_configuration() -> None:
    settings = load_settings(
        None,
        discord={"api_base_url": "http://10.0.0.5:8080/api/v10"},
        providers={"kie": {"base_url": "https://kie.internal:8443"}},
        imagine={"trusted_hosts": ["192.168.7.7"]},
    )
    hosts = trusted_hosts_for(settings)
    assert {"10.0.0.5", "kie.internal", "192.168.7.7", "cloud.seaart.ai"} <= set(hosts)
    assert "127.0.0.1" not in hosts


async def test_a_redirect_to_an_internal_address_is_checked_at_that_hop() -> None:
    """httpx runs request hooks before every hop; the first (trusted) hop passes, the second does not."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    client = guarded_client(["files.example"], transport=httpx.MockTransport(handler))
    async with client:
        with pytest.raises(ForbiddenAddressError):
            await client.get("http://files.example/result.png", follow_redirects=True)
    assert seen == ["http://files.example/result.png"]


# ---- at connect time: DNS rebinding --------------------------------------------------------------


class RebindingDNS(aiohttp.abc.AbstractResolver):
    """A DNS server that gives the connection another answer than the check got: every name it knows
    resolves to 127.0.0.1 (where the test's server listens), and the system resolver, which the request
    hook asks, knows none of them (an unresolvable name passes the hook: the connection fails anyway)."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"{host} does not resolve")
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[int, list[str]]]:
    hits: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="internal admin page")

    app = web.Application()
    app.router.add_get("/secret", secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1], hits
    await runner.cleanup()


def rebinding_client(trusted: list[str], dns: RebindingDNS) -> httpx.AsyncClient:
    transport = AiohttpTransport(resolver=lambda: GuardedResolver(trusted, inner=dns))
    return guarded_client(trusted, transport=transport)


async def test_a_name_that_resolves_to_an_internal_address_at_connect_time_is_refused(
    local_server: tuple[int, list[str]],
) -> None:
    port, hits = local_server
    dns = RebindingDNS({"rebind.invalid"})
    async with rebinding_client([], dns) as client:
        with pytest.raises(ForbiddenAddressError) as refused:
            await client.get(f"http://rebind.invalid:{port}/secret")
        assert refused.value.reason == "an internal network address"
        # Through the download path: a clear, final message (not a "try again" network error).
        with pytest.raises(DeliveryError) as failed:
            await download_to(io.BytesIO(), client, f"http://rebind.invalid:{port}/secret", max_bytes=1000, timeout=5)
        assert "internal network address" in failed.value.user_message and not failed.value.retryable
    assert dns.asked and hits == [], "the internal server was never reached"


async def test_a_trusted_name_still_connects_through_the_guarded_resolver(local_server: tuple[int, list[str]]) -> None:
    port, hits = local_server
    dns = RebindingDNS({"fake-provider.invalid"})
    async with rebinding_client(["fake-provider.invalid"], dns) as client:
        response = await client.get(f"http://fake-provider.invalid:{port}/secret")
    assert response.text == "internal admin page" and hits == ["/secret"]


# ---- addresses written in unusual forms ----------------------------------------------------------


@pytest.fixture
async def redirector() -> AsyncIterator[str]:
    """A trusted server on 127.0.0.1 whose ``/hop?to=URL`` redirects to URL: its origin."""

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def download_fails(url: str, via: str) -> list[DeliveryError]:
    """How a download of ``url`` fails, directly and as the target of a redirect from ``via``."""
    errors = []
    async with guarded_client(["127.0.0.1"]) as client:
        for link in (url, f"{via}/hop?{urlencode({'to': url})}"):
            with pytest.raises(DeliveryError) as failed:
                await download_to(io.BytesIO(), client, link, max_bytes=1000, timeout=5)
            errors.append(failed.value)
    return errors


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0", "127.0.0.1.", "0x7f000001", "0x7f.1"])
async def test_an_internal_address_written_as_another_number_is_refused_as_internal(
    host: str, local_server: tuple[int, list[str]], redirector: str
) -> None:
    """Refused before as now, but the member read "an http: address; the bot fetches only http and https"
    (aiohttp's refusal of a non-canonical IPv4 address came back as an unsupported protocol)."""
    port, hits = local_server
    for error in await download_fails(f"http://{host}:{port}/secret", redirector):
        assert "internal network address" in error.user_message and not error.retryable
        assert "http and https" not in error.user_message
    assert hits == []
    guard = AddressGuard([], resolve_names=False)
    assert await guard_says(guard, f"http://{host}/x.png") == "an internal network address"


async def test_a_public_address_in_an_unusual_form_is_named_so_and_names_are_left_alone() -> None:
    guard = AddressGuard([], resolve_names=False)
    assert await guard_says(guard, "http://134744072/x.png") == "an address written in an unusual form"  # 8.8.8.8
    for name in ("cafe.be", "deadbeef", "0xcafe.example", "1e3.example"):
        assert await guard_says(guard, f"http://{name}/x.png") is None


async def test_a_link_httpx_cannot_parse_is_refused_once_not_retried(
    local_server: tuple[int, list[str]], redirector: str
) -> None:
    """``0177.0.0.1`` (octal 127.0.0.1): httpx's InvalidURL is not an httpx.HTTPError, so it escaped the
    download and delivery tried it six times. Now a final refusal, as direct link or redirect target."""
    port, hits = local_server
    for error in await download_fails(f"http://0177.0.0.1:{port}/secret", redirector):
        assert "a link the bot cannot read" in error.user_message and not error.retryable
    assert hits == []
