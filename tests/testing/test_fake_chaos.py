"""The fakes' options for the load benchmark and the fault soak, over real sockets.

FakeSeaArt with ``chaos=`` answers a seeded share of API calls with a 429 (Retry-After), a 5xx, a hang
that ends, or a malformed body, and spares file downloads; ``images="noise"`` serves incompressible
PNGs; ``add_task()`` makes tasks a restarted bot finds in its database. FakeDiscord's ``chaos()``
answers message edits and webhook calls with 429 (retry_after, Via) or 5xx, which discord.py retries;
``keep_upload_bytes`` keeps only the head of uploads. bench/load.py and bench/soak.py build on these.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.http
import httpx
import pytest
from PIL import Image

from bot.testing.discord import FakeDiscord, point_discord_py_at
from bot.testing.providers import Chaos, FakeSeaArt, FakeSegmind, noise_png

KEY = "test-chaos-key-77"
AUTH = {"Authorization": f"Bearer {KEY}"}
NB2 = {"prompt": "a banana", "resolution": "1K"}
BOT_TOKEN = "test-chaos-bot-token"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=AUTH, timeout=10) as client:
        yield client


async def create(fake: FakeSeaArt, http: httpx.AsyncClient, prompt: str = "a banana") -> httpx.Response:
    return await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json={**NB2, "prompt": prompt})


# ---- provider chaos ------------------------------------------------------------------------------


async def test_429_says_when_to_come_back_and_makes_no_task(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, chaos=Chaos(rate=1.0, faults=("429",), retry_after="2")) as fake:
        answer = await create(fake, http)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "2"
        assert answer.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert fake.jobs == {}
        assert [(e.method, e.fault) for e in fake.chaos_events] == [("POST", "429")]


async def test_segmind_chaos_falls_on_its_api_calls_not_on_a_refused_key_or_a_download() -> None:
    async with FakeSegmind(chaos=Chaos(rate=1.0, faults=("5xx",))) as fake, httpx.AsyncClient() as http:
        url = f"{fake.base_url}/v2/nano-banana-2"
        wrong_key = await http.post(url, json={"prompt": "a banana"}, headers={"x-api-key": "wrong"})
        refused = [
            (await http.post(url, json={"prompt": f"banana {i}"}, headers={"x-api-key": fake.api_key}))
            for i in range(6)
        ]
        fake.chaos = None
        made = (await http.post(url, json={"prompt": "a banana"}, headers={"x-api-key": fake.api_key})).json()
        fake.chaos = Chaos(rate=1.0, faults=("5xx",))
        name = fake.jobs[made["request_id"]].image_names[0]
        download = await http.get(f"{fake.image_base_url}/{name}.png")

        assert wrong_key.status_code == 401  # Segmind's own answer to a wrong key, not a fault
        assert {answer.status_code for answer in refused} <= {500, 502, 503}
        assert list(fake.jobs) == [made["request_id"]]  # a 5xx made no job
        assert download.status_code == 200 and download.content.startswith(b"\x89PNG")
        assert len(fake.chaos_events) == 6


async def test_5xx_makes_no_task(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, chaos=Chaos(rate=1.0, faults=("5xx",))) as fake:
        statuses = {(await create(fake, http, f"banana {i}")).status_code for i in range(12)}
        assert statuses <= {500, 502, 503} and len(statuses) > 1
        assert fake.jobs == {}
        assert {e.fault for e in fake.chaos_events} == {str(s) for s in statuses}


async def test_malformed_answer_comes_after_the_work_is_done(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, chaos=Chaos(rate=1.0, faults=("malformed",))) as fake:
        answer = await create(fake, http)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/json")
        with pytest.raises(ValueError):
            answer.json()
        # The create was carried out: the task exists although the client could not read its id.
        assert [job.body["prompt"] for job in fake.jobs.values()] == ["a banana"]


async def test_a_hung_answer_times_the_client_out_then_ends(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, chaos=Chaos(rate=1.0, faults=("hang",), hang_seconds=0.5)) as fake:
        with pytest.raises(httpx.ReadTimeout):
            # Only the answer times out: a connect slowed by a busy machine is not what is tested.
            await http.post(f"{fake.base_url}/v1/queue/nano_banana_2", json=NB2, timeout=httpx.Timeout(0.1, connect=10))
        assert len(fake.jobs) == 1, "the create was carried out before the answer hung"
        # A patient client gets the real answer once the hang is over.
        late = await create(fake, http, "a patient banana")
        assert late.status_code == 200 and late.json()["request_id"] in fake.jobs


async def test_a_hang_ends_at_stop(http: httpx.AsyncClient) -> None:
    fake = FakeSeaArt(api_key=KEY, chaos=Chaos(rate=1.0, faults=("hang",), hang_seconds=3600))
    await fake.start()
    pending = asyncio.create_task(create(fake, http))
    try:
        while not fake.jobs:  # noqa: ASYNC110 (the create was carried out; its answer is now held)
            await asyncio.sleep(0.01)
        assert not pending.done()
    finally:
        await fake.stop()
    # Stopping let the held answer go (sent, or the connection closed): the client is not left waiting.
    with contextlib.suppress(httpx.HTTPError):
        await asyncio.wait_for(pending, 30)
    assert pending.done()


async def test_a_lost_call_is_recorded_never_carried_out_and_never_answered(http: httpx.AsyncClient) -> None:
    """lose_next(): the call dies on the way (tests/e2e/test_restart.py loses a cancel so)."""
    async with FakeSeaArt(api_key=KEY, hang_seconds=0.5) as fake:
        cancel_url = (await create(fake, http)).json()["cancel_url"]
        (task,) = fake.jobs.values()
        fake.lose_next("put", r"/cancel$")
        with pytest.raises(httpx.ReadTimeout):
            await http.put(cancel_url, timeout=0.2)
        assert [r.method for r in fake.requests if r.path.endswith("/cancel")] == ["PUT"]
        assert not task.cancelled
        # Only the next one was lost: the one after is carried out and answered.
        assert (await http.put(cancel_url)).status_code == 202 and task.cancelled


async def test_an_outage_refuses_creates_for_a_while_and_nothing_else(http: httpx.AsyncClient) -> None:
    """outage(): new work is refused with a 503 (what the bot fails over from); a task made before it is
    still polled and its image fetched, and creates work again once it is over."""
    async with FakeSeaArt(api_key=KEY, queued_polls=0, running_polls=0) as fake:
        status_url = (await create(fake, http, "before")).json()["status_url"]
        fake.outage(0.5)
        refused = await create(fake, http, "during")
        assert refused.status_code == 503 and len(fake.jobs) == 1
        assert [e.fault for e in fake.chaos_events] == ["outage"]
        assert (await http.get(status_url)).json()["status"] == "COMPLETED"
        await asyncio.sleep(0.6)
        assert (await create(fake, http, "after")).status_code == 200 and len(fake.jobs) == 2


async def test_downloads_are_spared_and_polls_are_not(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, queued_polls=0, running_polls=0) as fake:
        made = await create(fake, http)
        status_url = made.json()["status_url"]
        fake.chaos = Chaos(rate=1.0, faults=("5xx",))
        image = await http.get(f"{fake.image_base_url}/{next(iter(fake.jobs))}-0.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert (await http.get(status_url)).status_code in (500, 502, 503)
        fake.chaos = None
        assert (await http.get(status_url)).json()["status"] == "COMPLETED"


async def test_the_share_of_faults_follows_the_rate_and_the_seed(http: httpx.AsyncClient) -> None:
    async def faults(seed: int) -> list[str]:
        async with FakeSeaArt(api_key=KEY, chaos=Chaos(rate=0.2, seed=seed, faults=("429", "5xx"))) as fake:
            for index in range(100):
                await create(fake, http, f"banana {index}")
            assert len(fake.jobs) == 100 - len(fake.chaos_events), "a refused create makes no task"
            return [e.fault for e in fake.chaos_events]

    first, again, other = await faults(1), await faults(1), await faults(2)
    assert first == again, "the same seed injects the same faults on the same calls"
    assert first != other
    assert 8 <= len(first) <= 35, f"{len(first)} faults in 100 calls at rate 0.2"


def test_chaos_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="rate"):
        Chaos(rate=1.5)
    with pytest.raises(ValueError, match="faults"):
        Chaos(faults=("teapot",))  # type: ignore[arg-type]


# ---- images and pre-made tasks -------------------------------------------------------------------


async def test_noise_images_weigh_what_real_results_weigh_and_are_served_from_one_copy(
    http: httpx.AsyncClient,
) -> None:
    async with FakeSeaArt(api_key=KEY, images="noise", queued_polls=0, running_polls=0) as fake:
        for prompt in ("one", "two"):
            await create(fake, http, prompt)
        names = [job.image_names[0] for job in fake.jobs.values()]
        first, second = [(await http.get(f"{fake.image_base_url}/{name}.png")).content for name in names]
    assert first == second == noise_png(1024, 1024)
    assert len(first) > 3_000_000, "incompressible: about 3 bytes a pixel"
    with Image.open(io.BytesIO(first)) as picture:
        assert picture.format == "PNG" and picture.size == (1024, 1024)


def test_noise_never_compresses_and_unknown_styles_are_refused() -> None:
    assert len(noise_png(64, 64)) > 64 * 64 * 3
    with pytest.raises(ValueError, match="image style"):
        FakeSeaArt(images="plaid")  # type: ignore[arg-type]


async def test_added_tasks_are_polled_like_created_ones(http: httpx.AsyncClient) -> None:
    async with FakeSeaArt(api_key=KEY, provider_time=lambda: 3600.0) as fake:
        task = fake.add_task({"prompt": "made before the bot started", "resolution": "1K"})
        urls = fake.task_urls(task)
        status = await http.get(urls["status_url"])
        assert status.json()["status"] == "IN_PROGRESS"
        assert task.polls == 1 and fake.creates == []
        assert task.ready_at is not None and task.ready_at > task.created_at + 3000
        with pytest.raises(ValueError, match="model"):
            fake.add_task({"prompt": "x"}, model="nano_banana_3")


# ---- Discord chaos -------------------------------------------------------------------------------


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bot_token=BOT_TOKEN) as fake:
        yield fake


def channel_url(fake: FakeDiscord) -> str:
    return f"{fake.api_base_url}/channels/{fake.channel_id}/messages"


async def test_discord_chaos_answers_like_discord_and_changes_nothing(discord_fake: FakeDiscord) -> None:
    bot_auth = {"Authorization": f"Bot {BOT_TOKEN}"}
    async with httpx.AsyncClient(headers=bot_auth, timeout=10) as client:
        discord_fake.chaos(1.0, statuses=(429,))
        limited = await client.post(channel_url(discord_fake), json={"content": "hello"})
        assert limited.status_code == 429
        body = limited.json()
        assert 0.05 <= body["retry_after"] <= 0.5 and body["global"] is False
        assert limited.headers["Via"] and int(limited.headers["Retry-After"]) >= 1
        discord_fake.chaos(1.0, statuses=(503,))
        assert (await client.post(channel_url(discord_fake), json={"content": "hello"})).status_code == 503
        # Interaction callbacks are spared: this one reaches the route (and is refused on its merits).
        callback = await client.post(f"{discord_fake.api_base_url}/interactions/1/nope/callback", json={"type": 5})
        assert callback.status_code == 404 and callback.json()["code"] == 10062
        discord_fake.chaos(0)
        assert (await client.post(channel_url(discord_fake), json={"content": "hello"})).status_code == 200
    assert [m.content for m in discord_fake.messages.values()] == ["hello"]
    assert [f.status for f in discord_fake.chaos_faults] == [429, 503]


async def test_discord_py_waits_out_injected_429s(discord_fake: FakeDiscord) -> None:
    point_discord_py_at(discord_fake.api_base_url, discord_fake.gateway_url)
    client = discord.http.HTTPClient(asyncio.get_running_loop(), connector=aiohttp.TCPConnector())
    await client.static_login(BOT_TOKEN)
    try:
        # Seeded: no call meets five 429s in a row, which is when discord.py would give up.
        discord_fake.chaos(0.4, seed=3, statuses=(429,), retry_after=(0.01, 0.02))
        for index in range(10):
            params = discord.http.handle_message_parameters(f"m{index}")
            await client.send_message(discord_fake.channel_id, params=params)
    finally:
        await client.close()
    assert [m.content for m in discord_fake.messages.values()] == [f"m{i}" for i in range(10)]
    assert len(discord_fake.chaos_faults) >= 2, "the messages got through 429s, not around them"


async def test_uploads_can_be_kept_as_their_head_only() -> None:
    picture = noise_png(64, 64)
    async with FakeDiscord(bot_token=BOT_TOKEN, keep_upload_bytes=100) as fake:
        async with httpx.AsyncClient(headers={"Authorization": f"Bot {BOT_TOKEN}"}) as client:
            answer = await client.post(
                channel_url(fake),
                data={"payload_json": '{"content": "look"}'},
                files={"files[0]": ("look.png", picture, "image/png")},
            )
        assert answer.status_code == 200
        attachment = answer.json()["attachments"][0]
        assert attachment["size"] == len(picture) and (attachment["width"], attachment["height"]) == (64, 64)
        (message,) = fake.messages.values()
        assert message.files[0].data == picture[:100] and message.files_at is not None
        assert all(len(f.data) <= 100 for r in fake.requests for f in r.files)


async def test_held_callbacks_wait_until_released(discord_fake: FakeDiscord) -> None:
    discord_fake.hold_callbacks()
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{discord_fake.api_base_url}/interactions/1/nope/callback"
        pending = asyncio.create_task(client.post(url, json={"type": 5}))
        await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1)
        assert not pending.done()
        discord_fake.hold_callbacks(False)
        answer = await pending
    # Released, the callback is handled as it would have been (here: an interaction the fake never sent).
    assert answer.status_code == 404 and answer.json()["code"] == 10062
    assert discord_fake.callbacks_waiting == 0


async def test_fail_next_can_pick_a_request_by_its_body(discord_fake: FakeDiscord) -> None:
    discord_fake.fail_next("POST", r"/messages", status=503, match=lambda r: (r.json or {}).get("content") == "b")
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {BOT_TOKEN}"}, timeout=10) as client:
        answers = [(await client.post(channel_url(discord_fake), json={"content": c})).status_code for c in "aba"]
    assert answers == [200, 503, 200]
    assert [m.content for m in discord_fake.messages.values()] == ["a", "a"]


async def test_fail_next_after_carries_the_call_out_then_answers_the_failure(discord_fake: FakeDiscord) -> None:
    """An answer lost on its way back: the client sees a 503, and the message exists all the same."""
    discord_fake.fail_next("POST", r"/messages", status=503, after=True)
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {BOT_TOKEN}"}, timeout=10) as client:
        answers = [(await client.post(channel_url(discord_fake), json={"content": c})).status_code for c in "ab"]
    assert answers == [503, 200]
    assert [m.content for m in discord_fake.messages.values()] == ["a", "b"]


async def test_lost_answers_are_carried_out_and_answered_with_a_5xx(discord_fake: FakeDiscord) -> None:
    """lose_answers(): a seeded share of the matching calls is done, and its answer is a 5xx."""
    discord_fake.lose_answers(0.5, seed=3, path_regex=r"/messages$")
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {BOT_TOKEN}"}, timeout=10) as client:
        url = channel_url(discord_fake)
        answers = [(await client.post(url, json={"content": str(i)})).status_code for i in range(20)]
    lost = [a for a in answers if a != 200]
    assert 3 <= len(lost) <= 17 and set(lost) <= {500, 502, 503}
    assert len(discord_fake.messages) == 20  # every one of them was made
    assert len(discord_fake.chaos_faults) == len(lost)
    discord_fake.lose_answers(0)
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {BOT_TOKEN}"}, timeout=10) as client:
        assert (await client.post(channel_url(discord_fake), json={"content": "x"})).status_code == 200
