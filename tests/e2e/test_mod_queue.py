"""`/mod queue`: a moderator sees what the server's members have generating and waiting their turn now, oldest
first, each line led by its member (named, never pinged), against the server's limit at once. Through the real bot,
the fake Discord and the fake SeaArt."""

from __future__ import annotations

from pathlib import Path

from bot.job_list import queue_heading
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.moderation import REFUSED
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot
from tests.e2e.test_quotas import query
from tests.e2e.test_waiting_turns import embed_of, field


async def test_a_moderator_lists_the_servers_requests_generating_and_waiting_and_a_member_may_not(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 2, "in_flight_per_user": 2}
    )
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    moderator, member, admin = discord_fake.moderator_id, discord_fake.member_id, discord_fake.admin_id
    try:
        empty = await answered(discord_fake, "mod queue", {}, user_id=moderator)
        await discord_fake.slash_command("imagine", {"prompt": "a lighthouse at dawn"})
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        batch = await discord_fake.slash_command(
            "imagine", {"prompt": "two @everyone foxes", "count": 2}, user_id=admin
        )
        await discord_fake.wait_for(lambda: bool(batch.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, batch), "Your turn") is not None, 10)
        listed = await answered(discord_fake, "mod queue", {}, user_id=moderator)
        refused = await answered(discord_fake, "mod queue", {}, user_id=member)
    finally:
        seaart.hold(False)
        await running.close()
    assert answer_data(discord_fake, empty)["content"] == "Nothing is generating or waiting in this server now."
    data = answer_data(discord_fake, listed)
    assert data["flags"] & 64 and data["allowed_mentions"]["parse"] == [], "private, pinging nobody"
    lines = str(data["content"]).splitlines()
    assert lines[0] == (
        "**In this server now: 1 image(s) generating (this server allows 2 at once), 2 waiting their turn** · "
        "2 request(s), oldest first:"
    ), lines
    # Oldest first: the member's generating, then the admin's batch waiting for the server's room.
    assert lines[1].startswith(f"<@{member}> · 🎨 **Generating** · Nano Banana 2 · <t:"), lines
    assert lines[2] == "a lighthouse at dawn", lines
    assert lines[3].startswith(f"<@{admin}> · ⏳ **Waiting its turn · 2 images** · Nano Banana 2 · <t:"), lines
    assert "[message](https://discord.com/channels/" in lines[3], lines
    assert lines[4] == "two @everyone foxes", lines  # as typed: the answer allows no mention, so nobody is pinged
    assert answer_data(discord_fake, refused)["content"] == REFUSED


def test_the_heading_counts_every_image_even_past_the_rows_listed() -> None:
    """Past the 500 oldest images read, the heading's counts are the server's (one statement over all), and it says
    the list is cut."""
    assert queue_heading(612, 40, 300, None, cut_at=500) == (
        "**In this server now: 612 image(s) generating, 40 waiting their turn** · 300 request(s), oldest first; "
        "the oldest 500 images are listed:"
    )
