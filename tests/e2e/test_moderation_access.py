"""Who /mod answers to, through the real bot and the fake Discord: a moderator of the whole server, never
someone whom one channel's permission overwrite lets manage messages there."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.discord.protocol import MANAGE_MESSAGES
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command, query


async def test_manage_messages_in_one_channel_moderates_nothing_server_wide(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Discord sends an interaction's permissions as resolved in its channel: a member whose overwrite there
    gives Manage Messages (a forum's helper, a creator channel's owner) could raise the server's ceiling to 6,
    turn the built-in blocked terms off and ban the real moderator. Server-wide moderation now reads the
    member's permissions across the server (from their roles), or the moderator role."""
    helper = {"user_id": discord_fake.member_id, "permissions": PLAIN_MEMBER_PERMISSIONS | MANAGE_MESSAGES}
    for name, options in (
        ("mod safety set", {"level": 6, "ceiling": True}),
        ("mod safety set", {"level": 6}),
        ("mod blockterm builtin", {"enabled": False}),
        ("mod blockterm add", {"term": "harmless"}),
        ("mod ban", {"member": discord_fake.moderator_id, "reason": "taking over"}),
        ("mod logchannel", {}),
        ("mod log", {}),
        ("mod settings", {}),
    ):
        reply = await command(discord_fake, name, options, **helper)
        assert reply["type"] == 4 and reply["flags"] & 64, name
        assert "Manage Messages permission across the server" in reply["content"], name
    for table in ("mod_settings", "blocked_terms", "bans", "audit_log"):
        assert query(settings, f"SELECT COUNT(*) FROM {table}") == [(0,)], table

    # Whoever moderates the server does, whatever this channel's overwrites take away here: the moderator (Manage
    # Messages from a role), the owner (no role at all), an admin (Administrator).
    for who in (discord_fake.moderator_id, discord_fake.owner_id, discord_fake.admin_id):
        reply = await command(discord_fake, "mod bans", {}, user_id=who, permissions=PLAIN_MEMBER_PERMISSIONS)
        assert reply["flags"] & 64 and reply["content"] == "Nobody is banned.", who
