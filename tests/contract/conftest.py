"""The contract's fixtures: each adapter (tests/providers/helpers.py) against its fake over a real socket.

Every test runs once per adapter; a test that applies to some of them narrows ``adapter`` with
``@pytest.mark.parametrize("adapter", [...ids], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.base import Provider
from tests.providers.helpers import ADAPTERS, Adapter, Fake, SleepRecorder


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return ADAPTERS[request.param]


@pytest.fixture
async def fake(adapter: Adapter) -> AsyncIterator[Fake]:
    async with adapter.make_fake() as server:
        yield server


@pytest.fixture
def provider(adapter: Adapter, fake: Fake, client: httpx.AsyncClient, sleeps: SleepRecorder) -> Provider:
    return adapter.connect(fake, client, sleeps)
