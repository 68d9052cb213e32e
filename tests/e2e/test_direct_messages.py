"""A member writes to the bot in its DMs: one short answer saying where it makes images (cogs/direct_messages.py).

The real bot against the fake Discord, whose member writes in their DM channel with the bot (MESSAGE_CREATE with no
guild, sent with the direct-messages intent discord.py's default intents ask for).
"""

from __future__ import annotations

from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.direct_messages import HINT
from tests.conftest import answer_given, make_settings, start_bot


async def test_a_member_writing_to_the_bot_in_dms_is_told_where_it_makes_images_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A request written in DMs gets the answer; a second one at once, and another member's chatter, get none; a third
    member's question gets its own. Nothing is made."""
    member, other = discord_fake.member_id, discord_fake.other_member_id
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        await discord_fake.post_dm("a cat in space")
        await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(member)))
        await discord_fake.post_dm("and a dog, please")
        await discord_fake.post_dm("thanks!", user_id=other)
        admin = discord_fake.admin_id
        await discord_fake.post_dm("why was my reply refused?", user_id=admin)
        await discord_fake.wait_for(lambda: any(m.author_id is None for m in discord_fake.dms_to(admin)))
        await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
    finally:
        await running.close()
    answers = [m for m in discord_fake.dms_to(member) if m.author_id is None]
    assert [m.content for m in answers] == [HINT]
    assert not [m for m in discord_fake.dms_to(other) if m.author_id is None], "chatter gets no answer"
    assert [m.content for m in discord_fake.dms_to(discord_fake.admin_id) if m.author_id is None] == [HINT]
    assert answers[0].allowed_mentions == {"parse": []}
    assert not seaart.creates


async def test_a_flood_of_dms_is_answered_a_few_a_minute(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Thirty strangers write to the bot at once (a spam wave): each answer is a request to Discord, from the budget
    members' images are delivered with. Twenty a minute are answered, the rest not."""
    crowd = [discord_fake.snowflakes.next() for _ in range(30)]
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        for n, member in enumerate(crowd):
            await discord_fake.post_dm(f"free nitro at example.com {n}", user_id=member)
        await discord_fake.wait_for(lambda: len(_answered(discord_fake, crowd)) == 20)
        await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
    finally:
        await running.close()
    assert _answered(discord_fake, crowd) == crowd[:20]


def _answered(discord_fake: FakeDiscord, members: list[int]) -> list[int]:
    return [m for m in members if any(dm.author_id is None for dm in discord_fake.dms_to(m))]
