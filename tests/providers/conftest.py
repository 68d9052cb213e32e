"""Fixtures for the provider tests: the fake SeaArt over a real socket, a real httpx client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from bot.providers._http import RetryPolicy
from bot.providers.seaart import SeaArtProvider
from bot.testing.providers import FakeSeaArt

# Short enough that the hang tests finish fast, long enough for a 4K PNG over loopback.
TIMEOUT = httpx.Timeout(2.0)
HANG_TIMEOUT = httpx.Timeout(2.0, read=0.5)


class SleepRecorder:
    """Stands in for asyncio.sleep in the retry loop: records each delay, waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSeaArt]:
    async with FakeSeaArt(queued_polls=1, running_polls=1, hang_seconds=10.0) as server:
        yield server


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        yield http


@pytest_asyncio.fixture
async def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest_asyncio.fixture
async def provider(fake: FakeSeaArt, client: httpx.AsyncClient, sleeps: SleepRecorder) -> SeaArtProvider:
    return SeaArtProvider(
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
        policy=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=20.0),
        timeout=TIMEOUT,
        sleep=sleeps,
    )
