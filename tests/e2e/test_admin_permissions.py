"""Who is a bot admin: Manage Server from the member's roles (or the configured admin role), not what one
channel's permission overwrites resolve to. Through the real bot and the fake Discord."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.discord.protocol import MANAGE_GUILD
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot

MEMBER_OVERWRITE = 1  # Discord's overwrite type for a member (0: a role)


def answer(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    return str(data.get("content") or data.get("embeds"))


async def test_manage_server_in_one_channel_s_overwrites_is_not_bot_admin(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Discord sends an interaction's member permissions resolved in its channel, overwrites included; read as
    the member's, Manage Server allowed to one member in one channel's overwrites made them a bot admin
    server-wide (granting themselves units, setting the server's defaults, reading its usage)."""
    member = discord_fake.member_id
    # The member holds no role (the fake computes their server permissions from @everyone alone); a
    # channel of theirs allows them Manage Server by a member overwrite, as a server might for a channel owner.
    assert discord_fake.permissions_of(member) == PLAIN_MEMBER_PERMISSIONS
    corner = discord_fake.add_text_channel(
        "member-corner",
        overwrites=[{"id": str(member), "type": MEMBER_OVERWRITE, "allow": str(MANAGE_GUILD), "deny": "0"}],
    )
    # What Discord resolves for the member in that channel (the fake takes it as given).
    in_corner = {"user_id": member, "channel_id": corner, "permissions": PLAIN_MEMBER_PERMISSIONS | MANAGE_GUILD}
    # The other way in: the configured admin role (here the moderators'), whatever the channel resolves to.
    settings = make_settings(tmp_path, discord_fake, seaart, admin={"role_id": discord_fake.moderator_role_id})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        refused = [
            answer(discord_fake, await answered(discord_fake, name, options, **in_corner))
            for name, options in (
                ("quota grant", {"member": member, "units": 1000}),
                ("quota set", {"member": member, "daily": 100000}),
                ("quota show", {"member": discord_fake.admin_id}),
                ("admin defaults", {"max_count": 1}),
                ("usage report", {}),
            )
        ]
        helped = await answered(discord_fake, "help", {}, **in_corner)
        # A server admin (the Admin role) still is one, in that channel too.
        allowed = answer(
            discord_fake,
            await answered(
                discord_fake,
                "quota grant",
                {"member": member, "units": 5},
                user_id=discord_fake.admin_id,
                channel_id=corner,
            ),
        )
        by_role = answer(
            discord_fake,
            await answered(
                discord_fake,
                "quota grant",
                {"member": member, "units": 3},
                user_id=discord_fake.moderator_id,
                permissions=PLAIN_MEMBER_PERMISSIONS,
            ),
        )
    finally:
        await running.close()
    for text in refused:
        assert text.startswith("You need the Manage Server permission (or the bot's admin role)"), text
    fields = [field["name"] for field in answer_data(discord_fake, helped)["embeds"][0]["fields"]]
    assert "Admins" not in fields
    assert allowed.startswith(f"Granted 5 unit(s) to <@{member}>."), allowed
    assert by_role.startswith(f"Granted 3 unit(s) to <@{member}>."), by_role
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT kind, units, actor_id FROM ledger ORDER BY id").fetchall() == [
            ("grant", -5, discord_fake.admin_id),
            ("grant", -3, discord_fake.moderator_id),
        ]
        assert conn.execute("SELECT COUNT(*) FROM quota_limits").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM guild_settings").fetchone() == (0,)
