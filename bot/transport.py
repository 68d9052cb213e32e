"""An httpx transport that sends requests with aiohttp.

httpx's own transport (httpcore on anyio) costs about 0.9 ms of CPU per request on this project's
2-core machine, and 1.6 ms with dozens of requests in flight; aiohttp sends the same request for about
0.15 ms. The bot makes a dozen or more provider requests per image (polls, result fetch, download), so
that difference was most of its CPU per job. httpx stays the API every adapter is written against
(``httpx.AsyncClient``, its hooks, timeouts, redirects and exceptions); only the bytes go through
aiohttp, which the project already depends on through discord.py.

The one thing that must be exact is which failures mean "the request never left": the provider retry
loop (bot/providers/_http.py) re-sends a create only after httpx.ConnectError, ConnectTimeout or
PoolTimeout. So only a failure to connect maps to those; a connection dropped or timed out after the
request was written maps to ReadError, RemoteProtocolError or ReadTimeout, and a create is then never
sent twice.

What a hostile server can send is bounded here, for every request:
* time: httpx's read timeout applies to each read, so a server sending a byte every few seconds would
  hold a request for ever; the whole exchange, from connecting to the last byte, gets the read timeout
  in total (aiohttp's ``total``; a provider's ``request_timeout`` is "seconds to wait for one answer").
  The time an answer spends waiting for a slot of ``answer_gate`` (below) is the bot's, not the
  provider's, and is not counted: such an answer has arrived, its image made and paid for, and
  dropping it because other answers were ahead of it lost the image (tests/test_transport.py);
* size: a request may carry the extension ``MAX_BODY`` (bytes); a longer body fails with AnswerTooLarge
  once that many have arrived, however long the server would go on;
* memory: an answer allowed past LARGE_ANSWER (one that may carry an image) and longer than that is
  read while holding a slot of ``answer_gate`` (the runner's: one of a few answer slots and one of the
  memory gate's, bot/imagework.py AnswerGate), so many such answers at once are read in turn, not all
  into memory together; one holding a slot must keep a pace (SLOT_GRACE), so
  a dripping answer cannot keep a slot for the whole read timeout;
* compression: a request that asks for ``Accept-Encoding: identity`` (``NO_COMPRESSION``: bot/netguard.py's
  client does, and every provider call and download says so itself, whatever client it is given) gets no
  compressed body. httpx would inflate one without a bound (a 1 MB gzip answer can hold a gigabyte), so a
  compressed answer nobody asked for is refused (UnaskedEncoding) before it is read, whichever of its
  Content-Encoding headers, or values in one, names the coding.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import aiohttp.abc
import httpx
import yarl
from aiohttp.helpers import get_env_proxy_for_url

from bot.http_terms import MAX_BODY, AnswerTooLarge, UnaskedEncoding

# aiohttp names its connect and read timeouts apart since 3.10; older versions raise the common base.
_CONNECT_TIMEOUT: type[BaseException] = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError)
_READ_TIMEOUT: type[BaseException] = getattr(aiohttp, "SocketTimeoutError", aiohttp.ServerTimeoutError)
# A 3 MB result in 256 KiB pieces: each piece costs a trip through aiohttp's and httpx's iterators and
# the high-water mark of aiohttp's read buffer pauses the socket at every one, so 64 KiB pieces (its
# default) cost about 0.3 ms more per download (bench/load.py). Small answers are not affected.
CHUNK_SIZE = 256 * 1024
READ_BUFFER = 256 * 1024


# An answer allowed past this (Gemini's and Segmind's carry the image itself, tens of MB for 4K) and
# growing past it waits for a slot of the transport's answer gate while it is read: twenty such answers
# arriving at once are read a few at a time, not all into memory together.
LARGE_ANSWER = 4 * 1024 * 1024
# An answer holding a slot must keep coming: from taking it, it gets SLOT_GRACE seconds plus one second per
# SLOT_MIN_RATE bytes it has sent since, or it is cut (ReadTimeout). A provider dripping such an answer would
# otherwise hold one of the gate's few slots, which spools and re-encodes share, up to its whole
# request_timeout (180 s for Gemini). 256 KiB/s is a 2 Mbit/s link; a 4K answer of 67 MB needs 4 minutes
# at that rate, longer than any request_timeout allows anyway.
SLOT_GRACE = 15.0
SLOT_MIN_RATE = 256 * 1024


# Connections open at once, to every host together (aiohttp's connector limit); a request past it waits
# for one, up to httpx's pool timeout. The bot asks for more when its lanes are set wider (bot/app.py).
MAX_CONNECTIONS = 100


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's context (certifi's CA bundle), made once per process: loading the bundle costs about 60 ms of
    CPU, paid at every start of a session when each made its own, and one context serves any number of
    connections (Python's ssl module shares it safely)."""
    return httpx.create_ssl_context()


class RefusedHost(OSError):
    """Raised by a resolver to refuse a host it resolved: the transport raises ``error(request)`` (nothing
    was sent) instead of the retryable ConnectError of a name that did not resolve."""

    def __init__(self, message: str, error: Callable[[httpx.Request], httpx.HTTPError]) -> None:
        super().__init__(message)
        self.error = error


@contextlib.contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions as the httpx ones that say the same thing about whether the request left."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:  # DNS, refused, TLS handshake: nothing was sent
        if isinstance(exc.os_error, RefusedHost):
            raise exc.os_error.error(request) from exc
        raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
    except _CONNECT_TIMEOUT as exc:
        if _CONNECT_TIMEOUT is not aiohttp.ServerTimeoutError:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
    except (_READ_TIMEOUT, TimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except aiohttp.ClientResponseError as exc:  # a response aiohttp could not parse
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise httpx.UnsupportedProtocol(str(exc) or "unsupported URL", request=request) from exc
    except aiohttp.ClientError as exc:  # payload errors, resets after sending: the request may have arrived
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


class Gate(Protocol):
    """Slots for whole images in memory (bot/imagework.py MemoryGate): taken in turn, given back."""

    async def take(self) -> None: ...

    def give(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SlotPace:
    """How fast an answer holding a gate slot must come (see SLOT_GRACE)."""

    grace: float = SLOT_GRACE
    min_rate: float = SLOT_MIN_RATE


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx.Request,
        limit: int | None,
        gate: Gate | None,
        pace: SlotPace,
        deadline: float,
    ) -> None:
        self._response = response
        self._request = request
        self._limit = limit
        # Only an answer that may carry an image (_gated: a MAX_BODY above LARGE_ANSWER) waits for a slot;
        # its exchange ends by ``deadline`` (loop time) plus however long it waited, not by aiohttp's total.
        self._gate = gate if _gated(limit, gate) else None
        self._deadline = deadline
        self._pace = pace
        self._holding = False
        self._held_at = 0.0
        self._since_held = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit, received = self._limit, 0
        declared = self._response.content_length
        content = self._response.content
        with _mapped(self._request):
            if declared is not None and declared > LARGE_ANSWER:
                await self._hold()
            # An answer that cannot need a slot (a status poll: most answers) reads straight from aiohttp.
            while chunk := await (
                content.read(CHUNK_SIZE)
                if self._gate is None
                else self._paced_read()
                if self._holding
                else self._timed_read()
            ):
                if limit is not None:
                    received += len(chunk)
                    if received > limit:
                        raise AnswerTooLarge(f"answer longer than {limit} bytes", request=self._request)
                    if received > LARGE_ANSWER and not self._holding:
                        await self._hold()
                yield chunk

    async def _timed_read(self) -> bytes:
        """The next chunk of an answer that may need a slot, by the exchange's deadline (kept here)."""
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._response.content.read(CHUNK_SIZE)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out", request=self._request) from None

    async def _paced_read(self) -> bytes:
        """The next chunk of an answer holding a slot, by the deadline its pace so far allows (or the
        exchange's, if sooner). Only the read is timed, never the consumer's work between chunks."""
        paced = self._held_at + self._pace.grace + self._since_held / self._pace.min_rate
        try:
            async with asyncio.timeout_at(min(paced, self._deadline)):
                chunk = await self._response.content.read(CHUNK_SIZE)
        except TimeoutError:
            if self._deadline <= paced:
                raise httpx.ReadTimeout("read timed out", request=self._request) from None
            raise httpx.ReadTimeout(
                f"answer slower than {self._pace.min_rate / 1024:g} KiB/s while holding a memory slot "
                f"({self._since_held} bytes in {asyncio.get_running_loop().time() - self._held_at:.0f} s)",
                request=self._request,
            ) from None
        self._since_held += len(chunk)
        return chunk

    async def _hold(self) -> None:
        if self._gate is not None:
            loop = asyncio.get_running_loop()
            asked = loop.time()
            await self._gate.take()
            self._holding = True
            self._held_at = loop.time()
            self._deadline += self._held_at - asked  # the wait was the bot's, not the provider's

    async def aclose(self) -> None:
        self._response.release()
        if self._holding and self._gate is not None:
            self._holding = False
            self._gate.give()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session (created on first use, in the running loop)."""

    def __init__(
        self,
        *,
        max_connections: int = MAX_CONNECTIONS,
        resolver: Callable[[], aiohttp.abc.AbstractResolver] | None = None,
        answer_gate: Gate | None = None,
        slot_pace: SlotPace = SlotPace(),
    ) -> None:
        self._max_connections = max_connections
        self._answer_gate = answer_gate
        self._slot_pace = slot_pace
        # Made in the running loop with the session (aiohttp's resolvers bind to the loop they are made in);
        # the addresses it returns are the ones connected to.
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY and NO_PROXY work as with httpx's own transport. aiohttp re-reads the environment on
        # every request when asked to (half its cost per request), so it is asked only where a proxy is
        # configured (read once, here: ``proxied`` tells the address guard the same).
        self._trust_env = bool(urllib.request.getproxies())

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                # The same CA bundle httpx verifies with (certifi), not only the system's.
                ssl=tls_context(),
                ttl_dns_cache=60,
                resolver=self._resolver() if self._resolver is not None else None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=self._trust_env,
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                read_bufsize=READ_BUFFER,
                # No skip_auto_headers: httpx always sends its own User-Agent, Accept and Accept-Encoding, so
                # aiohttp adds none of its own; asking it to skip one made it copy every request's headers
                # into a new multidict to check (8% of the event loop's samples in a py-spy profile of the
                # status polls of bench/load.py --resume).
            )
        return self._session

    def proxied(self, url: httpx.URL) -> bool:
        """Whether a request to ``url`` goes through a proxy from the environment (HTTP_PROXY, HTTPS_PROXY,
        NO_PROXY), as aiohttp decides it: then the proxy resolves the target's name, not this transport's
        resolver, and the address guard must check the name itself (bot/netguard.py)."""
        if not self._trust_env:
            return False
        try:
            get_env_proxy_for_url(yarl.URL(str(url)))
        except LookupError:
            return False
        except ValueError:  # a URL yarl will not read: aiohttp will not send it either; check it anyway
            return True
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        read = timeouts.get("read")
        limit = request.extensions.get(MAX_BODY)
        # An answer that may wait for a slot has its exchange timed here, where the wait can be left out;
        # aiohttp's total cannot be paused. Every other request (status polls: most of them) keeps it.
        gated = _gated(limit, self._answer_gate)
        timeout = _client_timeout(timeouts.get("pool"), timeouts.get("connect"), read, total=not gated)
        deadline = math.inf if read is None or not gated else asyncio.get_running_loop().time() + read
        try:
            body: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:
            body = request.stream  # type: ignore[assignment]
        with _mapped(request):
            async with asyncio.timeout_at(deadline) if deadline < math.inf else _UNTIMED:
                try:
                    response = await self._get_session().request(
                        request.method,
                        str(request.url),
                        headers=list(request.headers.multi_items()),
                        data=body,
                        allow_redirects=False,  # httpx follows redirects itself, running its hooks per hop
                        timeout=timeout,
                        compress=False,
                    )
                except ValueError as exc:
                    if isinstance(exc, aiohttp.ClientError):  # InvalidURL: mapped by _mapped
                        raise
                    # aiohttp refuses a request it will not build before sending any of it: a link with a
                    # user name and password (httpx made an Authorization header of them, and aiohttp will
                    # not have both). A ValueError is no httpx error, so it escaped every caller: a result
                    # was tried six times, a reference retried its job's step until the deadline. The same
                    # request fails the same way: httpx's "this URL will not be sent".
                    raise httpx.UnsupportedProtocol(
                        f"request refused before sending: {type(exc).__name__}: {exc}", request=request
                    ) from exc
        refusal = _refusal(request, response, limit)
        if refusal is not None:
            response.release()
            raise refusal
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request, limit, self._answer_gate, self._slot_pace, deadline),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refusal(request: httpx.Request, response: aiohttp.ClientResponse, limit: int | None) -> httpx.ReadError | None:
    """Why an answer is refused before its body is read, if it is: a compressed body nobody asked for,
    or a declared length over the request's limit."""
    if request.headers.get("Accept-Encoding", "").strip().lower() == "identity":
        encodings = _encodings(response)
        if encodings:
            return UnaskedEncoding(
                f"answer compressed ({', '.join(encodings)[:40]}) although identity was asked for", request=request
            )
    declared = response.content_length
    if limit is not None and declared is not None and declared > limit:
        return AnswerTooLarge(f"answer of {declared} bytes declared, over {limit}", request=request)
    return None


def _encodings(response: aiohttp.ClientResponse) -> list[str]:
    """Every coding the answer says its body went through, other than ``identity``. httpx decodes them all,
    from every Content-Encoding header and every comma-separated value in each, so all are read here: a
    first header saying ``identity`` and a second saying ``gzip`` is a gzip body (a 300 kB poll answer
    inflated to 963 MB when only the first was read)."""
    values = response.headers.getall("Content-Encoding", ())
    codings = (coding.strip().lower() for value in values for coding in value.split(","))
    return [coding for coding in codings if coding and coding != "identity"]


# What times the sending and the headers of a request aiohttp's total times (reused: it holds nothing).
_UNTIMED = contextlib.nullcontext()


def _gated(limit: int | None, gate: Gate | None) -> bool:
    """Whether an answer may wait for a slot of the gate: one allowed past LARGE_ANSWER (it may carry an
    image), where there is a gate."""
    return gate is not None and limit is not None and limit > LARGE_ANSWER


@functools.lru_cache(maxsize=64)
def _client_timeout(
    pool: float | None, connect: float | None, read: float | None, *, total: bool
) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for httpx's: the few distinct ones are built once (immutable), not per request.
    The read timeout is also the bound on the whole exchange (see the module docstring): aiohttp's
    ``total``, unless the transport times the exchange itself (``total`` false)."""
    return aiohttp.ClientTimeout(total=read if total else None, connect=pool, sock_connect=connect, sock_read=read)


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


# Told of a request that got no answer, and why (a hook must not raise: the caller gets the error as it was).
FailureHook = Callable[[httpx.Request, httpx.RequestError], None]


class CookielessClient(httpx.AsyncClient):
    """An AsyncClient without a cookie jar. No provider we call sets cookies, and httpx spends about
    0.1 ms per response building urllib request and response objects just to look for them.

    Its answers read whole also leave no reference cycle behind: httpx binds a response's stream to the
    response (``BoundAsyncStream``, to time it), so every response stays in memory, body included, until
    the cycle collector finds it. For a status poll that was thousands of objects a second for the
    collector; for an answer carrying a 4K image inline, 23 MB each: twenty Gemini results at once kept
    twenty bodies alive (tests/e2e/test_inline_memory.py). Once the body is read and the stream closed
    the stream has nothing left to give, so it is swapped for an empty one and the response goes when
    its last user lets it go.
    """

    def __init__(self, *, failure_hooks: Sequence[FailureHook] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Called with each request that got no answer (httpx's response hooks never see those): the metrics'.
        self.failure_hooks = list(failure_hooks)

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        try:
            response = await super().send(request, stream=stream, **kwargs)
        except httpx.RequestError as exc:
            for hook in self.failure_hooks:
                hook(request, exc)
            raise
        if not stream and response.is_closed:
            response.stream = _READ
        return response

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        return None  # httpx sets the (empty) jar in __init__; there is nothing to keep


_NO_COOKIES = _NoCookies()
# What a response read whole keeps as its stream (see CookielessClient): empty, shared, holding nothing.
_READ = httpx.ByteStream(b"")
