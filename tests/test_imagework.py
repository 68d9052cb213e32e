"""The memory gate, spooled files and the re-encode path a runner uses for result images (bot/imagework.py)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import io
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.errors import DeliveryError
from bot.imagework import ImageWork, MemoryGate, Spool
from bot.testing.providers import make_png
from bot.transport import AiohttpTransport

SMALL = make_png(300, 200)  # 30-odd KB: fits a spool's memory and any limit used here
LARGE = make_png(1400, 1000)  # about 0.3 MB


def work(slots: int = 4, workers: int = 2, in_memory: int = 64 * 1024) -> ImageWork:
    return ImageWork(images_in_memory=slots, reencode_workers=workers, in_memory=in_memory)


# ---- the gate ---------------------------------------------------------------------------------------


async def test_a_waiter_gets_a_slot_given_back_from_another_thread() -> None:
    gate = MemoryGate(1)
    await gate.take()
    assert not gate.try_take()
    waiting = asyncio.create_task(gate.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    threading.Thread(target=gate.give).start()
    await asyncio.wait_for(waiting, 5)
    assert gate.in_use == 1
    gate.give()
    assert gate.in_use == 0


async def test_waiters_are_served_in_order_and_spools_do_not_jump_the_queue() -> None:
    gate = MemoryGate(1)
    await gate.take()
    order: list[int] = []

    async def wait(n: int) -> None:
        await gate.take()
        order.append(n)
        gate.give()

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    gate.give()
    assert not gate.try_take(), "a slot freed while decoders wait goes to them, not to a new spool"
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and gate.in_use == 0


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    gate = MemoryGate(1)
    await gate.take()
    first = asyncio.create_task(gate.take())
    second = asyncio.create_task(gate.take())
    await asyncio.sleep(0)
    gate.give()  # handed to the first waiter...
    first.cancel()  # ...which is cancelled before it runs: the slot must reach the second
    await asyncio.wait_for(second, 5)
    assert first.cancelled() and gate.in_use == 1
    gate.give()
    assert gate.in_use == 0


async def test_an_answer_cancelled_while_waiting_for_either_gate_leaves_no_slot_taken() -> None:
    work_ = work(slots=1)
    gate = work_.answer_gate
    work_.gate.try_take()  # a spool holds the only memory slot
    waiting_for_memory = asyncio.create_task(gate.take())  # takes an answer slot, waits for the memory one
    await asyncio.sleep(0.01)
    await gate.answers.take()  # the second answer slot, so the next answer waits for an answer slot
    waiting_for_answer = asyncio.create_task(gate.take())
    await asyncio.sleep(0.01)
    assert (gate.answers.in_use, work_.gate.in_use) == (2, 1)

    waiting_for_memory.cancel()
    waiting_for_answer.cancel()
    await asyncio.gather(waiting_for_memory, waiting_for_answer, return_exceptions=True)

    gate.answers.give()
    work_.gate.give()
    assert (gate.answers.in_use, work_.gate.in_use) == (0, 0)
    await asyncio.wait_for(gate.take(), 1)  # both free again: taken at once
    assert (gate.answers.in_use, work_.gate.in_use) == (1, 1)
    gate.give()
    work_.close()


# ---- spools -----------------------------------------------------------------------------------------


def test_spools_hold_memory_only_with_a_slot_and_give_it_back() -> None:
    gate = MemoryGate(2)
    first, second, third = Spool(gate, 1024), Spool(gate, 1024), Spool(gate, 1024)
    assert (first.in_memory, second.in_memory, third.in_memory) == (True, True, False)
    assert gate.in_use == 2
    first.write(b"x" * 2048)  # past its threshold: to disk, and the slot back
    assert not first.in_memory and gate.in_use == 1
    second.close()
    assert gate.in_use == 0
    first.seek(0)
    assert first.read() == b"x" * 2048
    for spool in (first, third):
        spool.close()


def test_a_forgotten_spool_is_closed_quietly_and_gives_its_slot_back() -> None:
    gate = MemoryGate(1)
    spool = Spool(gate, 1024)
    spool.write(b"data")
    del spool
    gc.collect()
    assert gate.in_use == 0  # and no ResourceWarning, which this suite turns into an error


@pytest.mark.parametrize("size", [0, 1, 767 * 1024, 768 * 1024 + 5, 3 * 1024 * 1024 + 1])
async def test_inline_images_are_written_into_a_file_whole(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    images = work()
    spool = await images.inline(data)
    spool.seek(0)
    assert spool.read() == data
    spool.close()
    assert images.gate.in_use == 0
    images.close()


async def test_a_kept_file_past_the_memory_share_is_read_where_it_lies_and_a_small_one_from_memory(
    tmp_path: Path,
) -> None:
    images = work(in_memory=64 * 1024)
    big, small = tmp_path / "big-1", tmp_path / "small-1"
    big.write_bytes(LARGE)
    small.write_bytes(SMALL)

    large_spool = await images.kept(big)
    small_spool = await images.kept(small)
    image = await images.prepare(large_spool, limit=len(LARGE), stem="r", source_url=None)

    # The kept file itself is uploaded: not copied into another file, holding no memory slot.
    assert large_spool.upload_source().name == str(big) and not large_spool.in_memory
    assert image.data == LARGE and (image.width, image.height) == (1400, 1000)
    assert small_spool.in_memory and isinstance(small_spool.upload_source(), io.BytesIO)
    small_spool.seek(0)
    assert small_spool.read() == SMALL
    assert images.gate.in_use == 1  # the small one's
    image.close()
    small_spool.close()
    assert large_spool.closed and images.gate.in_use == 0
    assert big.read_bytes() == LARGE and small.read_bytes() == SMALL  # closing leaves the kept files be
    with pytest.raises(FileNotFoundError):
        await images.kept(tmp_path / "gone-1")
    assert images.gate.in_use == 0
    images.close()


# ---- download ---------------------------------------------------------------------------------------

BODY = os.urandom(3 * 1024 * 1024 + 17)  # a 1K result's weight, not a multiple of any chunk size
TEXT = b"banana " * 200_000  # 1.4 MB that gzip squeezes to a few KB


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    """A result server: the body with its length declared, the same without one (chunked), and a gzipped
    body whose declared length is the compressed one, far below what the download writes."""

    async def declared(_: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for at in range(0, len(BODY), 100_000):
            await response.write(BODY[at : at + 100_000])
        await response.write_eof()
        return response

    async def gzipped(_: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(TEXT), headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/declared", declared)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzipped", gzipped)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "expected", "in_memory"),
    [
        ("/declared", BODY, 4 * 1024 * 1024),  # sized once from Content-Length, kept in memory
        ("/declared", BODY, 1024 * 1024),  # declared past the spool's memory: on disk, nothing reserved
        ("/chunked", BODY, 4 * 1024 * 1024),  # no length to size by: grows as it comes
        ("/gzipped", TEXT, 4 * 1024 * 1024),  # the declared length is a hint only: the body outgrows it
    ],
)
async def test_a_download_holds_exactly_the_bytes_sent(origin: str, path: str, expected: bytes, in_memory: int) -> None:
    images = work(in_memory=in_memory)
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        spool = await images.download(client, origin + path, max_bytes=8 * 1024 * 1024, timeout=10)
    assert spool.in_memory is (len(expected) <= in_memory)
    assert spool.seek(0, os.SEEK_END) == len(expected)
    spool.seek(0)
    assert spool.read() == expected
    spool.close()
    assert images.gate.in_use == 0
    images.close()


def test_room_reserved_but_not_filled_is_cut_off() -> None:
    spool = Spool(MemoryGate(1), in_memory=1024)
    spool.reserve(1000)
    assert spool.tell() == 0, "reserving does not move the write position"
    spool.write(b"abc")
    spool.truncate(spool.tell())
    spool.seek(0)
    assert spool.read() == b"abc"
    spool.reserve(5000)  # more than its memory: nothing reserved, it moves to disk only if written past
    assert spool.in_memory and spool.seek(0, os.SEEK_END) == 3
    spool.close()


# ---- prepare ----------------------------------------------------------------------------------------


async def test_a_result_within_the_limit_is_handed_on_as_the_same_file() -> None:
    images = work()
    source = images.spool()
    source.write(LARGE)
    image = await images.prepare(source, limit=len(LARGE), stem="r", source_url=None)
    assert image.file is source and not image.reencoded
    assert image.data == LARGE and (image.width, image.height) == (1400, 1000)
    image.close()
    assert images.gate.in_use == 0
    images.close()


async def test_results_over_the_limit_are_re_encoded_to_fit_and_free_what_they_held() -> None:
    images = work(slots=2, workers=1)
    sources = []
    for _ in range(5):
        source = images.spool()
        source.write(LARGE)
        sources.append(source)
    limit = len(LARGE) // 3
    results = await asyncio.gather(*(images.prepare(s, limit=limit, stem="r", source_url="u") for s in sources))
    assert all(source.closed for source in sources), "the originals are let go once re-encoded"
    for image in results:
        assert image.reencoded and image.size == len(image.data) <= limit and image.original_size == len(LARGE)
        with Image.open(image.file) as img:
            assert img.format == "JPEG"
        image.close()
    assert images.gate.in_use == 0
    images.close()


async def test_results_holding_every_slot_are_still_re_encoded() -> None:
    """Each result in memory holds a slot, and its re-encode needs one: with every slot held by a result
    waiting to be re-encoded, none was ever given back (the delivery lane hung)."""
    images = work(slots=2, workers=1, in_memory=1024 * 1024)
    sources = []
    for _ in range(2):
        source = images.spool()
        source.write(LARGE)
        sources.append(source)
    assert images.gate.in_use == 2 and all(s.in_memory for s in sources)
    prepared = [images.prepare(s, limit=len(LARGE) // 3, stem="r", source_url=None) for s in sources]
    results = await asyncio.wait_for(asyncio.gather(*prepared), timeout=30)
    assert all(image.reencoded and image.size <= len(LARGE) // 3 for image in results)
    for image in results:
        image.close()
    assert images.gate.in_use == 0
    images.close()


async def test_a_refused_result_closes_its_file() -> None:
    images = work()
    source = images.spool()
    source.write(b"<html>502 Bad Gateway</html>")
    with pytest.raises(DeliveryError):
        await images.prepare(source, limit=10_000, stem="r", source_url=None)
    assert source.closed and images.gate.in_use == 0
    images.close()


def test_a_slot_given_back_by_the_collector_inside_the_gate_does_not_deadlock() -> None:
    """The collector can finalise a forgotten spool in the middle of any allocation, including one the
    gate's own thread makes while it holds the gate's lock; the slot must come back, not hang the thread
    (it hung the bot's event loop under load before the lock was made re-entrant)."""
    gate = MemoryGate(1)
    done = threading.Event()

    def collect_inside_the_gate() -> None:
        spool = Spool(gate, in_memory=1024)
        assert spool.in_memory and gate.in_use == 1
        with gate._lock:  # what a collection triggered inside take() looks like to give()
            del spool
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_inside_the_gate, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert done.is_set(), "giving the slot back deadlocked"
    assert gate.in_use == 0
