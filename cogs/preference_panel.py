"""/preferences as a panel: lists and buttons under the member's preferences, as Midjourney's /settings has them.

Typing ``/preferences aspect_ratio:16:9`` means knowing the option's name and what the model offers; Midjourney's
members set theirs by clicking. Under the preferences /preferences shows, a list each for the model, the aspect
ratio, the resolution and the images per prompt (offering what the model in use takes, the current choice marked),
a button that turns the pings on or off, one that turns Midjourney's Remix mode on or off (cogs/remix_vary.py), one
that opens the suffix's form (bot/prompt_suffix.py), one that resets them
all, and one that turns to a second page of lists: the format, thinking and web search (greyed out where no provider
of the model offers one). A choice is saved as the
same option typed would be (cogs/preferences.py ``MemberPreferences.chose``: the same checks, the same word on a new
model's preferences it cannot take) and the answer is redrawn in place. The answer is private, so only its member can
use it; each item's custom_id names what it sets, so a panel opened before a restart still works.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import discord

from bot.preferences import Preferences
from cogs.slow_answers import watched_answer

# The preferences set by a list here, by the panel's page: four lists and a row of buttons fit a message.
PAGES = {
    "main": ("model", "aspect_ratio", "resolution", "count"),
    "more": ("output_format", "thinking_level", "web_search"),
}
LISTED = (*PAGES["main"], *PAGES["more"])
# A list's choice of "none": the preference dropped, as ``forget`` drops it.
NONE = "-"
_PLACEHOLDERS = {
    "model": "Model",
    "aspect_ratio": "Aspect ratio",
    "resolution": "Resolution",
    "count": "Images per prompt",
    "output_format": "Format",
    "thinking_level": "Thinking",
    "web_search": "Web search",
}


class PanelOwner(Protocol):
    """What the panel's items call: the /preferences cog (cogs/preferences.py)."""

    def chose(self, interaction: discord.Interaction[Any], name: str, value: str) -> Awaitable[None]: ...

    def switched(
        self, interaction: discord.Interaction[Any], *, ping: bool | None, reset: bool, remix: bool | None = None
    ) -> Awaitable[None]: ...

    def paged(self, interaction: discord.Interaction[Any], page: str) -> Awaitable[None]: ...

    def suffix_form(self, interaction: discord.Interaction[Any]) -> Awaitable[None]: ...

    def option_sets_form(self, interaction: discord.Interaction[Any]) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class Offered:
    """What the panel offers, for the model /imagine would use now."""

    models: Sequence[tuple[str, str]]  # (model, its name), as the catalogue serves them
    server_model: str  # the name of the model used with no preference (the server's or the bot's default)
    ratios: Sequence[tuple[str, str]]  # (ratio, its label: "16:9 (landscape)"), "auto" last where offered
    resolutions: Sequence[str]
    most_images: int  # the server's cap on images per prompt
    pings: bool  # whether the server pings anyone at all
    formats: Sequence[str] = ()  # those some provider of the model takes ("png", "jpg")
    thinking: Sequence[str] = ()
    web_search: bool = False


def panel(prefs: Preferences, offered: Offered, page: str = "main") -> discord.ui.View:
    """The lists and buttons under a member's preferences, the current choices marked: the model, shape, size and
    images per prompt, or (``page`` "more") the format, thinking and web search the model's providers offer."""
    view = discord.ui.View(timeout=None)
    default = (NONE, "model's default")
    choices = {
        "model": [(NONE, f"server default ({offered.server_model})"), *offered.models],
        "aspect_ratio": [default, *offered.ratios],
        "resolution": [default, *((size, _size(size)) for size in offered.resolutions)],
        "count": [(str(n), str(n)) for n in range(1, offered.most_images + 1)],
        "output_format": [default, *((kind, kind.upper()) for kind in offered.formats)],
        "thinking_level": [default, *((level, level) for level in offered.thinking)],
        "web_search": [default, *((("on", "on"), ("off", "off")) if offered.web_search else ())],
    }
    for row, name in enumerate(PAGES[page]):
        chosen = getattr(prefs, name)
        current = NONE if chosen is None else str(chosen)
        if name == "count" and chosen is None:
            current = "1"
        elif name == "web_search" and chosen is not None:
            current = "on" if chosen else "off"
        if choices[name] == [default]:
            # Nothing to choose: no provider of the model takes it here. Shown so, not left out without a word.
            view.add_item(PreferenceList(name, None, row=row, unavailable=True))
            continue
        # Each label names its list: a closed list shows its chosen option, not its placeholder.
        options = [
            discord.SelectOption(label=f"{_PLACEHOLDERS[name]}: {label}"[:100], value=value, default=value == current)
            for value, label in choices[name][:25]  # Discord's most per list
        ]
        view.add_item(PreferenceList(name, options, row=row))
    view.add_item(PingSwitch(on=prefs.ping is not False, pings=offered.pings))
    view.add_item(RemixSwitch(on=bool(prefs.remix)))
    view.add_item(SuffixButton())
    if page == "more":
        view.add_item(OptionSetsButton())  # in the row the main page's fourth list takes
    view.add_item(ResetPreferences())
    view.add_item(PanelPage("more" if page == "main" else "main"))
    return view


def _size(size: str) -> str:
    return f"{size} px" if size.isdigit() else size


def _owner(interaction: discord.Interaction[Any]) -> tuple[PanelOwner, Any]:
    """The /preferences cog, and the database its answers are watched on."""
    cog = interaction.client.get_cog("MemberPreferences")
    assert cog is not None  # loaded with this module's items (bot/app.py EXTENSIONS)
    return cast(PanelOwner, cog), cast(Any, cog).bot.services.db


class PreferenceList(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=re.compile(rf"bananacord:prefs:(?P<name>{'|'.join(LISTED)})"),
):
    """One preference's list; the choice is read from the interaction (a panel opened before a restart too)."""

    def __init__(
        self,
        name: str,
        options: list[discord.SelectOption] | None = None,
        *,
        row: int | None = None,
        unavailable: bool = False,
    ) -> None:
        placeholder = f"{_PLACEHOLDERS[name]}: not offered for this model here" if unavailable else _PLACEHOLDERS[name]
        super().__init__(
            discord.ui.Select(
                custom_id=f"bananacord:prefs:{name}",
                placeholder=placeholder,
                options=options or [discord.SelectOption(label="-", value=NONE)],
                row=row,
                disabled=unavailable,
            )
        )
        self.name = name

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PreferenceList:
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        value = self.item.values[0] if self.item.values else NONE
        await watched_answer(
            interaction, db, f"/preferences' {self.name} list", owner.chose(interaction, self.name, value)
        )


class PingSwitch(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:prefs:ping:(?P<turn>on|off)"),
):
    """Turns the member's pings off where they are on, and on where they are off (the custom_id says which)."""

    def __init__(self, *, on: bool, pings: bool = True) -> None:
        label = "Pings: on" if on else "Pings: off"
        super().__init__(
            discord.ui.Button(
                label=label if pings else "No pings in this server",
                emoji="🔔" if on and pings else "🔕",
                style=discord.ButtonStyle.secondary,
                custom_id=f"bananacord:prefs:ping:{'off' if on else 'on'}",
                disabled=not pings,
                row=4,
            )
        )
        self.turn_on = not on

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PingSwitch:
        return cls(on=match["turn"] == "off")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        await watched_answer(
            interaction, db, "/preferences' ping switch", owner.switched(interaction, ping=self.turn_on, reset=False)
        )


class ResetPreferences(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.compile(r"bananacord:prefs:reset")
):
    """Drops every preference, as ``/preferences reset:True``."""

    def __init__(self) -> None:
        super().__init__(
            discord.ui.Button(
                label="Reset all", style=discord.ButtonStyle.danger, custom_id="bananacord:prefs:reset", row=4
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResetPreferences:
        return cls()

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        await watched_answer(interaction, db, "/preferences' reset", owner.switched(interaction, ping=None, reset=True))


class PanelPage(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:prefs:page:(?P<page>main|more)"),
):
    """Turns the panel to its other page: the format, thinking and web search lists, or back."""

    def __init__(self, page: str) -> None:
        label = "More: format, thinking, web search" if page == "more" else "Back: model, shape, size"
        super().__init__(
            discord.ui.Button(
                label=label, style=discord.ButtonStyle.secondary, custom_id=f"bananacord:prefs:page:{page}", row=4
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PanelPage:
        return cls(match["page"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        await watched_answer(interaction, db, "/preferences' page", owner.paged(interaction, self.page))


class _FormButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.compile(r"(?!)")):
    """A panel button that opens one of /preferences' forms. Each kind gives its own template (this one matches
    nothing, and is never registered), label, emoji, custom_id, row, and which of the owner's forms it opens."""

    LABEL: ClassVar[str]
    EMOJI: ClassVar[str]
    ID: ClassVar[str]
    ROW: ClassVar[int]
    WHAT: ClassVar[str]  # the button, as a slow answer's log names it

    def __init__(self) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.LABEL,
                emoji=self.EMOJI,
                style=discord.ButtonStyle.secondary,
                custom_id=self.ID,
                row=self.ROW,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> _FormButton:
        return cls()

    def opened(self, owner: PanelOwner, interaction: discord.Interaction[Any]) -> Awaitable[None]:
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        await watched_answer(interaction, db, self.WHAT, self.opened(owner, interaction))


class SuffixButton(_FormButton, template=re.compile(r"bananacord:prefs:suffix")):
    """Opens the form that sets the member's suffix (bot/prompt_suffix.py), filled with the one they have."""

    LABEL, EMOJI, ID, ROW, WHAT = "Suffix", "✏️", "bananacord:prefs:suffix", 4, "/preferences' suffix button"

    def opened(self, owner: PanelOwner, interaction: discord.Interaction[Any]) -> Awaitable[None]:
        return owner.suffix_form(interaction)


class OptionSetsButton(_FormButton, template=re.compile(r"bananacord:prefs:sets")):
    """Opens the form holding the member's option sets (bot/option_sets.py), one a line, to change all at once."""

    LABEL, EMOJI, ID, ROW, WHAT = "Option sets", "🧩", "bananacord:prefs:sets", 3, "/preferences' option sets button"

    def opened(self, owner: PanelOwner, interaction: discord.Interaction[Any]) -> Awaitable[None]:
        return owner.option_sets_form(interaction)


def one_box_form(
    *,
    title: str,
    form_id: str,
    box_id: str,
    label: str,
    description: str,
    current: str | None,
    placeholder: str,
    most: int,
    paragraph: bool = False,
) -> discord.ui.Modal:
    """A form of one optional text box, filled with ``current`` (empty, the member drops what it holds). Its submit
    is answered by MemberPreferences.on_interaction (cogs/preferences.py), not by this object, so that a form opened
    before a restart is answered too."""
    form = discord.ui.Modal(title=title, custom_id=form_id, timeout=None)
    form.add_item(
        discord.ui.Label(
            text=label,
            description=description,  # at most 100 characters: Discord's limit for a label's description
            component=discord.ui.TextInput(
                custom_id=box_id,
                style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
                default=current,
                placeholder=placeholder,
                required=False,
                max_length=most,
            ),
        )
    )
    # A stopped modal is not kept by discord.py (send_modal stores only unfinished ones).
    form.stop()
    return form


# The forms' custom_ids, and their boxes'.
SUFFIX_FORM_ID = re.compile(r"bananacord:prefs:suffix-form")
SUFFIX_INPUT_ID = "suffix"
SETS_FORM_ID = re.compile(r"bananacord:prefs:sets-form")
SETS_INPUT_ID = "sets"


def suffix_modal(current: str | None, *, most: int) -> discord.ui.Modal:
    """The member's suffix, to change or empty (to drop it)."""
    return one_box_form(
        title="Your prompt suffix",
        form_id="bananacord:prefs:suffix-form",
        box_id=SUFFIX_INPUT_ID,
        label="Added to the end of each new prompt",
        description="Words, then --no, --tile or --niji if you like. Leave it empty to drop it.",
        current=current,
        placeholder="in watercolour, soft morning light --no text",
        most=most,
    )


def option_sets_modal(lines: str | None, *, most: int) -> discord.ui.Modal:
    """The member's option sets, one a line ("wide --ar 21:9 --style raw"): a line taken out drops its set."""
    return one_box_form(
        title="Your option sets",
        form_id="bananacord:prefs:sets-form",
        box_id=SETS_INPUT_ID,
        label="One a line: a name, then its parameters",
        description="Then type --wide in a prompt. A line taken out drops its set; empty drops them all.",
        current=lines,
        placeholder="wide --ar 21:9 --style raw\nclean --no text, watermark",
        most=most,
        paragraph=True,
    )


class RemixSwitch(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"bananacord:prefs:remix:(?P<turn>on|off)"),
):
    """Turns Midjourney's Remix mode on where it is off, and off where it is on (cogs/remix_vary.py): with it on, a
    Vary button first asks for the words to vary by."""

    def __init__(self, *, on: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label="Remix: on" if on else "Remix: off",
                emoji="🎛️",
                style=discord.ButtonStyle.primary if on else discord.ButtonStyle.secondary,
                custom_id=f"bananacord:prefs:remix:{'off' if on else 'on'}",
                row=4,
            )
        )
        self.turn_on = not on

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RemixSwitch:
        return cls(on=match["turn"] == "off")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        owner, db = _owner(interaction)
        switched = owner.switched(interaction, ping=None, reset=False, remix=self.turn_on)
        await watched_answer(interaction, db, "/preferences' Remix switch", switched)
