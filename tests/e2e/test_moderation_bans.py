"""/mod ban through the real bot and the fake Discord: the banned member's images still being made are
cancelled (not charged, not delivered) and the answer says how many; the bot, the owner and admins cannot be
banned."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.test_moderation import command, query


async def test_a_ban_cancels_the_member_s_images_still_being_made(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, seaart: FakeSeaArt
) -> None:
    """Before, the ban answered "can no longer use the bot" and both images were delivered and charged."""
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    seaart.hold(True)  # the provider is making them, and does not finish while held
    asked = await discord_fake.slash_command("imagine", {"prompt": "a fox", "count": 2})
    await discord_fake.wait_for(lambda: len(seaart.creates) >= 2, timeout=10)
    banned = await command(discord_fake, "mod ban", {"member": member, "reason": "abuse"}, user_id=mod)
    assert banned["flags"] & 64
    assert banned["content"] == (
        f"<@{member}> can no longer use the bot. Cancelled 2 images of theirs still being made (not charged)."
    )
    await discord_fake.wait_for(
        lambda: (
            query(settings, "SELECT state, charge_state, cancelled_by FROM jobs")
            == [("cancelled", "refunded", mod)] * 2
        ),
        timeout=15,
    )
    seaart.hold(False)
    assert query(settings, "SELECT SUM(units) FROM ledger WHERE user_id = ?", member) == [(0,)]
    # Nothing is delivered to the channel: the job's message says both were cancelled, uncharged.
    message = discord_fake.messages[asked.original_message_id or 0]
    await discord_fake.wait_for(lambda: bool(message.embeds) and message.embeds[0]["title"] == "🍌 Cancelled", 10)
    assert message.attachments == [] and "You were not charged" in str(message.embeds)
    logged = query(settings, "SELECT action, target_id, actor_id FROM audit_log")
    assert logged == [("ban", member, mod)]
    assert query(settings, "SELECT user_id, reason FROM bans") == [(member, "abuse")]


async def test_the_bot_the_owner_admins_and_moderators_cannot_be_banned(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Each was taken: "<@...> can no longer use the bot." (a moderator, by an admin, then lifted their own ban
    with /mod unban)."""
    mod = discord_fake.moderator_id
    for who, by, why in (
        (discord_fake.bot_user_id, mod, "That is this bot: it cannot be banned from itself."),
        (discord_fake.owner_id, mod, f"<@{discord_fake.owner_id}> owns this server: the owner cannot be banned"),
        (discord_fake.admin_id, mod, f"<@{discord_fake.admin_id}> is an admin here (Manage Server or Administrator"),
        (mod, discord_fake.admin_id, f"<@{mod}> is a moderator here (Manage Messages, or the bot's moderator role)"),
    ):
        refused = await command(discord_fake, "mod ban", {"member": who, "reason": "x"}, user_id=by)
        assert refused["flags"] & 64 and refused["content"].startswith(why), who
        assert refused.get("allowed_mentions", {}).get("parse") == []
    assert query(settings, "SELECT COUNT(*) FROM bans") == [(0,)]
    assert query(settings, "SELECT COUNT(*) FROM audit_log") == [(0,)]
    # A member is banned as before, and one with nothing running is told nothing about images.
    ok = await command(discord_fake, "mod ban", {"member": discord_fake.member_id}, user_id=mod)
    assert ok["content"] == f"<@{discord_fake.member_id}> can no longer use the bot."
