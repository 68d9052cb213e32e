"""A member's own defaults for /imagine (set with /preferences), and how they fill the options left out.

A preference is a default, never a refusal: one the request cannot take (a shape the chosen model does
not offer, web search where no provider of that model has it) is left out, and the request goes on as
if there were none. Options the member typed always win.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

from pydantic import ValidationError

from bot.catalogue import Catalogue
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.routing import choose_provider

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
    each kept only if some provider still takes the request with it."""
    chosen: dict[str, Any] = {}
    for name in REQUEST_FIELDS:
        value = getattr(prefs, name)
        if value is None or name in given:
            continue
        try:
            trial = GenerationRequest.model_validate({**request.model_dump(), **chosen, name: value})
            choose_provider(catalogue, trial)
        except (ValidationError, InvalidRequestError):
            continue
        chosen[name] = value
    if not chosen:
        return request
    return GenerationRequest.model_validate({**request.model_dump(), **chosen})
