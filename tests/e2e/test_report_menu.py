"""The "Report to moderators" message command (cogs/report_menu.py): a member flags one of the bot's images for the
server's moderators, through the real bot and the fake Discord."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.store import reports
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answer_given, answered
from tests.e2e.edits import bot_image
from tests.e2e.test_moderation import query
from tests.e2e.test_remix import form_of

MENU = "Report to moderators"


async def _report(discord_fake: FakeDiscord, image: FakeMessage, reason: str, user_id: int) -> str:
    used = await discord_fake.message_command(MENU, image.id, user_id=user_id)
    form = await form_of(discord_fake, used)
    assert form["title"] == MENU
    sent = await discord_fake.submit_modal(used, {"reason": reason}, user_id=user_id)
    await answer_given(discord_fake, sent)
    data = answer_data(discord_fake, sent)
    assert data["flags"] & 64
    return str(data["content"])


def _log_posts(discord_fake: FakeDiscord, channel_id: int) -> list[FakeMessage]:
    return [m for m in discord_fake.messages_in(channel_id) if (m.content or "").startswith("🚩")]


async def test_a_report_reaches_the_moderators_once_per_member_and_the_maker_is_not_told(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member reports another's image: kept in the audit log (no log channel yet: /mod log only). Once the
    moderators have a log channel, a second member's report is kept (an image's reports are posted as their count
    grows: the first, the third...), a third's posted there, with the image's link, the prompt and how many reported
    it, pinging nobody; a member's second report of it is refused; `/mod log kind:reports` lists all three; the maker
    gets no message."""
    maker, first, second, third, mod = (
        discord_fake.member_id,
        discord_fake.other_member_id,
        discord_fake.admin_id,
        discord_fake.owner_id,
        discord_fake.moderator_id,
    )
    image = await bot_image(discord_fake, settings)
    said = await _report(discord_fake, image, "gory <@&1> @everyone", first)
    assert (
        said
        == "Thank you: the moderators see your report in `/mod log`, with your name. The image's maker is not told."
    )
    (job_id,) = [r[0] for r in query(settings, "SELECT id FROM jobs")]
    assert query(settings, "SELECT action, actor_id, target_id, job_id, reason FROM audit_log") == [
        ("report", first, maker, job_id, "gory <@&1> @everyone")
    ]
    log_channel = discord_fake.add_channel("mod-log")
    await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    said = await _report(discord_fake, image, "spam", second)
    assert "in `/mod log`" in said and "log channel" not in said
    said = await _report(discord_fake, image, "", third)
    assert "in their log channel and `/mod log`" in said
    await discord_fake.wait_for(lambda: bool(_log_posts(discord_fake, log_channel)))
    (post,) = _log_posts(discord_fake, log_channel)
    link = f"https://discord.com/channels/{discord_fake.guild_id}/{discord_fake.channel_id}/{image.id}"
    assert (post.content or "").startswith(
        f"🚩 <@{third}> reported [an image]({link}) by <@{maker}> (job {job_id}) (no reason given). It has been "
        "reported by 3 members."
    )
    assert "a cat on a sofa" in (post.content or "") and post.allowed_mentions == {"parse": []}
    again = await _report(discord_fake, image, "still gory", first)
    assert again == "You have reported this image already: the moderators have it."
    assert len(query(settings, "SELECT id FROM audit_log WHERE action = 'report'")) == 3
    listed = await answered(discord_fake, "mod log", {"kind": "reports"}, user_id=mod)
    content = str(answer_data(discord_fake, listed)["content"])
    assert content.count("reported [an image]") == 3 and "gory" in content
    assert not [r for r in discord_fake.requests if r.path == "/users/@me/channels"], "no DM to anyone"


async def test_only_the_bot_s_images_are_reported_and_a_member_s_reports_are_few_an_hour(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A member's own message is no image of the bot's: refused privately, no form. Past PER_HOUR reports an hour
    (one here), a member's next report is refused and not kept."""
    monkeypatch.setattr(reports, "PER_HOUR", 1)
    reporter = discord_fake.other_member_id
    chat = await discord_fake.post_message("hello", user_id=discord_fake.member_id)
    used = await discord_fake.message_command(MENU, chat.id, user_id=reporter)
    await answer_given(discord_fake, used)
    refused = answer_data(discord_fake, used)
    assert refused["flags"] & 64 and str(refused["content"]).startswith("Only the images this bot made can be reported")
    images = [await bot_image(discord_fake, settings) for _ in range(2)]
    assert (await _report(discord_fake, images[0], "spam", reporter)).startswith("Thank you")
    too_many = await _report(discord_fake, images[1], "spam", reporter)
    assert too_many.startswith("You have reported 1 image in the last hour")
    await asyncio.sleep(0.1)
    assert len(query(settings, "SELECT id FROM audit_log WHERE action = 'report'")) == 1


def _buttons(post: FakeMessage) -> list[str]:
    return [str(c["custom_id"]) for row in post.components for c in row["components"]]


async def test_the_moderators_act_on_a_report_from_its_post(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A report's post in the log channel has Their images (the maker's list, privately), Delete image and Purge 24 h:
    a member who is no moderator is refused;
    a moderator's Delete image deletes the image, logs it, and the post says who did it, its buttons gone; Purge 24 h
    on another report deletes all of its member's recent images."""
    maker, reporter, mod = discord_fake.member_id, discord_fake.other_member_id, discord_fake.moderator_id
    log_channel = discord_fake.add_channel("mod-log")
    await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    first, second, third = [await bot_image(discord_fake, settings) for _ in range(3)]
    await _report(discord_fake, first, "gory", reporter)
    await discord_fake.wait_for(lambda: len(_log_posts(discord_fake, log_channel)) == 1)
    (post,) = _log_posts(discord_fake, log_channel)
    images, delete, purge, _ = _buttons(post)
    assert delete.startswith("bananacord:report-act:delete:") and purge.startswith("bananacord:report-act:purge:")

    # Their images first: what else the maker made (/mod images), privately; the post stays as it is.
    assert images.startswith("bananacord:report-act:images:")
    looked = await discord_fake.click(post.id, images, user_id=mod)
    await answer_given(discord_fake, looked)
    (listing,) = answer_data(discord_fake, looked)["embeds"]
    assert answer_data(discord_fake, looked)["flags"] & 64
    assert listing["description"].startswith(f"The requests of <@{maker}>.")
    assert all(f"/{image.id})" in listing["description"] for image in (first, second, third))
    assert len(_buttons(post)) == 4 and not (post.content or "").count("✅")

    refused = await discord_fake.click(post.id, delete, user_id=reporter)
    await answer_given(discord_fake, refused)
    assert answer_data(discord_fake, refused)["content"] == "Only the server's moderators can use these buttons."
    assert not first.deleted
    pressed = await discord_fake.click(post.id, delete, user_id=mod)
    await answer_given(discord_fake, pressed)
    assert answer_data(discord_fake, pressed)["content"] == "Deleted."
    assert first.deleted and not second.deleted
    await discord_fake.wait_for(lambda: (post.content or "").endswith(f"✅ <@{mod}> deleted the image."))
    assert post.components == []
    assert query(settings, "SELECT action, actor_id, target_id FROM audit_log WHERE action = 'delete'") == [
        ("delete", mod, maker)
    ]

    await _report(discord_fake, second, "also gory", reporter)
    await discord_fake.wait_for(lambda: len(_log_posts(discord_fake, log_channel)) == 2)
    later = _log_posts(discord_fake, log_channel)[-1]
    pressed = await discord_fake.click(later.id, _buttons(later)[2], user_id=mod)
    await discord_fake.wait_for(lambda: second.deleted and third.deleted)
    await answer_given(discord_fake, pressed)
    assert str(answer_data(discord_fake, pressed)["content"]).startswith(f"Deleted 2 messages of <@{maker}>'s images")
    await discord_fake.wait_for(lambda: (later.content or "").endswith(f"✅ <@{mod}> purged the images of <@{maker}>."))


async def test_a_moderator_bans_the_maker_from_a_report_s_post(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The post's Ban opens /mod ban's options as a form: hours that are no number are refused, saying what it takes,
    nothing done; sent right, the maker is banned and their images of the last day deleted, and the post says so."""
    maker, reporter, mod = discord_fake.member_id, discord_fake.other_member_id, discord_fake.moderator_id
    log_channel = discord_fake.add_channel("mod-log")
    await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    image = await bot_image(discord_fake, settings)
    await _report(discord_fake, image, "gory", reporter)
    await discord_fake.wait_for(lambda: len(_log_posts(discord_fake, log_channel)) == 1)
    (post,) = _log_posts(discord_fake, log_channel)
    ban = _buttons(post)[3]
    assert ban.startswith("bananacord:report-act:ban:")

    pressed = await discord_fake.click(post.id, ban, user_id=mod)
    form = await form_of(discord_fake, pressed)
    assert form["title"] == "Ban the image's maker from the bot"
    wrong = await discord_fake.submit_modal(pressed, {"reason": "gore", "hours": "a week"}, user_id=mod)
    await answer_given(discord_fake, wrong)
    assert str(answer_data(discord_fake, wrong)["content"]).startswith("For how many hours: a number of hours from")
    assert query(settings, "SELECT COUNT(*) FROM bans") == [(0,)]

    pressed = await discord_fake.click(post.id, ban, user_id=mod)
    await form_of(discord_fake, pressed)
    sent = await discord_fake.submit_modal(pressed, {"reason": "gore", "delete_images": "24"}, user_id=mod)
    await answer_given(discord_fake, sent)
    assert answer_data(discord_fake, sent)["content"] == (
        f"<@{maker}> can no longer use the bot. Deleted 1 message of <@{maker}>'s images from the last 24 hours."
    )
    assert image.deleted and query(settings, "SELECT user_id, reason FROM bans") == [(maker, "gore")]
    await discord_fake.wait_for(lambda: (post.content or "").endswith(f"✅ <@{mod}> banned <@{maker}>."))
    assert post.components == []
