"""Which provider takes a request: the first in its model's failover order that can serve it as asked.

One search for a new job (/imagine, Re-roll) and for failover (bot/jobs.py), so the checks of options and
safety level are the same everywhere: failover never hands a job to a provider /imagine would refuse.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.catalogue import Catalogue
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.moderation import honoured_levels
from bot.providers.base import Capabilities, validate


def require_served(catalogue: Catalogue, model: str) -> None:
    """Raises InvalidRequestError naming the models on offer when no enabled provider serves ``model`` (an
    image made by a model whose providers the operator has since turned off): said before a form is opened or
    a reference counted, since "takes at most 0 reference images" or an empty form told the member nothing."""
    if not catalogue.route(model):
        offered = ", ".join(catalogue.display_name(m) for m in catalogue.models()) or "none"
        raise InvalidRequestError(f"The model `{model}` is not available on this bot. Available: {offered}.")


def choose_provider(
    catalogue: Catalogue, request: GenerationRequest, *, first: str | None = None, skip: Collection[str] = ()
) -> tuple[str, Capabilities]:
    """The first provider in the model's route (``first`` moved to the front, ``skip`` left out) that can
    take ``request`` as asked.

    A member who asks for a seed gets a provider that honours seeds, rather than a refusal because the
    default provider has none. If none can, the first refusal (which names what that provider does
    support) is raised.
    """
    require_served(catalogue, request.model)
    route = catalogue.route(request.model, first=first)
    refusal: InvalidRequestError | None = None
    # An option refused by a provider that honours the channel's safety level, and whether some provider
    # that offers everything asked cannot honour the level: then the option is what stands in the way (the
    # member can leave it out), not the level, which the first refusal blamed ("level 6 cannot be honoured"
    # for a png asked in a level-6 channel, where Gemini honours 6 and leaving png out goes through).
    option_here: InvalidRequestError | None = None
    level_elsewhere = False
    roomiest: tuple[str, Capabilities] | None = None  # the candidate taking the most references
    for provider in route:
        if provider in skip:
            continue
        caps = catalogue.capabilities(provider, request.model)
        assert caps is not None, "a route lists only providers serving its model"
        if roomiest is None or caps.max_reference_images > roomiest[1].max_reference_images:
            roomiest = (provider, caps)
        try:
            validate(request, caps)
        except InvalidRequestError as exc:
            refusal = refusal or exc
            if _honours_level(caps, request):
                option_here = option_here or exc
            continue
        if not _honours_level(caps, request):
            refusal = refusal or _level_refusal(caps, request)
            level_elsewhere = True
            continue
        return provider, caps
    if roomiest is not None and len(request.reference_images) > roomiest[1].max_reference_images:
        # Too many references for every provider: name the most any of them takes, not the first one's
        # lower limit ("at most 8" would send the member away with 6 images too few).
        _check(*roomiest, request)
    if option_here is not None and level_elsewhere:
        raise InvalidRequestError(
            f"{option_here.user_message} The providers that offer it cannot honour this channel's safety level "
            f"({request.safety_tolerance}).",
            detail=option_here.detail,
        )
    raise refusal or InvalidRequestError(
        "No other provider can take this request.", detail=f"all of {route} skipped or refused"
    )


def takes(provider: str, caps: Capabilities, request: GenerationRequest) -> bool:
    """Whether ``provider`` (offering ``caps`` for the request's model) takes ``request`` as asked, as
    ``choose_provider`` judges it: its options, and the channel's safety level."""
    try:
        _check(provider, caps, request)
    except InvalidRequestError:
        return False
    return True


def _check(provider: str, caps: Capabilities, request: GenerationRequest) -> None:
    validate(request, caps)
    if not _honours_level(caps, request):
        raise _level_refusal(caps, request)


def _honours_level(caps: Capabilities, request: GenerationRequest) -> bool:
    # Never a provider that would loosen the channel's safety level, judged for this model: Segmind's Pro
    # has no safety_tolerance (docs/providers.md 5.5) where its Nano Banana 2 has, and would otherwise run a
    # level 5-6 channel's request at Segmind's default.
    level = request.safety_tolerance
    return level is None or level in honoured_levels(caps)


def _level_refusal(caps: Capabilities, request: GenerationRequest) -> InvalidRequestError:
    return InvalidRequestError(
        f"This channel's safety level is {request.safety_tolerance}, which no enabled provider for "
        f"{caps.display_name} can honour (the bot's own filter covers levels 1-4). Ask a moderator, or use "
        "another model."
    )
