"""A ❌ reaction by the member who asked for an image deletes its message, as Midjourney's bot takes one; a running
job's is then cancelled, uncharged; anyone else's ❌, or another reaction, changes nothing (cogs/delete_reaction.py)."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.test_buttons import rows, start_running_job, states
from tests.e2e.test_rework import charges, imagine


async def test_the_requester_s_cross_deletes_their_image_and_no_one_else_s_does(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await imagine(discord_fake, {"prompt": "a paper lantern"})
    # Another member's ❌, and the requester's other reactions, are only reactions.
    assert await discord_fake.react(image.id, "❌", user_id=discord_fake.other_member_id)
    for emoji in ("👍", "✖️"):
        assert await discord_fake.react(image.id, emoji)
    twin = await imagine(discord_fake, {"prompt": "a second lantern"})  # the bot has handled the reactions by now
    assert not image.deleted and not twin.deleted

    assert await discord_fake.react(image.id, "❌")
    await discord_fake.wait_for(lambda: image.deleted, timeout=10)
    await discord_fake.wait_for(lambda: rows(settings)[0]["deleted_by"] == discord_fake.member_id, timeout=10)
    assert not twin.deleted
    # It was delivered: charged, as an image deleted with its Delete button is.
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)] * 2


async def test_a_cross_on_a_running_job_deletes_its_message_and_cancels_it_uncharged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    assert await discord_fake.react(message_id, "❌")
    await discord_fake.wait_for(lambda: discord_fake.messages[message_id].deleted, timeout=10)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded"
    await discord_fake.wait_for(lambda: any(r.path.endswith("/cancel") for r in seaart.requests), timeout=10)
    seaart.release()


async def test_a_cross_on_a_batch_s_message_deletes_the_whole_message(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    batch = await discord_fake.slash_command("imagine", {"prompt": "three moons", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    message = discord_fake.messages[batch.original_message_id or 0]
    assert await discord_fake.react(message.id, "❌")
    await discord_fake.wait_for(lambda: message.deleted, timeout=10)
    member = discord_fake.member_id
    await discord_fake.wait_for(lambda: {r["deleted_by"] for r in rows(settings)} == {member}, timeout=10)
