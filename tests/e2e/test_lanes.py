"""The runner's lanes (bot/dispatch.py): work that waits a long time never holds up the creates and polls
of other jobs. The real bot against the fake Discord and fake providers over sockets, each lane given one
or two slots so that one long wait would fill it.

- Deliveries (a download, a check, an upload) have a lane of their own: a result link that drips holds
  a delivery slot, not a slot other jobs' polls need.
- A create on an API that answers with the image itself (Gemini; Segmind v1) waits for the whole drawing,
  ten seconds to minutes. Those calls held provider-lane slots: with `[jobs] concurrency` (8) members
  drawing on Gemini, every other member's job, on any provider, waited for one of them to finish, its
  create unsent, its polls not made. They now have a lane of their own (`call_concurrency`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers._base import Chaos
from tests.conftest import Clock, final_message, start_bot
from tests.e2e.test_buttons import button
from tests.e2e.test_failover import Fakes
from tests.e2e.test_poll_schedule import usually_takes

# Members of their own (a member may have two jobs in flight, [quotas] in_flight_per_user).
MEMBER = 500_000


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    f.gemini.hang_seconds = 60.0  # a held call is answered when released, not after 5 s
    async with f.seaart, f.kie, f.segmind, f.gemini:
        yield f


def states(db: Path) -> dict[str, str]:
    """Each job's state, by its prompt."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT json_extract(request_json, '$.prompt'), state FROM jobs").fetchall()
    return {prompt: state for prompt, state in found}


def split(fakes: Fakes, tmp_path: Path, discord_fake: FakeDiscord, pro: str, two: str, **extra: Any) -> Settings:
    """Two providers, one per model: Nano Banana Pro drawn at ``pro``, Nano Banana 2 at ``two``."""
    routes = {"nano_banana_pro": [pro], "nano_banana_2": [two]}
    return fakes.settings(tmp_path, discord_fake, [pro, two], models={"routes": routes}, **extra)


def gemini_only(fakes: Fakes, tmp_path: Path, discord_fake: FakeDiscord, **extra: Any) -> Settings:
    """Gemini alone, its calls allowed a minute: Google draws as long as the test holds it."""
    return fakes.settings(tmp_path, discord_fake, ["gemini"], request_timeout=60.0, **extra)


async def imagine_each(discord_fake: FakeDiscord, prompt: str, count: int, model: str = "nano_banana_pro") -> None:
    """``count`` members each sending one /imagine ("prompt 0", "prompt 1"...)."""
    for n in range(count):
        await discord_fake.slash_command("imagine", {"prompt": f"{prompt} {n}", "model": model}, user_id=MEMBER + n)


async def gemini_answers_all(fakes: Fakes, discord_fake: FakeDiscord, db: Path) -> None:
    """Google stops holding its answers: every job ends delivered."""
    fakes.gemini.hold(False)
    await discord_fake.wait_for(lambda: set(states(db).values()) == {"delivered"}, timeout=60)


async def test_calls_waiting_for_their_image_do_not_hold_up_other_jobs(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """Two provider-lane slots, three members drawing on Gemini (held: Google still drawing), then a member
    on SeaArt. Before, two Gemini calls filled the lane: the third call and the SeaArt job's create waited
    until Google answered."""
    # Gemini draws as long as the test holds it.
    settings = split(fakes, tmp_path, discord_fake, "gemini", "seaart", request_timeout=60.0)
    settings.jobs.concurrency = 2
    settings.jobs.call_concurrency = 4
    db = Path(settings.database.path)
    fakes.gemini.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await imagine_each(discord_fake, "gemini", 3)
        await discord_fake.wait_for(lambda: len(fakes.gemini.jobs) == 3, timeout=10)
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "seaart", "model": "nano_banana_2"}, user_id=MEMBER + 3
        )
        await discord_fake.wait_for(lambda: states(db).get("seaart") == "delivered", timeout=15)
        assert interaction.original_message_id is not None
        assert discord_fake.messages[interaction.original_message_id].files
        # Google is still drawing all three; none of them was given up for the others.
        assert {states(db)[f"gemini {n}"] for n in range(3)} == {"queued"}
        await gemini_answers_all(fakes, discord_fake, db)
    finally:
        await running.close()


async def test_a_call_lane_of_one_still_draws_every_job_in_turn(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """The lane bounds the calls in flight: one slot, three members, Google answering each in turn."""
    settings = gemini_only(fakes, tmp_path, discord_fake)
    settings.jobs.call_concurrency = 1
    db = Path(settings.database.path)
    fakes.gemini.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await imagine_each(discord_fake, "turn", 3)
        for sent in (1, 2, 3):
            await discord_fake.wait_for(lambda: len(fakes.gemini.jobs) >= sent, timeout=10)  # noqa: B023
            await asyncio.sleep(0.5)
            assert len(fakes.gemini.jobs) == sent  # the next call waits for the one in flight
            fakes.gemini.release()
        await gemini_answers_all(fakes, discord_fake, db)
    finally:
        await running.close()


async def test_a_download_that_drips_does_not_hold_up_polls(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """One provider slot and one delivery slot: the first result drips for seconds; the next job's create
    and polls go on meanwhile, and its image waits only for the delivery lane."""
    extra: dict[str, Any] = {"imagine": {"download_timeout_seconds": 30.0}}
    settings = fakes.settings(tmp_path, discord_fake, ["seaart"], **extra)
    settings.jobs.concurrency = 1
    settings.jobs.delivery_concurrency = 1
    db = Path(settings.database.path)
    fakes.seaart.drip_interval = 0.05
    fakes.seaart.script("hostile:drip")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "drips"})
        await discord_fake.wait_for(
            lambda: any(r.path.startswith("/hostile/drip/") for r in fakes.seaart.requests), timeout=10
        )
        await discord_fake.slash_command("imagine", {"prompt": "next"})
        await discord_fake.wait_for(lambda: states(db).get("next") == "succeeded", timeout=10)
        assert states(db)["drips"] == "succeeded"  # still downloading, in the one delivery slot
    finally:
        await running.close()


async def test_a_call_lane_wider_than_the_default_connection_limit_gets_its_connections(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """A server set for many Gemini calls at once: every call is sent, past the 100 connections the
    providers' client opens by default, and a SeaArt job's polls still find a connection."""
    calls = 110
    settings = split(
        fakes, tmp_path, discord_fake, "gemini", "seaart", request_timeout=60.0, quotas={"in_flight_per_guild": None}
    )
    settings.jobs.call_concurrency = calls
    settings.providers.gemini.requests_per_second = 1000.0
    db = Path(settings.database.path)
    fakes.gemini.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await imagine_each(discord_fake, "gemini", calls)
        await discord_fake.wait_for(lambda: len(fakes.gemini.jobs) == calls, timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "seaart", "model": "nano_banana_2"}, user_id=MEMBER - 1)
        await discord_fake.wait_for(lambda: states(db).get("seaart") == "delivered", timeout=15)
        await gemini_answers_all(fakes, discord_fake, db)
    finally:
        await running.close()


async def test_a_provider_whose_polls_hang_does_not_hold_up_another_providers_jobs(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """SeaArt takes creates but leaves every status call unanswered (an outage half-way: the load balancer
    accepts, the backend never answers), so each poll waits its whole request_timeout. Its polls filled the
    provider lane, shared by every provider: a Kie member's create waited for one to time out, then its polls
    competed with SeaArt's hung ones.

    Each hung poll waits 30 s, so a Kie job held behind one takes about that long; the Kie job itself takes
    about 2 s, more on a loaded machine: 15 s tells the two apart with room on both sides."""
    settings = split(fakes, tmp_path, discord_fake, "seaart", "kie", request_timeout=30.0)
    settings.jobs.concurrency = 2
    db = Path(settings.database.path)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        fakes.seaart.chaos = Chaos(rate=1.0, faults=("hang",), gets_only=True, hang_seconds=60.0)
        await imagine_each(discord_fake, "seaart", 3)
        await discord_fake.wait_for(lambda: len(fakes.seaart.creates) == 3, timeout=10)
        await asyncio.sleep(0.5)  # SeaArt's first polls sent, each waiting for its answer
        started = time.monotonic()
        await discord_fake.slash_command("imagine", {"prompt": "kie", "model": "nano_banana_2"}, user_id=MEMBER + 3)
        await discord_fake.wait_for(lambda: states(db).get("kie") == "delivered", timeout=60)
        took = time.monotonic() - started
    finally:
        fakes.seaart.chaos = None
        await running.close()
    assert took < 15.0, f"the Kie job took {took:.1f} s behind SeaArt's hung polls"


async def test_a_member_sees_generating_while_google_draws_and_queued_while_the_lane_is_full(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """A Gemini job stays "queued" in its row for the whole call (there is no id to poll), so its message
    said "Queued" until the image came, a minute on a busy day, whether Google was drawing it or it was
    waiting for a free slot of the call lane. Now a call that has left shows "Generating"."""
    settings = gemini_only(fakes, tmp_path, discord_fake)
    settings.jobs.call_concurrency = 1
    db = Path(settings.database.path)
    fakes.gemini.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        drawn = await discord_fake.slash_command("imagine", {"prompt": "drawn", "model": "nano_banana_pro"})
        # Its call has left before the second command comes: two commands are answered side by side, and
        # the second one's job may be written first and take the lane.
        await discord_fake.wait_for(lambda: len(fakes.gemini.jobs) == 1, timeout=10)
        waiting = await discord_fake.slash_command(
            "imagine", {"prompt": "waiting", "model": "nano_banana_pro"}, user_id=MEMBER
        )
        await discord_fake.wait_for(lambda: "Generating" in title(discord_fake, drawn.id), timeout=20)
        await asyncio.sleep(0.5)
        assert "Queued" in title(discord_fake, waiting.id)  # its call has not left: the lane is full
        await gemini_answers_all(fakes, discord_fake, db)
        assert discord_fake.messages[drawn.original_message_id or 0].files  # the image, shown last
    finally:
        await running.close()


def title(discord_fake: FakeDiscord, interaction_id: int) -> str:
    """The title of an interaction's message as the member sees it now."""
    message = final_message(discord_fake, interaction_id)
    return str(message.embeds[0].get("title", "")) if message is not None and message.embeds else ""


async def test_a_call_says_how_long_such_calls_usually_take(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """A job of a kind the bot has seen finish says "Usually takes ..." in its message. Calls answered with
    the image were never recorded (there was no poll to learn from), so a Gemini job never said it, though
    the bot knows each call's length to the moment."""
    fakes.gemini.provider_time = lambda: 1.5  # Google draws each image for 1.5 s
    settings = gemini_only(fakes, tmp_path, discord_fake, quotas={"enabled": False})
    db = Path(settings.database.path)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "first", "model": "nano_banana_pro"})
        await discord_fake.wait_for(lambda: states(db).get("first") == "delivered", timeout=20)
        await imagine_each(discord_fake, "teacher", 4)
        await discord_fake.wait_for(lambda: list(states(db).values()).count("delivered") == 5, timeout=20)
        learned = await discord_fake.slash_command("imagine", {"prompt": "learned", "model": "nano_banana_pro"})
        await discord_fake.wait_for(lambda: states(db).get("learned") == "delivered", timeout=20)
    finally:
        await running.close()
    assert usually_takes(first) is None  # nothing learned yet: no guess shown
    assert usually_takes(learned) in {"about 2 s", "1-2 s", "2-3 s"}, usually_takes(learned)


async def test_cancel_while_google_draws_ends_the_job_at_once(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """Cancel pressed during a Gemini call: the cancel was written at once, but carrying it out waited for
    the step in flight, the call itself, so the member read "Cancelling…" until Google answered (a minute
    or more) and then "Cancelled". Now the call is let go: "Cancelled" at once, uncharged, and Google's
    answer, whenever it comes, is not waited for."""
    settings = gemini_only(fakes, tmp_path, discord_fake)
    db = Path(settings.database.path)
    fakes.gemini.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "called off", "model": "nano_banana_pro"})
        await discord_fake.wait_for(lambda: len(fakes.gemini.jobs) == 1, timeout=10)
        message_id = interaction.original_message_id
        assert message_id is not None
        await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"), user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: "Cancelled" in title(discord_fake, interaction.id), timeout=20)
        (call,) = fakes.gemini.jobs.values()
        assert not call.answered  # Google is still drawing: the end did not wait for it
        with sqlite3.connect(db) as conn:
            state, charge = conn.execute("SELECT state, charge_state FROM jobs").fetchone()
        assert (state, charge) == ("cancelled", "refunded")
        assert not discord_fake.messages[message_id].files
    finally:
        fakes.gemini.hold(False)
        await running.close()
