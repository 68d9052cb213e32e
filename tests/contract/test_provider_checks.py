"""`bananacord check --providers` against every adapter: the cheapest call that proves a key, never a
generation, and an unreachable provider told apart from a rejected key."""

from __future__ import annotations

import httpx

from bot.providers.base import Provider
from tests.providers.helpers import TIMEOUT, Adapter, Fake, SleepRecorder

# adapter -> the requests its check makes (all GETs), and words its report carries
PROBES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "seaart": (["/model/v1/queue/nano_banana_2/requests/bananacord-key-check/status"], ()),
    "kie": (["/api/v1/chat/credit"], ("1000 credits",)),
    "sinancode": (["/v1/tasks/bananacord-key-check"], ()),
    "segmind_v1": (["/v1/get-user-credits"], ("100",)),
    "segmind_v2": (["/v1/get-user-credits"], ("100",)),
    "gemini": (
        ["/v1beta/models/gemini-3.1-flash-image", "/v1beta/models/gemini-3-pro-image"],
        ("gemini-3.1-flash-image", "gemini-3-pro-image"),
    ),
}
BAD_KEY = "wrong-key-5678"


async def test_check_good_key(adapter: Adapter, fake: Fake, provider: Provider) -> None:
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (True, True)
    paths, words = PROBES[adapter.id]
    assert [r.path for r in fake.requests] == paths
    assert all(r.method == "GET" for r in fake.requests)
    assert all(word in result.detail for word in words)
    assert fake.creates == [] and fake.jobs == {}


async def test_check_bad_key(adapter: Adapter, fake: Fake, client: httpx.AsyncClient, sleeps: SleepRecorder) -> None:
    result = await adapter.connect(fake, client, sleeps, api_key=BAD_KEY).check()
    assert (result.reachable, result.key_accepted) == (True, False)
    assert BAD_KEY not in result.detail
    assert len(fake.requests) == 1
    if adapter.id == "gemini":
        assert "PERMISSION_DENIED" in result.detail


async def test_check_unreachable(adapter: Adapter, client: httpx.AsyncClient, sleeps: SleepRecorder) -> None:
    async with adapter.make_fake() as gone:
        base_url = gone.base_url  # a free port; once the fake stops nothing listens there
    provider = adapter.make_provider(api_key=BAD_KEY, base_url=base_url, client=client, timeout=TIMEOUT, sleep=sleeps)
    result = await provider.check()
    assert (result.reachable, result.key_accepted) == (False, None)
    assert BAD_KEY not in result.detail
