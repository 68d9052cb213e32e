"""bot/time_away.py: readings back of a time away run one at a time, and a stop ends them all."""

from __future__ import annotations

import asyncio
import gc
import warnings

from bot.time_away import TimeAway


async def test_a_second_reading_begins_only_after_the_first_and_only_it_is_the_latest() -> None:
    away = TimeAway(100.0, "test-reading")
    assert away.new_session() == 100.0 and away.new_session() is None, "one new session ends a time away"
    order: list[str] = []
    gate = asyncio.Event()
    latest: dict[str, bool] = {}

    async def reading(name: str, wait: bool) -> None:
        order.append(f"{name} begins")
        if wait:
            await gate.wait()
        latest[name] = away.latest()
        order.append(f"{name} ends")

    away.read_back(reading("first", wait=True))
    await asyncio.sleep(0)
    away.read_back(reading("second", wait=False))
    await asyncio.sleep(0.01)
    assert order == ["first begins"]
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert order == ["first begins", "first ends", "second begins", "second ends"]
    assert latest == {"first": False, "second": True}, "the first knows another is queued after it"


async def test_a_stop_cancels_every_reading_and_one_never_begun_is_closed_quietly() -> None:
    away = TimeAway(None, "test-reading")
    began: list[str] = []
    written: list[str] = []

    async def reading(name: str) -> None:
        began.append(name)
        try:
            await asyncio.sleep(60)
        finally:
            written.append(f"{name} rolled back")  # what a reading does on its way out, before the database closes

    away.read_back(reading("first"))
    await asyncio.sleep(0)
    away.read_back(reading("second"))
    await asyncio.sleep(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert await away.stop() is None
        gc.collect()
    assert began == ["first"] and written == ["first rolled back"], "the earlier one ended too, not left running"
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_stop_tells_what_the_latest_reading_raised() -> None:
    away = TimeAway(None, "test-reading")

    async def failing() -> None:
        raise RuntimeError("Discord said no")

    away.read_back(failing())
    await asyncio.sleep(0.01)
    ended = await away.stop()
    assert isinstance(ended, RuntimeError) and str(ended) == "Discord said no"
