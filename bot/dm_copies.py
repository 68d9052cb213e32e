"""The bot's DMs that quote a request's words: the ✉️ copy's card (cogs/dm_reaction.py), and the redraw of such a DM
(a copy, an end notice: cogs/end_notices.py) once its request's words are erased (bot/erased_messages.py).

A member cannot delete the bot's messages in their DMs, so an erasure that left these would leave their words where
they can do nothing about them (and a ✉️ copy of another member's image quotes that member's words). Each DM is
recorded as it is sent (bot/store/dm_copies.py) and drawn again from the erased rows: the card's embed, and its
images' alt text, its images as they were.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot import render
from bot.delivery import KeptAttachment
from bot.job_list import message_link
from bot.models import JobState
from bot.providers.base import Capabilities
from bot.store.dm_copies import DmCopy
from bot.store.jobs import Job

COPY_TITLE = "🍌 Your copy"
# A batch candidate's alt text ends with which it is (bot/render.py ``alt_text``): " (#2)".
_CANDIDATE = re.compile(r"\(#(\d+)\)$")


def copy_notes(link: str | None, *, compressed: int, unread: bool) -> list[str]:
    """What a copy says of the images it could not carry as they are."""
    where = f"[the message]({link})" if link else "the server"
    notes = []
    if compressed:
        one = compressed == 1
        many = "An image is" if one else f"{compressed} images are"
        copy = "is a compressed copy" if one else "are compressed copies"
        full = "the full one is" if one else "the full ones are"
        notes.append(f"{many} larger than a DM takes, so here {copy} (JPEG); {full} in {where}.")
    if unread:
        notes.append(f"The bot may not read that channel, so the images stay in {where}.")
    return notes


def copy_card(shown: Sequence[Job], link: str | None, caps: Capabilities | None, notes: Sequence[str]) -> discord.Embed:
    """What the copy says: the words the images were made from, what with (the model, shape, size, and the seed a
    member reacting ✉️ on Midjourney looks for), who asked, where they are, and the job to quote."""
    lead = shown[0]
    # A prompt with choices, by the words as typed (bot/permutations.py); else as the message shows it.
    words = lead.request.permutation if lead.batch_id is not None else None
    described = render.literal(words, render.WORDS_CHARS) if words else render.described(lead.request)
    embed = discord.Embed(title=COPY_TITLE, colour=render.COLOUR_DONE, description=described)
    where = f"[the message]({link})" if link else "the server"
    # A prompt's shapes in braces (``--ar {1:1, 16:9}``) give its images different shapes: each is named, as the
    # batch's message names them; the first's alone misdescribed the others.
    embed.add_field(name="Model", value=render.model_line(lead, caps, render.differing_shapes(shown)), inline=False)
    options = render.options_line(lead)
    # Said where the images share them: a prompt's choices in braces may each have asked for their own seed.
    if options and all(render.options_line(job) == options for job in shown):
        embed.add_field(name="Options", value=render.truncate(options, 1024), inline=False)
    embed.add_field(name="From", value=f"{where}, asked for by <@{lead.user_id}>", inline=False)
    if notes:
        embed.add_field(name="Note", value=" ".join(notes), inline=False)
    embed.set_footer(text=render.truncate(_jobs_line([job.id for job in shown]), 2048))
    return render.fit(embed)  # within Discord's 6,000 characters an embed may hold in all


def _jobs_line(job_ids: Sequence[str]) -> str:
    return ("Job " if len(job_ids) == 1 else "Jobs ") + ", ".join(job_ids)


def copied_jobs(card: discord.Embed) -> set[str]:
    """The jobs a copy's card (``copy_card``) names in its footer; none for any other message's embed."""
    footer = card.footer.text
    if card.title != COPY_TITLE or not footer:
        return set()
    return set(footer.split(" ", 1)[-1].split(", "))


async def redraw(client: discord.Client, copy: DmCopy, jobs: Sequence[Job], caps: Capabilities | None) -> None:
    """``copy`` drawn again from ``jobs``, its request's erased rows (a lone job, or a batch's candidates): a
    copy's card (its note kept: it names no words) or an end notice's card, and every image's alt text. Raises
    discord.NotFound where the DM is gone; anything else Discord answers passes as it is."""
    channel = client.get_partial_messageable(copy.channel_id)
    message = await channel.fetch_message(copy.message_id)
    old = message.embeds[0] if message.embeds else None
    fields: dict[str, object] = {}
    if old is not None and copy.kind == "copy":
        shown = [job for job in jobs if job.state is JobState.DELIVERED] or list(jobs[:1])
        notes = [field.value for field in old.fields if field.name == "Note" and field.value]
        fields["embed"] = copy_card(shown, message_link(shown[0]), caps, notes)
    elif old is not None:
        # Drawn as it was when it ended: the times it shows are counted to then.
        ended = max(job.finished_at or job.updated_at for job in jobs)
        lead = jobs[0]
        embed = render.batch_embed(list(jobs), caps, now=ended) if lead.batch_id else None
        fields["embed"] = embed or render.failure_embed(lead, caps, now=ended)
    if message.attachments:
        fields["attachments"] = [KeptAttachment(a.id, _alt_text(a.description, jobs)) for a in message.attachments]
    if fields:
        await message.edit(allowed_mentions=discord.AllowedMentions.none(), **fields)  # type: ignore[arg-type]


def _alt_text(old: str | None, jobs: Sequence[Job]) -> str:
    """An image's alt text from the erased rows: a batch's candidate is found by the number its old text ends with."""
    match = _CANDIDATE.search(old or "") if jobs[0].batch_id is not None else None
    number = int(match[1]) if match else None
    job = next((job for job in jobs if (job.batch_index or 1) == number), jobs[0])
    return render.alt_text(job)
