"""A member's own jobs in one server, as ``/jobs`` shows them (cogs/jobs.py): what is generating now and
the latest that ended, each with a link to its message. Pure functions, no I/O.

A batch (``/imagine count``) is one request in one message, so it is one line here, as it is one message
in the channel; its candidates' states are summed up ("2 of 4 ready").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import discord

from bot.catalogue import MODEL_NAMES
from bot.models import JobState
from bot.render import (
    COLOUR_PROGRESS,
    WAITING_LABEL,
    literal,
    outcome_title,
    request_words,
    state_icon,
    state_label,
    waits_turn,
)
from bot.store.jobs import Job

# Lines shown of each kind: a member with more running than this is told how many more there are. A
# line is at most about 260 characters (a link of three snowflakes, the prompt's start), so the whole
# list stays under an embed description's 4096.
GENERATING_SHOWN = 8
ENDED_SHOWN = 5
SEARCH_SHOWN = 10  # requests found by /jobs search:
SEARCH_MAX_CHARS = 100  # the words /jobs search: and /mod images search: take
STARRED_SHOWN = 10  # images listed by /jobs starred:True
PROMPT_CHARS = 80
DESCRIPTION_CHARS = 4096
ONLY_YOU = "Only you can see this."


@dataclass(frozen=True, slots=True)
class Request:
    """What the member asked for once: one job, or every candidate of a batch."""

    jobs: tuple[Job, ...]

    @property
    def first(self) -> Job:
        return self.jobs[0]

    @property
    def generating(self) -> bool:
        return any(not job.terminal for job in self.jobs)

    @property
    def cancellable(self) -> list[Job]:
        """Its candidates a Cancel can still stop: unfinished, no cancel taken, the image not in hand."""
        return [
            j for j in self.jobs if not j.terminal and j.cancel_requested is None and j.state is not JobState.SUCCEEDED
        ]


def requests(jobs: Iterable[Job]) -> list[Request]:
    """Jobs grouped into what was asked at once, in the order their first job came."""
    grouped: dict[str, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(job.batch_id or job.id, []).append(job)
    return [Request(tuple(sorted(group, key=lambda j: j.batch_index or 0))) for group in grouped.values()]


def message_link(job: Job) -> str | None:
    """Where the member sees the job: its message in the channel (gone once deleted, unknown while held)."""
    if job.deleted_by is not None or job.message_id is None or job.channel_id is None or job.guild_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.message_id}"


def _status(request: Request) -> tuple[str, str]:
    """Icon and words for the request's state now."""
    jobs = request.jobs
    if len(jobs) == 1:
        job = jobs[0]
        return state_icon(job), state_label(job) if not job.terminal else outcome_title(job)
    ready = sum(j.state is JobState.DELIVERED for j in jobs)
    if request.generating:
        cancelling = all(j.cancel_requested is not None for j in jobs if not j.terminal)
        if not cancelling and not ready and all(waits_turn(j) for j in jobs if not j.terminal):
            return "⏳", f"{WAITING_LABEL} · {len(jobs)} images"
        words = "Cancelling" if cancelling else f"{ready} of {len(jobs)} ready" if ready else "Generating"
        return "🎨", f"{words} · {len(jobs)} images"
    if ready:
        return "✅", f"{ready} of {len(jobs)} ready"
    if all(j.state is JobState.CANCELLED for j in jobs):
        return "✖️", f"Cancelled · {len(jobs)} images"
    return "❌", f"None of the {len(jobs)} images came"


def line(request: Request, *, whose: bool = False, ahead: int = 0, theirs: bool = False) -> str:
    """One request: state, model, when, where; then the start of its words (``request_words``), as written.
    ``whose``: led by its member (a mention, for a moderator's list; it pings nobody where no mention is allowed),
    its waiting said of it, not to "you". ``ahead``: while it waits its turn, what waits before it
    (bot/waiting_requests.py ``ahead_of``): its member's requests, or the server's images. ``theirs``: in a list of
    one member's that another reads (``/mod images``), what waits before it is "theirs", not "yours"."""
    first = request.first
    icon, words = _status(request)
    after = ""
    if ahead and first.waits_for is not None:
        after = (
            f" · after {ahead} of {'theirs' if whose or theirs else 'yours'}"
            if first.waits_for
            else f" · after {ahead} image(s)"
        )
    if whose:
        words = words.replace(WAITING_LABEL, QUEUE_WAITING_LABEL)
        icon = f"<@{first.user_id}> · {icon}" if first.user_id is not None else icon
    link = message_link(first)
    where = f"[message]({link})" if link else ("message deleted" if first.deleted_by is not None else "no message yet")
    model = MODEL_NAMES.get(first.model, first.model)
    head = f"{icon} **{words}**{after} · {model} · <t:{int(first.created_at)}:R> · {where}"
    done, said = request_words(first.request)
    # A prompt with choices in braces is one request, listed by the words as typed (bot/permutations.py).
    said = first.request.permutation or said
    return f"{head}\n{f'*{done}:* ' if done else ''}{literal(said, PROMPT_CHARS)}"


# A request waiting its turn, as a moderator's list of the server's says it.
QUEUE_WAITING_LABEL = "Waiting its turn"


def queue_heading(
    generating: int, waiting: int, requests_listed: int, at_once: int | None, *, cut_at: int | None = None
) -> str:
    """``/mod queue``'s first line: the server's images generating and waiting their turn now (all of them), against
    its limit at once (None: none), and the requests listed; ``cut_at``: the list holds only the oldest images."""
    allows = f" (this server allows {at_once} at once)" if at_once is not None else ""
    more = f"; the oldest {cut_at:,} images are listed" if cut_at is not None else ""
    return (
        f"**In this server now: {generating} image(s) generating{allows}, {waiting} waiting their turn**"
        f" · {requests_listed} request(s), oldest first{more}:"
    )


def latest_finished(active: Sequence[Job], ended: Sequence[Job]) -> list[Request]:
    """The finished requests ``/jobs`` lists under "Latest": a batch still running is listed as generating."""
    running = {job.batch_id for job in active if job.batch_id is not None}
    return [r for r in requests(ended) if r.first.batch_id is None or r.first.batch_id not in running][:ENDED_SHOWN]


def jobs_embed(
    active: Sequence[Job],
    ended: Sequence[Job],
    *,
    note: str | None = None,
    ahead: Callable[[Job], int] = lambda job: 0,
    of: str | None = None,
) -> discord.Embed:
    """``/jobs``: the member's unfinished jobs (oldest first) and latest finished ones (newest first);
    ``note`` goes first (what a click just did); ``ahead``: what waits before a job waiting its turn; ``of``: the
    member's mention, for a moderator's list of another's (``/mod images``)."""
    # A batch with candidates still running is listed once, as generating, its ended candidates with it (read by
    # its batch, cogs/jobs.py: the latest finished rows lose them once the member has made a few more images).
    running = {job.batch_id for job in active if job.batch_id is not None}
    generating = requests([*active, *(job for job in ended if job.batch_id in running)])
    finished = latest_finished(active, ended)
    parts = [note] if note else []
    waiting = sum(all(waits_turn(j) for j in r.jobs if not j.terminal) for r in generating)
    parts.append(
        f"**Generating ({len(generating)}" + (f", {waiting} of them waiting their turn)**" if waiting else ")**")
    )
    parts += [line(r, ahead=ahead(r.first), theirs=of is not None) for r in generating[:GENERATING_SHOWN]] or [
        "Nothing right now."
    ]
    if len(generating) > GENERATING_SHOWN:
        parts.append(f"…and {len(generating) - GENERATING_SHOWN} more.")
    parts.append("**Latest**")
    parts += [line(r) for r in finished] or ["None yet: try `/imagine`." if of is None else "None yet."]
    return _listed(parts, footer=f"{ONLY_YOU} Cancelled, failed or blocked images cost nothing.", of=of)


def earlier_embed(shown: Sequence[Request], *, of: str | None = None) -> discord.Embed:
    """An earlier page of ``/jobs``: the member's finished requests before the ones already listed, newest first."""
    parts = ["**Earlier**", *(line(r) for r in shown)] if shown else ["**Earlier**", "Nothing earlier."]
    return _listed(parts, footer=f"{ONLY_YOU} Cancelled, failed or blocked images cost nothing.", of=of)


def search_embed(asked: str, found: Sequence[Job], *, of: str | None = None) -> discord.Embed:
    """``/jobs search:``: the member's finished requests whose prompt holds the words ``asked``, newest first."""
    shown = requests(found)[:SEARCH_SHOWN]
    parts = [f"**Matching {literal(asked, 100)}**"]
    whose = "yours" if of is None else "theirs"
    parts += [line(r) for r in shown] or [f"Nothing of {whose} in this server matches. Fewer or other words may."]
    return _listed(parts, footer=f"{ONLY_YOU} The latest {SEARCH_SHOWN} matches at most.", of=of)


def starred_embed(starred: Sequence[Job]) -> discord.Embed:
    """``/jobs starred:True``: the images the member starred with a ⭐ reaction (cogs/star_reaction.py), theirs or
    another member's, the latest starred first, each on its own line (one star is one image)."""
    parts = ["**Starred**"]
    parts += [line(Request((job,))) for job in starred[:STARRED_SHOWN]] or [
        "Nothing starred yet: react ⭐ to any of the bot's images to find it here again."
    ]
    footer = f"Only you can see this. The latest {STARRED_SHOWN} you starred; take the ⭐ back to unstar one."
    return _listed(parts, footer=footer)


def _listed(parts: list[str], *, footer: str, of: str | None = None) -> discord.Embed:
    """The list's embed; ``of``: the member's mention, for another member's list (a title shows no mention)."""
    if of is not None:
        parts = [f"The requests of {of}.", *parts]
    text = "\n".join(parts)
    while len(text) > DESCRIPTION_CHARS:  # not with the limits above; a guard, never a cut mid-link
        parts.pop()
        text = "\n".join(parts)
    title = "🍌 Your images in this server" if of is None else "🍌 A member's images in this server"
    embed = discord.Embed(title=title, colour=COLOUR_PROGRESS, description=text)
    embed.set_footer(text=footer)
    return embed
