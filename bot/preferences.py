"""A member's own defaults for /imagine (set with /preferences), and how they fill the options left out.

A preference is a default, never a refusal: one the request cannot take (a shape the chosen model does
not offer, web search where no provider of that model has it) is left out, and the request goes on as
if there were none. So is one only providers out of order take (a rejected key, no credit: tried last,
``Catalogue.unhealthy``) while a working provider takes the request without it: the job goes there, as
it would have with no preference. Options the member typed always win, and bind.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

from pydantic import ValidationError

from bot.catalogue import Catalogue
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
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
    if not request.defaulted or request.derived_from is not None or request.history:
        return None
    unset = {name: GenerationRequest.model_fields[name].default for name in request.defaulted}
    bare = GenerationRequest.model_validate({**request.model_dump(), **unset, "defaulted": ()})
    try:
        provider, caps = choose_provider(catalogue, bare, skip=skip)
    except InvalidRequestError:
        return None
    kept: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        if name not in request.defaulted:
            continue
        trial = bare.model_copy(update={**kept, name: getattr(request, name)})
        if takes(provider, caps, trial):
            kept[name] = getattr(request, name)
    return provider, caps, bare.model_copy(update={**kept, "defaulted": tuple(kept)})
