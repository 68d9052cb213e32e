"""Pure functions from a Job to what Discord shows: embeds, content, buttons. No I/O."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence

import discord

from bot.catalogue import usd
from bot.derive import BLEND, PAN_ARROWS, blend_words
from bot.errors import ErrorCategory
from bot.images import PreparedImage
from bot.models import GenerationRequest, JobState
from bot.providers.base import Capabilities
from bot.reference_roles import roles_shown
from bot.regions import REGIONS
from bot.store.jobs import Job
from bot.wording import counted

COLOUR_PROGRESS = discord.Colour(0xF5C518)  # banana yellow
COLOUR_DONE = discord.Colour(0x3BA55C)
COLOUR_FAILED = discord.Colour(0xED4245)
COLOUR_NEUTRAL = discord.Colour(0x747F8D)
# The reaction a member's reply asking for an edit gets when it is refused and its note is not sent (the
# same note went to the member minutes ago, or Discord took it neither way; cogs/replies.py): the member
# sees at their reply that it was not carried out.
REFUSED_MARK = "\N{NO ENTRY SIGN}"

# custom_id template shared with cogs/imagine.py's DynamicItem: the job id rides in the button.
CUSTOM_ID_PREFIX = "bananacord:job"

_STATE_LABEL = {
    JobState.QUEUED: "Queued",
    JobState.SUBMITTED: "Waiting for the provider",
    JobState.RUNNING: "Generating",
    JobState.SUCCEEDED: "Finishing",
}

_FAILURE_TITLE = {
    ErrorCategory.CONTENT_BLOCKED: "Blocked by the provider's safety filter",
    ErrorCategory.CANCELLED: "Cancelled",
    ErrorCategory.EXPIRED: "Timed out",
    ErrorCategory.BAD_INPUT: "The provider refused the request",
    ErrorCategory.NO_IMAGE: "No image came back",
    ErrorCategory.RATE_LIMITED: "The provider is busy",
    ErrorCategory.OUT_OF_CREDIT: "The provider account is out of credit",
    ErrorCategory.AUTH: "The provider rejected the bot's key",
    ErrorCategory.DELIVERY: "The image could not be delivered",
    ErrorCategory.UNCERTAIN: "The provider did not confirm the request",
    ErrorCategory.REFERENCE: "A reference image could not be fetched",
}


def custom_id(action: str, job_id: str) -> str:
    return f"{CUSTOM_ID_PREFIX}:{action}:{job_id}"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Discord refuses a message whose embed holds more than this in all: title, description, field names and
# values, footer and author name (discord.Embed's len() counts the same). Each part's own cap (4,000 for
# the prompt, 1,024 a field) does not keep the sum under it, and a result message refused is final for
# delivery: the image made, and billed by the provider, would be lost.
EMBED_CHARS = 6000
# A progress or batch embed may get one more field after it is drawn, bot/delivery.py's "Waiting" (at most
# a field's 1,024 characters and its name), so it is drawn, and its notes here added, within what that leaves.
WAITING_NOTE = "Waiting"
PROGRESS_ROOM = EMBED_CHARS - len(WAITING_NOTE) - 1024
_DESCRIPTION = ""  # stands for the embed's description among fields' names (no field is named "")
# What gives way when an embed is over, first to last, and how many characters it keeps at that step. The
# prompt first: its member has it, and a thousand characters still tell the image by it; then the model's
# words, which are only here (why an image is missing, say); then both, down to an ellipsis. The bot's own
# words never give way: the title and state, what happened, the buttons' meaning, the Original link. With
# their own caps they come to about 3,500 characters at most, notes included (tests/test_render_limits.py
# draws the longest), so the last two steps are only a guard.
_GIVES_WAY = ((_DESCRIPTION, 1000), ("The model said", 300), (_DESCRIPTION, 1), ("The model said", 1))


def fit(embed: discord.Embed, room: int = EMBED_CHARS) -> discord.Embed:
    """``embed`` cut to ``room`` characters in all (Discord's count), the prompt and the model's words
    shortened in ``_GIVES_WAY``'s order. Both are :func:`literal` text, cut again as it cuts: never
    inside an escape, and they hold no live link to break."""
    for part, kept in _GIVES_WAY:
        over = len(embed) - room
        if over <= 0:
            break
        if part == _DESCRIPTION:
            text = embed.description or ""
            if len(text) > kept:
                embed.description = _cut(text, max(kept, len(text) - over))
            continue
        for index, fld in enumerate(embed.fields):
            text = fld.value or ""
            if fld.name == part and len(text) > kept:
                embed.set_field_at(index, name=part, value=_cut(text, max(kept, len(text) - over)), inline=fld.inline)
    return embed


# Every character Discord's Markdown acts on, and the colon: with ``https\://`` Discord sees no link to
# make, so no link is read out of the text at all (where a bare link ends, with escapes beside it, is
# Discord's to decide: its backslash would join the link). Discord shows a backslash before any
# punctuation mark as the mark alone, so escaping one more than needed costs nothing on screen.
_MARKDOWN = re.compile(r"([\\*_~|`>#\-\[\]()<:])")


def link_target(url: str) -> str:
    """A provider's link as the target of a masked link: the characters that would end it, or start
    Markdown after it, percent-encoded (the same address to a browser)."""
    return re.sub(r"[\s()\[\]<>\\]", lambda m: urllib.parse.quote(m.group()), url)


def literal(text: str, limit: int) -> str:
    """Text from outside (a member's prompt, what a model said) shown as it was written: ``snake_case``
    or ``2*3*4`` do not turn into italics, and a masked link (``[your prize](https://...)``) shows as
    the text it is, not as a link the bot seems to vouch for; a bare link shows as text too.

    Not discord.utils.escape_markdown: its masked-link pattern is greedy and escapes only the first
    character of what it matches, so on a line with two links the rest of the line (``**``, ``~~``, a
    second ``\\[link](...)``) stays live (tests/test_literal_text.py shows it). Escaped, then
    cut, so the limit holds for what Discord receives; a cut never leaves a lone backslash that would
    escape the ellipsis."""
    return _cut(_MARKDOWN.sub(r"\\\1", text), limit)


def _cut(escaped: str, limit: int) -> str:
    """Escaped text within ``limit``, an ellipsis for what was cut; never a lone backslash left to escape it.
    Cutting what it already cut is as safe (:func:`fit` shortens a shown prompt again)."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + "…"


def model_line(job: Job, caps: Capabilities | None, shapes: Sequence[str] = ()) -> str:
    """The model and what it was asked for; ``shapes``: a batch's, where its candidates' differ (``--ar {1:1,
    16:9}``: bot/permutations.py)."""
    name = caps.display_name if caps else job.model
    parts = [name]
    if shapes:
        parts.append(" / ".join(shapes))
    elif job.request.aspect_ratio:
        parts.append(job.request.aspect_ratio)
    parts.append(job.request.resolution or (caps.default_resolution if caps else "default size"))
    if job.request.reference_images:
        count = len(job.request.reference_images)
        # Which of them the member gave for their style or character (--sref: bot/reference_roles.py).
        references = job.request.reference_images
        roles = roles_shown([ref.role for ref in references], [ref.weight for ref in references])
        parts.append(counted(count, "reference image") + (f" ({roles})" if roles else ""))
    return " · ".join(parts)


def differing_shapes(jobs: Sequence[Job]) -> list[str]:
    """The shapes of a batch's images, for ``model_line``, where they differ (a prompt's ``--ar {1:1, 16:9}``);
    empty where they are one shape, which the first image's line says."""
    shapes = list(dict.fromkeys(job.request.aspect_ratio or "default shape" for job in jobs))
    return shapes if len(shapes) > 1 else []


def options_line(job: Job) -> str | None:
    request = job.request
    parts = []
    if request.seed is not None:
        parts.append(f"seed {request.seed}")
    if request.output_format:
        parts.append(request.output_format.upper())
    if request.thinking_level:
        parts.append(f"thinking {request.thinking_level}")
    if request.web_search:
        parts.append("web search")
    return " · ".join(parts) or None


def served_by(job: Job) -> str:
    """Which provider has the job, and which it left on the way (failover), in plain words."""
    if not job.tried_providers:
        return job.provider
    skipped = "; ".join(f"{t.provider}: {_CATEGORY_WORDS.get(t.category, t.category)}" for t in job.tried_providers)
    return f"{job.provider} (after {skipped})"


_CATEGORY_WORDS = {
    "transient": "temporary failure",
    "rate_limited": "rate limited",
    "out_of_credit": "out of credit",
    "auth": "key rejected",
}


def made_from(job: Job) -> str | None:
    """What a Vary, Edit, reframe or re-render started from, the image Use as reference took or the request Change
    prompt reworded, in the member's words; None for a fresh image."""
    origin = job.request.derived_from or job.request.came_from
    if origin is None:
        return None
    where = f"[job {origin.job_id}]({origin.message_url})" if origin.message_url else f"job {origin.job_id}"
    if origin.action == "reference":
        return f"📎 The image of {where}, used as a reference for a new prompt."
    if origin.action == "reprompt":
        return f"📝 The request of {where}, with other words."
    if origin.action == "vary":
        return f"🔀 A strong variation of the image of {where}: a new take on it."
    if origin.action == "vary_subtle":
        return f"🔀 A subtle variation of the image of {where}: the same picture, small details changed."
    if origin.action == "edit" and origin.region is not None:
        return f"✏️ An edit of {REGIONS[origin.region]} of the image of {where}; the model was asked to keep the rest."
    if origin.action == "edit":
        return f"✏️ An edit of the image of {where}."
    if origin.action == "pan":
        arrow, towards = ("↔️", "") if origin.way is None else (PAN_ARROWS[origin.way], f" {_TOWARDS[origin.way]}")
        return (
            f"{arrow} The image of {where}, extended{towards} into a {job.request.aspect_ratio} frame: the model drew "
            "it again with the scene continued on one side, so details can differ."
        )
    if origin.action == "zoom_out":
        return (
            f"🔭 The image of {where}, zoomed out: the model drew it again with more of the scene around it, so "
            "details can differ."
        )
    if origin.action == "reframe":
        return (
            f"🖼️ The image of {where} in a new shape ({job.request.aspect_ratio}): the model drew it again to fill "
            "the new frame, so details can differ."
        )
    return (
        f"🔍 Re-rendered at {job.request.resolution} from the image of {where}: the model drew it again at the "
        "higher resolution with that image as its reference, so details can differ. It is a new render, "
        "not a pixel-for-pixel upscale."
    )


# Which way a pan extended its image, in words.
_TOWARDS = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}


# What a request made from an image is called where its prompt is the bot's instruction to the model (a Vary, a
# reframe: bot/derive.py) rather than the member's words.
_INSTRUCTED = {
    "vary": "Vary (Strong)",
    "vary_subtle": "Vary (Subtle)",
    "zoom_out": "Zoom out",
    "pan": "Pan",
    "reframe": "New shape",
}


def request_words(request: GenerationRequest) -> tuple[str | None, str]:
    """A request's words as its member knows them: its prompt; for a Vary or a reframe, what was done and the
    prompt the image was made from (("Vary (Subtle)", "a lighthouse")), which the instruction's first 80
    characters ("Make a subtle variation of this image: keep its subject, composition…") never reach; for a
    /blend with words, ("Blend", the words), and for a Vary or reframe of its image (what was done, the words).
    A /blend without words keeps its instruction: it says what was done."""
    origin = request.derived_from
    blended = blend_words(request)
    if blended:
        return "Blend", blended
    if origin is not None and origin.region is not None and request.member_words is not None:
        return None, request.member_words  # the area the edit was for is in its "Made from" field
    if request.subject is None or origin is None or origin.action not in _INSTRUCTED:
        return None, request.prompt
    # A Vary of a /blend's image is worded from the blend's whole prompt, as the model needs it (its images go too);
    # the member knows it by their words, as the blend's own message showed them.
    return _INSTRUCTED[origin.action], request.subject.removeprefix(f"{BLEND}: ")


# An embed's description holds at most 4,096 characters; the member's words get this much of it.
WORDS_CHARS = 4000


def described(request: GenerationRequest) -> str:
    """An embed's description: the words the image was asked for with. For a Vary or a reframe, whose prompt
    is the bot's instruction to the model, the prompt the image was made from (its "Made from" field says what
    was done), then what the member added to a zoom out or a pan; else the prompt as sent."""
    done, words = request_words(request)
    added = request.member_words if done else None
    # A Vary's member_words are its subject (what moderation judged), shown already.
    if not added or added in (words, request.subject):
        return literal(words, WORDS_CHARS)
    # Plain words: the description is the member's text, all of it shown literally (no live Markdown).
    label = "\n\nAlso asked: "
    room = WORDS_CHARS - len(label)
    # Each gets half the room, and what the other leaves unused.
    shown = literal(words, max(room // 2, room - len(literal(added, room))))
    return shown + label + literal(added, room - len(shown))


def _base(job: Job, title: str, colour: discord.Colour, caps: Capabilities | None) -> discord.Embed:
    embed = discord.Embed(title=title, colour=colour, description=described(job.request))
    embed.add_field(name="Model", value=model_line(job, caps), inline=False)
    origin = made_from(job)
    if origin:
        embed.add_field(name="Made from", value=truncate(origin, 1024), inline=False)
    options = options_line(job)
    if options:
        embed.add_field(name="Options", value=options, inline=False)
    if job.user_id:
        embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Provider", value=truncate(served_by(job), 1024), inline=True)
    footer = f"Job {job.id}"
    if job.cost_micro_usd is not None:
        footer += f" · est. {usd(job.cost_micro_usd)}"
    embed.set_footer(text=footer)
    return embed


def byte_size(size: float) -> str:
    """``size`` bytes for a member: in MiB, or in KiB below a tenth of one."""
    return f"{size / 1_048_576:.1f} MiB" if size >= 104_858 else f"{size / 1024:.0f} KiB"


def elapsed(job: Job, now: float) -> str:
    """How long since ``job`` was asked for."""
    return _span(now - job.created_at)


def _span(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{whole}s"


# A request whose provider had it this long after its asking (it waited its turn, bot/waiting_requests.py, or for a
# paused provider) says how long it ran apart from how long it has been: "Took 5m 40s" for 40 s of generating read
# as a slow model. A few seconds (its references read, a create retried) are part of the run.
WAIT_SHOWN_APART = 30.0


def took(job: Job, now: float) -> str:
    """How long ``job`` took: from its asking, or, after a wait before it started, from its start with the whole."""
    began = job.started_at
    if began is None or began - job.created_at < WAIT_SHOWN_APART:
        return elapsed(job, now)
    return f"{_span(now - began)} ({elapsed(job, now)} since asked)"


def shown_state(job: Job) -> JobState:
    """The state a member is shown: a queued job whose create has left is shown generating (a call
    answered with the image itself, as Gemini's, keeps the job queued in its row until the image comes)."""
    if job.state is JobState.QUEUED and job.submit_started_at is not None:
        return JobState.RUNNING
    return job.state


# What a request taken past its member's or its server's room is doing (bot/waiting_requests.py).
WAITING_LABEL = "Waiting for your turn"


def waits_turn(job: Job) -> bool:
    """Whether ``job`` waits its turn: taken past its member's or its server's room, not started yet."""
    return job.waits_for is not None and job.state is JobState.QUEUED


def state_label(job: Job) -> str:
    """What an unfinished job is doing, in a word or three: "Cancelling" once a cancel has been taken."""
    if job.cancel_requested is not None:
        return "Cancelling"
    if waits_turn(job):
        return WAITING_LABEL
    state = shown_state(job)
    return _STATE_LABEL.get(state, str(state).title())


def progress_embed(
    job: Job,
    caps: Capabilities | None,
    *,
    now: float,
    typical: tuple[float, float] | None = None,
    ping_after: float | None = None,
    ahead: int = 0,
) -> discord.Embed:
    """``typical``: how long such jobs usually run (seconds, low and high), when the bot has learned it.
    ``ping_after``: the member is pinged when a request that took this long ends (cogs/ready_pings.py), said here so
    that they know they may go elsewhere meanwhile (None: no ping is coming). ``ahead``: while it waits its turn,
    what waits before it (bot/waiting_requests.py ``ahead_of``)."""
    label = state_label(job)
    embed = _base(job, f"🍌 {label}…", COLOUR_PROGRESS, caps)
    # Discord renders <t:...:R> as "12 seconds ago" and keeps it ticking, with no edit from us.
    waits = waits_turn(job)
    # Not "Started" while it waits its turn: nothing has. Once it has, when the provider took it: after a wait its
    # asking was minutes before (bot/waiting_requests.py), otherwise the two are a moment apart.
    began = f"<t:{int(job.started_at or job.created_at)}:R>"
    embed.add_field(name="Asked" if waits else "Started", value=began, inline=True)
    if job.waits_for is not None and waits:
        embed.add_field(name=TURN_FIELD, value=turn_note(job.waits_for, ahead), inline=False)
    if typical is not None:
        embed.add_field(
            name=TAKES_ONCE_STARTED if waits else "Usually takes", value=duration_span(*typical), inline=True
        )
    if ping_after is not None:
        embed.add_field(name=PING_FIELD, value=ping_promise("when it ends", ping_after), inline=True)
    return fit(embed, PROGRESS_ROOM)


PING_FIELD = "Ping"
TURN_FIELD = "Your turn"
# While a request waits its turn, how long such requests run is the time after it starts: its wait is not in it.
TAKES_ONCE_STARTED = "Then usually takes"


def turn_note(limit: int, ahead: int = 0) -> str:
    """Why a request taken waiting has not started (bot/waiting_requests.py): ``limit``, its member's requests at
    once when it was taken past them; 0, it waits for the server's room alone. ``ahead``: what waits before it, its
    member's requests (``limit`` set) or the server's images (0); none: it is next."""
    tail = "Nothing is charged until you get the image; cancel it if you no longer want it."
    if limit == 0:
        after = f", after the {ahead} image(s) waiting before it" if ahead else ""
        why = (
            "This server has as many images generating as it allows at once: "
            f"this one starts by itself when there is room{after}."
        )
    else:
        after = f", after the {ahead} of yours waiting before it" if ahead else ""
        why = (
            f"You may have {limit} request(s) generating at once: this one starts by itself when one of them "
            f"ends{after}."
        )
    return f"{why} {tail}"


def ping_promise(when: str, after: float) -> str:
    """A progress message's word on the ping to come: "when it ends, if it takes 45 s or more"."""
    return when if after <= 0 else f"{when}, if it takes {after:g} s or more"


# On a first answer given while the bot stops (its grace for the steps in flight): nothing moves until the
# next start, and the member should know why their request sits at "Queued".
RESTARTING_NOTE = "The bot is restarting: this goes on as soon as it is back. You are charged only for images you get."


def note_restarting(embed: discord.Embed) -> discord.Embed:
    embed.add_field(name="Restarting", value=RESTARTING_NOTE, inline=False)
    return fit(embed, _note_room(embed))


def note_unconfirmed(embed: discord.Embed, until: float, candidates: Sequence[Job] = ()) -> discord.Embed:
    """A create the provider never answered (bot/lost_tasks.py): the member learns why "Generating" may last.
    ``candidates``: the batch's candidates whose create it was (none: a single job's)."""
    which = "this request"
    if candidates:
        labels = [candidate_label(job) for job in candidates]
        which = "the request for " + (", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0])
    value = (
        f"The provider never answered {which}. Rather than send it again (which could charge twice), the "
        f"bot waits for word of it until <t:{int(until)}:R>. You are charged only for images you get."
    )
    embed.add_field(name="Not confirmed yet", value=value, inline=False)
    return fit(embed, _note_room(embed))


def _note_room(embed: discord.Embed) -> int:
    """The room a progress embed has with a note added: the whole, once bot/delivery.py's own note is in."""
    return EMBED_CHARS if any(f.name == WAITING_NOTE for f in embed.fields) else PROGRESS_ROOM


def duration_span(low: float, high: float) -> str:
    """A member-facing span: "about 8 s", "25-40 s", "2-3 min". Above 20 s it is rounded to 5 s, above two
    minutes to minutes, since a schedule learned from polls knows no better."""

    def seconds(value: float) -> int:
        return max(1, round(value / 5) * 5 if value > 20 else round(value))

    if high >= 120:
        lo, hi = max(1, round(low / 60)), max(1, round(high / 60))
        return f"about {hi} min" if lo == hi else f"{lo}-{hi} min"
    lo, hi = seconds(low), seconds(high)
    return f"about {hi} s" if lo >= hi else f"{lo}-{hi} s"


def result_embed(job: Job, caps: Capabilities | None, image: PreparedImage, *, now: float) -> discord.Embed:
    note = None
    if image.reencoded:
        note = f"The original ({image.original_size / 1_048_576:.1f} MiB) was over Discord's upload limit, "
        note += "so this is a compressed copy."
        link = f" [Original]({link_target(image.source_url)}) (link may expire)." if image.source_url else ""
        if len(note + link) <= 1024:
            note += link
        elif link:  # a link cut short is no link: the member is told why there is none
            note += " Its link is too long to show here."
    return done_embed(job, caps, (image.width, image.height), image.filename, now=now, note=note)


def done_embed(
    job: Job, caps: Capabilities | None, size: tuple[int, int], filename: str, *, now: float, note: str | None
) -> discord.Embed:
    """A delivered job's embed, its image ``filename`` of ``size`` (width, height) among the message's attachments:
    as delivered (``result_embed``), or drawn again from its row once its words were erased (bot/delivery.py
    ``redraw_erased``, with the note its message had)."""
    embed = _base(job, "🍌 Done", COLOUR_DONE, caps)
    embed.add_field(name="Took", value=took(job, now), inline=True)
    embed.add_field(name="Size", value=f"{size[0]}×{size[1]}", inline=True)
    text = job.result.text
    if text and text.strip():
        embed.add_field(name="The model said", value=literal(text.strip(), 1024), inline=False)
    if note:
        embed.add_field(name="Note", value=truncate(note, 1024), inline=False)
    if filename:
        embed.set_image(url=f"attachment://{filename}")
    return fit(embed)


def failure_embed(job: Job, caps: Capabilities | None, *, now: float) -> discord.Embed:
    title = outcome_title(job)
    colour = COLOUR_NEUTRAL if job.state is JobState.CANCELLED else COLOUR_FAILED
    embed = _base(job, f"🍌 {title}", colour, caps)
    embed.add_field(name="What happened", value=truncate(job.error_message or "Unknown error.", 1024), inline=False)
    text = job.result.text
    if text and text.strip():
        embed.add_field(name="The model said", value=literal(text.strip(), 1024), inline=False)
    if job.cancelled_by:
        embed.add_field(name="Cancelled by", value=f"<@{job.cancelled_by}>", inline=True)
    embed.add_field(name="After", value=elapsed(job, now), inline=True)
    return fit(embed)


# What became of a candidate that brought no image, as "#2 was blocked by ...".
_CANDIDATE_FATE = {
    ErrorCategory.CONTENT_BLOCKED: "was blocked by the provider's safety filter",
    ErrorCategory.CANCELLED: "was cancelled",
    ErrorCategory.EXPIRED: "timed out",
    ErrorCategory.BAD_INPUT: "was refused by the provider",
    ErrorCategory.NO_IMAGE: "came back without an image",
    ErrorCategory.RATE_LIMITED: "could not start: the provider is busy",
    ErrorCategory.OUT_OF_CREDIT: "could not start: the provider account is out of credit",
    ErrorCategory.AUTH: "could not start: the provider rejected the bot's key",
    ErrorCategory.DELIVERY: "could not be delivered",
    ErrorCategory.UNCERTAIN: "was not confirmed by the provider",
    ErrorCategory.REFERENCE: "could not fetch a reference image",
    ErrorCategory.TRANSIENT: "failed at the provider",
}
_CANDIDATE_ICON = {
    JobState.QUEUED: "⏳",
    JobState.SUBMITTED: "⏳",
    JobState.RUNNING: "🎨",
    JobState.SUCCEEDED: "📤",
    JobState.DELIVERED: "✅",
    JobState.BLOCKED: "🚫",
    JobState.CANCELLED: "✖️",
}
# A candidate's line in the batch's list: room for four within an embed field's 1024 characters.
CANDIDATE_LINE_CHARS = 250


def state_icon(job: Job) -> str:
    """The job's state at a glance, as a batch's list and ``/jobs`` show it."""
    return _CANDIDATE_ICON.get(shown_state(job), "❌")


def outcome_title(job: Job) -> str:
    """What became of a finished job, as its message's title says it: "Done", "Cancelled", "Timed out"..."""
    if job.state is JobState.DELIVERED:
        return "Done"
    category = job.error_category
    return _FAILURE_TITLE.get(category, "Generation failed") if category else "Generation failed"


# Discord's most for an attachment's description (its alt text).
ALT_TEXT_CHARS = 1024


def alt_text(job: Job) -> str:
    """The alt text of ``job``'s image (its attachment's description: what a screen reader says for it, and
    what Discord shows under "ALT"): what it shows, in the words it was asked for with: the prompt, or for a
    Vary or a reframe, whose prompt is the bot's instruction to the model, the prompt its image was made from;
    a batch's candidate says which it is ("#2"). Plain text: Discord renders no markdown or mentions there."""
    words = request_words(job.request)[1]
    which = f" ({candidate_label(job)})" if job.batch_id is not None else ""
    return truncate(words, ALT_TEXT_CHARS - len(which)) + which


def candidate_label(job: Job) -> str:
    return f"#{job.batch_index or 1}"


def candidate_fate(job: Job) -> str:
    """What became of an ended candidate that brought no image ("was blocked by the provider's safety filter")."""
    return _CANDIDATE_FATE.get(job.error_category, "failed") if job.error_category else "failed"


def _picked(job: Job) -> str:
    """Which choice a candidate took, where its prompt was one of several (bot/permutations.py), to go after its
    number: " “red”", " “red, car”" for several groups; "" for a batch of one prompt."""
    if not job.request.picks:
        return ""
    return " " + ", ".join(f"“{literal(pick, _PICK_CHARS)}”" if pick else "(none)" for pick in job.request.picks)


# The most of one choice a candidate's line shows: the line (``CANDIDATE_LINE_CHARS``) still has room for its fate.
_PICK_CHARS = 80


def _candidate_line(job: Job) -> str:
    icon = state_icon(job)
    if job.state is JobState.DELIVERED:
        what = "ready"
    elif not job.terminal:
        what = state_label(job).lower()
    else:
        fate = candidate_fate(job)
        what = f"{fate}: {job.error_message}" if job.error_message else fate
    return truncate(f"**{candidate_label(job)}**{_picked(job)} {icon} {what}", CANDIDATE_LINE_CHARS)


def _numbers(jobs: list[Job]) -> str:
    labels = [candidate_label(j) for j in jobs]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def batch_embed(
    batch: list[Job],
    caps: Capabilities | None,
    *,
    now: float,
    typical: tuple[float, float] | None = None,
    ping_after: float | None = None,
    ahead: int = 0,
) -> discord.Embed:
    """One request's candidates in their shared message: how many are ready, each one's state or why it
    brought nothing, and what was charged. Their images are the message's attachments (Discord shows
    up to four side by side); the embed holds no image, so a later edit can keep them by id. ``ping_after``,
    ``ahead``: as ``progress_embed``'s; a batch pings at its first image, so it is said until one has come."""
    first = batch[0]
    total = len(batch)
    delivered = [j for j in batch if j.state is JobState.DELIVERED]
    missing = [j for j in batch if j.terminal and j.state is not JobState.DELIVERED]
    finished = all(j.terminal for j in batch)
    waits_for = next((j.waits_for for j in batch if waits_turn(j)), None)
    if not finished:
        title = f"🍌 {len(delivered)} of {total} ready…" if delivered else f"🍌 Generating {total} images…"
        if waits_for is not None and not delivered:
            title = f"🍌 Waiting for your turn · {total} images…"
        colour = COLOUR_PROGRESS
    elif len(delivered) == total:
        title, colour = f"🍌 Done · {total} images", COLOUR_DONE
    elif delivered:
        title, colour = f"🍌 {len(delivered)} of {total} ready", COLOUR_DONE
    else:
        cancelled = all(j.state is JobState.CANCELLED for j in batch)
        title = "🍌 Cancelled" if cancelled else f"🍌 None of the {total} images came"
        colour = COLOUR_NEUTRAL if cancelled else COLOUR_FAILED
    embed = _base(first, title, colour, caps)
    if first.request.permutation is not None:
        # A prompt with choices: the member's words as typed, each candidate's line saying which it took.
        embed.description = literal(first.request.permutation, WORDS_CHARS)
    shapes = differing_shapes(batch)
    if shapes:
        at = _field_index(embed, "Model")
        embed.set_field_at(at, name="Model", value=model_line(first, caps, shapes), inline=False)
    providers = list(dict.fromkeys(served_by(j) for j in batch))
    embed.set_field_at(
        _field_index(embed, "Provider"), name="Provider", value=truncate("; ".join(providers), 1024), inline=True
    )
    embed.add_field(name="Images", value="\n".join(_candidate_line(j) for j in batch), inline=False)
    if finished:
        embed.add_field(name="Took", value=took(first, now), inline=True)
        if missing:
            charged = "Nothing."
            if delivered:
                charged = f"Only the {len(delivered)} delivered; {_numbers(missing)} cost nothing."
            embed.add_field(name="Charged", value=charged, inline=True)
    else:
        started = "Asked" if waits_for is not None else "Started"
        embed.add_field(name=started, value=f"<t:{int(first.created_at)}:R>", inline=True)
        if waits_for is not None:
            embed.add_field(name=TURN_FIELD, value=turn_note(waits_for, ahead), inline=False)
        if typical is not None:
            takes = TAKES_ONCE_STARTED if waits_for is not None else "Usually takes"
            embed.add_field(name=takes, value=duration_span(*typical), inline=True)
        if ping_after is not None and not delivered:
            promise = ping_promise("when the first image is ready", ping_after)
            embed.add_field(name=PING_FIELD, value=promise, inline=True)
    footer = "Jobs " + ", ".join(j.id for j in batch)
    # Each candidate's own price: after a failover they differ (one moved from SeaArt's $0.04 to Segmind's
    # $0.08), and the first one's alone understated the dearer ones.
    costs = sorted({j.cost_micro_usd for j in batch if j.cost_micro_usd is not None})
    if costs:
        span = usd(costs[0]) if len(costs) == 1 else f"{usd(costs[0])}–{usd(costs[-1])}"
        footer += f" · est. {span} each"
    embed.set_footer(text=footer)
    # A finished batch gets no "Waiting" note after this (only a queued candidate waits out its provider).
    return fit(embed, EMBED_CHARS if finished else PROGRESS_ROOM)


def _field_index(embed: discord.Embed, name: str) -> int:
    return next(i for i, f in enumerate(embed.fields) if f.name == name)
