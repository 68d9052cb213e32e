"""What the edit tests (replies, the "Edit with Nano Banana" menu) read: job rows, the ledger, the bot's
messages in the fake Discord, and an image the bot made to start from."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.config import Settings
from bot.models import GenerationRequest, ReferenceImage
from bot.quotas import Member, Quotas
from bot.store import Database
from bot.store.jobs import JobStore, NewJob
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage


def jobs(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        # A batch's candidates share created_at: in the order the member reads them (#1, #2, ...).
        return conn.execute("SELECT * FROM jobs ORDER BY created_at, batch_index").fetchall()


def states(settings: Settings) -> list[str]:
    return [row["state"] for row in jobs(settings)]


def ledger(settings: Settings, job_id: str) -> list[tuple[Any, ...]]:
    """(kind, user) of each ledger row of the job, oldest first."""
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT kind, user_id FROM ledger WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()


async def bot_image(discord_fake: FakeDiscord, settings: Settings, **options: Any) -> FakeMessage:
    """/imagine run to the end: the bot's message with the image."""
    done = len([s for s in states(settings) if s == "delivered"])
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a cat on a sofa", **options})
    await discord_fake.wait_for(lambda: states(settings).count("delivered") == done + 1, timeout=20)
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    await discord_fake.wait_for(lambda: bool(message.attachments), timeout=10)
    return message


def bot_replies_to(discord_fake: FakeDiscord, message_id: int) -> list[FakeMessage]:
    """The bot's replies to a message, oldest first (deleted ones included)."""
    return discord_fake.bot_replies_to(message_id)


def bot_channel_messages(discord_fake: FakeDiscord) -> list[int]:
    """Ids of every message the bot has in the test channel (interaction responses included)."""
    return [m.id for m in discord_fake.messages_in(discord_fake.channel_id) if m.author_id is None]


async def held_reply_jobs(
    settings: Settings,
    discord_fake: FakeDiscord,
    now: float,
    replies: list[FakeMessage],
    reference: ReferenceImage,
) -> None:
    """What a bot that died between recording a reply's job and posting its answer leaves: a job per
    member's reply in ``replies`` (its text the prompt, ``reference`` the image it edits), held for the
    answer, with its reservation, as cogs/replies.py writes it."""
    member = discord_fake.member_id
    db = Database(settings.database.path)
    await db.connect()
    try:
        store, quotas = JobStore(db), Quotas(db, settings.quotas, clock=lambda: now)
        for reply in replies:
            request = GenerationRequest(
                model="nano_banana_2", prompt=reply.content or "", reference_images=(reference,)
            )
            reservation = quotas.reservation(
                Member(discord_fake.guild_id, member),
                model=request.model,
                provider="seaart",
                size="1K",
                units=1,
                cost_micro_usd=0,
            )
            new = NewJob(
                provider="seaart",
                model=request.model,
                request=request,
                guild_id=discord_fake.guild_id,
                channel_id=discord_fake.channel_id,
                user_id=member,
                reply_to_message_id=reply.id,
            )
            await store.create(new, now=now, deadline_seconds=600, within=reservation, start_at=now + 3600)
    finally:
        await db.close()


def followups(discord_fake: FakeDiscord, interaction: FakeInteraction) -> list[tuple[str, int]]:
    """The follow-ups to ``interaction`` after its answer: (content, flags)."""
    return [
        (discord_fake.messages[mid].content or "", discord_fake.messages[mid].flags or 0)
        for mid in interaction.followup_ids
    ]


async def told_privately(discord_fake: FakeDiscord, interaction: FakeInteraction) -> list[tuple[str, int]]:
    """``followups`` once there is one: a note the bot sends after the job started (its answer)."""
    await discord_fake.wait_for(lambda: bool(interaction.followup_ids), timeout=10)
    return followups(discord_fake, interaction)
