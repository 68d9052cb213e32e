"""A member's erasure of their words (bot/store/erasure.py) on a real SQLite file: what goes, what stays, and which
requests wait until they end."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from bot.errors import ErrorCategory
from bot.models import Derivation, GenerationRequest, JobResult, JobState, ReferenceImage, Turn
from bot.store import Database
from bot.store.dm_copies import copied_to, owed, record, redrawn
from bot.store.erasure import ERASED_WORDS, erase, erase_ended_before, kept_about
from bot.store.jobs import Job, JobStore, NewJob
from bot.store.preferences import PreferenceStore
from bot.store.starred import Starred

GUILD, OTHER_GUILD, MEMBER, OTHER_MEMBER = 1, 2, 7, 8
PHOTO = ReferenceImage(url="https://cdn.example/my-face.png?sig=1", content_type="image/png", size=10)


def asked(prompt: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(model="nano_banana_pro", prompt=prompt, aspect_ratio="4:5", resolution="2K", **kw)


def new(prompt: str, *, guild: int = GUILD, user: int = MEMBER, **kw: object) -> NewJob:
    return NewJob(provider="seaart", model="nano_banana_pro", request=asked(prompt, **kw), guild_id=guild, user_id=user)


async def ended(store: JobStore, prompt: str, *, at: float, user: int = MEMBER) -> Job:
    """One request of the member's (or ``user``'s), asked at 10 and cancelled at ``at``."""
    (job,) = await store.create_batch([new(prompt, user=user)], now=10, deadline_seconds=6000)
    return await store.update(job, now=at, state=JobState.CANCELLED)


def requests(path: Path) -> dict[str, dict[str, object]]:
    with sqlite3.connect(path) as conn:
        return {row[0]: json.loads(row[1]) for row in conn.execute("SELECT id, request_json FROM jobs")}


async def test_an_erasure_takes_the_words_of_ended_requests_and_keeps_the_rest(db: Database, tmp_path: Path) -> None:
    store = JobStore(db)
    turn = Turn(prompt="the first step: my sister's wedding dress", result=PHOTO)
    derived = Derivation(action="edit", job_id="00ff00ff00ff00ff", message_url="https://discord.com/channels/1/2/3")
    (rich,) = await store.create_batch(
        [
            new(
                "make the dress blue",
                reference_images=(PHOTO,),
                history=(turn,),
                member_words="make the dress blue",
                subject="my sister in her wedding dress",
                derived_from=derived,
                seed=42,
            )
        ],
        now=10,
        deadline_seconds=600,
    )
    rich = await store.update(
        rich,
        now=11,
        state=JobState.FAILED,
        error_category=ErrorCategory.NO_IMAGE,
        error_message="no image",
        result=JobResult(text="Here is your sister, as you asked"),
    )
    (cancelled,) = await store.create_batch([new("a second secret")], now=20, deadline_seconds=600)
    await store.update(cancelled, now=21, state=JobState.CANCELLED)
    # A batch whose second candidate still runs: its words stay until it ends.
    first, second = await store.create_batch([new("twins at dawn"), new("twins at dusk")], now=30, deadline_seconds=600)
    await store.update(first, now=31, state=JobState.CANCELLED)
    # Another member's, and the member's own in another server: not this erasure's.
    (theirs,) = await store.create_batch([new("their words", user=OTHER_MEMBER)], now=40, deadline_seconds=600)
    await store.update(theirs, now=41, state=JobState.CANCELLED)
    (elsewhere,) = await store.create_batch([new("mine elsewhere", guild=OTHER_GUILD)], now=50, deadline_seconds=600)
    await store.update(elsewhere, now=51, state=JobState.CANCELLED)
    prefs = PreferenceStore(db)
    await prefs.save(GUILD, MEMBER, replace(await prefs.get(GUILD, MEMBER), suffix="in my style"), now=1)
    assert (await prefs.get(GUILD, MEMBER)).suffix == "in my style"  # read, and so kept in memory
    await Starred(db).star(GUILD, MEMBER, [theirs.id], now=2)
    await Starred(db).star(OTHER_GUILD, MEMBER, [elsewhere.id], now=2)

    before = await kept_about(db, GUILD, MEMBER)
    assert (before.requests, before.oldest, before.unfinished, before.erased) == (2, 10, 1, 0)
    assert before.preferences and before.stars == 1

    done = await erase(db, GUILD, MEMBER, now=100)
    assert (done.requests, done.preferences, done.stars, done.unfinished) == (2, True, 1, 1)
    stored = requests(tmp_path / "bot.sqlite3")
    assert stored[rich.id] == json.loads(
        GenerationRequest(
            model="nano_banana_pro",
            prompt=ERASED_WORDS,
            aspect_ratio="4:5",
            resolution="2K",
            seed=42,
            derived_from=derived,
        ).model_dump_json()
    )
    gone = json.dumps(stored[rich.id]) + json.dumps(stored[cancelled.id])
    for word in ("sister", "dress", "my-face", "secret"):
        assert word not in gone, word
    erased_job = await store.get(rich.id)
    assert erased_job is not None and erased_job.erased_at == 100 and erased_job.result.text is None
    assert erased_job.state is JobState.FAILED and erased_job.error_message == "no image"
    for untouched, prompt in ((first, "twins at dawn"), (second, "twins at dusk"), (theirs, "their words")):
        assert stored[untouched.id]["prompt"] == prompt
    assert stored[elsewhere.id]["prompt"] == "mine elsewhere"
    assert (await prefs.get(GUILD, MEMBER)).suffix == "in my style"  # the copy in memory: its caller drops it
    prefs.erased(GUILD, MEMBER)
    assert (await prefs.get(GUILD, MEMBER)).suffix is None
    assert await Starred(db).of(GUILD, MEMBER, limit=10) == []
    assert await Starred(db).of(OTHER_GUILD, MEMBER, limit=10) == [elsewhere.id]

    after = await kept_about(db, GUILD, MEMBER)
    assert (after.requests, after.unfinished, after.erased, after.preferences, after.stars) == (0, 1, 2, False, 0)
    # The batch ends: a second erasure takes it, whole; a third finds nothing left.
    await store.update(second, now=60, state=JobState.CANCELLED)
    assert (await erase(db, GUILD, MEMBER, now=200)).requests == 1
    stored = requests(tmp_path / "bot.sqlite3")
    assert stored[first.id]["prompt"] == stored[second.id]["prompt"] == ERASED_WORDS
    assert (await erase(db, GUILD, MEMBER, now=300)).requests == 0
    assert (await store.get(rich.id) or rich).erased_at == 100  # erased once, when it was


async def test_a_row_whose_request_this_version_cannot_read_is_erased_all_the_same(
    db: Database, tmp_path: Path
) -> None:
    store = JobStore(db)
    job = await ended(store, "words in an old shape", at=11)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET request_json = ? WHERE id = ?", ('{"prompt": "words in an old shape", "extra": [', job.id)
        )
    assert (await erase(db, GUILD, MEMBER, now=100)).requests == 1
    assert requests(tmp_path / "bot.sqlite3")[job.id]["prompt"] == ERASED_WORDS
    assert requests(tmp_path / "bot.sqlite3")[job.id]["model"] == "nano_banana_pro"


async def test_a_long_history_is_erased_a_chunk_at_a_time_and_counted_by_request(db: Database, tmp_path: Path) -> None:
    """Each chunk its own transaction (the job loop and other members write between them); a batch whose candidates
    fall in two chunks is one request erased, and every row is."""
    store = JobStore(db)
    made = [*await store.create_batch([new("one"), new("two"), new("three")], now=10, deadline_seconds=600)]
    for n in range(4):
        made += await store.create_batch([new(f"single {n}")], now=20 + n, deadline_seconds=600)
    for job in made:
        await store.update(job, now=50, state=JobState.CANCELLED)
    done = await erase(db, GUILD, MEMBER, now=100, chunk=2)
    assert done.requests == 5
    assert {request["prompt"] for request in requests(tmp_path / "bot.sqlite3").values()} == {ERASED_WORDS}


async def test_words_past_the_time_kept_are_erased_for_everyone_and_a_batch_once_all_of_it_is_that_old(
    db: Database, tmp_path: Path
) -> None:
    store = JobStore(db)
    old = await ended(store, "ended long ago", at=100)
    other = await ended(store, "another member's, as old", user=OTHER_MEMBER, at=100)
    recent = await ended(store, "ended lately", at=900)
    (running,) = await store.create_batch([new("still running")], now=10, deadline_seconds=6000)
    # A batch: one candidate ended long ago, the other lately; erased once the last is as old.
    first, second = await store.create_batch([new("half old"), new("half new")], now=10, deadline_seconds=600)
    await store.update(first, now=100, state=JobState.CANCELLED)
    await store.update(second, now=900, state=JobState.CANCELLED)

    assert await erase_ended_before(db, 500, now=1000) == 2
    prompts = {job_id: request["prompt"] for job_id, request in requests(tmp_path / "bot.sqlite3").items()}
    assert prompts[old.id] == prompts[other.id] == ERASED_WORDS
    assert [prompts[j.id] for j in (recent, running, first, second)] == [
        "ended lately",
        "still running",
        "half old",
        "half new",
    ]
    assert await erase_ended_before(db, 500, now=1100) == 0  # read by the index, nothing left
    assert await erase_ended_before(db, 1000, now=1200, chunk=1) == 2  # the recent one and the whole batch
    assert {
        request["prompt"] for job_id, request in requests(tmp_path / "bot.sqlite3").items() if job_id != running.id
    } == {ERASED_WORDS}


async def test_erased_words_are_gone_from_the_database_files_themselves(db: Database, tmp_path: Path) -> None:
    """An UPDATE leaves the old bytes in the page's free space, and the write-ahead log keeps old page images: a
    copy of the files (a disk image, a backup by hand) would still hold them. Erased, they are not in any file, even
    where SQLite leaves deleted bytes (its default; Debian's build here zeroes them, SQLITE_SECURE_DELETE)."""
    async with db.read() as conn:
        await conn.execute("PRAGMA secure_delete = 0")
    store = JobStore(db)
    made = await store.create_batch(
        [new(f"the zanzibarquokka of my childhood, take {n}") for n in range(3)], now=10, deadline_seconds=600
    )
    for job in made:
        await store.update(job, now=50, state=JobState.CANCELLED, result=JobResult(text="a zanzibarquokka, as asked"))
    files = sorted(tmp_path.glob("bot.sqlite3*"))
    assert any(b"zanzibarquokka" in path.read_bytes() for path in files)
    await erase(db, GUILD, MEMBER, now=100)
    for path in sorted(tmp_path.glob("bot.sqlite3*")):
        assert b"zanzibarquokka" not in path.read_bytes(), path.name
    async with db.read() as conn, conn.execute("PRAGMA secure_delete") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (0,)  # the connection's own setting, as it was


async def test_two_erasures_at_once_leave_the_connection_as_they_found_it(db: Database, tmp_path: Path) -> None:
    """A member's erasure begins while another's (or the hourly sweep) is under way: each puts secure_delete back as
    it found it, so interleaved the first, ending, would turn it off under the second, which would then leave it on
    for good; they take turns."""

    async def secure_delete() -> int:
        async with db.read() as conn, conn.execute("PRAGMA secure_delete") as cursor:
            row = await cursor.fetchone()
            return int(row[0]) if row is not None else 0

    async with db.read() as conn:
        await conn.execute("PRAGMA secure_delete = 0")
    store = JobStore(db)
    for user, count in ((MEMBER, 3), (OTHER_MEMBER, 60)):
        news = [new(f"words of {user}, {n}", user=user) for n in range(count)]
        for job in [job for one in news for job in await store.create_batch([one], now=10, deadline_seconds=600)]:
            await store.update(job, now=50, state=JobState.CANCELLED)
    first = asyncio.create_task(erase(db, GUILD, MEMBER, now=100, chunk=1))
    while await secure_delete() == 0:  # noqa: ASYNC110 - the first is under way once it has turned it on
        await asyncio.sleep(0)
    second = await erase(db, GUILD, OTHER_MEMBER, now=100, chunk=1)
    assert ((await first).requests, second.requests) == (3, 60)
    assert await secure_delete() == 0
    assert {request["prompt"] for request in requests(tmp_path / "bot.sqlite3").values()} == {ERASED_WORDS}


async def test_the_dms_quoting_an_erased_request_are_owed_a_redraw_even_one_recorded_after(db: Database) -> None:
    """A DM (a ✉️ copy, an end notice: bot/dm_copies.py) of a request erased: owed a redraw, in the erasure's
    transaction, or as it is recorded where it was drawn from a row read before the erasure and sent after. A DM of
    another member's request is owed nothing until theirs is erased; one redrawn is kept no more."""
    store = JobStore(db)
    mine = await ended(store, "a secret read before the erasure", at=11)
    other = await ended(store, "mine too", at=12)
    theirs = await ended(store, "their words", at=13, user=OTHER_MEMBER)
    await record(db, 100, 5, other.id, MEMBER, "end_notice", now=14)
    await record(db, 101, 5, theirs.id, MEMBER, "copy", now=14)
    assert await owed(db, limit=10) == []

    await erase(db, GUILD, MEMBER, now=20)
    # Sent after the erasure, drawn from the words read before it.
    await record(db, 102, 5, mine.id, OTHER_MEMBER, "copy", now=21)
    assert [(c.message_id, c.job_id, c.kind) for c in await owed(db, limit=10)] == [
        (100, other.id, "end_notice"),
        (102, mine.id, "copy"),
    ]
    await erase(db, GUILD, OTHER_MEMBER, now=30)
    assert [c.message_id for c in await owed(db, limit=10)] == [100, 102, 101]
    await redrawn(db, 100)
    assert [c.message_id for c in await owed(db, limit=10)] == [102, 101]
    # Kept, owing nothing: who was sent a copy of what (a ✉️ found while the bot was away is not answered twice).
    assert await copied_to(db, [mine.id, theirs.id]) == {MEMBER, OTHER_MEMBER}
    assert await copied_to(db, [other.id]) == set()  # an end notice is no copy
