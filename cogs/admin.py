"""Admin commands: the server's default model and provider, and the providers' state, which this cog
also records (and reports in ``[admin] alert_channel_id``) when the runner says a provider needs its
owner or works again (bot/events.py).

Permission is enforced here, in code (Manage Server, or the configured admin role), not only by
Discord's default_permissions, which a server can override in its integration settings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Bananacord
from bot.catalogue import usd
from bot.channel_rights import SHOWING, SHOWING_IN_THREAD, lacking, names
from bot.config import PROVIDER_NAMES
from bot.errors import InvalidRequestError
from bot.events import ProviderProblem, ProviderRecovered
from bot.invite import invite_url
from bot.jobs import MAX_CANDIDATES
from bot.preferences import served
from bot.store.gallery import GallerySetting
from bot.store.settings import GuildDefaults, ProviderHealth
from cogs.channel_check import channel_check, server_check
from cogs.errors import storage_answer
from cogs.gallery import DEFAULT_STARS, Gallery, members
from cogs.imagine import MODEL_CHOICES
from cogs.moderation import LevelChannel, LogChannel, record_moderation
from cogs.private_answers import answer_privately
from cogs.ready_pings import pings_line

log = logging.getLogger(__name__)

PROVIDER_CHOICES = [app_commands.Choice(name=name, value=name) for name in PROVIDER_NAMES]


def is_admin(interaction: discord.Interaction[Any], admin_role_id: int | None) -> bool:
    """Whether the member is a bot admin in this server: Manage Server (or Administrator) from their roles, or
    the configured admin role.

    Not ``interaction.permissions``: those are resolved in the channel the command was used in, overwrites
    included, so Manage Server granted in one channel's overwrites made its holder a bot admin server-wide."""
    user = interaction.user
    if not isinstance(user, discord.Member):
        return False
    perms = user.guild_permissions  # from the member's roles (and ownership), not any channel's overwrites
    if perms.manage_guild or perms.administrator:
        return True
    return admin_role_id is not None and any(role.id == admin_role_id for role in user.roles)


async def record_admin_change(
    bot: Bananacord, interaction: discord.Interaction[Any], action: str, change: str, **audit: Any
) -> str:
    """Keep an admin's change in the audit log, with who made it, and post it to the server's moderation log
    channel (``record_moderation``: posted with no mentions allowed, so naming people pings nobody).

    The change itself is already saved: if the audit log cannot be written (the database busy or refusing
    writes), the admin is still told it was made, with a note, rather than "nothing was saved", which
    invites doing it again (a second grant). Returns that note, or "" when all went well."""
    actor = interaction.user.id
    log.info("guild %s: user %s %s", interaction.guild_id, actor, change)
    try:
        await record_moderation(
            bot, interaction.guild_id or 0, action, f"<@{actor}> {change}.", actor_id=actor, **audit
        )
    except Exception as exc:
        if storage_answer(exc) is None:
            raise
        log.warning("guild %s: could not write %s by %s to the audit log: %s", interaction.guild_id, action, actor, exc)
        return (
            "It is done, but the audit log could not record it (the bot's database is busy or not taking "
            "writes); the bot's log file has it."
        )
    return ""


def gallery_line(setting: GallerySetting | None) -> str:
    """The server's gallery, as an admin reads it."""
    if setting is None:
        return "This server has no gallery. Set one with `/admin gallery channel:#showcase` (`stars:` to say how many)."
    return (
        f"Gallery: <#{setting.channel_id}>. An image of mine that {members(setting.stars)} star with a ⭐ (its own "
        "member's not counted) is posted there once, with who made it and a link to it."
    )


def require_admin(interaction: discord.Interaction[Any], admin_role_id: int | None) -> None:
    """Refuse (ephemerally, through the error handler) anyone who is not a bot admin in this server."""
    if interaction.guild_id is None:
        raise app_commands.CheckFailure("Admin commands work in a server, not in DMs.")
    if not is_admin(interaction, admin_role_id):
        raise app_commands.CheckFailure("You need the Manage Server permission (or the bot's admin role) for this.")


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminsOnlyGroup(commands.GroupCog):
    """A slash command group for the server's admins (/admin, /usage): hidden from others by default, and
    checked in code on every command, since a server can override the default in its integration settings.
    Subclasses name the group (``group_name=``); the decorators here carry over to their groups."""

    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction, self.bot.settings.admin.role_id)
        return True


class Admin(AdminsOnlyGroup, group_name="admin", group_description="Bananacord settings for this server"):
    @app_commands.command(name="defaults")
    @app_commands.describe(
        model="Model /imagine uses when a member picks none",
        provider="Provider tried first (others remain as failover)",
        max_count=f"Most images a member may ask for with one /imagine (count), 1 to {MAX_CANDIDATES}",
        pings="Whether a slow request pings its member when it ends (each member may still turn it off)",
        reset="Forget this server's defaults and use the bot's configuration",
    )
    @app_commands.choices(model=MODEL_CHOICES, provider=PROVIDER_CHOICES)
    async def defaults(
        self,
        interaction: discord.Interaction[Any],
        model: str | None = None,
        provider: str | None = None,
        max_count: app_commands.Range[int, 1, MAX_CANDIDATES] | None = None,
        pings: bool | None = None,
        reset: bool = False,
    ) -> None:
        """Show or set this server's defaults: model, provider, images per /imagine, pings."""
        assert interaction.guild_id is not None
        store = self.bot.services.settings_store
        catalogue = self.bot.services.catalogue
        configured = self.bot.settings.imagine
        current = await store.guild_defaults(interaction.guild_id)
        noted = ""
        # The Range above is told to Discord only; discord.py checks nothing (a hand-made payload or a
        # modified client sends any integer). Stored, -3 or 99 refused every /imagine in the server ("count
        # must be at least 1"), and 0 was taken as "not given" and kept the old cap while saying it was set.
        if max_count is not None and not 1 <= max_count <= MAX_CANDIDATES:
            raise InvalidRequestError(
                f"`max_count` must be from 1 to {MAX_CANDIDATES} images per /imagine, not {max_count}. "
                "Nothing was changed.",
                detail=f"max_count {max_count} out of 1..{MAX_CANDIDATES}",
            )
        if reset or model is not None or provider is not None or max_count is not None or pings is not None:
            if model is not None and model not in catalogue.models():
                offered = ", ".join(catalogue.display_name(m) for m in catalogue.models())
                raise InvalidRequestError(f"`{model}` is not served by any enabled provider. Available: {offered}.")
            if provider is not None and provider not in catalogue.providers:
                raise InvalidRequestError(
                    f"`{provider}` is not enabled on this bot. Enabled: {', '.join(catalogue.providers)}."
                )
            # ``is not None``, not ``or``: a value given is the value set (``max_count or ...`` kept the old
            # cap for 0; an empty model or provider is refused above).
            chosen_model = None if reset else (model if model is not None else current.default_model)
            chosen_provider = None if reset else (provider if provider is not None else current.default_provider)
            chosen_count = None if reset else (max_count if max_count is not None else current.max_count)
            chosen_pings = None if reset else (pings if pings is not None else current.pings)
            # Only what is set here is checked, against the model /imagine will use: a stored model or provider
            # the operator has since turned off is not in use (bot/preferences.py model_for, cogs/policy.py), and
            # checked against it every change was refused ("segmind does not serve Nano Banana 2"), max_count too.
            in_force = served(catalogue, chosen_model) or configured.default_model
            if (
                (model is not None or provider is not None)
                and chosen_provider in catalogue.providers
                and not catalogue.capabilities(chosen_provider, in_force)
            ):
                raise InvalidRequestError(
                    f"{chosen_provider} does not serve {catalogue.display_name(in_force)}, so it cannot be the "
                    "provider tried first for it. Choose one that serves it (`/admin providers` lists them)."
                )
            before = self._described(current)
            current = await store.set_guild_defaults(
                interaction.guild_id,
                model=chosen_model,
                provider=chosen_provider,
                by=interaction.user.id,
                now=self.bot.clock(),
                max_count=chosen_count,
                pings=chosen_pings,
            )
            change = (
                "reset this server's defaults to the bot's configuration"
                if reset
                else f"set this server's defaults: {self._described(current)}"
            )
            change += f" (before: {before})"
            noted = await record_admin_change(self.bot, interaction, "server_defaults", change, reason=change)
        embed = self._defaults_embed(current)
        if noted:
            embed.description = noted
        await answer_privately(interaction, embed=embed)

    def _described(self, defaults: GuildDefaults) -> str:
        """A server's stored defaults in a line, for the audit log (what is stored, in use or not)."""
        model = self.bot.services.catalogue.display_name(defaults.default_model) if defaults.default_model else None
        cap = defaults.max_count or f"{MAX_CANDIDATES} (bot maximum)"
        provider = defaults.default_provider or "bot default"
        pings = "bot default" if defaults.pings is None else ("on" if defaults.pings else "off")
        return (
            f"model: {model or 'bot default'} · first provider: {provider} · images per /imagine: up to {cap}"
            f" · pings: {pings}"
        )

    def _defaults_embed(self, current: GuildDefaults) -> discord.Embed:
        """What /imagine uses in this server, and a stored choice it does not use, with why."""
        catalogue = self.bot.services.catalogue
        configured = self.bot.settings.imagine
        stored_model, stored_provider = current.default_model, current.default_provider
        # As /imagine chooses them (bot/preferences.py model_for; cogs/policy.py admit): a stored model no
        # enabled provider serves is passed over for the configured one; a stored provider not enabled, or not
        # serving the model, is passed over for ``[imagine] default_provider``. Shown as ``stored or
        # configured``, such a provider put nothing first, and the bare route order was shown while /imagine
        # went to the configured provider.
        model_name = served(catalogue, stored_model) or configured.default_model
        first = catalogue.first_choice(model_name, stored_provider, configured.default_provider)
        embed = discord.Embed(title="🍌 Server defaults", colour=discord.Colour(0xF5C518))
        model_line = catalogue.display_name(model_name) + ("" if model_name == stored_model else " (bot default)")
        if stored_model is not None and model_name != stored_model:
            model_line += (
                f"\nThis server's `{stored_model}` is not in use: no enabled provider serves it. "
                "Set `model` to choose another."
            )
        embed.add_field(name="Model", value=model_line)
        order = " → ".join(catalogue.route(model_name, first=first)) or "none enabled"
        if stored_provider is not None and stored_provider not in catalogue.providers:
            order += (
                f"\nThis server's provider `{stored_provider}` is not in use: it is not enabled on this bot. "
                "Set `provider` to choose another."
            )
        elif stored_provider is not None and not catalogue.capabilities(stored_provider, model_name):
            order += f"\nThis server's provider `{stored_provider}` is not in use: it does not serve this model."
        embed.add_field(name="Provider order", value=order, inline=False)
        cap = current.max_count or MAX_CANDIDATES
        embed.add_field(
            name="Images per /imagine",
            value=f"up to {cap} (`count`){'' if current.max_count else ' (bot maximum)'}",
            inline=False,
        )
        embed.add_field(name="Pings", value=pings_line(current, configured), inline=False)
        if current.updated_by:
            embed.set_footer(text=f"Last changed by user {current.updated_by}")
        return embed

    @commands.Cog.listener()
    async def on_provider_problem(self, event: ProviderProblem) -> None:
        """A provider's key was rejected or its credit ran out: record it and tell the admins once."""
        exc = event.error
        changed = await self.bot.services.settings_store.mark_provider(
            event.provider, healthy=False, category=str(exc.category), detail=exc.user_message, now=self.bot.clock()
        )
        log.error("provider %s needs attention (%s): %s", event.provider, exc.category, exc.detail)
        channel_id = self.bot.settings.admin.alert_channel_id
        if not changed or channel_id is None:
            return
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                f"⚠️ Provider **{event.provider}** needs attention: {exc.user_message} "
                "Jobs fail over to the next provider meanwhile. `/admin providers` shows the state.",
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as failed:  # the channel gone, the bot's permission taken, Discord down
            log.warning(
                "could not post the alert about provider %s to channel %s (HTTP %s); /admin providers shows it",
                event.provider,
                channel_id,
                failed.status,
            )

    @commands.Cog.listener()
    async def on_provider_recovered(self, event: ProviderRecovered) -> None:
        await self.bot.services.settings_store.mark_provider(
            event.provider, healthy=True, category=None, detail="accepted a job again", now=self.bot.clock()
        )
        log.info("provider %s works again", event.provider)

    @app_commands.command(name="providers")
    async def providers(self, interaction: discord.Interaction[Any]) -> None:
        """Enabled providers: their models, prices and health."""
        catalogue = self.bot.services.catalogue
        health = await self.bot.services.settings_store.provider_health()
        embed = discord.Embed(title="🍌 Providers", colour=discord.Colour(0xF5C518))
        for name in catalogue.providers:
            lines = [self._health_line(name, health.get(name))]
            for model in catalogue.models():
                caps = catalogue.capabilities(name, model)
                if caps is None:
                    continue
                prices = ", ".join(f"{size} {usd(micro)}" for size, micro in caps.prices_micro_usd)
                lines.append(f"{caps.display_name}: {prices or 'price unknown'}")
            embed.add_field(name=name, value="\n".join(lines)[:1024], inline=False)
        await answer_privately(interaction, embed=embed)

    @app_commands.command(name="gallery")
    @app_commands.describe(
        channel="Where an image enough members starred with a ⭐ is posted (left out: the gallery as it is)",
        stars="How many members' ⭐ post an image, its own member's not counted (3)",
        off="Stop posting starred images (those posted stay)",
    )
    async def gallery(
        self,
        interaction: discord.Interaction[Any],
        channel: LogChannel | None = None,
        stars: app_commands.Range[int, 1, 50] | None = None,
        off: bool = False,
    ) -> None:
        """The server's gallery: a channel of the images its members star most."""
        guild_id = interaction.guild_id or 0
        cog = self.bot.get_cog("Gallery")
        assert isinstance(cog, Gallery)  # loaded before this cog's commands are used (bot/app.py EXTENSIONS)
        current = await cog.store.setting(guild_id)
        if off:
            if channel is not None or stars is not None:
                raise InvalidRequestError("`off:True` stops the gallery: give it alone.")
            if not await cog.store.clear(guild_id):
                await answer_privately(interaction, "This server has no gallery.")
                return
            noted = await record_admin_change(self.bot, interaction, "gallery", "turned the gallery off")
            await answer_privately(interaction, f"The gallery is off: starred images are no longer posted. {noted}")
            return
        if channel is None and stars is None:
            await answer_privately(interaction, gallery_line(current))
            return
        target = channel.id if channel is not None else current.channel_id if current is not None else None
        if target is None:
            raise InvalidRequestError("Name the gallery's channel too: `/admin gallery channel:#showcase`.")
        count = stars if stars is not None else current.stars if current is not None else DEFAULT_STARS
        place = interaction.guild.get_channel_or_thread(target) if interaction.guild is not None else None
        me = interaction.guild.me if interaction.guild is not None else None
        if place is not None and me is not None:
            rights = SHOWING_IN_THREAD if isinstance(place, discord.Thread) else SHOWING
            missing = lacking(place.permissions_for(me), rights)
            if missing:  # a post of words alone would pass the try below, and every image then fail
                raise InvalidRequestError(
                    f"The bot lacks {names(missing)} in <#{target}>, so nothing changed: a gallery post is a card with "
                    "the image. Allow it there for the bot's role, then try again."
                )
        if current is None or current.channel_id != target:
            # Tried before it is kept, as the moderation log's is: a gallery the bot may not post in would take every
            # starred image and show none.
            try:
                await self.bot.get_partial_messageable(target, guild_id=guild_id).send(
                    f"<@{interaction.user.id}> made this channel the server's gallery: an image of mine that "
                    f"{members(count)} star with a ⭐ is posted here.",
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
                why = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
                log.info("guild %s: the gallery channel %s refused a post (%s)", guild_id, target, why)
                raise InvalidRequestError(
                    f"The bot cannot post in <#{target}>, so nothing changed. Give it View Channel, Send Messages, "
                    "Embed Links and Attach Files there, then try again."
                ) from None
        await cog.store.set(guild_id, target, count, by=interaction.user.id, now=time.time())
        change = f"set the gallery to <#{target}>, for images {members(count)} starred"
        noted = await record_admin_change(self.bot, interaction, "gallery", change, channel_id=target)
        await answer_privately(interaction, f"{gallery_line(GallerySetting(target, count))} {noted}".strip())

    @app_commands.command(name="check")
    @app_commands.describe(channel="One channel or thread to look at in detail (left out: the whole server)")
    async def check(self, interaction: discord.Interaction[Any], channel: LevelChannel | None = None) -> None:
        """Where the bot lacks a permission it uses (to answer replies, ping, read links) and what that costs."""
        guild = interaction.guild
        me = guild.me if guild is not None else None
        if guild is None or me is None:  # a server discord.py has not been sent yet (a start under way)
            await answer_privately(interaction, "The bot is still getting to know this server: try again in a minute.")
            return
        if channel is None:
            settings = await self.bot.services.moderation.guild(guild.id)
            gallery = self.bot.get_cog("Gallery")
            shown = await gallery.store.setting(guild.id) if isinstance(gallery, Gallery) else None
            embed = server_check(
                me,
                log_channel_id=settings.log_channel_id,
                alert_channel_id=self.bot.settings.admin.alert_channel_id,
                gallery_id=shown.channel_id if shown is not None else None,
                invite=self._invite(),
            )
            await answer_privately(interaction, embed=embed)
            return
        place = guild.get_channel_or_thread(channel.id)
        # discord.py keeps every channel of the server, seen or not, and the active threads: not an archived thread,
        # which Discord is asked for (a private one the bot is not in answers 403 or 404).
        if place is None:
            try:
                place = await guild.fetch_channel(channel.id)
            except (discord.NotFound, discord.Forbidden):
                await answer_privately(
                    interaction,
                    f"The bot cannot see {channel.mention}: it lacks View Channel there (or in the channel the thread "
                    "belongs to), so replies, reactions and links there go unseen.",
                )
                return
        await answer_privately(interaction, embed=channel_check(place, me, self._invite()))

    def _invite(self) -> str | None:
        return invite_url(self.bot.application_id) if self.bot.application_id is not None else None

    def _health_line(self, name: str, state: ProviderHealth | None) -> str:
        """A provider's health as routing treats it now. The stored state says it failed; whether it is still
        tried last is the catalogue's mark, which lapses (bot/catalogue.py UNHEALTHY_RETRY_SECONDS): shown as
        failing after that, the provider was in fact being tried again (a restart marks it again from the time
        recorded: bot/app.py)."""
        if state is None or state.healthy:
            return "✅ working"
        problem = state.detail or state.category
        when = f"Last failed <t:{int(state.updated_at)}:R>"
        unhealthy = self.bot.services.catalogue.unhealthy
        retry = unhealthy.retry_at(name)
        if name in unhealthy and retry is not None:
            return f"⚠️ {problem}\n{when}: tried last until <t:{int(retry)}:t>, then in turn again."
        return f"🔄 {problem}\n{when}: tried in turn again now; shown working once a job goes through there."


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(Admin(bot))
