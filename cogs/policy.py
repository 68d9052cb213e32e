"""The checks every way into a job goes through, from plain values: a slash command, a button, a modal
or a member's message (a reply) all answer to the same bans, blocked terms and channel safety level."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.app import Bananacord
from bot.errors import InvalidRequestError
from bot.models import GenerationRequest
from bot.moderation import BannedError, PausedError, PromptBlockedError
from bot.preferences import defaults_left_for_working, defaults_left_out
from bot.providers.base import Capabilities
from bot.quotas import Member
from bot.routing import choose_provider
from bot.store.jobs import InTransaction
from cogs.moderation import record_moderation
from cogs.places import Place, level_at

log = logging.getLogger(__name__)


async def moderate(
    bot: Bananacord,
    request: GenerationRequest,
    *,
    guild_id: int,
    place: Place,
    user_id: int,
) -> GenerationRequest:
    """Ban, blocked terms, then the channel's safety level, which the request carries from here on.

    Blocked terms are looked for in every text of the member's that goes to the provider: the prompt, and the
    prompts of the conversation a reply or an Edit continues (``request.history``, bot/derive.py ``continued``;
    Gemini gets them back with the new one, bot/providers/gemini.py ``build_request_body``). A term blocked since
    an image was made would otherwise reach the provider all the same, in its conversation. ``request.subject`` is
    never sent: a Vary or re-render that draws from it makes it the prompt, checked then. Of a prompt that is the
    bot's instruction around the member's words (a Vary, a zoom out, /blend), the words are judged
    (``judged_words``): a moderator who blocks "pose" refuses poses asked for, not every Vary (whose instruction
    says the pose may change)."""
    channel_id = place.channel_id
    store = bot.services.moderation
    ban = await store.active_ban(guild_id, user_id)
    if ban is not None:
        until = f" until <t:{int(ban.expires_at)}:f>" if ban.expires_at else ""
        why = f" Reason: {ban.reason}" if ban.reason else ""
        word = "on a cooldown" if ban.kind == "cooldown" else "banned from using this bot"
        raise BannedError(f"You are {word} in this server{until}.{why}")
    pause = await store.pause_at(guild_id, channel_id, place.parent_id)
    if pause is not None:
        raise PausedError(pause.refusal())
    earlier = [turn.judged_words for turn in request.history]
    verdict, judged = await store.check_prompts(guild_id, request.judged_words, earlier)
    if verdict.blocked and judged != request.judged_words:
        await _refuse_conversation(bot, guild_id, channel_id, user_id, verdict.reason, judged)
    if verdict.blocked:
        await record_blocked(bot, guild_id, user_id, channel_id, judged, verdict.reason)
        raise PromptBlockedError(
            "Your prompt contains something this server does not allow, so it was not sent "
            "(and you were not charged). Please rephrase it."
        )
    level = await level_at(bot, guild_id, place)
    return request.model_copy(update={"safety_tolerance": level})


async def record_blocked(
    bot: Bananacord,
    guild_id: int,
    user_id: int,
    channel_id: int | None,
    words: str,
    reason: str,
    *,
    what: str = "a prompt",
) -> None:
    """Log and audit ``what`` (a prompt, a /preferences suffix) a member wrote that hit a blocked term, for the
    moderators: the words as written, and which term."""
    await record_moderation(
        bot,
        guild_id,
        "blocked_prompt",
        f"Blocked {what} from <@{user_id}> in <#{channel_id}>: {reason}.",
        target_id=user_id,
        channel_id=channel_id,
        prompt=words,
        reason=reason,
    )


async def _refuse_conversation(
    bot: Bananacord, guild_id: int, channel_id: int | None, user_id: int, reason: str, earlier: str
) -> None:
    """Refuse a request whose conversation holds a prompt blocked since (``earlier``, not the member's own words):
    a reply, an Edit or a Re-roll continuing it. The member is not asked to rephrase, which nothing they write could
    get past, and the log and the audit row say whose prompt it was (the member who asked for it, when the server's
    images still show it: bot/moderation.py ``prompt_author``) and who continued the conversation, rather than
    quoting it as the member's own. Raises PromptBlockedError."""
    author = await bot.services.moderation.prompt_author(guild_id, earlier)
    by = f", asked for by <@{author}>" if author is not None else ""
    where = f"an earlier prompt of the conversation <@{user_id}> continued in <#{channel_id}>{by}"
    await record_moderation(
        bot,
        guild_id,
        "blocked_prompt",
        f"Blocked a prompt: {where}, {reason}.",
        target_id=user_id,
        channel_id=channel_id,
        prompt=earlier,
        reason=f"{reason}, in {where}",
    )
    raise PromptBlockedError(
        "This conversation holds an earlier prompt with something this server no longer allows, so nothing was sent "
        "(and you were not charged). Nothing added to it can get through: start a new /imagine instead."
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """Where a moderated request goes and what it costs: the provider, its capabilities for the model,
    and the quota reservation to make in the same transaction as the job row."""

    provider: str
    caps: Capabilities
    reservation: InTransaction


def quota_member(guild_id: int, owner_id: int | None, user: discord.abc.User) -> Member:
    """Who asks, as quotas see it: roles for tiers (a member's; a user named without them has none, see
    ``as_member``), ownership for the bypass. The one place a Discord user becomes a quota member."""
    roles = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
    return Member(guild_id=guild_id, user_id=user.id, role_ids=roles, is_owner=owner_id == user.id)


def member_of(interaction: discord.Interaction[Any], user: discord.abc.User | None = None) -> Member:
    """``user`` (by default whoever used ``interaction``) as quotas see them in the interaction's server."""
    guild = interaction.guild
    return quota_member(interaction.guild_id or 0, guild.owner_id if guild else None, user or interaction.user)


async def as_member(guild: discord.Guild, user: discord.abc.User) -> discord.Member | None:
    """``user`` with their roles in ``guild``, or None when they are no longer in it.

    A message read over REST (a reply posted while the bot was away, read at its start) names its author
    without their roles, and the bot runs without the members intent, so its cache holds few: judged as it
    came, a member of a role tier with a daily limit of 1 was charged a second image that day (and one of a
    more generous tier, or the unlimited role, refused). Raises InvalidRequestError when Discord will not say."""
    if isinstance(user, discord.Member):
        return user
    member = guild.get_member(user.id)
    if member is not None:
        return member
    try:
        return await guild.fetch_member(user.id)
    except discord.NotFound:
        return None
    except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
        # Told, not raised on: a reply read at a restart is taken once, and an error here left it undone and
        # its member never told.
        status = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
        raise InvalidRequestError(
            "Discord would not say which roles you have just now, and your quota depends on them, so nothing "
            "was started (and you were not charged). Please reply again in a minute.",
            detail=f"fetching member {user.id} failed: {status}",
        ) from exc


def admit(bot: Bananacord, request: GenerationRequest, member: Member, *, preferred: str | None) -> Admission:
    """The first provider that can take ``request`` (``preferred`` first), and the reservation for it.

    ``preferred`` (the server's stored provider, or the one that made the image being reworked) only where it
    still serves the model here: one the operator has since turned off must not push the configured
    ``[imagine] default_provider`` aside for the bare route order."""
    first = bot.services.catalogue.first_choice(request.model, preferred, bot.settings.imagine.default_provider)
    provider, caps = choose_provider(bot.services.catalogue, request, first=first)
    quotas = bot.services.quotas
    reservation = quotas.reservation(
        member,
        model=request.model,
        provider=provider,
        size=request.resolution or caps.default_resolution,
        units=quotas.units_for(request.model, request.resolution, caps.default_resolution),
        cost_micro_usd=caps.price_of(request) or 0,
    )
    return Admission(provider, caps, reservation)


def admitted(
    bot: Bananacord, request: GenerationRequest, member: Member, *, preferred: str | None
) -> tuple[GenerationRequest, Admission]:
    """The request as it goes, and where (``admit``): as asked; else without the options saved
    preferences filled in (``defaulted``), those the provider it then goes to offers put back, the reservation
    sized for the request made. Without them when no provider takes it with them (bot/preferences.py
    ``defaults_left_out``), or when the provider that does is out of order and a working one takes it without
    (``defaults_left_for_working``), as /imagine's ``fill`` judges a fresh request's preferences.

    Re-roll, Vary, re-render and Edit (``start_job``), the Edit with Nano Banana form (cogs/remix.py) and replies
    (cogs/replies.py) send an earlier request again, preferences and all: a saved png sent it to Kie, and once
    the channel's level was raised past Kie's each press was refused ("leave it unset": a button has nothing to
    leave unset), where a fresh /imagine left the png out; while Kie was out of credit, a Vary went to Kie and
    failed there."""
    catalogue = bot.services.catalogue
    try:
        admission = admit(bot, request, member, preferred=preferred)
    except InvalidRequestError:
        bare = defaults_left_out(catalogue, request)
        if bare is None:
            raise
        why = "no provider here takes with it"
    else:
        if admission.provider not in catalogue.unhealthy:
            return request, admission
        bare = defaults_left_for_working(catalogue, request)
        if bare is None:
            return request, admission
        why = f"only {admission.provider}, out of order, takes with it"
    left = ", ".join(sorted(set(request.defaulted) - set(bare.defaulted)))
    log.info("a request goes without the preferred %s, which %s", left, why)
    return bare, admit(bot, bare, member, preferred=preferred)
