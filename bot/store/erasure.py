"""What the bot keeps about a member in a server, and the erasing of it they may ask for (/privacy: cogs/privacy.py).

A member's requests hold their words: the prompt, the words they added to a Vary or an edit, a conversation of edits,
the links to the images they gave, the model's text. Those are erased on request, each request whose images have all
ended (one still generating or waiting keeps its words until it ends: its message, its retries and its failover read
them). What stays is what the server's accounting and moderation need and names no words: the row's model, provider,
options, units and estimated cost (``/usage``, the ledger), its message's id and its end; and the audit log's
moderation records (a blocked prompt's quote among them), which are the moderators' evidence, not the member's
history. An erased request is marked (``erased_at``, migration 0030): nothing is made from it again (its buttons and
replies say why), and /jobs search skips it. The member's preferences (their suffix and option sets are their words
too) and their stars go with it.

The images stay in the server's channels; each erased request's message is drawn again without its words (its
embed, its images' alt text: bot/delivery.py ``redraw_erased``), owed in the row (``erasure_shown_at``) until done, so
that a restart takes up what a stop left (bot/erased_messages.py). Its member deletes any of them with its Delete
button or a ❌ reaction.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite
from pydantic import ValidationError

from bot.models import GenerationRequest, JobResult
from bot.store import Database
from bot.store.dm_copies import owe_redraws
from bot.store.jobs import ACTIVE_STATES, Job
from bot.store.usage import csv_text

log = logging.getLogger(__name__)

# What an erased request's prompt reads, wherever it is shown again (/jobs, a ✉️ copy).
ERASED_WORDS = "(its words were erased)"
_ACTIVE = "(" + ", ".join(f"'{state}'" for state in ACTIVE_STATES) + ")"
# A member's requests in a server whose every image has ended (a batch's candidates end one by one).
_ENDED_OF_MEMBER = (
    f"FROM jobs j WHERE j.guild_id = ? AND j.user_id = ? AND j.state NOT IN {_ACTIVE} AND (j.batch_id IS NULL OR "
    f"NOT EXISTS (SELECT 1 FROM jobs o WHERE o.batch_id = j.batch_id AND o.state IN {_ACTIVE}))"
)
# Anyone's requests whose every image ended before a time (the partial index jobs_words_kept, migration 0030).
_ENDED_BEFORE = (
    "FROM jobs j WHERE j.finished_at < ? AND (j.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs o WHERE "
    "o.batch_id = j.batch_id AND (o.state IN " + _ACTIVE + " OR o.finished_at >= ?)))"
)
_REQUEST = "COALESCE(batch_id, id)"
# Rows erased per transaction: about 30 ms of the database's one writer here, what a job loop write waits at most
# behind one (bench/erasure.py).
CHUNK = 250


@dataclass(frozen=True, slots=True)
class KeptAbout:
    """What the bot holds of one member in one server (``kept_about``)."""

    requests: int  # with their words: ended, not erased
    oldest: float | None  # when the oldest of those was asked
    unfinished: int  # generating or waiting their turn: erased only once they end
    erased: int  # erased before
    preferences: bool
    stars: int


@dataclass(frozen=True, slots=True)
class Erasure:
    """What ``erase`` took away, and the requests it left because they had not ended."""

    requests: int
    preferences: bool
    stars: int
    unfinished: int


def words_kept(job: Job | None) -> Job | None:
    """The bot's job behind an image, unless its member erased its words: such an image is edited (Edit with Nano
    Banana, a reply) as any other image is, from itself alone, its conversation and words gone."""
    return None if job is None or job.erased_at is not None else job


def erased_request(request: GenerationRequest) -> GenerationRequest:
    """``request`` without the member's words and images: its model and options, and which image of the bot's it
    worked on (a job and a message's link, for the embed's "Made from"), and nothing else."""
    return GenerationRequest(
        model=request.model,
        prompt=ERASED_WORDS,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        seed=request.seed,
        output_format=request.output_format,
        thinking_level=request.thinking_level,
        web_search=request.web_search,
        safety_tolerance=request.safety_tolerance,
        derived_from=None if request.derived_from is None else request.derived_from.model_copy(update={"region": None}),
        came_from=request.came_from,
    )


async def erased_since(db: Database, guild_id: int, user_ids: Iterable[int], when: float) -> set[int]:
    """Those of these members who erased their words in the server at or after ``when``."""
    ids = list(user_ids)
    if not ids:
        return set()
    marks = ", ".join("?" * len(ids))
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            f"SELECT user_id FROM member_erasures WHERE guild_id = ? AND erased_at >= ? AND user_id IN ({marks})",
            (guild_id, when, *ids),
        )
    return {int(row[0]) for row in rows}


async def servers_of(db: Database, user_id: int) -> list[int]:
    """The servers where the bot keeps anything of the member's (requests, preferences, stars), by id."""
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT guild_id FROM jobs WHERE user_id = ? AND guild_id IS NOT NULL UNION "
            "SELECT guild_id FROM member_preferences WHERE user_id = ? UNION "
            "SELECT guild_id FROM starred WHERE user_id = ? ORDER BY guild_id",
            (user_id, user_id, user_id),
        )
    return [int(row[0]) for row in rows]


async def kept_about(db: Database, guild_id: int, user_id: int) -> KeptAbout:
    async with db.read() as conn:
        ended = await _one(
            conn,
            f"SELECT COUNT(DISTINCT {_REQUEST}), MIN(created_at) {_ENDED_OF_MEMBER} AND j.erased_at IS NULL",
            (guild_id, user_id),
        )
        counts = await _one(
            conn,
            f"SELECT COUNT(DISTINCT CASE WHEN state IN {_ACTIVE} THEN {_REQUEST} END), "
            f"COUNT(DISTINCT CASE WHEN erased_at IS NOT NULL THEN {_REQUEST} END) "
            "FROM jobs WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        preferences = await _one(
            conn, "SELECT COUNT(*) FROM member_preferences WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        stars = await _one(conn, "SELECT COUNT(*) FROM starred WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
    return KeptAbout(
        requests=int(ended[0]),
        oldest=None if ended[1] is None else float(ended[1]),
        unfinished=int(counts[0]),
        erased=int(counts[1]),
        preferences=bool(preferences[0]),
        stars=int(stars[0]),
    )


# One erasure at a time per database: each turns secure_delete on and puts it back as it found it, so two at once
# (a member's and the hourly sweep) would leave it as the other found it.
_ERASING: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _wiping(db: Database) -> AsyncIterator[None]:
    """Erased bytes gone from the files, not only from the rows: SQLite leaves a row's old bytes in its page's free
    space (``secure_delete`` zeroes them, on for the erasure's length: the bot's one connection), and the write-ahead
    log keeps the pages as they were until it is reused (checkpointed and truncated after; a reader of another
    program can hold that off, and the next erasure or SQLite's own checkpoints take it up)."""
    lock = _ERASING.setdefault(db, asyncio.Lock())
    async with lock:
        async with _secure_delete(db):
            yield
        async with db.read() as conn, conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            busy = await cursor.fetchone()
        if busy is not None and busy[0]:
            log.info("erasure: the write-ahead log is in use by another reader; SQLite reuses it later")


@asynccontextmanager
async def _secure_delete(db: Database) -> AsyncIterator[None]:
    async with db.read() as conn, conn.execute("PRAGMA secure_delete") as cursor:
        row = await cursor.fetchone()
    before = int(row[0]) if row is not None else 0
    async with db.read() as conn:
        await conn.execute("PRAGMA secure_delete = 1")
    try:
        yield
    finally:
        async with db.read() as conn:
            await conn.execute(f"PRAGMA secure_delete = {before}")


async def erase(db: Database, guild_id: int, user_id: int, *, now: float, chunk: int = CHUNK) -> Erasure:
    """Erase the member's words in this server: their preferences and their stars, then every ended request's. The
    rows go ``chunk`` at a time, each chunk its own transaction, so that a long history (10,000 requests take about a
    second here) does not hold the database's one writer from the job loop and other members for all of it; a stop
    between chunks leaves the rest for the next erasure (each row is marked as it goes). The caller drops its copy
    of their preferences kept in memory (``PreferenceStore.erased``)."""
    kept = await kept_about(db, guild_id, user_id)
    if not (kept.requests or kept.preferences or kept.stars):
        # Pressed again, or on an answer drawn before an earlier erasure: nothing to write, nor to wipe.
        return Erasure(0, False, 0, kept.unfinished)
    async with _wiping(db):
        return await _erase_member(db, guild_id, user_id, now=now, chunk=chunk)


async def _erase_member(db: Database, guild_id: int, user_id: int, *, now: float, chunk: int) -> Erasure:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM member_preferences WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        preferences = cursor.rowcount > 0
        cursor = await conn.execute("DELETE FROM starred WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
        stars = cursor.rowcount
        await conn.execute(
            "INSERT OR REPLACE INTO member_erasures (guild_id, user_id, erased_at) VALUES (?, ?, ?)",
            (guild_id, user_id, now),
        )
    erased = await _erase_requests(db, _ENDED_OF_MEMBER, (guild_id, user_id), now=now, chunk=chunk)
    async with db.read() as conn:
        unfinished = await _one(
            conn,
            f"SELECT COUNT(DISTINCT {_REQUEST}) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN {_ACTIVE}",
            (guild_id, user_id),
        )
    return Erasure(erased, preferences, stars, int(unfinished[0]))


async def erase_ended_before(db: Database, before: float, *, now: float, chunk: int = CHUNK) -> int:
    """Erase the words of every request, anyone's, whose images all ended before ``before`` (``[privacy]
    keep_words_days``: cogs/privacy.py sweeps hourly); how many requests. Read by the partial index of migration
    0030, so a sweep that finds nothing reads nothing. A batch is erased once its last candidate is that old."""
    async with (
        db.read() as conn,
        conn.execute(f"SELECT 1 {_ENDED_BEFORE} AND j.erased_at IS NULL LIMIT 1", (before, before)) as cursor,
    ):
        if await cursor.fetchone() is None:
            return 0  # the hourly sweep's usual finding: nothing new is that old
    async with _wiping(db):
        return await _erase_requests(db, _ENDED_BEFORE, (before, before), now=now, chunk=chunk)


async def _erase_requests(db: Database, rows_sql: str, params: tuple[object, ...], *, now: float, chunk: int) -> int:
    """Erase the rows ``rows_sql`` names (not erased yet), ``chunk`` a transaction; how many requests they were."""
    erased: set[str] = set()
    while True:
        async with db.transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    f"SELECT j.id, j.batch_id, j.model, j.request_json, j.result_json {rows_sql} "
                    "AND j.erased_at IS NULL LIMIT ?",
                    (*params, chunk),
                )
            )
            # Off the event loop: rewriting a thousand requests is a tenth of a second of Python, which held up every
            # other task (Discord's heartbeat, members' commands) for as long (bench/erasure.py).
            values = await asyncio.to_thread(_erased_values, rows, now)
            await conn.executemany(
                "UPDATE jobs SET request_json = ?, result_json = ?, erased_at = ?, updated_at = ?, "
                "erasure_shown_at = CASE WHEN message_id IS NULL THEN ? END WHERE id = ?",
                values,
            )
            # The DMs that quoted these requests (a ✉️ copy, an end notice) are drawn again too: the member cannot
            # delete the bot's DMs.
            await owe_redraws(conn, [str(row["id"]) for row in rows], now=now)
        erased |= {str(row["batch_id"] or row["id"]) for row in rows}
        if len(rows) < chunk:
            return len(erased)


# A member's requests as /privacy's download gives them (``requests_csv``).
REQUEST_COLUMNS = (
    "job_id",
    "batch_id",
    "asked_at",
    "state",
    "model",
    "provider",
    "prompt",
    "your_words",
    "aspect_ratio",
    "resolution",
    "seed",
    "message",
    "words_erased",
)


async def requests_csv(db: Database, guild_id: int, user_id: int) -> tuple[int, str]:
    """Every request row of the member's in this server (a batch's candidates one per line), oldest first, as CSV:
    how many, and the text. ``prompt`` is as it was sent (a Vary's is the bot's instruction around their words),
    ``your_words`` their own part where the two differ; times ISO-8601 UTC; free text guarded against being read as
    a spreadsheet formula."""
    async with db.read() as conn:
        found = await conn.execute_fetchall(
            "SELECT id, batch_id, created_at, state, model, provider, json_extract(request_json, '$.prompt'), "
            "json_extract(request_json, '$.member_words'), json_extract(request_json, '$.aspect_ratio'), "
            "json_extract(request_json, '$.resolution'), json_extract(request_json, '$.seed'), channel_id, "
            "message_id, deleted_by, erased_at FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY created_at, "
            "batch_index",
            (guild_id, user_id),
        )
    rows = list(found)
    # Off the event loop: a long history is tens of thousands of lines.
    return len(rows), await asyncio.to_thread(_requests_csv, rows, guild_id)


def _requests_csv(rows: list[aiosqlite.Row], guild_id: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REQUEST_COLUMNS)
    for row in rows:
        job_id, batch_id, created, state, model, provider, prompt, words, ratio, size, seed = tuple(row)[:11]
        channel_id, message_id, deleted_by, erased_at = tuple(row)[11:]
        shown = message_id is not None and channel_id is not None and deleted_by is None
        writer.writerow(
            [
                job_id,
                batch_id or "",
                datetime.fromtimestamp(float(created), UTC).isoformat(timespec="seconds"),
                state,
                csv_text(model),
                csv_text(provider),
                csv_text(prompt),
                csv_text(words if words is not None and words != prompt else None),
                csv_text(ratio),
                csv_text(size),
                "" if seed is None else seed,
                f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}" if shown else "",
                "yes" if erased_at is not None else "no",
            ]
        )
    return out.getvalue()


async def unshown(db: Database, *, limit: int) -> list[str]:
    """Erased requests whose message still shows their words (its redraw owed), the longest owed first."""
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT id FROM jobs WHERE erased_at IS NOT NULL AND erasure_shown_at IS NULL ORDER BY erased_at LIMIT ?",
            (limit,),
        )
    return [str(row[0]) for row in rows]


async def shown(db: Database, job_ids: Sequence[str], *, now: float) -> None:
    """Their messages drawn again without their words, or found gone: nothing more is owed."""
    async with db.transaction() as conn:
        await conn.executemany(
            "UPDATE jobs SET erasure_shown_at = ? WHERE id = ? AND erasure_shown_at IS NULL",
            [(now, job_id) for job_id in job_ids],
        )


def _erased_values(rows: list[aiosqlite.Row], now: float) -> list[tuple[object, ...]]:
    """The UPDATE's parameters for each of ``rows``: its request and result without their words."""
    return [(_erased_json(row), _result_json(row), now, now, now, str(row["id"])) for row in rows]


def _erased_json(row: aiosqlite.Row) -> str:
    try:
        request = GenerationRequest.model_validate_json(row["request_json"])
    except ValidationError:
        # A row an older version wrote in a shape this one cannot read: its words go all the same.
        log.warning("erasing job %s: its request could not be read; only its model is kept", row["id"])
        request = GenerationRequest(model=str(row["model"]), prompt=ERASED_WORDS)
    return erased_request(request).model_dump_json()


def _result_json(row: aiosqlite.Row) -> str | None:
    """The result without the model's text (its images' links stay: the provider's, expired, no words of anyone's)."""
    stored = row["result_json"]
    if not stored:
        return None
    try:
        result = JobResult.model_validate_json(stored)
    except ValidationError:
        return None
    return result.model_copy(update={"text": None}).model_dump_json()


async def _one(conn: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> aiosqlite.Row:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always answers one row
    return row
