"""``/admin check``: where in the server the bot lacks a permission it uses, and what that costs the members.

The real bot against the fake Discord, whose server has channels with the overwrites servers really set (an
announcements channel where @everyone may not write, a hidden staff channel, a forum, a voice channel's chat),
changed live too (CHANNEL_UPDATE, GUILD_ROLE_UPDATE): the answer is read as the admin reads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.invite import invite_url
from bot.testing.discord import (
    BOT_PERMISSIONS,
    CHANNEL_CATEGORY,
    CHANNEL_FORUM,
    CHANNEL_VOICE,
    PLAIN_MEMBER_PERMISSIONS,
    FakeDiscord,
    overwrite,
)
from bot.testing.discord.protocol import (
    ADD_REACTIONS,
    ATTACH_FILES,
    EMBED_LINKS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
)
from bot.testing.providers import FakeSeaArt
from tests.conftest import answer_data, answered, make_settings, start_bot

EVERY_RIGHT = (
    "View Channel, Send Messages, Send Messages in Threads, Read Message History, Embed Links, Attach Files and "
    "Add Reactions"
)


def _embed(discord_fake: FakeDiscord, interaction: Any) -> dict[str, Any]:
    data = answer_data(discord_fake, interaction)
    assert data.get("flags", 0) & 64 or interaction.callbacks[0]["type"] == 5, "the answer is private"
    (embed,) = data["embeds"]
    return dict(embed)


def _fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


def _mentioned(text: str) -> set[int]:
    return {int(cid) for cid in re.findall(r"<#(\d+)>", text)}


async def _take_away(discord_fake: FakeDiscord, permission: int) -> None:
    """An admin takes ``permission`` from the bot in the whole server: from its role and from @everyone (whose
    permissions every member has too), each a GUILD_ROLE_UPDATE."""
    await discord_fake.set_role_permissions(discord_fake.bot_role_id, BOT_PERMISSIONS & ~permission)
    await discord_fake.set_role_permissions(discord_fake.guild_id, PLAIN_MEMBER_PERMISSIONS & ~permission)


async def _check(discord_fake: FakeDiscord, **options: Any) -> dict[str, Any]:
    interaction = await answered(discord_fake, "admin check", options, user_id=discord_fake.admin_id)
    return _embed(discord_fake, interaction)


async def test_a_server_that_gives_the_bot_everything_is_told_so(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        embed = await _check(discord_fake)
        admins_help = _embed(discord_fake, await answered(discord_fake, "help", {}, user_id=discord_fake.admin_id))
    finally:
        await running.close()
    assert embed["description"] == (
        f"✅ In each of the 2 channels where members talk, the bot has what it uses: {EVERY_RIGHT}."
    )
    assert _fields(embed) == {
        "Moderation log": "none: blocks, bans and changes are kept in `/mod log` only (`/mod logchannel` sets one)."
    }
    assert "⚠️" not in _fields(admins_help)["Admins"]


async def test_channels_lacking_a_right_are_named_by_what_they_lack_and_what_that_costs(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """As servers set them: @everyone may not write in the announcements and rules channels (so neither may the
    bot, whose role has no overwrite there), a staff channel hidden from @everyone, a channel where the bot's
    role was refused history and files. A forum refusing Send Messages (its posts are threads, which take Send
    Messages in Threads), a voice channel refusing threads (its chat has none) and a category lack nothing the
    bot uses there."""
    everyone, bot_role = discord_fake.guild_id, discord_fake.bot_role_id
    category = discord_fake.add_text_channel("info", kind=CHANNEL_CATEGORY)
    announcements = discord_fake.add_text_channel(
        "announcements", parent=category, overwrites=[overwrite(everyone, deny=SEND_MESSAGES)]
    )
    rules = discord_fake.add_text_channel(
        "rules", parent=category, overwrites=[overwrite(everyone, deny=SEND_MESSAGES)]
    )
    staff = discord_fake.add_channel("staff", hidden=True)
    memes = discord_fake.add_text_channel(
        "memes", overwrites=[overwrite(bot_role, deny=READ_MESSAGE_HISTORY | ATTACH_FILES)]
    )
    forum = discord_fake.add_text_channel(
        "gallery", kind=CHANNEL_FORUM, overwrites=[overwrite(everyone, deny=SEND_MESSAGES)]
    )
    voice = discord_fake.add_text_channel(
        "voice", kind=CHANNEL_VOICE, overwrites=[overwrite(everyone, deny=SEND_MESSAGES_IN_THREADS)]
    )
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        embed = await _check(discord_fake)
        refused = await answered(discord_fake, "admin check", {}, user_id=discord_fake.member_id)
        admins_help = _embed(discord_fake, await answered(discord_fake, "help", {}, user_id=discord_fake.admin_id))
    finally:
        await running.close()
    assert embed["description"].startswith("⚠️ 4 of 8 channels lack a permission the bot uses.")
    assert "Give it to the bot's role, **Bananacord**" in embed["description"]
    assert "whole server" not in embed["description"], "the bot's role has every right: nothing server-wide"
    fields = _fields(embed)
    assert list(fields) == [
        "Moderation log",
        "Without Send Messages",
        "Without View Channel",
        "Without Read Message History and Attach Files",
    ], "the groups with the most channels first"
    send = fields["Without Send Messages"]
    assert _mentioned(send) == {announcements, rules}
    assert "**Send Messages**: replies to its images are not answered" in send and "ping nobody" in send
    assert _mentioned(fields["Without View Channel"]) == {staff}
    assert "the bot sees nothing there" in fields["Without View Channel"]
    history = fields["Without Read Message History and Attach Files"]
    assert _mentioned(history) == {memes}
    assert "**Attach Files**: answers to replies cannot show their image." in history
    assert not {forum, voice, category, discord_fake.channel_id} & _mentioned(str(fields))
    assert "Manage Server" in str(answer_data(discord_fake, refused)), "a member who is no admin is refused"
    assert _fields(admins_help)["Admins"].endswith(
        "⚠️ 4 channel(s) refuse the bot a permission it uses (replies to images there go unanswered, slow images "
        "ping nobody): `/admin check` names them."
    ), "an admin's /help says so too"


async def test_a_right_taken_away_while_the_bot_runs_is_seen_at_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A moderator takes Send Messages from the bot in the log channel after it was set (CHANNEL_UPDATE), then an
    admin takes Add Reactions from the bot's role and @everyone in the whole server (GUILD_ROLE_UPDATE): the check
    says what the next one finds, the server-wide lack with where to give it back."""
    log_channel = discord_fake.add_channel("mod-log")
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.admin_id)
        before = _fields(await _check(discord_fake))["Moderation log"]
        await discord_fake.set_overwrites(log_channel, [overwrite(discord_fake.bot_role_id, deny=SEND_MESSAGES)])
        after = _fields(await _check(discord_fake))["Moderation log"]
        await _take_away(discord_fake, ADD_REACTIONS)
        embed = await _check(discord_fake)
    finally:
        await running.close()
    assert before == f"✅ <#{log_channel}>: its posts reach it."
    assert after == f"⚠️ <#{log_channel}>: the bot lacks Send Messages there, so nothing it posts reaches it."
    assert "Its roles lack Add Reactions in the whole server" in embed["description"]
    assert "Server Settings → Roles → **Bananacord**" in embed["description"]
    # Or the link that adds it again with what it uses: Discord gives its own role what the link asks for.
    assert f"[add the bot again]({invite_url(discord_fake.application_id)})" in embed["description"]
    fields = _fields(embed)
    assert _mentioned(fields["Without Add Reactions"]) == {discord_fake.channel_id, discord_fake.nsfw_channel_id}
    assert _mentioned(fields["Without Send Messages and Add Reactions"]) == {log_channel}


async def test_one_channel_or_thread_in_detail(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """``channel:`` lists each right the bot uses there, and says where a missing one was taken away: in the
    channel's own permissions, or in the whole server. A thread has its channel's permissions, and needs Send
    Messages in Threads, not Send Messages; an archived one, which discord.py does not keep, is read from Discord."""
    everyone, bot_role = discord_fake.guild_id, discord_fake.bot_role_id
    memes = discord_fake.add_text_channel(
        "memes", overwrites=[overwrite(bot_role, deny=READ_MESSAGE_HISTORY | EMBED_LINKS)]
    )
    announcements = discord_fake.add_text_channel(
        "announcements", overwrites=[overwrite(everyone, deny=SEND_MESSAGES | SEND_MESSAGES_IN_THREADS)]
    )
    thread = discord_fake.add_thread(announcements, "launch day")
    fine_thread = discord_fake.add_thread(discord_fake.channel_id, "chat")
    discord_fake.archive_thread(fine_thread)  # in no cache of the bot's: read from Discord
    staff = discord_fake.add_channel("staff", hidden=True)
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        memes_check = await _check(discord_fake, channel=memes)
        thread_check = await _check(discord_fake, channel=thread)
        fine = await _check(discord_fake, channel=fine_thread)
        await _take_away(discord_fake, ATTACH_FILES)
        both = await _check(discord_fake, channel=memes)
        hidden = await _check(discord_fake, channel=staff)
    finally:
        await running.close()
    lines = memes_check["description"].split("\n")
    assert lines[:7] == [
        "✅ View Channel",
        "✅ Send Messages",
        "✅ Send Messages in Threads",
        lines[3],
        lines[4],
        "✅ Attach Files",
        "✅ Add Reactions",
    ]
    assert lines[3].startswith("❌ **Read Message History**: replies are not answered")
    assert lines[4] == "❌ **Embed Links**: answers to replies come without their card, or not at all."
    assert (
        "Read Message History and Embed Links: taken away in this channel's Permissions" in memes_check["description"]
    )
    assert memes_check["title"] == "🍌 What the bot may do in #memes"

    assert thread_check["title"] == "🍌 What the bot may do in #launch day"
    assert "❌ **Send Messages in Threads**" in thread_check["description"]
    assert "Send Messages**" not in thread_check["description"].replace("Send Messages in Threads**", "")
    assert f"taken away in <#{announcements}>'s Permissions" in thread_check["description"]
    assert fine["description"].endswith("The bot has everything it uses here.")
    assert any(r.method == "GET" and r.path.endswith(f"/channels/{fine_thread}") for r in discord_fake.requests)

    assert "Read Message History and Embed Links: taken away in this channel's Permissions" in both["description"]
    assert "Attach Files: the bot's roles lack it in the whole server" in both["description"]
    assert f"[add the bot again]({invite_url(discord_fake.application_id)})" in both["description"]
    assert "add the bot again" not in memes_check["description"], "taken away in the channel: no re-adding gives it"
    assert hidden["description"].split("\n")[0].startswith("❌ **View Channel**: the bot sees nothing there")
    assert "✅" not in hidden["description"], "without View Channel nothing else is the bot's there"


async def test_a_server_of_many_channels_lacking_many_things_fits_one_answer(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Every pairing of missing rights among 60 channels: more groups than an embed holds. The answer stays
    within Discord's limits (the fake refuses an embed over 6,000 characters, as Discord does) and says how many
    channels it did not list."""
    bot_role = discord_fake.bot_role_id
    flags = [SEND_MESSAGES, READ_MESSAGE_HISTORY, EMBED_LINKS, ATTACH_FILES, ADD_REACTIONS, SEND_MESSAGES_IN_THREADS]
    for mask in range(1, 61):
        deny = sum(flag for bit, flag in enumerate(flags) if mask >> bit & 1)
        discord_fake.add_text_channel(f"room-{mask}", overwrites=[overwrite(bot_role, deny=deny)])
    discord_fake.add_text_channel("dark", overwrites=[overwrite(bot_role, deny=VIEW_CHANNEL)])
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        embed = await _check(discord_fake)
    finally:
        await running.close()
    fields = _fields(embed)
    assert embed["description"].startswith("⚠️ 61 of 63 channels lack a permission the bot uses.")
    listed = sum(len(_mentioned(value)) for name, value in fields.items() if name.startswith("Without"))
    assert 0 < listed < 61
    assert fields["And more"] == (
        f"{61 - listed} more channels lack other permissions: `/admin check channel:` says what one lacks."
    )


async def test_many_small_lacks_stay_within_an_embeds_fields(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Every pairing of the rights whose costs are the shortest (no View Channel, no history), two channels each: the
    most groups an answer can meet. It keeps to Discord's 6,000 characters and 25 fields (the fake refuses either, as
    Discord does), the last field saying how many channels it did not list."""
    bot_role = discord_fake.bot_role_id
    flags = [EMBED_LINKS, ATTACH_FILES, ADD_REACTIONS, SEND_MESSAGES_IN_THREADS, SEND_MESSAGES]
    for mask in range(1, 32):
        deny = sum(flag for bit, flag in enumerate(flags) if mask >> bit & 1)
        for copy in range(2):
            discord_fake.add_text_channel(f"room-{mask}-{copy}", overwrites=[overwrite(bot_role, deny=deny)])
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        embed = await _check(discord_fake)
    finally:
        await running.close()
    assert len(embed["fields"]) <= 25, len(embed["fields"])
    listed = sum(len(_mentioned(f["value"])) for f in embed["fields"] if f["name"].startswith("Without"))
    assert embed["fields"][-1]["name"] == "And more"
    assert embed["fields"][-1]["value"].startswith(f"{62 - listed} more channels lack other permissions")
