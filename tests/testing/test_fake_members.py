"""What members do in the fake Discord, seen by the REAL discord.py client: messages and replies (with
their content withheld as Discord withholds it), the bot's own replies, message context menus and DMs."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.testing.discord import FakeDiscord, point_discord_py_at
from tests.conftest import png_bytes


@dataclass(frozen=True)
class Seen:
    """What the bot's on_message got."""

    content: str
    attachments: int
    mentioned: bool
    replied_to: int | None
    replied_author: int | None
    replied_attachments: int


class ListenerBot(commands.Bot):
    def __init__(self, intents: discord.Intents) -> None:
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.1)
        self.seen: list[Seen] = []

    async def setup_hook(self) -> None:
        @app_commands.context_menu(name="Count images")
        async def count_images(interaction: discord.Interaction, message: discord.Message) -> None:
            text = f"{len(message.attachments)} image(s); says {message.content!r}"
            await interaction.response.send_message(text, ephemeral=True)

        @app_commands.command(name="whisper", description="DM the caller")
        async def whisper(interaction: discord.Interaction) -> None:
            try:
                await interaction.user.send("psst")
            except discord.Forbidden as exc:
                await interaction.response.send_message(f"closed {exc.code}", ephemeral=True)
                return
            await interaction.response.send_message("sent", ephemeral=True)

        self.tree.add_command(count_images)
        self.tree.add_command(whisper)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        resolved = message.reference.resolved if message.reference is not None else None
        replied = resolved if isinstance(resolved, discord.Message) else None
        self.seen.append(
            Seen(
                content=message.content,
                attachments=len(message.attachments),
                mentioned=self.user is not None and self.user in message.mentions,
                replied_to=message.reference.message_id if message.reference is not None else None,
                replied_author=replied.author.id if replied is not None else None,
                replied_attachments=len(replied.attachments) if replied is not None else 0,
            )
        )
        if message.content.endswith("answer me"):
            await message.reply("answered", mention_author=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        point_discord_py_at(fake.api_base_url, fake.gateway_url)
        yield fake


async def run(fake: FakeDiscord, intents: discord.Intents) -> tuple[ListenerBot, asyncio.Task[None]]:
    bot = ListenerBot(intents)
    await bot.login(fake.bot_token)
    task = asyncio.create_task(bot.connect())
    await fake.wait_until_ready()
    return bot, task


async def stop(bot: ListenerBot, task: asyncio.Task[None]) -> None:
    await bot.close()
    await asyncio.wait_for(task, 5)  # raises if the client died parsing one of the fake's payloads


async def bot_picture(fake: FakeDiscord, bot: ListenerBot) -> int:
    """A message with an image that the bot itself sends (with its bot token)."""
    channel = bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("here you go", file=discord.File(io.BytesIO(png_bytes()), filename="art.png"))
    return sent.id


async def test_without_the_content_intent_only_messages_that_mention_the_bot_carry_content(fake: FakeDiscord) -> None:
    bot, task = await run(fake, discord.Intents.default())
    try:
        picture = await bot_picture(fake, bot)
        photo = fake.add_attachment(png_bytes(), "photo.png", "image/png")

        await fake.post_message("hello all")
        await fake.post_message(f"<@{fake.bot_user_id}> hello bot")
        reply = await fake.post_message("make it night", reply_to=picture, attachments=[photo])
        await fake.post_message("make it day", reply_to=picture, ping=False, attachments=[photo])
        await fake.wait_for(lambda: len(bot.seen) == 4)

        plain, named, pinged, quiet = bot.seen
        assert (plain.content, plain.mentioned) == ("", False)
        assert (named.content, named.mentioned) == (f"<@{fake.bot_user_id}> hello bot", True)
        # A reply pings the replied-to author (here the bot) by default: content and attachments arrive.
        assert pinged == Seen("make it night", 1, True, picture, fake.bot_user_id, 1)
        # The ping turned off: Discord withholds content and attachments, the reference still arrives whole.
        assert quiet == Seen("", 0, False, picture, fake.bot_user_id, 1)

        stored = fake.messages[reply.id]
        assert stored.author_id == fake.member_id and stored.type == 19 and stored.pinged == [fake.bot_user_id]
        # Through REST too: the bot reads the member's message without its content unless pinged.
        channel = bot.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        history = [m async for m in channel.history(limit=10)]
        assert [m.content for m in history[:2]] == ["", "make it night"]
    finally:
        await stop(bot, task)


async def test_with_the_content_intent_everything_arrives_and_a_reply_to_a_member_pings_the_member(
    fake: FakeDiscord,
) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot, task = await run(fake, intents)
    try:
        first = await fake.post_message("look at this", user_id=fake.admin_id)
        await fake.post_message("nice", reply_to=first.id)
        await fake.wait_for(lambda: len(bot.seen) == 2)
        assert bot.seen[0].content == "look at this"
        assert bot.seen[1] == Seen("nice", 0, False, first.id, fake.admin_id, 0)
        assert fake.messages[max(fake.messages)].pinged == [fake.admin_id]
    finally:
        await stop(bot, task)


async def test_no_message_events_without_the_guild_messages_intent(fake: FakeDiscord) -> None:
    intents = discord.Intents.default()
    intents.guild_messages = False
    bot, task = await run(fake, intents)
    try:
        message = await fake.post_message(f"<@{fake.bot_user_id}> anyone?")
        await asyncio.sleep(0.2)
        assert bot.seen == [] and message.id in fake.messages
    finally:
        await stop(bot, task)


async def test_the_bot_replies_by_message_reference(fake: FakeDiscord) -> None:
    bot, task = await run(fake, discord.Intents.default())
    try:
        asked = await fake.post_message(f"<@{fake.bot_user_id}> answer me")
        await fake.wait_for(lambda: any(m.reference for m in fake.messages.values() if m.author_id is None))
        answer = next(m for m in fake.messages.values() if m.author_id is None and m.reference)
        assert answer.content == "answered" and answer.type == 19
        assert answer.reference is not None and answer.reference["message_id"] == str(asked.id)
        # mention_author=False: the member is not pinged.
        assert answer.pinged == [] and answer.allowed_mentions is not None
        assert answer.allowed_mentions["replied_user"] is False

        # A reply to a message that is not in the channel is refused, unless told not to mind.
        channel = bot.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        gone = discord.MessageReference(message_id=12345, channel_id=fake.channel_id)
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("to nobody", reference=gone)
        assert refused.value.status == 400 and refused.value.code == 50035
        lenient = discord.MessageReference(message_id=12345, channel_id=fake.channel_id, fail_if_not_exists=False)
        sent = await channel.send("to nobody", reference=lenient)
        assert fake.messages[sent.id].reference is None and fake.messages[sent.id].type == 0
    finally:
        await stop(bot, task)


async def test_a_message_command_gets_its_target_whole(fake: FakeDiscord) -> None:
    bot, task = await run(fake, discord.Intents.default())
    try:
        menus = [c for c in fake.commands if c["type"] == 3]
        assert [c["name"] for c in menus] == ["Count images"] and menus[0]["description"] == ""
        photo = fake.add_attachment(png_bytes(), "photo.png", "image/png")
        target = await fake.post_message("two cats", attachments=[photo])  # no mention: withheld on the gateway

        used = await fake.message_command("Count images", target.id, user_id=fake.admin_id)
        await fake.wait_for(lambda: bool(used.callbacks))
        assert used.callbacks[0]["data"]["content"] == "1 image(s); says 'two cats'"
        data = used.payload["data"]
        assert data["type"] == 3 and data["target_id"] == str(target.id) and used.user_id == fake.admin_id
        with pytest.raises(AssertionError, match="not a registered command of type 3"):
            await fake.message_command("Nope", target.id)
    finally:
        await stop(bot, task)


async def test_direct_messages_and_members_who_refuse_them(fake: FakeDiscord) -> None:
    bot, task = await run(fake, discord.Intents.default())
    try:
        sent = await fake.slash_command("whisper")
        await fake.wait_for(lambda: bool(sent.callbacks))
        assert sent.callbacks[0]["data"]["content"] == "sent"
        assert [m.content for m in fake.dms_to(fake.member_id)] == ["psst"]

        fake.close_dms(fake.member_id)
        refused = await fake.slash_command("whisper")
        await fake.wait_for(lambda: bool(refused.callbacks))
        assert refused.callbacks[0]["data"]["content"] == "closed 50007"
        assert len(fake.dms_to(fake.member_id)) == 1
    finally:
        await stop(bot, task)


async def test_context_menus_take_no_description_or_options(fake: FakeDiscord) -> None:
    url = f"{fake.api_base_url}/applications/{fake.application_id}/commands"
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    bad = [{"name": "Edit It", "type": 3, "description": "no"}, {"name": "x" * 33, "type": 3}]
    async with aiohttp.ClientSession() as http, http.put(url, json=bad, headers=headers) as resp:
        body = await resp.json()
    assert resp.status == 400 and set(body["errors"]["0"]) == {"description"} and set(body["errors"]["1"]) == {"name"}
    good = [{"name": "Edit It", "type": 3}]
    async with aiohttp.ClientSession() as http, http.put(url, json=good, headers=headers) as resp:
        assert resp.status == 200 and (await resp.json())[0]["type"] == 3


async def test_history_pages_before_and_after_a_message(fake: FakeDiscord) -> None:
    bot, task = await run(fake, discord.Intents.default())
    try:
        posted = [await fake.post_message(f"<@{fake.bot_user_id}> {i}") for i in range(6)]
        channel = bot.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        after = [m.id async for m in channel.history(limit=2, after=posted[1], oldest_first=True)]
        before = [m.id async for m in channel.history(limit=2, before=posted[4])]
        assert after == [posted[2].id, posted[3].id] and before == [posted[3].id, posted[2].id]
    finally:
        await stop(bot, task)
