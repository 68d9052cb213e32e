"""The jobs table on a real SQLite file: migrations, checked transitions, compare-and-set."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from importlib import resources
from pathlib import Path

import aiosqlite
import pytest

from bot.errors import ErrorCategory
from bot.models import (
    TRANSITIONS,
    GenerationRequest,
    ImageRef,
    JobHandle,
    JobResult,
    JobState,
    JobUpdate,
    ProviderAttempt,
    UpdateStatus,
)
from bot.store import Database, latest_schema_version
from bot.store.jobs import InvalidTransitionError, Job, JobStore, NewJob
from bot.store.owed_edits import OwedEdits


@pytest.fixture
async def store(tmp_path: Path) -> JobStore:
    db = Database(tmp_path / "jobs.sqlite3")
    await db.connect()
    yield JobStore(db)  # type: ignore[misc]
    await db.close()


def new_job(**kw: object) -> NewJob:
    request = GenerationRequest(model="nano_banana_2", prompt="a banana", aspect_ratio="16:9")
    return NewJob(provider="seaart", model="nano_banana_2", request=request, user_id=7, **kw)  # type: ignore[arg-type]


async def test_a_database_from_before_cancel_requests_upgrades_with_its_jobs(tmp_path: Path) -> None:
    """A database the previous release left (migrations up to 0011) with a job running: opening it adds
    ``cancel_requested`` (0012), keeps the job, and the new column takes only its two values."""
    path = tmp_path / "old.sqlite3"
    folder = resources.files("bot.store") / "migrations"
    older = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql") and f.name < "0012")
    request = GenerationRequest(model="nano_banana_2", prompt="kept across the upgrade")
    with contextlib.closing(sqlite3.connect(path)) as raw:
        for name in older:
            raw.executescript((folder / name).read_text(encoding="utf-8"))
        raw.execute(f"PRAGMA user_version={len(older)}")
        raw.execute(
            "INSERT INTO jobs (id, state, source, provider, model, request_json, deadline_at, created_at,"
            " updated_at, next_poll_at) VALUES ('00ff00ff00ff00ff', 'running', 'discord', 'seaart',"
            " 'nano_banana_2', ?, 900, 100, 100, 100)",
            (request.model_dump_json(),),
        )
        raw.commit()
    db = Database(path)
    await db.connect()
    try:
        assert await db.schema_version() >= 12
        store = JobStore(db)
        job = await store.get("00ff00ff00ff00ff")
        assert job is not None and job.state is JobState.RUNNING and job.cancel_requested is None
        assert job.request.prompt == "kept across the upgrade"
        job = await store.update(job, now=101, cancel_requested="show")
        assert (await store.get(job.id) or job).cancel_requested == "show"
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn:
                await conn.execute("UPDATE jobs SET cancel_requested = 'perhaps'")
    finally:
        await db.close()


async def test_migrations_set_wal_and_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.sqlite3")
    await db.connect()
    version = await db.schema_version()
    await db.close()
    assert version >= 1
    # A second connect applies nothing new and keeps the data.
    db = Database(tmp_path / "a.sqlite3")
    await db.connect()
    assert await db.schema_version() == version
    await db.close()
    with sqlite3.connect(tmp_path / "a.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {row[1] for row in raw.execute("PRAGMA table_info(jobs)")}
    assert {"provider_job_id", "next_poll_at", "interaction_token", "submit_started_at"} <= columns


def schema(path: Path) -> tuple[int, list[tuple[str, str, str, str | None]]]:
    with sqlite3.connect(path) as raw:
        version = int(raw.execute("PRAGMA user_version").fetchone()[0])
        rows = raw.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return version, rows


async def test_a_new_database_is_what_every_migration_makes_of_an_empty_one(tmp_path: Path) -> None:
    """A new database starts as a migrated image (bot/store/__init__.py ``_create_private``); a file that exists,
    empty (as an operator's `touch`, or a file system without hard links leaves it), is migrated step by step.
    Both must end with the same schema, or a bot's first start and its later ones would differ."""
    made = tmp_path / "new" / "bot.sqlite3"
    made.parent.mkdir()
    stepped = tmp_path / "empty.sqlite3"
    stepped.touch()
    for path in (made, stepped):
        db = Database(path)
        await db.connect()
        await db.close()
    assert schema(made) == schema(stepped)
    assert schema(made)[0] == latest_schema_version() and len(schema(made)[1]) > 20
    assert made.stat().st_mode & 0o777 == 0o600, "members' prompts and interaction tokens: the owner's only"
    # Nothing left beside it but SQLite's own files.
    assert {p.name for p in made.parent.iterdir()} <= {"bot.sqlite3", "bot.sqlite3-wal", "bot.sqlite3-shm"}


async def test_a_database_file_that_exists_is_never_replaced(tmp_path: Path) -> None:
    """A file already there (another process's first start, just before this one's; an operator's) is opened
    and migrated, never swapped for a new image."""
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE theirs (x)")
    db = Database(path)
    await db.connect()
    await db.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'theirs'").fetchone()[0] == 1
    assert schema(path)[0] == latest_schema_version()


async def test_round_trip_and_transitions(store: JobStore) -> None:
    job = await store.create(new_job(message_id=55), now=1000.0, deadline_seconds=600)
    assert job.state is JobState.QUEUED and job.deadline_at == 1600.0 and job.message_id == 55
    assert job.request.aspect_ratio == "16:9"
    handle = JobHandle(provider="seaart", model="nano_banana_2", provider_job_id="p-1", extra={"a": 1})
    job = await store.update(job, now=1001.0, state=JobState.SUBMITTED, handle=handle, provider_job_id="p-1")
    assert job.handle == handle and job.provider_job_id == "p-1"
    job = await store.update(
        job, now=1002.0, state=JobState.FAILED, error_category=ErrorCategory.TRANSIENT, error_message="x"
    )
    assert job.finished_at == 1002.0 and job.error_category is ErrorCategory.TRANSIENT
    assert job.interaction_token is None
    with pytest.raises(InvalidTransitionError):
        await store.update(job, now=1003.0, state=JobState.RUNNING)


async def test_stale_writer_loses(store: JobStore) -> None:
    job = await store.create(new_job(), now=1.0, deadline_seconds=10)
    await store.update(job, now=2.0, state=JobState.CANCELLED)
    with pytest.raises(InvalidTransitionError):
        await store.update(job, now=3.0, state=JobState.SUBMITTED)  # job is the stale 'queued' copy
    fresh = await store.get(job.id)
    assert fresh is not None and fresh.state is JobState.CANCELLED


async def test_an_end_and_its_owed_edit_are_one_transaction(store: JobStore) -> None:
    """``update(within=)``: the failure and the debt to show it are written together, or neither."""
    owed = OwedEdits(store.db)
    job = await store.create(new_job(message_id=55), now=1.0, deadline_seconds=600)
    job = await store.update(job, now=2.0, state=JobState.SUBMITTED, provider_job_id="p-1")

    async def broken(conn: aiosqlite.Connection, job_ids: Sequence[str]) -> None:
        await owed.within(3.0)(conn, job_ids)
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError):
        await store.update(job, now=3.0, state=JobState.FAILED, error_message="x", within=broken)
    reread = await JobStore(store.db).get(job.id)  # a new store: the row itself, not a cached copy
    assert reread is not None and reread.state is JobState.SUBMITTED
    assert await owed.all() == []

    ended = await store.update(job, now=4.0, state=JobState.FAILED, error_message="x", within=owed.within(4.0))
    assert ended.state is JobState.FAILED and await owed.all() == [job.id]
    with pytest.raises(InvalidTransitionError):  # a stale writer writes no debt either
        await store.update(job, now=5.0, state=JobState.CANCELLED, within=owed.within(5.0))
    await owed.paid(job.id)
    assert await owed.all() == []


def test_terminal_states_have_no_way_out() -> None:
    for state, targets in TRANSITIONS.items():
        if state.terminal:
            assert not targets
    assert JobState.QUEUED not in set().union(*TRANSITIONS.values())


async def test_the_agenda_orders_excludes_and_says_what_comes_next(store: JobStore) -> None:
    a = await store.create(new_job(), now=1.0, deadline_seconds=100)
    b = await store.create(new_job(), now=2.0, deadline_seconds=100)
    await store.update(b, now=2.0, next_poll_at=50.0)
    early = await store.agenda(10.0, exclude=(), limit=10)
    assert [j.id for j in early.due] == [a.id] and early.next_at == 50.0
    assert [j.id for j in (await store.agenda(60.0, exclude=(), limit=10)).due] == [a.id, b.id]
    assert [j.id for j in (await store.agenda(60.0, exclude={a.id}, limit=10)).due] == [b.id]
    # More due than the limit: the next one is due now.
    assert (await store.agenda(60.0, exclude=(), limit=1)).next_at == 60.0
    await store.update(a, now=3.0, state=JobState.CANCELLED)
    assert [j.id for j in (await store.agenda(60.0, exclude=(), limit=10)).due] == [b.id]


def row(tmp_path: Path, job_id: str) -> sqlite3.Row:
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert found is not None
    return found


async def test_a_poll_that_changes_nothing_is_kept_in_memory_until_the_next_write(
    store: JobStore, tmp_path: Path
) -> None:
    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    await store.agenda(1.0, exclude=(), limit=10)  # the loop has started: the agenda is in memory
    job = await store.update(job, now=2.0, state=JobState.SUBMITTED, next_poll_at=3.0)
    polled = await store.note_poll(job, attempts=1, next_poll_at=40.0, last_poll_at=3.0)
    # The loop sees the new time at once ...
    agenda = await store.agenda(10.0, exclude=(), limit=10)
    assert agenda.due == [] and agenda.next_at == 40.0
    assert (await store.get(job.id)) == polled and polled.attempts == 1
    # ... the table does not, until the job's next write, which carries it.
    assert (row(tmp_path, job.id)["attempts"], row(tmp_path, job.id)["next_poll_at"]) == (0, 3.0)
    await store.update(polled, now=41.0, state=JobState.RUNNING)
    stored = row(tmp_path, job.id)
    assert (stored["attempts"], stored["next_poll_at"], stored["last_poll_at"], stored["state"]) == (
        1,
        40.0,
        3.0,
        "running",
    )


async def test_a_poll_noted_survives_a_write_the_database_refused(store: JobStore, tmp_path: Path) -> None:
    """The write that was to carry a poll's bookkeeping fails (another program holds the write lock): the
    bookkeeping is kept for the next write, not dropped with the failed one."""
    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    await store.agenda(1.0, exclude=(), limit=10)
    job = await store.update(job, now=2.0, state=JobState.SUBMITTED, next_poll_at=3.0)
    polled = await store.note_poll(job, attempts=4, next_poll_at=40.0)
    await store.db.conn.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(tmp_path / "jobs.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.update(polled, now=41.0, state=JobState.RUNNING)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert row(tmp_path, job.id)["attempts"] == 0
    await store.update(polled, now=42.0, state=JobState.RUNNING)
    stored = row(tmp_path, job.id)
    assert (stored["attempts"], stored["next_poll_at"], stored["state"]) == (4, 40.0, "running")


async def test_a_poll_noted_on_a_job_that_moved_on_is_refused(store: JobStore) -> None:
    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    await store.agenda(1.0, exclude=(), limit=10)
    submitted = await store.update(job, now=2.0, state=JobState.SUBMITTED)
    await store.update(submitted, now=3.0, state=JobState.CANCELLED)
    with pytest.raises(InvalidTransitionError):
        await store.note_poll(submitted, attempts=1, next_poll_at=9.0)
    with pytest.raises(ValueError, match="not poll bookkeeping"):
        await store.note_poll(submitted, state=JobState.RUNNING)
    assert (await store.agenda(100.0, exclude=(), limit=10)).due == []


async def test_a_new_store_reads_the_agenda_from_the_table(store: JobStore, tmp_path: Path) -> None:
    """What a restart sees: the rows as last written (a poll noted only in memory is due again at once)."""
    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    await store.agenda(1.0, exclude=(), limit=10)
    job = await store.update(job, now=2.0, state=JobState.SUBMITTED, next_poll_at=5.0)
    await store.note_poll(job, attempts=1, next_poll_at=60.0)
    restarted = JobStore(store.db)
    agenda = await restarted.agenda(10.0, exclude=(), limit=10)
    assert [d.id for d in agenda.due] == [job.id] and agenda.due[0].next_poll_at == 5.0


async def test_every_field_is_a_column_and_typed_values_come_back(store: JobStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as raw:
        columns = {row[1] for row in raw.execute("PRAGMA table_info(jobs)")}
    json_columns = {"request": "request_json", "handle": "handle_json", "result": "result_json"}
    assert {json_columns.get(f.name, f.name) for f in fields(Job)} == columns
    assert {f.name for f in fields(NewJob)} <= {f.name for f in fields(Job)}

    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    result = JobResult(images=[ImageRef(data=bytes(range(256)), content_type="image/png")], text="hi")
    tried = [ProviderAttempt(provider="kie", category="transient", reason="Try again.")]
    await store.update(job, now=2.0, state=JobState.SUBMITTED, tried_providers=tried)
    job = await store.get(job.id)  # type: ignore[assignment]
    await store.update(job, now=3.0, state=JobState.SUCCEEDED, result=result)
    fresh = await JobStore(store.db).get(job.id)  # a new store: read from the row, not the cache
    assert fresh is not None and fresh.result == result and fresh.tried_providers == tried
    with pytest.raises(ValueError, match="unknown job columns"):
        await store.update(fresh, now=4.0, charge_state="committed")


async def test_rows_written_before_results_were_typed_still_read(store: JobStore, tmp_path: Path) -> None:
    job = await store.create(new_job(), now=1.0, deadline_seconds=100)
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    old_result = {
        "images": [
            {"url": None, "data_b64": base64.b64encode(image).decode(), "content_type": "image/png"},
            {"url": "https://cdn.example/a.png", "data_b64": None, "content_type": None, "width": 8, "height": 8},
        ],
        "text": None,
        "usage": {"cost": 1},
    }
    old_tried = [{"provider": "seaart", "category": "transient", "reason": "The provider had a temporary problem."}]
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as raw:
        raw.execute(
            "UPDATE jobs SET result_json = ?, tried_providers = ? WHERE id = ?",
            (json.dumps(old_result), json.dumps(old_tried), job.id),
        )
    old = await JobStore(store.db).get(job.id)
    assert old is not None
    assert [(i.data, i.url, i.width) for i in old.result.images] == [
        (image, None, None),
        (None, "https://cdn.example/a.png", 8),
    ]
    assert old.result.usage == {"cost": 1}
    assert old.tried_providers == [ProviderAttempt(**old_tried[0])]
    # A failure's result was only the model's words; a job that never failed over left an empty list.
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as raw:
        raw.execute("UPDATE jobs SET result_json = ?, tried_providers = '[]' WHERE id = ?", ('{"text": "no"}', job.id))
    refused = await JobStore(store.db).get(job.id)
    assert refused is not None and refused.result == JobResult(text="no") and refused.tried_providers == []


async def test_the_job_behind_a_message_and_a_reply_job(store: JobStore) -> None:
    """A member replies to the bot's message: which job made it (the newest if several used it)."""
    first = await store.create(new_job(message_id=55), now=1000.0, deadline_seconds=600)
    again = await store.create(new_job(message_id=55), now=1001.0, deadline_seconds=600)
    assert (await store.by_message(55)) == again != first
    assert await store.by_message(56) is None
    # A job started by a member's reply has no interaction: the member's message is recorded instead.
    reply = await store.create(new_job(channel_id=9, reply_to_message_id=77), now=1002.0, deadline_seconds=600)
    reply = await store.update(reply, now=1003.0, message_id=78)
    found = await store.by_message(78)
    assert found is not None and found.reply_to_message_id == 77 and found.interaction_token is None


async def test_what_a_catch_up_after_being_away_looks_up(store: JobStore) -> None:
    """The channels of a server where the bot showed images lately (most recent first, none without a
    message or before ``since``), and the job a member's reply started, each by index."""
    old = await store.create(new_job(guild_id=1, channel_id=5, message_id=50), now=100.0, deadline_seconds=60)
    await store.create(new_job(guild_id=1, channel_id=6, message_id=60), now=300.0, deadline_seconds=60)
    await store.create(new_job(guild_id=1, channel_id=7, message_id=70), now=200.0, deadline_seconds=60)
    await store.create(new_job(guild_id=1, channel_id=8), now=400.0, deadline_seconds=60)  # never shown
    await store.create(new_job(guild_id=2, channel_id=9, message_id=90), now=500.0, deadline_seconds=60)
    await store.create(new_job(guild_id=1, channel_id=5, message_id=51), now=250.0, deadline_seconds=60)
    assert await store.channels_shown_in(1, since=150.0, limit=10) == [6, 5, 7]
    assert await store.channels_shown_in(1, since=150.0, limit=2) == [6, 5]
    assert await store.channels_shown_in(1, since=1000.0, limit=10) == []
    reply = await store.create(new_job(channel_id=5, reply_to_message_id=77), now=260.0, deadline_seconds=60)
    found = await store.answering(77)
    assert found is not None and found.id == reply.id and await store.answering(old.message_id or 0) is None
    plans = []
    for sql, params in (
        ("SELECT * FROM jobs WHERE reply_to_message_id = ? LIMIT 1", (77,)),
        ("SELECT channel_id FROM jobs WHERE guild_id = ? AND created_at >= ?", (1, 150.0)),
    ):
        async with store.db.read() as conn, conn.execute(f"EXPLAIN QUERY PLAN {sql}", params) as cur:
            plans.append(" ".join(str(row[-1]) for row in await cur.fetchall()))
    assert "USING INDEX jobs_reply_to" in plans[0] and "USING INDEX jobs_guild" in plans[1], plans


async def test_replies_whose_jobs_all_ended_unshown_are_left_unanswered(store: JobStore) -> None:
    """A reply is left unanswered when every job it started ended without a message (the run died before
    answering); one shown, or one still running, answers it. Only replies after the given id, by index."""

    async def reply_job(reply: int, *, shown: int | None = None, state: JobState = JobState.CANCELLED) -> None:
        job = await store.create(new_job(channel_id=5, reply_to_message_id=reply), now=1.0, deadline_seconds=60)
        if state is not JobState.QUEUED:
            await store.update(job, now=2.0, state=state, message_id=shown)

    await reply_job(70)  # before the window
    await reply_job(80)
    await reply_job(81)
    await reply_job(81, shown=810, state=JobState.FAILED)  # done again and shown (how it ended shows there)
    await reply_job(82, state=JobState.QUEUED)  # still to be answered (held)
    await reply_job(83)
    await reply_job(83, state=JobState.FAILED)
    await store.create(new_job(channel_id=5, message_id=90), now=1.0, deadline_seconds=60)  # not a reply
    assert await store.replies_left_unanswered(after=75) == [(5, 80), (5, 83)]
    assert await store.replies_left_unanswered(after=83) == []
    async with (
        store.db.read() as conn,
        conn.execute(
            "EXPLAIN QUERY PLAN SELECT MIN(channel_id), reply_to_message_id FROM jobs WHERE reply_to_message_id > ? "
            "GROUP BY reply_to_message_id HAVING COUNT(message_id) = 0",
            (75,),
        ) as cur,
    ):
        plan = " ".join(str(row[-1]) for row in await cur.fetchall())
    assert "USING INDEX jobs_reply_to (reply_to_message_id>?)" in plan, plan


async def test_the_unfinished_jobs_a_message_shows_are_found_by_index(store: JobStore) -> None:
    """Run for every message deleted in a server: the jobs of those messages, unfinished and ended (not yet marked
    deleted) apart, and by index."""
    running = await store.create(new_job(message_id=111), now=1.0, deadline_seconds=60)
    candidate = await store.create(new_job(message_id=222), now=1.0, deadline_seconds=60)
    ended = await store.create(new_job(message_id=222), now=1.0, deadline_seconds=60)
    await store.update(ended, now=2.0, state=JobState.CANCELLED)
    await store.create(new_job(message_id=333), now=1.0, deadline_seconds=60)
    active, gone = await store.shown_in([111, 222, 999])
    assert (sorted(active), gone) == (sorted([running.id, candidate.id]), [ended.id])
    assert await store.shown_in([]) == ([], [])
    assert len((await store.shown_in([*range(1000, 2200), 111]))[0]) == 1  # more ids than one query takes
    # Marked deleted (in Discord): no longer among those to mark, and marked once.
    assert await store.mark_gone([ended.id], now=3.0) == 1
    assert await store.shown_in([222]) == ([candidate.id], [])
    assert await store.mark_gone([ended.id], now=4.0) == 0
    async with (
        store.db.read() as conn,
        conn.execute(
            "EXPLAIN QUERY PLAN SELECT id, state IN (?, ?) FROM jobs WHERE message_id IN (?, ?) "
            "AND (deleted_by IS NULL OR state IN (?, ?))",
            ("queued", "running", 111, 222, "queued", "running"),
        ) as cur,
    ):
        plan = " ".join(str(row[-1]) for row in await cur.fetchall())
    assert "USING INDEX jobs_message" in plan, plan


async def test_a_cancel_written_while_a_step_holds_the_job_stops_its_image_being_taken(store: JobStore) -> None:
    """A Cancel click writes its request without the job's lock, compared on the state; a poll in flight read
    the job before and comes back with the image. Its move to succeeded must lose: the click was (or is
    being) told it was taken, and a succeeded job is delivered and charged."""
    job = await store.create(new_job(message_id=55), now=1000.0, deadline_seconds=600)
    running = await store.update(job, now=1001.0, state=JobState.SUBMITTED)
    running = await store.update(running, now=1002.0, state=JobState.RUNNING)
    stale = running  # what the poll's step holds
    await store.update(running, now=1003.0, cancel_requested="show", next_poll_at=1003.0)
    with pytest.raises(InvalidTransitionError, match="has a cancel requested"):
        await store.update(stale, now=1004.0, state=JobState.SUCCEEDED, unless_cancelled=True)
    now = await store.get(job.id)
    assert now is not None and now.state is JobState.RUNNING and now.cancel_requested == "show"
    # Without a cancel in the way the same move goes through.
    other = await store.create(new_job(message_id=56), now=1000.0, deadline_seconds=600)
    other = await store.update(other, now=1001.0, state=JobState.SUBMITTED)
    done = await store.update(other, now=1002.0, state=JobState.SUCCEEDED, unless_cancelled=True)
    assert done.state is JobState.SUCCEEDED


async def test_the_unfinished_jobs_whose_rows_name_kept_result_files(store: JobStore) -> None:
    """What a restart keeps in the results folder (bot/result_files.py): the files of unfinished jobs whose
    rows name them, in the handle (an answer applied after the restart) or the result (being delivered);
    not those of a job killed between writing its file and its row, nor of an ended job."""
    kept = JobUpdate(status=UpdateStatus.SUCCEEDED, images=[ImageRef(file="0123456789abcdef-1")])
    in_handle, in_result, unnamed, ended = [
        await store.create(new_job(), now=1000.0, deadline_seconds=600) for _ in range(4)
    ]
    handle = JobHandle(provider="seaart", model="nano_banana_2", provider_job_id="p-1", ready=kept)
    await store.update(in_handle, now=1001.0, state=JobState.SUBMITTED, handle=handle)
    plain = JobHandle(provider="seaart", model="nano_banana_2", provider_job_id="p-2")
    job = await store.update(in_result, now=1001.0, state=JobState.SUBMITTED, handle=plain)
    await store.update(job, now=1002.0, state=JobState.SUCCEEDED, result=JobResult(images=kept.images))
    await store.update(unnamed, now=1001.0, submit_started_at=1001.0)  # killed while its answer was kept
    job = await store.update(ended, now=1001.0, state=JobState.SUBMITTED, handle=handle)
    await store.update(job, now=1002.0, state=JobState.FAILED, error_message="x")
    assert sorted(await store.naming_result_files()) == sorted([in_handle.id, in_result.id])
