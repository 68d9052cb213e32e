"""/help: what the bot does and how to use it, privately, with the facts of this server and member.

A member who just found the bot sees, in one private answer, how to make an image, how to keep working
on one (buttons, replies, the message menu), the models served here and which one they get when they
name none, and what they have left of their quota; moderators and admins also see their own commands.
Only what this member may use is listed.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.app import Bananacord
from bot.jobs import MAX_CANDIDATES
from bot.option_sets import option_sets_of
from bot.preferences import model_at, preferred_model
from bot.quotas import QuotaStatus
from cogs.admin import is_admin
from cogs.channel_check import refusal_note
from cogs.imagine_menu import MENU_NAME as IMAGINE_MENU
from cogs.moderation import is_moderator
from cogs.places import level_at, place_of
from cogs.policy import member_of
from cogs.private_answers import answer_privately
from cogs.remix import MENU_NAME
from cogs.report_menu import MENU_NAME as REPORT_MENU

BANANA = discord.Colour(0xF5C518)
# Discord's most for an embed field's value: a /help that passed it was refused, the member told nothing.
FIELD_CHARS = 1024


def make_line(count_cap: int) -> str:
    """How to make an image, with this server's cap on images per prompt (/admin defaults max_count)."""
    at_once = "one at a time" if count_cap == 1 else f"up to {count_cap} at once"
    return (
        "`/imagine prompt:` and describe the image (Midjourney's `--ar 16:9`, `--seed 7`, `--no text` and "
        "`--sref <an image's link> --sw 300` at its end work too). Attach reference images (`image1`…`image10`; "
        "`style_image` for a style), paste "
        "an image's Discord link into the prompt, or link messages with images (`references:`) to draw from them; "
        "`model`, `aspect_ratio`, "
        f"`resolution` and `count` ({at_once}) are optional"
        + ("; choices in braces, `a {red, green} bird`, make an image of each side by side" if count_cap > 1 else "")
        + ". `/blend` makes two or more images (attached, or "
        "linked in `references`) into one. Or write to the bot (`@Bananacord a fox at dawn`) and press its "
        "**Imagine this**. You are charged only for images you receive."
    )


KEEP_WORKING = (
    "Under each image: 🔀 **Vary** subtle (small changes) or strong (a new take) · "
    "✏️ **Edit** say what should change (anywhere, or in one part), zoom out, pan or reshape · "
    "🔍 **Re-render** at a larger size · "
    "🔭 **Zoom out**, ⬅️➡️⬆️⬇️ **Pan** and 🔲 **Make square** in one click · 🔁 **Re-roll** the same request again · "
    "📝 **Change prompt** the same request (or Vary, edit, zoom out, pan) with other words · "
    "📎 **Use as reference** for a new prompt · 🗑️ **Delete**, or react ❌ to your own (a batch's ➕ **More** "
    "has each image's Zoom out, Use as reference, pans and Make square). React ✉️ to any image for a copy by DM, "
    "⭐ to star it.\n"
    "**Reply** to one of the bot's images with what to change (end with `--ar 16:9` for another shape, "
    "`--zoom` to zoom out); before it shows, your reply waits (⏳).\n"
    f"Any message: right-click (long-press on mobile) → **Apps** → **{IMAGINE_MENU}** (its words, yours to change) or, "
    f"with an image, **{MENU_NAME}**; on an image of the bot's that does not belong here, **{REPORT_MENU}**."
)
FROM_MIDJOURNEY = (
    "`--ar` `--seed` `--repeat` `--no` `--tile` `--niji` `--iw` `--style raw`, `--sref` `--cref` `--oref` with an "
    "image's link (and `--sw` `--cw` `--ow`), `cat::2 dog` and `{a, b}` choices work as there · `/preferences` is "
    "`/settings`, "
    "with a `suffix`, `remix` and `option_set` (`--mine`) · **Edit** → *Where* is Vary (Region) · `--v`, `--q`, "
    "personalisation codes "
    "mean nothing to Nano Banana: left out, and named to you"
)
YOURS = (
    "`/preferences` your own defaults for what you leave out, words added to each new prompt (`suffix`), your own "
    "names for parameters (`option_set`), and whether a slow request pings you · `/jobs` your images generating and "
    "the latest (**Earlier** pages back, `search:` by their words, `starred:` lists the ones you ⭐) · `/quota show` "
    "what you have left · `/privacy` what is kept about you, and erasing your words"
)
MODERATORS = (
    "`/mod safety set|show` how strict the safety filter is, per server and channel · `/mod blockterm "
    "add|remove|list|builtin` · `/mod ban|unban|bans` (or a member's menu → Apps → Ban from the image bot) · "
    "`/mod images` a member's images, with links (or their menu → Apps → Images by this member) · `/mod purge` a "
    "member's images of the last hours · "
    "`/mod pause|resume` new requests in the server or a channel "
    "· `/mod queue` what is generating and waiting · `/mod log` the audit log · `/mod logchannel` · `/mod settings`"
)
ADMINS = (
    "`/admin defaults` the server's model, provider, images per prompt and pings · `/admin providers` · "
    "`/admin check` where the bot lacks a permission it uses · `/admin gallery` a channel of the most starred images · "
    "`/quota set|grant|reset|server` · `/usage report|export`"
)


def quota_line(status: QuotaStatus) -> str | None:
    """The member's tightest limit in one line, or None when nothing limits them."""
    if status.unlimited:
        return None
    limited = [w for w in status.windows if w.remaining is not None]
    if not limited:
        return None
    tightest = min(limited, key=lambda w: w.remaining or 0)
    words = {"daily": "today", "weekly": "this week", "monthly": "this month"}[tightest.window]
    if tightest.limit == 0:
        # No reset brings units back to a limit of 0: only what was granted is left.
        return f"**{tightest.remaining} units** left {words} (limit 0, set by an admin)"
    return f"**{tightest.remaining} units** left {words} (resets <t:{int(tightest.resets_at)}:R>)"


def at_once_line(status: QuotaStatus, waiting: int) -> str | None:
    """The member's requests at once, and how many more wait their turn past them (bot/waiting_requests.py); None
    when nothing limits them."""
    limit = status.in_flight_limit
    if status.unlimited or limit is None or limit == 0:
        return None
    past = f"; up to {waiting} more wait their turn, each starting by itself" if waiting else ""
    now = f" ({status.in_flight} now" + (f", {status.waiting} waiting" if status.waiting else "") + ")"
    return f"You may have **{limit}** request(s) generating at once{now}{past}."


class Help(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    @app_commands.command(name="help")
    @app_commands.guild_only()
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        """How to make images with the bot and keep working on them; your quota and defaults here."""
        defaults = await self.bot.services.settings_store.guild_defaults(interaction.guild_id or 0)
        cap = min(defaults.max_count or MAX_CANDIDATES, MAX_CANDIDATES)
        embed = discord.Embed(title="🍌 Bananacord", description=make_line(cap), colour=BANANA)
        level = await level_at(self.bot, interaction.guild_id or 0, place_of(interaction.channel))
        models = await self._models(interaction.guild_id or 0, interaction.user.id, level)
        embed.add_field(name="Models here", value=models)
        embed.add_field(name="Keep working on an image", value=KEEP_WORKING, inline=False)
        embed.add_field(name="From Midjourney", value=FROM_MIDJOURNEY, inline=False)
        notes: list[str | None] = []
        prefs = await self.bot.services.preferences.get(interaction.guild_id or 0, interaction.user.id)
        if sets := option_sets_of(prefs.option_sets):
            # Their own parameter names (bot/option_sets.py), by name: /preferences shows what each stands for.
            names = [f"`--{name}`" for name in sets][:8]
            more = f" and {len(sets) - len(names)} more" if len(sets) > len(names) else ""
            notes.append(f"Your option sets: {', '.join(names)}{more} (`/preferences` shows them).")
        if prefs.remix:
            notes.append("Remix mode is on: a Vary, Re-roll, Zoom out or pan asks for words first.")
        suffix_at = len(notes)
        if self.bot.settings.quotas.enabled:
            status = await self.bot.services.quotas.status(member_of(interaction))
            notes += [quota_line(status), at_once_line(status, self.bot.settings.quotas.waiting_per_user)]
        kept = [note for note in notes if note is not None]
        if prefs.suffix:
            # Added to each new prompt of theirs (bot/prompt_suffix.py): said where they look, so it never surprises;
            # shortened where the rest leaves the field (Discord's 1,024 characters) too little for all of it.
            room = FIELD_CHARS - len("\n".join([*kept, YOURS])) - len("\nYour suffix, added to each new prompt: ``")
            shown = render.truncate(prefs.suffix.replace("`", chr(39)), max(room, 2))
            kept.insert(suffix_at, f"Your suffix, added to each new prompt: `{shown}`")
        yours = render.truncate("\n".join([*kept, YOURS]), FIELD_CHARS)
        embed.add_field(name="Yours", value=yours, inline=False)
        if is_moderator(interaction, self.bot.settings.moderation.moderator_role_id):
            embed.add_field(name="Moderators", value=MODERATORS, inline=False)
        if is_admin(interaction, self.bot.settings.admin.role_id):
            note = refusal_note(interaction.guild) if interaction.guild is not None else None
            embed.add_field(name="Admins", value=ADMINS if note is None else f"{ADMINS}\n{note}", inline=False)
        await answer_privately(interaction, embed=embed)

    async def _models(self, guild_id: int, user_id: int, level: int) -> str:
        """Each model an enabled provider serves; the one an /imagine without ``model`` uses here, and why."""
        services = self.bot.services
        catalogue = services.catalogue
        server = (await services.settings_store.guild_defaults(guild_id)).default_model
        prefs = await services.preferences.get(guild_id, user_id)
        # The model /imagine uses in this channel when none is named, chosen as it chooses (bot/preferences.py
        # model_at): a stored server default no enabled provider serves is passed over, as there, and so is a
        # saved or default model no provider honouring this channel's safety level serves.
        choice = model_at(
            catalogue, prefs, server_default=server, configured=self.bot.settings.imagine.default_model, level=level
        )
        mine = preferred_model(catalogue, prefs)
        lines = []
        for model in catalogue.models():
            if model == choice.model and choice.passed_over is not None:
                ruled_out = catalogue.display_name(choice.passed_over)
                why = f"used in this channel: {ruled_out} cannot run at its safety level"
            elif model == mine:
                why = "your default" if model == choice.model else "your default, ruled out by this channel's level"
            elif model == choice.model and not mine:
                # The server's stored default, else the bot's configured one: to a member, the server's.
                why = "the server's default"
            else:
                why = ""
            lines.append(catalogue.display_name(model) + (f" ({why})" if why else ""))
        return "\n".join(lines) or "None: no provider is enabled. Tell an admin."


async def setup(bot: Bananacord) -> None:
    await bot.add_cog(Help(bot))
