"""The aiohttp transport under httpx: the same answers, and exactly the same verdict on whether a failed
request may have reached the server (which decides whether a create is ever sent again)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import socket
import time
import weakref
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from multidict import CIMultiDict

from bot.errors import SubmitUncertainError, TransientError
from bot.imagework import ImageWork
from bot.metrics import unanswered_reason
from bot.netguard import guarded_client
from bot.providers._http import RetryPolicy, request_with_retry
from bot.transport import (
    LARGE_ANSWER,
    MAX_BODY,
    AiohttpTransport,
    AnswerTooLarge,
    CookielessClient,
    SlotPace,
    UnaskedEncoding,
)


@functools.cache
def gzip_bomb() -> bytes:
    return gzip.compress(b" " * 64 * 1024 * 1024, compresslevel=9)


class Server:
    """An aiohttp server on 127.0.0.1 with a few misbehaving routes; counts what reaches each."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.runner: web.AppRunner | None = None
        self.origin = ""
        self.sent = 0
        self.held = 0
        self.release = asyncio.Event()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/json", self.json)
        app.router.add_get("/headers", self.headers)
        app.router.add_get("/gzip", self.gzipped)
        app.router.add_get("/hop", self.hop)
        app.router.add_post("/drop", self.drop)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/drip", self.drip)
        app.router.add_get("/long", self.long)
        app.router.add_get("/bomb", self.bomb)
        app.router.add_get("/big-then-drip", self.big_then_drip)
        app.router.add_get("/held", self.held_answer)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.origin = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def count(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def json(self, request: web.Request) -> web.Response:
        self.count(request)
        return web.json_response({"method": request.method, "body": await request.text()})

    async def headers(self, request: web.Request) -> web.Response:
        return web.json_response([[name.lower(), value] for name, value in request.headers.items()])

    async def gzipped(self, request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b"banana" * 1000), headers={"Content-Encoding": "gzip"})

    async def hop(self, request: web.Request) -> web.Response:
        self.count(request)
        raise web.HTTPFound("/json")

    async def drop(self, request: web.Request) -> web.StreamResponse:
        """Reads the whole create, then the connection dies before any answer."""
        self.count(request)
        await request.read()
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.2)
        return web.Response()

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def drip(self, request: web.Request) -> web.StreamResponse:
        """A byte every 0.1 s for ever: never quiet long enough for a read timeout."""
        response = web.StreamResponse()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:
                await response.write(b" ")
                await asyncio.sleep(0.1)
        return response

    async def long(self, request: web.Request) -> web.StreamResponse:
        """``?declared=1`` sends a Content-Length; otherwise the body is chunked, with no length to refuse."""
        size = int(request.query["bytes"])
        response = web.StreamResponse()
        if request.query.get("declared"):
            response.content_length = size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        self.sent = sent = 0  # of the latest request: several at once each count their own
        with contextlib.suppress(ConnectionError):
            while sent < size:
                block = b"x" * min(65_536, size - sent)
                await response.write(block)
                sent += len(block)
                self.sent = sent
        return response

    async def big_then_drip(self, request: web.Request) -> web.StreamResponse:
        """``?bytes=N`` at once, then a byte every 0.1 s for ever (chunked): an answer that takes a gate
        slot and then barely moves."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(b"x" * int(request.query["bytes"]))
            while True:
                await asyncio.sleep(0.1)
                await response.write(b" ")
        return response

    async def held_answer(self, request: web.Request) -> web.StreamResponse:
        """``?bytes=N`` at once (chunked), then one more byte once ``release`` is set; ``held`` counts those
        waiting for it."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"x" * int(request.query["bytes"]))
        self.held += 1
        await self.release.wait()
        await response.write(b"!")
        return response

    async def bomb(self, request: web.Request) -> web.Response:
        """64 kB of gzip that inflates to 64 MB, whatever the client asked for."""
        self.count(request)
        return web.Response(body=gzip_bomb(), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    assert s.runner is not None
    await s.runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=5.0) as c:
        yield c


async def test_requests_and_answers_round_trip(server: Server, client: httpx.AsyncClient) -> None:
    answer = await client.post(f"{server.origin}/json", json={"prompt": "a banana"})
    assert answer.status_code == 200 and answer.json() == {"method": "POST", "body": '{"prompt":"a banana"}'}
    assert (await client.get(f"{server.origin}/gzip")).content == b"banana" * 1000


async def test_the_server_gets_the_request_s_own_headers_and_none_of_aiohttp_s(server: Server) -> None:
    """What httpx would have sent, sent: its User-Agent, Accept and Accept-Encoding (the bot's client asks
    for no compression: bot/netguard.py), none replaced or added by aiohttp."""
    async with guarded_client(["127.0.0.1"], transport=AiohttpTransport(), headers={"User-Agent": "Bananacord"}) as c:
        answer = await c.get(f"{server.origin}/headers", headers={"X-Api-Key": "k"})
    got = answer.json()
    names = [name for name, _ in got]
    assert len(names) == len(set(names)), got  # nothing sent twice
    sent = dict(got)
    assert sent.pop("host") == server.origin.removeprefix("http://")
    sent.pop("connection", None)
    assert sent == {
        "user-agent": "Bananacord",
        "accept": "*/*",
        "accept-encoding": "identity",
        "x-api-key": "k",
    }


async def test_redirects_run_the_hooks_at_every_hop(server: Server) -> None:
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with guarded_client(["127.0.0.1"], request_hooks=[note], transport=AiohttpTransport()) as c:
        answer = await c.get(f"{server.origin}/hop", follow_redirects=True)
    assert answer.json()["method"] == "GET" and seen == ["/hop", "/json"]


async def test_a_refused_connection_was_never_sent(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await client.get("http://127.0.0.1:9/nothing-listens-here")


async def test_a_read_timeout_is_a_read_timeout(server: Server) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(5.0, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{server.origin}/slow")


async def test_a_create_whose_answer_is_lost_is_never_sent_again(server: Server, client: httpx.AsyncClient) -> None:
    """The connection dies after the server read the create: that may have been accepted."""
    with pytest.raises(SubmitUncertainError):
        await request_with_retry(
            client,
            "POST",
            f"{server.origin}/drop",
            idempotent=False,
            policy=RetryPolicy(max_attempts=4, base_delay=0.0, jitter=False),
            map_error=lambda response: None,
            json={"prompt": "only once"},
        )
    assert server.hits["/drop"] == 1


async def test_a_refused_create_is_retried_because_it_never_left(client: httpx.AsyncClient) -> None:
    with pytest.raises(TransientError):
        await request_with_retry(
            client,
            "POST",
            "http://127.0.0.1:9/create",
            idempotent=False,
            policy=RetryPolicy(max_attempts=2, base_delay=0.0, jitter=False),
            map_error=lambda response: None,
            json={},
        )


async def test_an_answer_that_never_ends_is_cut_at_the_read_timeout_in_total(server: Server) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(1.0)) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{server.origin}/drip")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("declared", [True, False], ids=["length declared", "chunked"])
async def test_a_body_longer_than_the_request_allows_is_not_read_to_its_end(
    server: Server, client: httpx.AsyncClient, declared: bool
) -> None:
    url = f"{server.origin}/long?bytes={64 * 1024 * 1024}" + ("&declared=1" if declared else "")
    with pytest.raises(AnswerTooLarge):
        await client.get(url, extensions={MAX_BODY: 1024 * 1024})
    # Refused by its header at once, or cut at the limit (plus what the sockets hold), not 64 MB later.
    assert server.sent < 16 * 1024 * 1024
    ok = await client.get(f"{server.origin}/long?bytes=1000", extensions={MAX_BODY: 1000})
    assert len(ok.content) == 1000


async def test_a_compressed_answer_nobody_asked_for_is_refused_before_it_is_inflated(server: Server) -> None:
    async with guarded_client(["127.0.0.1"], transport=AiohttpTransport()) as c:
        with pytest.raises(UnaskedEncoding):
            await c.get(f"{server.origin}/bomb")
        # The bot's client asks for no compression; a client that asks for it still gets it inflated.
        assert (await c.get(f"{server.origin}/gzip", headers={"Accept-Encoding": "gzip"})).content == b"banana" * 1000
    assert server.hits["/bomb"] == 1


@pytest.mark.parametrize(
    "codings",
    [("identity", "gzip"), ("identity", "identity, gzip"), ("IDENTITY", "x-gzip , gzip")],
    ids=["two headers", "a list in the second", "odd spacing and case"],
)
async def test_every_content_encoding_header_is_read_so_identity_first_hides_nothing(codings: tuple[str, ...]) -> None:
    """httpx decodes every coding of every Content-Encoding header; only the first header was read, so
    ``identity`` then ``gzip`` passed and 64 kB inflated to 64 MB (a 300 kB status answer: 963 MB)."""

    async def bomb(request: web.Request) -> web.Response:
        headers = CIMultiDict([("Content-Type", "application/json"), *(("Content-Encoding", c) for c in codings)])
        return web.Response(body=gzip_bomb(), headers=headers)

    app = web.Application()
    app.router.add_get("/bomb", bomb)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with guarded_client(["127.0.0.1"], transport=AiohttpTransport()) as c:
            with pytest.raises(UnaskedEncoding):
                await c.get(f"http://127.0.0.1:{runner.addresses[0][1]}/bomb", extensions={MAX_BODY: 4 << 20})
    finally:
        await runner.cleanup()


class CountingGate:
    """A gate of ``slots`` slots (the transport's Gate protocol) that records how many held one at once."""

    def __init__(self, slots: int) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.holding = 0
        self.most = 0
        self.taken = 0

    async def take(self) -> None:
        await self._slots.acquire()
        self.holding += 1
        self.taken += 1
        self.most = max(self.most, self.holding)

    def give(self) -> None:
        self.holding -= 1
        self._slots.release()


async def test_answers_that_may_carry_an_image_are_read_a_gate_slot_at_a_time(server: Server) -> None:
    """Twenty Gemini answers of 20 MB arriving at once were read into memory together; now an answer
    allowed past LARGE_ANSWER and longer than it waits for a slot of the gate, declared or chunked."""
    gate = CountingGate(1)
    big = LARGE_ANSWER + 2 * 1024 * 1024
    async with CookielessClient(transport=AiohttpTransport(answer_gate=gate), timeout=10.0) as c:
        answers = await asyncio.gather(
            *(
                c.get(f"{server.origin}/long?bytes={big}{declared}", extensions={MAX_BODY: 96 * 1024 * 1024})
                for declared in ("&declared=1", "", "&declared=1", "")
            )
        )
        assert [len(a.content) for a in answers] == [big] * 4
        assert (gate.taken, gate.most, gate.holding) == (4, 1, 0)
        # Small answers, and answers not allowed past LARGE_ANSWER (a status poll), never wait for one.
        await c.get(f"{server.origin}/long?bytes=1000", extensions={MAX_BODY: 96 * 1024 * 1024})
        await c.get(f"{server.origin}/long?bytes={LARGE_ANSWER}", extensions={MAX_BODY: LARGE_ANSWER})
        await c.get(f"{server.origin}/long?bytes={big}")
        assert gate.taken == 4
        # A slot taken by an answer cut at its limit comes back.
        with pytest.raises(AnswerTooLarge):
            await c.get(f"{server.origin}/long?bytes={3 * big}", extensions={MAX_BODY: 2 * big})
        assert (gate.taken, gate.holding) == (5, 0)


async def test_an_answer_that_drips_while_holding_a_slot_is_cut_at_its_pace_and_gives_the_slot_back(
    server: Server,
) -> None:
    """A provider that sends past LARGE_ANSWER and then a byte at a time held one of the gate's slots for
    its whole read timeout (180 s for Gemini), while spools and re-encodes waited for it."""
    gate = CountingGate(1)
    pace = SlotPace(grace=1.0, min_rate=4 * 1024 * 1024)  # 4 MiB/s: the first 4 MiB past the slot buy 1 s
    sent = LARGE_ANSWER + 4 * 1024 * 1024
    transport = AiohttpTransport(answer_gate=gate, slot_pace=pace)
    async with CookielessClient(transport=transport, timeout=30.0) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match="holding a memory slot"):
            await c.get(f"{server.origin}/big-then-drip?bytes={sent}", extensions={MAX_BODY: 96 * 1024 * 1024})
        took = time.monotonic() - started
        assert (gate.taken, gate.holding) == (1, 0)
        # The slot is free for the next answer, which arrives at any pace above the floor.
        big = LARGE_ANSWER + 2 * 1024 * 1024
        answer = await c.get(f"{server.origin}/long?bytes={big}", extensions={MAX_BODY: 96 * 1024 * 1024})
        assert len(answer.content) == big and (gate.taken, gate.holding) == (2, 0)
    assert 1.5 <= took < 10, f"cut after {took:.1f} s, not at the pace's deadline (about 2 s) nor the 30 s timeout"


async def test_answers_carrying_images_take_few_answer_slots_and_share_the_memory_gate(server: Server) -> None:
    """Eight answers of 67 MB (a 4K Gemini result) read at once, as the memory gate's eight slots let them,
    took ten 4K results to 906 MB: ImageWork's answer gate reads two at a time, and each still counts
    as an image in memory for the spools and re-encodes that share the gate."""
    images = ImageWork(images_in_memory=8, reencode_workers=1, answers_in_memory=2)
    answers, memory = images.answer_gate.answers, images.gate
    big = LARGE_ANSWER + 1024 * 1024
    server.release.clear()
    async with CookielessClient(transport=AiohttpTransport(answer_gate=images.answer_gate), timeout=10.0) as c:
        reads = [
            asyncio.create_task(c.get(f"{server.origin}/held?bytes={big}", extensions={MAX_BODY: 96 * 1024 * 1024}))
            for _ in range(6)
        ]
        for _ in range(200):  # every answer past LARGE_ANSWER, the server holding the rest
            if server.held == 6 and answers.in_use == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert (server.held, answers.in_use, memory.in_use) == (6, 2, 2)  # two read; four wait, holding nothing
        server.release.set()
        done = await asyncio.gather(*reads)
    assert [len(answer.content) for answer in done] == [big + 1] * 6
    assert (answers.in_use, memory.in_use) == (0, 0)
    images.close()


async def test_an_answer_read_whole_is_freed_when_let_go_not_by_the_cycle_collector(server: Server) -> None:
    """httpx binds a response's stream to the response: a reference cycle that kept every answer, body
    included, until the collector ran (twenty 23 MB Gemini answers at once)."""
    async with CookielessClient(transport=AiohttpTransport(), timeout=10.0) as c:
        answer = await c.get(f"{server.origin}/long?bytes={LARGE_ANSWER}")
        assert len(answer.content) == LARGE_ANSWER and answer.is_closed
        gone = weakref.ref(answer)
        del answer
        assert gone() is None


async def test_waiting_for_an_answer_slot_does_not_count_against_the_request_timeout(server: Server) -> None:
    """An answer that waits for a slot has arrived: its headers are in, the provider made (and billed) the
    image. The wait counted against the request's timeout, so with other answers ahead of it a Gemini
    result came in, waited, and was dropped as a read timeout: the job failed, the image paid and lost.
    The timeout bounds the provider (connect, the wait for an answer, each read), not the bot's own queue."""
    gate = CountingGate(1)
    big = LARGE_ANSWER + 1024 * 1024
    allowed = {MAX_BODY: 96 * 1024 * 1024}
    server.release.clear()
    async with (
        CookielessClient(transport=AiohttpTransport(answer_gate=gate), timeout=30.0) as patient,
        CookielessClient(transport=AiohttpTransport(answer_gate=gate), timeout=1.0) as quick,
    ):
        first = asyncio.create_task(patient.get(f"{server.origin}/held?bytes={big}", extensions=allowed))
        for _ in range(200):  # the first holds the one slot, its server holding its last byte
            if server.held == 1 and gate.holding == 1:
                break
            await asyncio.sleep(0.01)
        second = asyncio.create_task(quick.get(f"{server.origin}/long?bytes={big}&declared=1", extensions=allowed))
        await asyncio.sleep(2.0)  # twice the second's timeout, all of it spent waiting for the slot
        assert not second.done() and gate.holding == 1
        server.release.set()
        answers = [await first, await second]
    assert [len(answer.content) for answer in answers] == [big + 1, big]
    assert (gate.taken, gate.holding) == (2, 0)


@pytest.mark.parametrize("route", ["/slow", "/drip"], ids=["no answer", "an answer that never ends"])
async def test_an_answer_that_may_carry_an_image_still_gets_its_timeout_in_total(server: Server, route: str) -> None:
    """What the slot wait does not count, the provider's time does: an answer that is late, or never ends,
    is cut at the read timeout whether or not it could have needed a slot."""
    gate = CountingGate(1)
    async with CookielessClient(transport=AiohttpTransport(answer_gate=gate), timeout=httpx.Timeout(1.0)) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{server.origin}{route}", extensions={MAX_BODY: 96 * 1024 * 1024})
    assert time.monotonic() - started < 3
    assert gate.holding == 0


async def test_a_request_that_got_no_answer_is_told_to_the_failure_hooks_and_still_raised(server: Server) -> None:
    """httpx's response hooks never see a request that got no answer: the client's failure hooks do (the metrics
    count them by why, bot/metrics.py), and the caller still gets the error as it was."""
    heard: list[tuple[str, str]] = []

    def hook(request: httpx.Request, exc: httpx.RequestError) -> None:
        heard.append((request.url.path, unanswered_reason(exc)))

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    async with CookielessClient(transport=AiohttpTransport(), timeout=5.0, failure_hooks=[hook]) as c:
        assert (await c.get(f"{server.origin}/json")).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(f"{server.origin}/drop", content=b"a create")
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{server.origin}/slow", timeout=0.5)
        with pytest.raises(AnswerTooLarge):
            await c.get(f"{server.origin}/long?bytes=2000", extensions={MAX_BODY: 1000})
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{closed_port}/nobody")
    assert heard == [("/drop", "dropped"), ("/slow", "timeout"), ("/long", "too_large"), ("/nobody", "connect")]
