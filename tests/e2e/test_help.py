"""/help through the fake Discord: a private answer that shows a member how to make an image and keep
working on it, with this server's facts (the models served, the one they get, what they have left) and
only the commands this member may use."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answer_given
from tests.e2e.edits import jobs


async def help_fields(discord_fake: FakeDiscord, **kwargs: Any) -> dict[str, str]:
    """The /help answer's fields as {name: value}, after checking it was private and pings no one."""
    interaction: FakeInteraction = await discord_fake.slash_command("help", {}, **kwargs)
    await answer_given(discord_fake, interaction)
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    assert data["allowed_mentions"]["parse"] == []
    (embed,) = data["embeds"]
    assert "/imagine prompt:" in embed["description"]
    return {field["name"]: field["value"] for field in embed["fields"]}


async def test_help_shows_a_member_the_models_their_default_what_is_left_and_only_their_commands(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    fields = await help_fields(discord_fake)
    assert list(fields) == ["Models here", "Keep working on an image", "From Midjourney", "Yours"]
    assert "`--sref`" in fields["From Midjourney"] and "Vary (Region)" in fields["From Midjourney"]
    assert fields["Models here"].splitlines() == ["Nano Banana 2 (the server's default)", "Nano Banana Pro"]
    keep_working = fields["Keep working on an image"]
    assert "**Vary**" in keep_working and "**Reply**" in keep_working and "Edit with Nano Banana" in keep_working
    daily = settings.quotas.daily
    assert f"**{daily} units** left today" in fields["Yours"] and "`/quota show`" in fields["Yours"]

    # An image received costs its units; a preferred model becomes the one named as theirs.
    command = await discord_fake.slash_command("imagine", {"prompt": "a lighthouse"})
    await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=20)
    assert command.callbacks
    with sqlite3.connect(settings.database.path) as conn:
        (cost,) = conn.execute("SELECT SUM(units) FROM ledger WHERE kind = 'commit'").fetchone()
    conn.close()
    assert cost > 0
    saved = await discord_fake.slash_command("preferences", {"model": "nano_banana_pro"})
    await answer_given(discord_fake, saved)
    fields = await help_fields(discord_fake)
    assert fields["Models here"].splitlines() == ["Nano Banana 2", "Nano Banana Pro (your default)"]
    assert f"**{daily - cost} units** left today" in fields["Yours"]


async def test_help_lists_the_moderators_and_admins_commands_to_those_who_may_use_them(
    running_bot: RunningBot, discord_fake: FakeDiscord
) -> None:
    fields = await help_fields(discord_fake, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS)
    assert "`/mod blockterm" in fields["Moderators"] and "`/mod ban" in fields["Moderators"]
    assert "`/admin defaults`" in fields["Admins"] and "`/usage report" in fields["Admins"]


async def test_the_admin_groups_are_registered_for_servers_and_hidden_from_members(
    running_bot: RunningBot, discord_fake: FakeDiscord
) -> None:
    """/admin and /usage share one base (cogs/admin.py AdminsOnlyGroup): each is registered as Discord shows
    it, in servers only and to members with Manage Server unless the server says otherwise."""
    groups = {c["name"]: c for c in discord_fake.commands if c["name"] in ("admin", "usage")}
    assert set(groups) == {"admin", "usage"}
    for group in groups.values():
        assert int(group["default_member_permissions"]) == 1 << 5, group  # Manage Server
        assert group.get("dm_permission") is False or group.get("contexts") == [0], group
    assert {o["name"] for o in groups["admin"]["options"]} >= {"defaults", "providers"}
    assert {o["name"] for o in groups["usage"]["options"]} == {"report", "export"}


async def test_every_command_is_registered_for_servers_only(running_bot: RunningBot, discord_fake: FakeDiscord) -> None:
    """Every command reads or changes a server's things (its quotas, its settings, its channels): in a DM
    /quota show answered for no server at all ("0 of 25 used" after units spent in the server), since a
    group's subcommands' own guild_only never reaches Discord."""
    for command in discord_fake.commands:
        assert command.get("dm_permission") is False or command.get("contexts") == [0], command["name"]


async def test_help_gives_the_server_s_cap_on_images_per_prompt(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """It said "up to 4 at once" whatever the server allowed (`/admin defaults max_count`)."""
    first: FakeInteraction = await discord_fake.slash_command("help", {})
    await answer_given(discord_fake, first)
    assert "`count` (up to 4 at once)" in answer_data(discord_fake, first)["embeds"][0]["description"]
    capped = await discord_fake.slash_command(
        "admin defaults", {"max_count": 2}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    await answer_given(discord_fake, capped)
    again: FakeInteraction = await discord_fake.slash_command("help", {})
    await answer_given(discord_fake, again)
    assert "`count` (up to 2 at once)" in answer_data(discord_fake, again)["embeds"][0]["description"]
