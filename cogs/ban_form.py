"""``/mod ban``'s options as a form, for a moderator acting from a report's post (cogs/report_menu.py) or from a
member's own menu (cogs/member_menu.py) rather than typing the command: why (the member sees it), for how many hours,
and their images of how many hours to delete (cogs/purge.py). Carried out by ``Moderation.ban_member``, as the
command is, with the same refusals (the owner, admins, moderators, the bot)."""

from __future__ import annotations

from typing import Any

import discord

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from cogs.imagine import submitted_text
from cogs.moderation import MAX_REASON, Moderation, is_moderator
from cogs.private_answers import answer_privately

REASON, HOURS, DELETE = "reason", "hours", "delete_images"
NOT_A_MODERATOR = "Only the server's moderators can ban members from the bot."


class BanForm(discord.ui.Modal):
    """``/mod ban``'s options; ``custom_id`` says for whom (the form's sender reads it)."""

    def __init__(self, custom_id: str, title: str) -> None:
        super().__init__(title=title[:45], custom_id=custom_id, timeout=None)
        for box, label, placeholder, length in (
            (REASON, "Why (they will see it)", "Left empty: no reason given", MAX_REASON),
            (HOURS, "For how many hours", "Left empty: until /mod unban", 10),
            (DELETE, "Delete their images of the last hours", "24 (left empty: none; up to 168)", 10),
        ):
            self.add_item(
                discord.ui.TextInput(
                    label=label, custom_id=box, placeholder=placeholder, required=False, max_length=length
                )
            )
        self.stop()  # answered by its sender's on_interaction, as a form opened before a restart is


def hours_in(text: str | None, what: str, least: float, most: float) -> float | None:
    """A form's number of hours, None if left empty; refused, saying what it takes, if it is not one."""
    if not (text or "").strip():
        return None
    try:
        value = float((text or "").strip().replace(",", "."))
    except ValueError:
        value = float("nan")
    if not least <= value <= most:  # NaN and infinities too
        raise InvalidRequestError(f"{what}: a number of hours from {least:g} to {most:g}, such as 24 or 0.5.")
    return value


async def member_of(interaction: discord.Interaction[Any], user_id: int) -> discord.Member | None:
    """The member, from discord.py's cache or asked of Discord (the bot keeps no member list); None if they left."""
    guild = interaction.guild
    if guild is None:
        return None
    try:
        return guild.get_member(user_id) or await guild.fetch_member(user_id)
    except discord.NotFound:
        return None


async def ban_from_form(
    bot: Bananacord, interaction: discord.Interaction[Any], user_id: int, components: list[Any]
) -> bool:
    """The form sent: ``user_id`` banned with its options, answered; whether they were."""
    if not is_moderator(interaction, bot.settings.moderation.moderator_role_id):
        await answer_privately(interaction, NOT_A_MODERATOR)
        return False
    reason = (submitted_text(components, REASON) or "").strip()[:MAX_REASON] or None
    hours = hours_in(submitted_text(components, HOURS), "For how many hours", 0.01, 8760.0)
    delete_images = hours_in(submitted_text(components, DELETE), "Delete their images of the last hours", 0.1, 168.0)
    member = await member_of(interaction, user_id)
    if member is None:
        await answer_privately(interaction, f"<@{user_id}> is no longer in this server: nothing was done.")
        return False
    moderation = bot.get_cog("Moderation")
    assert isinstance(moderation, Moderation)  # loaded before the menus (bot/app.py EXTENSIONS)
    return await moderation.ban_member(interaction, member, reason, hours, delete_images)
