"""A member's own defaults for /imagine (set with /preferences), and how they fill the options left out.

A preference is a default, never a refusal: one the request cannot take (a shape the chosen model does
not offer, web search where no provider of that model has it) is left out, and the request goes on as
if there were none. So is one only providers out of order take (a rejected key, no credit: tried last,
``Catalogue.unhealthy``) while a working provider takes the request without it: the job goes there, as
it would have with no preference. So is a saved model (the member's, or the server's default) no provider
that honours the channel's safety level serves (``model_at``). Options the member typed always win, and bind.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any, Literal

from pydantic import ValidationError

from bot.catalogue import Catalogue
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.moderation import honoured_levels
from bot.providers.base import Capabilities
from bot.routing import choose_provider, takes

# The request fields a preference may fill, in the order they are tried.
REQUEST_FIELDS = ("aspect_ratio", "resolution", "output_format", "thinking_level", "web_search")


@dataclass(frozen=True, slots=True)
class Preferences:
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    output_format: str | None = None
    thinking_level: str | None = None
    web_search: bool | None = None
    count: int | None = None
    # Not an /imagine option: whether a slow request pings its member when it ends (cogs/ready_pings.py).
    ping: bool | None = None
    # Not an option either: words added to the end of each new prompt (bot/prompt_suffix.py).
    suffix: str | None = None
    # Nor this: whether the Vary buttons first ask for the words to vary by (Midjourney's Remix mode).
    remix: bool | None = None
    # Nor these: the member's own parameter names and the parameters each stands for, as JSON (bot/option_sets.py).
    option_sets: str | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


PREFERENCE_FIELDS = tuple(f.name for f in fields(Preferences))


def preferred_model(catalogue: Catalogue, prefs: Preferences) -> str | None:
    """The member's model, while some enabled provider still serves it."""
    return prefs.model if prefs.model in catalogue.models() else None


def served(catalogue: Catalogue, model: str | None) -> str | None:
    """``model`` while some enabled provider serves it, else None."""
    return model if model in catalogue.models() else None


def model_for(catalogue: Catalogue, prefs: Preferences, *, server_default: str | None, configured: str) -> str:
    """The model of a request that names none: the member's, else the server's (/admin defaults), else the
    bot's configured one. A stored choice no enabled provider serves any more (the operator turned its
    provider off) is passed over like an unset one: a stale server default used to refuse every /imagine
    that named no model ("The model `...` is not available")."""
    return preferred_model(catalogue, prefs) or served(catalogue, server_default) or configured


def runs_at(catalogue: Catalogue, model: str, level: int | None) -> bool:
    """Whether some enabled provider serving ``model`` honours the safety ``level`` (None: any provider)."""
    for provider in catalogue.route(model):
        caps = catalogue.capabilities(provider, model)
        if caps is not None and (level is None or level in honoured_levels(caps)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model a request that names none goes with, and the stored choice passed over for it (if any):
    ``whose`` it was, the member's (/preferences), the server's (/admin defaults) or the bot's (configured)."""

    model: str
    passed_over: str | None = None
    whose: Literal["member", "server", "bot"] | None = None


def passed_over_note(catalogue: Catalogue, choice: ModelChoice, level: int | None) -> str | None:
    """Why a request that named no model went with another than the stored one (``model_at``), for the
    member to read beside the job; None when nothing was passed over."""
    if choice.passed_over is None:
        return None
    name = catalogue.display_name
    whose = {"member": "your /preferences model", "server": "this server's default model"}.get(
        choice.whose or "", "the bot's default model"
    )
    return (
        f"Made with {name(choice.model)}: {whose}, {name(choice.passed_over)}, has no provider here that "
        f"honours this channel's safety level ({level})."
    )


def model_at(
    catalogue: Catalogue, prefs: Preferences, *, server_default: str | None, configured: str, level: int | None
) -> ModelChoice:
    """``model_for`` in a channel of safety ``level``: a stored model that some enabled provider serves, but
    none that honours ``level``, is passed over like the other preferences the request cannot take, for the
    next in the same order (the server's, the bot's), else the first model on offer that runs at ``level``.
    When none runs there, the usual model stays, and routing's refusal names the level.

    Before, with SeaArt and Segmind enabled (Segmind's Nano Banana 2 takes a level 6, its Pro has no safety
    knob), a member who had saved Nano Banana Pro had every /imagine without ``model:`` in a level-6 channel
    refused, while their other saved options were left out there and Nano Banana 2 would have run."""
    usual = model_for(catalogue, prefs, server_default=server_default, configured=configured)
    if runs_at(catalogue, usual, level) or not catalogue.route(usual):
        # Runs here; or served nowhere (a configured model no provider serves), which require_served names.
        return ModelChoice(usual)
    order = (preferred_model(catalogue, prefs), served(catalogue, server_default), configured, *catalogue.models())
    runnable = next((m for m in order if m is not None and runs_at(catalogue, m, level)), None)
    if runnable is None:
        return ModelChoice(usual)
    whose: Literal["member", "server", "bot"] = (
        "member" if usual == prefs.model else "server" if usual == server_default else "bot"
    )
    return ModelChoice(runnable, passed_over=usual, whose=whose)


def fill(
    catalogue: Catalogue, request: GenerationRequest, prefs: Preferences, *, given: Collection[str]
) -> GenerationRequest:
    """``request`` with the member's preferences for the fields not in ``given`` (the options they typed),
    each kept only if some provider still takes the request with it, and not only providers out of order
    while a working one takes the request without it.

    A preference only Kie offers (a png format, where SeaArt has none) sent every job to Kie while Kie was
    out of credit: each failed there ("out of credit", refunded), none went to SeaArt, which would have
    made it, though the member never asked for png in that command."""
    chosen: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        value = getattr(prefs, name)
        if value is None or name in given:
            continue
        try:
            trial = GenerationRequest.model_validate({**request.model_dump(), **chosen, name: value})
            provider, _ = choose_provider(catalogue, trial)
        except (ValidationError, InvalidRequestError):
            continue
        if provider in catalogue.unhealthy and _works_without(catalogue, {**request.model_dump(), **chosen}):
            continue
        chosen[name] = value
    if not chosen:
        return request
    return GenerationRequest.model_validate({**request.model_dump(), **chosen, "defaulted": tuple(chosen)})


def _works_without(catalogue: Catalogue, fields: dict[str, Any]) -> bool:
    """Whether a provider not out of order takes the request made of ``fields`` (the route tries those
    first, so the provider chosen is one if any is)."""
    try:
        provider, _ = choose_provider(catalogue, GenerationRequest.model_validate(fields))
    except (ValidationError, InvalidRequestError):
        return False
    return provider not in catalogue.unhealthy


def without_defaults(
    catalogue: Catalogue, request: GenerationRequest, *, skip: Collection[str]
) -> tuple[str, Capabilities, GenerationRequest] | None:
    """Where a request no provider outside ``skip`` takes as it is goes once the options the member's
    /preferences filled in (``defaulted``) are left out: the first provider that takes it so, and the request
    for it, with those of them that provider does offer put back. None if none takes it even so, or the
    request has no such options.

    A failover (bot/failover.py) asks this: a saved png sent the job to Kie, the one provider with formats,
    and when Kie was out of credit SeaArt, which would have made it, was refused it for a png the member
    never typed. A request made from an image (Vary, Edit, a reply) keeps the options it was made with."""
    if request.derived_from is not None or request.history:
        return None
    try:
        return _bare_route(catalogue, request, skip=skip)
    except InvalidRequestError:
        return None


def defaults_left_out(catalogue: Catalogue, request: GenerationRequest) -> GenerationRequest | None:
    """A new job's request no provider takes as it is, once the options filled in from saved preferences
    (``defaulted``) are left out, with those the provider that takes it so offers put back; None if it has
    no such options. Raises the refusal of the request without them when no provider takes even that: it names
    what the member chose, not a preference they never typed in this command.

    For a Re-roll, Vary, re-render, Edit or reply (cogs/policy.py ``admitted``), which send an earlier request
    again: its saved png went with it, so when the channel's level was raised past what Kie (the one provider
    with formats) honours, every Re-roll was refused "does not support output format png; leave it unset"
    (a button has no option to leave unset), while a fresh /imagine left the png out and went to Gemini. A
    job starting so is not yet accepted anywhere, so, unlike a failover, one made from an image is taken too:
    the alternative is a refusal."""
    found = _bare_route(catalogue, request, skip=())
    return None if found is None else found[2]


def defaults_left_for_working(catalogue: Catalogue, request: GenerationRequest) -> GenerationRequest | None:
    """For a new job's request that goes to a provider out of order (``Catalogue.unhealthy``): the request
    without the options saved preferences filled in (``defaulted``), those the provider it then goes to offers
    put back, when that provider works; None when it has no such options or only a provider out of order
    takes it even so. ``fill`` judges a fresh /imagine's preferences so.

    For a Re-roll, Vary, re-render or Edit (cogs/policy.py ``admitted``), which send an earlier request with
    its preferences: routing takes a provider out of order when it is the only one offering such an option
    (it is tried last, not left out), and a Vary of an image made with a saved png, pressed while Kie (the one
    provider with formats) was out of credit, went to Kie and failed there: a failover does not leave out the
    options of a request made from an image (``without_defaults``)."""
    try:
        found = _bare_route(catalogue, request, skip=())
    except InvalidRequestError:
        return None
    if found is None or found[0] in catalogue.unhealthy:
        return None
    return found[2]


def _bare_route(
    catalogue: Catalogue, request: GenerationRequest, *, skip: Collection[str]
) -> tuple[str, Capabilities, GenerationRequest] | None:
    """``without_defaults`` for any request; raises the refusal when no provider takes it without them."""
    if not request.defaulted:
        return None
    unset = {name: GenerationRequest.model_fields[name].default for name in request.defaulted}
    bare = GenerationRequest.model_validate({**request.model_dump(), **unset, "defaulted": ()})
    provider, caps = choose_provider(catalogue, bare, skip=skip)
    kept: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        if name not in request.defaulted:
            continue
        trial = bare.model_copy(update={**kept, name: getattr(request, name)})
        if takes(provider, caps, trial):
            kept[name] = getattr(request, name)
    return provider, caps, bare.model_copy(update={**kept, "defaulted": tuple(kept)})
