"""A slow image pings its member when it is ready (cogs/ready_pings.py): a short reply to its message mentioning
them and nobody else, once per request; never for an image the member was watching arrive, nor for a member who
turned it off, nor where the bot may not post."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import answer_data, answer_given, make_settings, start_bot
from tests.e2e.edits import states
from tests.e2e.test_batch_ends import hide

# SeaArt's first status poll of a job scripted "status_hang" never answers: the job waits out the adapter's
# request timeout (2 s in the tests' settings) and is then polled to its end, taking more than this.
AFTER = 1.0
READY = "your image is ready."


def pings(discord_fake: FakeDiscord, channel_id: int | None = None) -> list[FakeMessage]:
    """The bot's messages in the channel that are no job's own: its pings, oldest first."""
    channel = discord_fake.channel_id if channel_id is None else channel_id
    return [
        m
        for m in discord_fake.messages_in(channel)
        if m.author_id is None and m.interaction_id is None and m.reference is not None
    ]


async def screen(discord_fake: FakeDiscord, interaction: Any) -> dict[str, str]:
    """The /preferences screen's fields, by name."""
    await answer_given(discord_fake, interaction)
    return {f["name"]: f["value"] for f in answer_data(discord_fake, interaction)["embeds"][0]["fields"]}


async def imagine(discord_fake: FakeDiscord, settings: Any, options: dict[str, Any], done: int) -> FakeMessage:
    """/imagine run until ``done`` jobs are delivered; the request's message."""
    interaction = await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: states(settings).count("delivered") == done, timeout=30)
    assert interaction.original_message_id is not None
    return discord_fake.messages[interaction.original_message_id]


async def test_a_slow_image_pings_its_member_once_and_a_quick_one_or_a_member_who_said_no_does_not(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": AFTER})
    member = discord_fake.member_id
    bot = await start_bot(settings, discord_fake)
    try:
        # Quick: the member was watching it arrive.
        await imagine(discord_fake, settings, {"prompt": "a quick cat"}, done=1)
        await asyncio.sleep(0.3)
        assert pings(discord_fake) == []

        seaart.script("status_hang")
        slow = await imagine(discord_fake, settings, {"prompt": "a slow cat @everyone"}, done=2)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 1, timeout=10)
        (ping,) = pings(discord_fake)
        # A reply to the image's message, pinging the member alone; the prompt (and its @everyone) is not in it.
        assert ping.content == f"<@{member}> {READY}"
        assert ping.reference is not None and int(ping.reference["message_id"]) == slow.id
        assert ping.pinged == []  # the reply pings not its replied message's author (the bot): only the member
        sent = [r.json for r in discord_fake.requests if r.method == "POST" and (r.json or {}).get("message_reference")]
        assert sent[-1]["allowed_mentions"] == {"parse": [], "users": [member], "replied_user": False}
        assert sent[-1]["nonce"]  # a send Discord took twice is one message

        # Two images at once: one ping, for the first; the second follows in the same message.
        seaart.script("status_hang", "status_hang")
        batch = await imagine(discord_fake, settings, {"prompt": "two slow cats", "count": 2}, done=4)
        await discord_fake.wait_for(lambda: len(pings(discord_fake)) == 2, timeout=10)
        await asyncio.sleep(0.3)
        (first,) = pings(discord_fake)[1:]
        assert first.content == f"<@{member}> your first image is ready; the others follow in the same message."
        assert first.reference is not None and int(first.reference["message_id"]) == batch.id

        # The member turns it off; the screen says so.
        interaction = await discord_fake.slash_command("preferences", {"ping": False})
        fields = await screen(discord_fake, interaction)
        assert fields["Ping when ready"] == "off"
        seaart.script("status_hang")
        await imagine(discord_fake, settings, {"prompt": "another slow cat"}, done=5)
        await asyncio.sleep(0.5)
        assert len(pings(discord_fake)) == 2

        # Where the bot may not post (a slash command needs no such right), the image is delivered, unpinged.
        hidden = hide(discord_fake)
        interaction = await discord_fake.slash_command("preferences", {"ping": True})
        fields = await screen(discord_fake, interaction)
        assert fields["Ping when ready"] == f"on (images that take {AFTER:g} s or more)"
        seaart.script("status_hang")
        with caplog.at_level(logging.INFO, logger="cogs.ready_pings"):
            hidden_job = await discord_fake.slash_command("imagine", {"prompt": "a hidden cat"}, channel_id=hidden)
            await discord_fake.wait_for(lambda: states(settings).count("delivered") == 6, timeout=30)
            await discord_fake.wait_for(lambda: "was not pinged" in caplog.text, timeout=10)
        assert hidden_job.original_message_id is not None
        assert pings(discord_fake, hidden) == [] and "(HTTP 403)" in caplog.text
        assert states(settings) == ["delivered"] * 6
    finally:
        await bot.close()


async def test_no_ping_when_the_bot_is_told_to_ping_nobody(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(
        tmp_path, discord_fake, seaart, imagine={"ping_after_seconds": 0, "ping_when_ready": False}
    )
    bot = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("preferences", {"ping": True})
        fields = await screen(discord_fake, interaction)
        assert fields["Ping when ready"] == "off (this bot pings nobody)"
        await imagine(discord_fake, settings, {"prompt": "a cat"}, done=1)
        await asyncio.sleep(0.5)
        assert pings(discord_fake) == []
    finally:
        await bot.close()
