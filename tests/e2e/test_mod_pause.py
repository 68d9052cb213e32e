"""``/mod pause`` and ``/mod resume``: a moderator stops new image requests in the server or a channel (a raid, an
event), for a while or until resumed, and every way in answers to it (cogs/policy.py ``moderate``).

The real bot against the fake Discord and a fake SeaArt: what members are told, what SeaArt is sent (nothing),
the audit rows, and the time a pause lapses (the bot's clock moved by the test).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.moderation import REFUSED
from tests.conftest import Clock, RunningBot, answer_data, answered
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_rework import delivered, imagine, press


def _audit(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(
            "SELECT action, actor_id, channel_id, reason FROM audit_log WHERE action IN ('pause', 'resume') ORDER BY id"
        ).fetchall()


async def _said(discord_fake: FakeDiscord, name: str, options: dict[str, Any], **kw: Any) -> str:
    interaction = await answered(discord_fake, name, options, **kw)
    data = answer_data(discord_fake, interaction)
    return str(data.get("content") or data.get("embeds"))


async def test_a_server_paused_for_two_hours_refuses_every_way_in_then_goes_on_by_itself(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Commands (a moderator's own too), a button under an earlier image and a reply to it are refused, saying why
    and until when, nothing sent to SeaArt; /mod settings shows the pause; two hours later requests go through."""
    earlier = await imagine(discord_fake, {"prompt": "a lighthouse"})
    moderator = discord_fake.moderator_id
    told = await _said(discord_fake, "mod pause", {"hours": 2, "reason": "a raid"}, user_id=moderator)
    assert told.startswith("Image making is paused in this server until <t:") and "`/mod resume` lifts it." in told

    refusal = await _said(discord_fake, "imagine", {"prompt": "a fox"})
    assert refusal.startswith("The moderators have paused image making in this server until <t:")
    assert ":f> (a raid). Nothing was made, and you were not charged." in refusal
    assert "paused image making" in await _said(discord_fake, "imagine", {"prompt": "a test"}, user_id=moderator)
    reroll = await press(
        discord_fake, earlier, "Re-roll", user_id=discord_fake.other_member_id, permissions=PLAIN_MEMBER_PERMISSIONS
    )
    assert "paused image making" in await ephemeral_reply(discord_fake, reroll)
    await discord_fake.post_message("make it night", reply_to=earlier.id)
    await discord_fake.wait_for(
        lambda: any("paused image making" in (m.content or "") for m in discord_fake.dms_to(discord_fake.member_id))
    )
    settings_view = await _said(discord_fake, "mod settings", {}, user_id=moderator)
    assert "Paused" in settings_view and f"by <@{moderator}>: a raid" in settings_view
    assert len(seaart.creates) == 1, "nothing was sent while paused"

    clock.offset += 2 * 3600 + 1
    await imagine(discord_fake, {"prompt": "a fox, later"})
    assert len(seaart.creates) == 2
    assert _audit(settings) == [("pause", moderator, None, "a raid")]


async def test_a_channel_paused_refuses_there_and_in_its_threads_until_resumed(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A pause of #general holds in its threads, not in another channel; /mod resume there lifts it, and a second
    resume says nothing was paused there; members who are no moderators may not pause."""
    moderator, general = discord_fake.moderator_id, discord_fake.channel_id
    thread = discord_fake.add_thread(general, "ideas")
    assert await _said(discord_fake, "mod pause", {}) == REFUSED, "a plain member may not pause"
    await _said(discord_fake, "mod pause", {"channel": general}, user_id=moderator)

    here = await _said(discord_fake, "imagine", {"prompt": "a fox"})
    assert here.startswith(f"The moderators have paused image making in <#{general}>.")
    in_thread = await _said(discord_fake, "imagine", {"prompt": "a fox"}, channel_id=thread)
    assert in_thread.startswith(f"The moderators have paused image making in <#{general}>.")
    await imagine(discord_fake, {"prompt": "a fox elsewhere"}, channel_id=discord_fake.nsfw_channel_id)
    assert len(seaart.creates) == 1
    # A mention of the bot gets no Imagine this offer where it is paused (cogs/mention_prompts.py), and one elsewhere.
    bot = discord_fake.bot_user_id
    await discord_fake.post_message(f"<@{bot}> a fox in the paused channel")
    elsewhere = await discord_fake.post_message(f"<@{bot}> a fox", channel_id=discord_fake.nsfw_channel_id)
    await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(elsewhere.id)))
    assert not [m for m in discord_fake.messages_in(general) if m.author_id is None and m.reference is not None]

    lifted = await _said(discord_fake, "mod resume", {"channel": general}, user_id=moderator)
    assert lifted == f"Image making goes on in <#{general}>: new requests are taken again."
    await imagine(discord_fake, {"prompt": "a fox again"})
    assert len(seaart.creates) == 2
    again = await _said(discord_fake, "mod resume", {}, user_id=moderator)
    assert again == "Image making was not paused in this server."
    assert _audit(settings) == [("pause", moderator, general, None), ("resume", moderator, general, None)]


async def test_a_pause_with_cancel_stops_what_is_being_made_there_and_nothing_elsewhere(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """``cancel:True`` on #general: another member's image there and one in its thread are cancelled (not charged,
    SeaArt told), the one in another channel is made and delivered."""
    moderator, general = discord_fake.moderator_id, discord_fake.channel_id
    thread = discord_fake.add_thread(general, "ideas")
    seaart.hold(True)
    await discord_fake.slash_command("imagine", {"prompt": "a fox here"})
    await discord_fake.slash_command(
        "imagine", {"prompt": "a fox in the thread"}, channel_id=thread, user_id=discord_fake.other_member_id
    )
    elsewhere = await discord_fake.slash_command(
        "imagine", {"prompt": "a fox elsewhere"}, channel_id=discord_fake.nsfw_channel_id
    )
    await discord_fake.wait_for(lambda: len(seaart.creates) == 3)
    told = await _said(discord_fake, "mod pause", {"channel": general, "cancel": True}, user_id=moderator)
    assert f"Image making is paused in <#{general}>." in told
    assert "Cancelled 2 images being made or waiting there (not charged)." in told
    await discord_fake.wait_for(
        lambda: sorted(r[0] for r in _rows(settings)) == ["cancelled", "cancelled", "running"], timeout=15
    )
    seaart.hold(False)
    await delivered(discord_fake, elsewhere)
    expected = {
        "a fox here": ("cancelled", "refunded", moderator),
        "a fox in the thread": ("cancelled", "refunded", moderator),
        "a fox elsewhere": ("delivered", "committed", None),
    }
    await discord_fake.wait_for(
        lambda: {prompt: (state, charge, by) for prompt, state, charge, by in _jobs(settings)} == expected, timeout=15
    )
    await discord_fake.wait_for(lambda: sum(job.cancelled for job in seaart.jobs.values()) == 2, timeout=15)


def _rows(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT state FROM jobs").fetchall()


def _jobs(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(
            "SELECT json_extract(request_json, '$.prompt'), state, charge_state, cancelled_by FROM jobs"
        ).fetchall()
