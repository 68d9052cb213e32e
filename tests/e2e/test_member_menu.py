"""The moderators' user commands (cogs/member_menu.py): from a member's own menu, "Ban from the image bot" (with /mod
ban's options as a form) and "Images by this member"; through the real bot and the fake Discord."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answer_given
from tests.e2e.edits import bot_image
from tests.e2e.test_moderation import query
from tests.e2e.test_remix import form_of

MENU = "Ban from the image bot"
IMAGES_MENU = "Images by this member"


async def test_a_moderator_bans_a_member_from_their_menu_and_others_may_not(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Shown only to those with Manage Messages (Discord's default_member_permissions), refused in code to a member
    who uses it anyway; a moderator's form bans the member for two hours with their image of the last day deleted;
    an admin cannot be banned (as /mod ban says)."""
    (menu,) = [c for c in discord_fake.commands if c["type"] == 2 and c["name"] == MENU]
    assert str(menu["default_member_permissions"]) == str(1 << 13), "Manage Messages"
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    image = await bot_image(discord_fake, settings)

    used = await discord_fake.user_command(MENU, member, user_id=discord_fake.other_member_id)
    await answer_given(discord_fake, used)
    assert answer_data(discord_fake, used)["content"] == "Only the server's moderators can ban members from the bot."

    used = await discord_fake.user_command(MENU, member, user_id=mod)
    form = await form_of(discord_fake, used)
    assert str(form["title"]).startswith("Ban ") and str(form["title"]).endswith(" from the bot")
    sent = await discord_fake.submit_modal(used, {"reason": "spam", "hours": "2", "delete_images": "24"}, user_id=mod)
    await answer_given(discord_fake, sent)
    said = str(answer_data(discord_fake, sent)["content"])
    assert said.startswith(f"<@{member}> can no longer use the bot until <t:") and said.endswith(
        f"Deleted 1 message of <@{member}>'s images from the last 24 hours."
    )
    assert image.deleted
    ((user_id, reason, expires_at),) = query(settings, "SELECT user_id, reason, expires_at FROM bans")
    assert (user_id, reason) == (member, "spam") and expires_at is not None

    used = await discord_fake.user_command(MENU, discord_fake.admin_id, user_id=mod)
    await form_of(discord_fake, used)
    sent = await discord_fake.submit_modal(used, {"reason": "x"}, user_id=mod)
    await answer_given(discord_fake, sent)
    assert str(answer_data(discord_fake, sent)["content"]).startswith(f"<@{discord_fake.admin_id}> is an admin here")


async def test_a_moderator_lists_a_member_s_images_from_their_menu_and_others_may_not(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "Images by this member" answers a moderator with the member's list as /mod images draws it, privately; shown
    only to those with Manage Messages, and refused in code to a member who uses it anyway, showing them nothing."""
    (menu,) = [c for c in discord_fake.commands if c["type"] == 2 and c["name"] == IMAGES_MENU]
    assert str(menu["default_member_permissions"]) == str(1 << 13), "Manage Messages"
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    image = await bot_image(discord_fake, settings)

    used = await discord_fake.user_command(IMAGES_MENU, member, user_id=discord_fake.other_member_id)
    await answer_given(discord_fake, used)
    assert answer_data(discord_fake, used)["content"] == "Only the server's moderators can list a member's images."
    assert "embeds" not in answer_data(discord_fake, used) or not answer_data(discord_fake, used)["embeds"]

    used = await discord_fake.user_command(IMAGES_MENU, member, user_id=mod)
    await answer_given(discord_fake, used)
    answer = answer_data(discord_fake, used)
    assert answer["flags"] & 64
    (listing,) = answer["embeds"]
    assert listing["description"].startswith(f"The requests of <@{member}>.")
    assert f"/{image.id})" in listing["description"]
