"""/preferences: a member's own defaults for /imagine in this server (bot/preferences.py).

Without options it shows them; options set the ones given and keep the rest; ``forget`` drops one and
``reset`` all. The preferences being set are checked as a request for the model they point to would be,
so a member learns at once that a model offers no 8:1, instead of seeing it left out of every /imagine
later. Only those: a stored one the model no longer takes (the server's default model changed since) is
left out where it is used, and does not stand in the way of changing or forgetting another. A change of the
model in use (``model``, ``forget:model``) says which stored ones the new model cannot take, and the screen
marks each as not used, judged against the model /imagine would use now.
Answers are private: preferences are nobody else's business. Under the answer, lists and buttons set the model,
shape, size, images per prompt and pings by clicking (cogs/preference_panel.py), saved through the same checks. The
suffix (words added to each new prompt, bot/prompt_suffix.py) is set with ``suffix:`` or the panel's form, checked
when saved, a term the server blocks included; so are option sets (``option_set:``, bot/option_sets.py), one at a
time.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import derive
from bot.app import Bananacord
from bot.catalogue import MODEL_NAMES
from bot.errors import InvalidRequestError
from bot.jobs import MAX_CANDIDATES
from bot.moderation import PromptBlockedError
from bot.option_sets import (
    MOST_OPTION_SETS,
    OPTION_SET_TYPED_CHARS,
    OPTION_SETS_FORM_CHARS,
    asked_option_set,
    option_sets_of,
    stored_option_sets,
)
from bot.preferences import REQUEST_FIELDS, Preferences, model_for
from bot.prompt_suffix import SUFFIX_MAX_CHARS, checked_suffix
from bot.providers.base import OUTPUT_FORMATS, RESOLUTIONS, THINKING_LEVELS
from bot.render import truncate
from bot.routing import choose_provider
from bot.store.settings import GuildDefaults
from cogs.imagine import OPTION_CHOICES, build_request, form_submit, submitted_text
from cogs.policy import record_blocked
from cogs.preference_panel import (
    LISTED,
    NONE,
    PAGES,
    SETS_FORM_ID,
    SETS_INPUT_ID,
    SUFFIX_FORM_ID,
    SUFFIX_INPUT_ID,
    Offered,
    OptionSetsButton,
    PanelPage,
    PingSwitch,
    PreferenceList,
    RemixSwitch,
    ResetPreferences,
    SuffixButton,
    option_sets_modal,
    panel,
    suffix_modal,
)
from cogs.private_answers import answer_privately
from cogs.ready_pings import server_pings, slow_requests
from cogs.slow_answers import watched_answer

log = logging.getLogger(__name__)

# What each preference is called where a member reads it, in the order shown.
LABELS = {
    "model": "Model",
    "aspect_ratio": "Aspect ratio",
    "resolution": "Resolution",
    "output_format": "Format",
    "thinking_level": "Thinking",
    "web_search": "Web search",
    "count": "Images per prompt",
    "ping": "Ping when done",
    "suffix": "Suffix",
    "remix": "Remix (Vary asks for words)",
    "option_sets": "Option sets",
}
FORGET_CHOICES = [app_commands.Choice(name=label, value=name) for name, label in LABELS.items()]


# The panel's items, each routed by its custom_id (cogs/preference_panel.py), so that a panel drawn before a restart
# answers after it.
PANEL_ITEMS = (PreferenceList, PingSwitch, ResetPreferences, PanelPage, SuffixButton, RemixSwitch, OptionSetsButton)


class MemberPreferences(commands.Cog):
    def __init__(self, bot: Bananacord) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*PANEL_ITEMS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*PANEL_ITEMS)

    @app_commands.command(name="preferences")
    @app_commands.guild_only()
    @app_commands.describe(
        model="Model your /imagine uses when you pick none",
        aspect_ratio="Shape your images take when you pick none",
        resolution="Size your images take when you pick none",
        output_format="File format when you pick none (where the provider lets you choose)",
        thinking="Thinking level when you pick none (where supported)",
        web_search="Web search on or off when you do not say (where supported)",
        count=f"Images per /imagine when you do not say, 1 to {MAX_CANDIDATES} (held to the server's cap)",
        ping="Ping you when a request that took a while ends (its message is edited, which notifies nobody)",
        suffix="Words added to the end of each new prompt of yours, as Midjourney's suffix (--no, --tile too)",
        remix="Vary buttons first ask for the words to vary by (Midjourney's Remix mode)",
        option_set="Your name for parameters, then them: wide --ar 21:9 --style raw (the name alone drops it)",
        forget="Drop one preference",
        reset="Drop all of them (then set the options given here, if any)",
    )
    @app_commands.choices(**OPTION_CHOICES, forget=FORGET_CHOICES)
    async def preferences(
        self,
        interaction: discord.Interaction[Any],
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        output_format: str | None = None,
        thinking: str | None = None,
        web_search: bool | None = None,
        count: app_commands.Range[int, 1, MAX_CANDIDATES] | None = None,
        ping: bool | None = None,
        suffix: app_commands.Range[str, 1, SUFFIX_MAX_CHARS] | None = None,
        remix: bool | None = None,
        option_set: app_commands.Range[str, 1, OPTION_SET_TYPED_CHARS] | None = None,
        forget: str | None = None,
        reset: bool = False,
    ) -> None:
        """Show or set your own defaults for /imagine in this server."""
        assert interaction.guild_id is not None
        guild_id, user_id = interaction.guild_id, interaction.user.id
        store = self.bot.services.preferences
        current = await store.get(guild_id, user_id)
        given: dict[str, Any] = {
            "model": model,
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
            "output_format": output_format,
            "thinking_level": thinking,
            "web_search": web_search,
            "count": count,
            "ping": ping,
            "suffix": None if suffix is None else await self._allowed_suffix(interaction, suffix),
            "remix": remix,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        warning: str | None = None
        if forget is not None and forget not in LABELS:
            raise InvalidRequestError(f"`{forget}` is not a preference; choose one from the list.")
        if option_set is not None:
            if forget == "option_sets" or reset:
                raise InvalidRequestError("Set an option set or drop them all, not both at once.")
            sets = await self._option_sets_after(interaction, current, option_set)
            if sets is None:
                forget = "option_sets"  # the last one dropped
            else:
                changes["option_sets"] = sets
        if reset or forget is not None or changes:
            current, warning = await self._update(guild_id, user_id, current, changes, forget=forget, reset=reset)
        embed, view = await self._embed(guild_id, current), await self._panel(guild_id, current)
        await answer_privately(interaction, warning, embed=embed, view=view)

    async def chose(self, interaction: discord.Interaction[Any], name: str, value: str) -> None:
        """A choice in the panel's list for ``name`` (cogs/preference_panel.py): saved as that option typed would
        be (NONE: forgotten), the answer redrawn in place."""
        if name not in LISTED:
            raise InvalidRequestError("That list is not one of /preferences'.")
        page = "more" if name in PAGES["more"] else "main"
        if value == NONE:
            await self._redraw(interaction, {}, forget=name, page=page)
            return
        if name == "count":
            if not value.isdigit() or not 1 <= int(value) <= MAX_CANDIDATES:
                raise InvalidRequestError(f"`count` must be from 1 to {MAX_CANDIDATES}.")
            await self._redraw(interaction, {"count": int(value)}, page=page)
            return
        if name == "web_search":
            if value not in ("on", "off"):
                raise InvalidRequestError("Web search is on or off.")
            await self._redraw(interaction, {"web_search": value == "on"}, page=page)
            return
        await self._redraw(interaction, {name: value}, page=page)

    async def switched(
        self, interaction: discord.Interaction[Any], *, ping: bool | None, reset: bool, remix: bool | None = None
    ) -> None:
        """The panel's buttons: pings or Remix mode turned on or off, or every preference reset (on the page it
        showed)."""
        changes = {name: value for name, value in (("ping", ping), ("remix", remix)) if value is not None}
        await self._redraw(interaction, changes, reset=reset, page=_page_of(interaction))

    async def suffix_form(self, interaction: discord.Interaction[Any]) -> None:
        """The panel's Suffix button: the form, filled with the member's suffix."""
        assert interaction.guild_id is not None
        prefs = await self.bot.services.preferences.get(interaction.guild_id, interaction.user.id)
        await interaction.response.send_modal(suffix_modal(prefs.suffix, most=SUFFIX_MAX_CHARS))

    async def option_sets_form(self, interaction: discord.Interaction[Any]) -> None:
        """The panel's Option sets button: the form, filled with the member's sets, one a line."""
        assert interaction.guild_id is not None
        prefs = await self.bot.services.preferences.get(interaction.guild_id, interaction.user.id)
        lines = "\n".join(f"{name} {value}" for name, value in option_sets_of(prefs.option_sets).items())
        await interaction.response.send_modal(option_sets_modal(lines or None, most=OPTION_SETS_FORM_CHARS))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """The suffix and option sets forms' submits, whether this process or an earlier one opened them: saved as
        ``/preferences suffix:`` (``option_set:``) saves it (empty: dropped), and the panel they were opened from
        drawn again."""
        db = self.bot.services.db
        if (submitted := form_submit(interaction, SUFFIX_FORM_ID)) is not None:
            typed = submitted_text(submitted[1], SUFFIX_INPUT_ID) or ""
            await watched_answer(interaction, db, "/preferences' suffix form", self._suffix_saved(interaction, typed))
        elif (submitted := form_submit(interaction, SETS_FORM_ID)) is not None:
            typed = submitted_text(submitted[1], SETS_INPUT_ID) or ""
            saved = self._option_sets_saved(interaction, typed)
            await watched_answer(interaction, db, "/preferences' option sets form", saved)

    async def _option_sets_saved(self, interaction: discord.Interaction[Any], typed: str) -> None:
        """The form's lines as the member's option sets, all of them (none: dropped), each checked as
        ``option_set:`` checks one; a line refused is named by its number, nothing saved."""
        sets: dict[str, str] = {}
        lines = [line for line in typed.splitlines() if line.strip()]
        if len(lines) > MOST_OPTION_SETS:  # before each is checked against the server's blocked terms
            raise InvalidRequestError(f"At most {MOST_OPTION_SETS} option sets; the form has {len(lines)} lines.")
        for number, line in enumerate(lines, start=1):
            try:
                name, value = asked_option_set(line)
                if value is None:
                    raise InvalidRequestError(f"`{name}` has no parameters; take the line out to drop that set.")
                if name in sets:
                    raise InvalidRequestError(f"`--{name}` is on two lines; keep one.")
                sets[name] = await self._allowed_option_set(interaction, name, value)
            except InvalidRequestError as refused:
                which = f"Line {number}: " if len(lines) > 1 else ""
                raise type(refused)(f"{which}{refused.user_message}", detail=refused.detail) from None
        stored = stored_option_sets(sets)
        page = _page_of(interaction)
        if stored is None:
            await self._redraw(interaction, {}, forget="option_sets", page=page)
        else:
            await self._redraw(interaction, {"option_sets": stored}, page=page)

    async def _suffix_saved(self, interaction: discord.Interaction[Any], typed: str) -> None:
        if not typed.strip():
            await self._redraw(interaction, {}, forget="suffix", page=_page_of(interaction))
            return
        await self._redraw(
            interaction, {"suffix": await self._allowed_suffix(interaction, typed)}, page=_page_of(interaction)
        )

    async def _allowed_suffix(self, interaction: discord.Interaction[Any], typed: str) -> str:
        """``typed`` as a suffix (bot/prompt_suffix.py ``checked_suffix``), refused as a prompt is if it holds a term
        this server blocks: saved, it would have every /imagine of the member's refused for words they no longer
        see. Logged for the moderators as a blocked prompt is, so that suffixes are no quiet way to try terms."""
        suffix = checked_suffix(typed)
        assert interaction.guild_id is not None
        verdict, _ = await self.bot.services.moderation.check_prompts(interaction.guild_id, suffix)
        if verdict.blocked:
            user_id, channel_id = interaction.user.id, interaction.channel_id
            await record_blocked(
                self.bot,
                interaction.guild_id,
                user_id,
                channel_id,
                suffix,
                verdict.reason,
                what="a /preferences suffix",
            )
            raise PromptBlockedError(
                "Not saved: your suffix contains something this server does not allow. Please rephrase it."
            )
        return suffix

    async def _option_sets_after(
        self, interaction: discord.Interaction[Any], current: Preferences, typed: str
    ) -> str | None:
        """The member's option sets as ``/preferences option_set:`` leaves them (bot/option_sets.py), as stored (None:
        none left). Parameters holding a term this server blocks are refused and logged, as a suffix's are."""
        name, value = asked_option_set(typed)
        sets = option_sets_of(current.option_sets)
        if value is None:
            if name not in sets:
                have = ", ".join(f"`--{each}`" for each in sets) or "none"
                raise InvalidRequestError(f"You have no option set `--{name}` to drop (yours: {have}).")
            del sets[name]
            return stored_option_sets(sets)
        if name not in sets and len(sets) >= MOST_OPTION_SETS:
            raise InvalidRequestError(
                f"You have {MOST_OPTION_SETS} option sets, the most one may keep: drop one first (`option_set:` with "
                "its name alone)."
            )
        sets[name] = await self._allowed_option_set(interaction, name, value)
        return stored_option_sets(sets)

    async def _allowed_option_set(self, interaction: discord.Interaction[Any], name: str, value: str) -> str:
        """``value`` (checked: bot/option_sets.py) as the set ``name``'s parameters, refused and logged as a suffix is
        if it holds a term this server blocks (a `--no` of it would be refused in every prompt using the set)."""
        assert interaction.guild_id is not None
        verdict, _ = await self.bot.services.moderation.check_prompts(interaction.guild_id, value)
        if verdict.blocked:
            await record_blocked(
                self.bot,
                interaction.guild_id,
                interaction.user.id,
                interaction.channel_id,
                f"--{name} {value}",
                verdict.reason,
                what="a /preferences option set",
            )
            raise PromptBlockedError(
                "Not saved: your option set contains something this server does not allow. Please rephrase it."
            )
        return value

    async def paged(self, interaction: discord.Interaction[Any], page: str) -> None:
        """The panel turned to its other ``page``, nothing changed."""
        assert interaction.guild_id is not None
        prefs = await self.bot.services.preferences.get(interaction.guild_id, interaction.user.id)
        await interaction.response.edit_message(
            embed=await self._embed(interaction.guild_id, prefs),
            view=await self._panel(interaction.guild_id, prefs, page if page in PAGES else "main"),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _redraw(
        self,
        interaction: discord.Interaction[Any],
        changes: dict[str, Any],
        *,
        forget: str | None = None,
        reset: bool = False,
        page: str = "main",
    ) -> None:
        """Save the panel's change and draw the answer again in place (on ``page``), with a word on a new model's
        preferences it cannot take."""
        assert interaction.guild_id is not None
        guild_id, user_id = interaction.guild_id, interaction.user.id
        current = await self.bot.services.preferences.get(guild_id, user_id)
        updated, warning = await self._update(guild_id, user_id, current, changes, forget=forget, reset=reset)
        await interaction.response.edit_message(
            content=warning,
            embed=await self._embed(guild_id, updated),
            view=await self._panel(guild_id, updated, page),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _update(
        self,
        guild_id: int,
        user_id: int,
        current: Preferences,
        changes: dict[str, Any],
        *,
        forget: str | None,
        reset: bool,
    ) -> tuple[Preferences, str | None]:
        """``current`` with ``changes`` made (``forget``: one dropped; ``reset``: all first), checked and saved;
        and what the member should read of a change of model."""
        if forget is not None and forget in changes:
            raise InvalidRequestError(f"Set {LABELS[forget].lower()} or forget it, not both at once.")
        updated = replace(Preferences() if reset else current, **changes)
        if forget is not None:
            updated = replace(updated, **{forget: None})
        await self._check(guild_id, updated, changed=set(changes))
        await self.bot.services.preferences.save(guild_id, user_id, updated, now=self.bot.clock())
        log.info("member %s in guild %s changed their preferences", user_id, guild_id)
        was, now = await self._model(guild_id, current), await self._model(guild_id, updated)
        # Saved all the same (a default, never a refusal: bot/preferences.py), but said: taken without a word, a
        # stored 512 and 8:1 were shown as in force under Nano Banana Pro, and every /imagine went out square at 1K.
        return updated, self._unused_warning(now, updated) if now != was else None

    async def _panel(self, guild_id: int, prefs: Preferences, page: str = "main") -> discord.ui.View:
        """The lists and buttons under the preferences (cogs/preference_panel.py), for the model in use now."""
        catalogue = self.bot.services.catalogue
        model = await self._model(guild_id, prefs)
        defaults = await self.bot.services.settings_store.guild_defaults(guild_id)
        server_model = await self._model(guild_id, Preferences())
        offers = [caps for p in catalogue.route(model) if (caps := catalogue.capabilities(p, model))]
        served = {ratio for caps in offers for ratio in caps.aspect_ratios}
        ratios = [(ratio, derive.shape_name(ratio)) for ratio in derive.shapes(catalogue, model)]
        ratios += [("auto", "auto (the model picks)")] if "auto" in served else []
        sizes = {size for caps in offers for size in caps.resolutions}
        offered = Offered(
            models=[(m, catalogue.display_name(m)) for m in catalogue.models()],
            server_model=catalogue.display_name(server_model),
            ratios=ratios,
            resolutions=[size for size in RESOLUTIONS if size in sizes],
            most_images=defaults.max_count or MAX_CANDIDATES,
            pings=server_pings(defaults, self.bot.settings.imagine),
            formats=[kind for kind in OUTPUT_FORMATS if any(kind in caps.output_formats for caps in offers)],
            thinking=[level for level in THINKING_LEVELS if any(level in caps.thinking_levels for caps in offers)],
            web_search=any(caps.web_search for caps in offers),
        )
        return panel(prefs, offered, page)

    async def _model(self, guild_id: int, prefs: Preferences) -> str:
        """The model an /imagine without a model option would use."""
        defaults = await self.bot.services.settings_store.guild_defaults(guild_id)
        return model_for(
            self.bot.services.catalogue,
            prefs,
            server_default=defaults.default_model,
            configured=self.bot.settings.imagine.default_model,
        )

    async def _check(self, guild_id: int, prefs: Preferences, *, changed: set[str]) -> None:
        """Refuse a preference being set (``changed``) that no provider of its model could take, naming what
        it does take. The stored ones are not checked again: one the model no longer takes is left out when
        used (bot/preferences.py fill), and refusing ``count:2`` for a stored 8:1 blocked every change."""
        catalogue = self.bot.services.catalogue
        if "model" in changed and prefs.model not in catalogue.models():
            offered = ", ".join(catalogue.display_name(m) for m in catalogue.models())
            raise InvalidRequestError(f"`{prefs.model}` is not served by any enabled provider. Available: {offered}.")
        if "count" in changed and prefs.count is not None and not 1 <= prefs.count <= MAX_CANDIDATES:
            raise InvalidRequestError(f"`count` must be from 1 to {MAX_CANDIDATES}.")
        asked = {name: getattr(prefs, name) for name in REQUEST_FIELDS if name in changed}
        if not asked:
            return
        request = build_request(model=await self._model(guild_id, prefs), prompt="preferences", **asked)
        try:
            choose_provider(catalogue, request)
        except InvalidRequestError as exc:
            # The refusal names the model and what it does offer ("Nano Banana Pro does not offer ...").
            raise InvalidRequestError(f"Not saved: {exc.user_message}", detail=exc.detail) from None

    def _unused(self, model: str, prefs: Preferences) -> list[str]:
        """The stored preferences (of REQUEST_FIELDS) no provider of ``model`` takes, so that an /imagine with
        it leaves them out: tried in turn, each with those kept before it, as bot/preferences.py fill tries
        them. Judged on what providers offer, not on their health: one out of order is tried again."""
        catalogue = self.bot.services.catalogue
        kept: dict[str, Any] = {}
        left_out: list[str] = []
        for name in REQUEST_FIELDS:
            value = getattr(prefs, name)
            if value is None:
                continue
            try:
                choose_provider(catalogue, build_request(model=model, prompt="preferences", **kept, **{name: value}))
            except InvalidRequestError:
                left_out.append(name)
                continue
            kept[name] = value
        return left_out

    def _unused_warning(self, model: str, prefs: Preferences) -> str | None:
        """What a member whose model in use just became ``model`` reads about the stored preferences it cannot
        take (None: it takes them all)."""
        left_out = [
            f"{LABELS[name].lower()} {_value(name, getattr(prefs, name))}" for name in self._unused(model, prefs)
        ]
        if not left_out:
            return None
        listed = left_out[0] if len(left_out) == 1 else ", ".join(left_out[:-1]) + f" and {left_out[-1]}"
        them = "it" if len(left_out) == 1 else "them"
        return (
            f"Saved. {self.bot.services.catalogue.display_name(model)} does not offer your {listed}, so "
            f"/imagine leaves {them} out while you use it; kept for a model that offers {them} "
            "(`forget` drops one)."
        )

    def _ping_shown(self, value: bool | None, defaults: GuildDefaults) -> str:
        """The ping preference as a member reads it: whether they are pinged, and after how long."""
        imagine = self.bot.settings.imagine
        if not server_pings(defaults, imagine):
            return "off (this server pings nobody)"  # a member's "on" changes nothing: not shown as if it did
        if value is False:
            return "off"
        when = slow_requests(imagine)
        return f"on ({when})" if value else f"on ({when}; the default)"

    async def _embed(self, guild_id: int, prefs: Preferences) -> discord.Embed:
        catalogue = self.bot.services.catalogue
        embed = discord.Embed(
            title="🍌 Your /imagine preferences",
            colour=discord.Colour(0xF5C518),
            description=(
                "Used in this server for the options you leave out of `/imagine`. Options you type win, and "
                "a preference the model you pick cannot take is left out."
            ),
        )
        model = await self._model(guild_id, prefs)
        # Judged against the model in use now, whatever changed it (this member, or /admin defaults): shown
        # as stored, a 512 Nano Banana Pro does not offer read as in force.
        unused = set(self._unused(model, prefs))
        defaults = await self.bot.services.settings_store.guild_defaults(guild_id)
        cap = defaults.max_count or MAX_CANDIDATES
        for name, label in LABELS.items():
            value = getattr(prefs, name)
            if name == "model":
                if prefs.model is None:
                    shown = f"{catalogue.display_name(model)} (server default)"
                elif prefs.model != model:
                    # A stored choice no enabled provider serves now: said so, not shown as in use.
                    # A model the bot no longer knows has no name to show: its id means nothing to a member.
                    was = MODEL_NAMES.get(prefs.model, "Your chosen model")
                    shown = f"{was} is not available now; {catalogue.display_name(model)} is used"
                else:
                    shown = catalogue.display_name(model)
            elif name == "ping":
                shown = self._ping_shown(value, defaults)
            elif name == "suffix":
                shown = "none" if value is None else f"`{value.replace('`', chr(39))}`"
            elif name == "remix":
                shown = "on: a Vary asks for the words first" if value else "off"
            elif name == "option_sets":
                shown = option_sets_shown(option_sets_of(value))
            elif value is None:
                shown = "model's default" if name != "count" else "1"
            elif name in unused:
                shown = f"{_value(name, value)} (not offered by {catalogue.display_name(model)}; not used)"
            elif name == "count" and value > cap:
                shown = f"{value} (this server allows {cap})"
            else:
                shown = _value(name, value)
            embed.add_field(name=label, value=shown, inline=name not in ("suffix", "option_sets"))
        return embed


def _page_of(interaction: discord.Interaction[Any]) -> str:
    """The panel's page the clicked message shows: the one whose button turns back to the first is "more"."""
    components = interaction.message.components if interaction.message is not None else []
    ids = [getattr(child, "custom_id", None) for row in components for child in getattr(row, "children", [row])]
    return "more" if "bananacord:prefs:page:main" in ids else "main"


def option_sets_shown(sets: dict[str, str]) -> str:
    """A member's option sets as their preferences show them, one a line, within an embed field's 1,024."""
    if not sets:
        return "none (`option_set:wide --ar 21:9` makes `--wide` stand for `--ar 21:9`)"
    lines = [f"`--{name}` `{value.replace('`', chr(39))}`" for name, value in sets.items()]
    return truncate("\n".join(lines), 1024)


def _value(name: str, value: Any) -> str:
    """A stored preference as a member reads it."""
    if name in ("web_search", "ping", "remix"):
        return "on" if value else "off"
    return str(value)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, Bananacord)
    await bot.add_cog(MemberPreferences(bot))
