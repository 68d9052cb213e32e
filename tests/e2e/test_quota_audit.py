"""Quota and server-default changes leave an audit trail: a row in audit_log naming who did what, and a post
in the server's moderation log channel that names people without pinging them. Through the real bot and
the fake Discord."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answered, make_settings, start_bot

DEFAULTS_CHANGE = (
    "set this server's defaults: model: bot default · first provider: bot default · images per /imagine: up to 1 "
    "· pings: bot default (before: model: bot default · first provider: bot default · images per /imagine: up to 4 "
    "(bot maximum) · pings: bot default)"
)


def audit_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT action, actor_id, target_id, reason FROM audit_log WHERE action != 'setting' ORDER BY id"
        ).fetchall()


async def test_quota_and_default_changes_are_in_the_audit_log_and_the_log_channel(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`/quota set`, `grant`, `reset`, `set clear:true` and `/admin defaults` wrote no audit_log row and posted
    nothing to the moderation log channel (only the bot's log file had them); quota_resets has no actor, and
    `clear` deleted the row holding `updated_by`."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    log_channel = discord_fake.add_text_channel("mod-log")
    running = await start_bot(settings, discord_fake, Clock())
    admin, member, role = discord_fake.admin_id, discord_fake.member_id, discord_fake.moderator_role_id
    by_admin = {"user_id": admin}
    try:
        await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id)
        await answered(discord_fake, "quota set", {"member": member, "daily": 1000}, **by_admin)
        await answered(discord_fake, "quota set", {"role": role, "monthly": 50}, **by_admin)
        await answered(
            discord_fake,
            "quota grant",
            {"member": member, "units": 500, "reason": "won @everyone's contest"},
            **by_admin,
        )
        await answered(discord_fake, "quota reset", {"member": member}, **by_admin)
        await answered(discord_fake, "quota set", {"member": member, "clear": True}, **by_admin)
        await answered(discord_fake, "admin defaults", {"max_count": 1}, **by_admin)
        await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= 7, timeout=10)
    finally:
        await running.close()

    assert audit_rows(settings.database.path) == [
        ("quota_override", admin, member, "daily 1000 (before: none)"),
        (
            "quota_tier",
            admin,
            role,
            "no daily limit, no weekly limit, monthly 50, 2 at once (the bot's default) (before: none)",
        ),
        ("quota_grant", admin, member, "500 unit(s): won @everyone's contest"),
        ("quota_reset", admin, member, "usage so far no longer counts"),
        ("quota_override_cleared", admin, member, "removed (it was: daily 1000)"),
        ("server_defaults", admin, None, DEFAULTS_CHANGE),
    ]
    posts = discord_fake.messages_in(log_channel)[1:]  # after the moderator's own "set the log channel"
    assert [post.content for post in posts] == [
        f"<@{admin}> set the quota override for <@{member}>: daily 1000 (before: none).",
        f"<@{admin}> set the quota tier for <@&{role}>: no daily limit, no weekly limit, monthly 50, 2 at once "
        "(the bot's default) (before: none).",
        f"<@{admin}> granted 500 unit(s) to <@{member}>: won @everyone's contest.",
        f"<@{admin}> reset <@{member}>'s quota: their usage so far no longer counts against their limits.",
        f"<@{admin}> removed the quota override for <@{member}> (it was: daily 1000).",
        f"<@{admin}> {DEFAULTS_CHANGE}.",
    ]
    for post in posts:
        assert post.allowed_mentions == {"parse": []}, "names people and roles without pinging them"
        assert not post.ephemeral and post.author_id is None
