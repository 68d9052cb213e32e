"""The jobs repository: rows in, ``Job`` dataclasses out, transitions checked."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import aiosqlite

from bot.errors import ErrorCategory
from bot.models import TERMINAL_STATES, TRANSITIONS, GenerationRequest, JobHandle, JobState
from bot.store import Database
from bot.store.ledger import settle

ACTIVE_STATES = ("queued", "submitted", "running", "succeeded")
_ACTIVE_MARKS = ",".join("?" * len(ACTIVE_STATES))


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the jobs table."""

    id: str
    state: JobState
    source: str
    provider: str
    model: str
    request: GenerationRequest
    deadline_at: float
    created_at: float
    updated_at: float
    provider_job_id: str | None = None
    handle: JobHandle | None = None
    submit_started_at: float | None = None
    attempts: int = 0
    poll_errors: int = 0
    delivery_attempts: int = 0
    next_poll_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    user_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None
    message_id: int | None = None
    upload_limit: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error_category: ErrorCategory | None = None
    error_message: str | None = None
    cost_units: int = 0
    cancelled_by: int | None = None
    cost_micro_usd: int | None = None
    tried_providers: list[dict[str, str]] = field(default_factory=list)
    charge_state: str | None = None
    charge_units: int = 0
    safety_level: int | None = None
    deleted_by: int | None = None
    schedule_kind: str | None = None
    clock_started_at: float | None = None
    last_poll_at: float | None = None
    last_queued_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class DueJob:
    """What the loop needs to choose among due jobs, without reading whole rows."""

    id: str
    state: JobState
    provider: str
    schedule_kind: str | None
    next_poll_at: float | None
    clock_started_at: float | None
    last_poll_at: float | None


@dataclass(frozen=True, slots=True)
class Agenda:
    """What the loop reads per pass: the due jobs, and when the next one falls due (None: nothing)."""

    due: list[DueJob]
    next_at: float | None


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a caller knows when it creates a job."""

    provider: str
    model: str
    request: GenerationRequest
    source: str = "discord"
    guild_id: int | None = None
    channel_id: int | None = None
    user_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None
    message_id: int | None = None
    upload_limit: int | None = None
    cost_units: int = 0
    cost_micro_usd: int | None = None
    safety_level: int | None = None


InTransaction = Callable[[aiosqlite.Connection, str], Awaitable[None]]


class InvalidTransitionError(RuntimeError):
    """A state change the lifecycle forbids (e.g. delivered -> running); always a bug or a race lost."""


_COLUMNS = [
    "provider_job_id",
    "handle_json",
    "submit_started_at",
    "attempts",
    "poll_errors",
    "delivery_attempts",
    "next_poll_at",
    "started_at",
    "finished_at",
    "message_id",
    "result_json",
    "error_category",
    "error_message",
    "interaction_token",
    "cancelled_by",
    "provider",
    "cost_micro_usd",
    "tried_providers",
    "deleted_by",
    "schedule_kind",
    "clock_started_at",
    "last_poll_at",
    "last_queued_at",
]


def new_job_id() -> str:
    # Short enough for a button custom_id, random enough never to collide in one database.
    return secrets.token_hex(8)


def _row_to_job(row: aiosqlite.Row) -> Job:
    handle = JobHandle.model_validate_json(row["handle_json"]) if row["handle_json"] else None
    category = row["error_category"]
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        source=row["source"],
        provider=row["provider"],
        model=row["model"],
        request=GenerationRequest.model_validate_json(row["request_json"]),
        deadline_at=row["deadline_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        provider_job_id=row["provider_job_id"],
        handle=handle,
        submit_started_at=row["submit_started_at"],
        attempts=row["attempts"],
        poll_errors=row["poll_errors"],
        delivery_attempts=row["delivery_attempts"],
        next_poll_at=row["next_poll_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        application_id=row["application_id"],
        interaction_id=row["interaction_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=row["token_expires_at"],
        message_id=row["message_id"],
        upload_limit=row["upload_limit"],
        result=json.loads(row["result_json"]) if row["result_json"] else {},
        error_category=ErrorCategory(category) if category else None,
        error_message=row["error_message"],
        cost_units=row["cost_units"],
        cancelled_by=row["cancelled_by"],
        cost_micro_usd=row["cost_micro_usd"],
        tried_providers=json.loads(row["tried_providers"] or "[]"),
        charge_state=row["charge_state"],
        charge_units=row["charge_units"],
        safety_level=row["safety_level"],
        deleted_by=row["deleted_by"],
        schedule_kind=row["schedule_kind"],
        clock_started_at=row["clock_started_at"],
        last_poll_at=row["last_poll_at"],
        last_queued_at=row["last_queued_at"],
    )


class JobStore:
    """Reads and writes job rows. Every write is one transaction.

    Unfinished jobs are also kept in memory, written through: the job loop reads a job at every step and
    every update used to read the row back, which was most of the SQL per job. This is safe because one
    process owns the database (bot/store/lock.py) and every write to the jobs table goes through this
    class (the ledger's charge marks included, see ``update``); finished jobs leave the cache.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, Job] = {}

    async def create(
        self,
        new: NewJob,
        *,
        now: float,
        deadline_seconds: float,
        within: InTransaction | None = None,
        start_at: float | None = None,
    ) -> Job:
        """Insert the job; ``within`` runs in the same transaction (the quota check and reservation),
        so a refused reservation leaves no job row and an accepted one never lacks its ledger row."""
        job_id = new_job_id()
        async with self.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO jobs (id, state, source, provider, model, request_json, deadline_at,
                       created_at, updated_at, next_poll_at, guild_id, channel_id, user_id, application_id,
                       interaction_id, interaction_token, token_expires_at, message_id, upload_limit,
                       cost_units, cost_micro_usd, safety_level)
                   VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    job_id,
                    new.source,
                    new.provider,
                    new.model,
                    new.request.model_dump_json(),
                    now + deadline_seconds,
                    now,
                    now,
                    now if start_at is None else start_at,
                    new.guild_id,
                    new.channel_id,
                    new.user_id,
                    new.application_id,
                    new.interaction_id,
                    new.interaction_token,
                    new.token_expires_at,
                    new.message_id,
                    new.upload_limit,
                    new.cost_units,
                    new.cost_micro_usd,
                    new.safety_level,
                ),
            )
            if within is not None:
                await within(conn, job_id)
        job = await self.get(job_id)
        assert job is not None
        return job

    def is_cached(self, job_id: str) -> bool:
        """Whether this unfinished job is in memory (a finished one never is)."""
        return job_id in self._cache

    async def get(self, job_id: str) -> Job | None:
        cached = self._cache.get(job_id)
        if cached is not None:
            return cached
        async with self.db.read() as conn, conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        job = _row_to_job(row)
        if not job.terminal:
            self._cache[job_id] = job
        return job

    async def agenda(self, now: float, *, exclude: Collection[str], limit: int) -> Agenda:
        """The loop's one read per pass: up to ``limit`` due jobs (not in ``exclude``), oldest due first,
        as the few fields it schedules by (no JSON parsed), and when the next one falls due."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"""SELECT id, state, provider, schedule_kind, next_poll_at, clock_started_at, last_poll_at
                FROM jobs WHERE state IN ({_ACTIVE_MARKS}) ORDER BY next_poll_at LIMIT ?""",
                (*ACTIVE_STATES, limit + len(exclude) + 1),
            ) as cur,
        ):
            rows = list(await cur.fetchall())
        due: list[DueJob] = []
        next_at: float | None = None
        for r in rows:
            if r[4] is not None and r[4] > now:
                next_at = r[4]
                break
            if r[0] not in exclude and len(due) < limit:
                due.append(DueJob(r[0], JobState(r[1]), r[2], r[3], r[4], r[5], r[6]))
        # Every row read was due: there may be more beyond the limit, so the next one is due now.
        backlog = next_at is None and len(rows) == limit + len(exclude) + 1
        return Agenda(due, now if backlog else next_at)

    async def find_active(self, provider: str, provider_job_id: str) -> Job | None:
        """The unfinished job a provider knows as ``provider_job_id`` (a callback names it so)."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT * FROM jobs WHERE provider = ? AND provider_job_id = ? AND state IN ({_ACTIVE_MARKS})",
                (provider, provider_job_id, *ACTIVE_STATES),
            ) as cur,
        ):
            row = await cur.fetchone()
        return _row_to_job(row) if row else None

    async def count_active(self) -> int:
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({_ACTIVE_MARKS})", ACTIVE_STATES) as cur,
        ):
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def held(self, after: float) -> list[Job]:
        """Queued jobs with no message yet whose start lies past ``after``: created held, never released."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT * FROM jobs WHERE state = 'queued' AND message_id IS NULL AND next_poll_at > ?", (after,)
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [_row_to_job(r) for r in rows]

    async def active(self) -> list[Job]:
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT * FROM jobs WHERE state IN ({_ACTIVE_MARKS}) ORDER BY created_at",
                ACTIVE_STATES,
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [_row_to_job(r) for r in rows]

    async def update(self, job: Job, *, now: float, state: JobState | None = None, **changes: Any) -> Job:
        """Write ``changes`` (and a checked transition to ``state``) if the row is still in ``job.state``.

        The compare-and-set on state means two tasks can never both move the same job: the loser gets
        InvalidTransitionError and re-reads.
        """
        unknown = set(changes) - {c.removesuffix("_json") for c in _COLUMNS} - set(_COLUMNS) - {"handle", "result"}
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        if state is not None and state != job.state and state not in TRANSITIONS[job.state]:
            raise InvalidTransitionError(f"job {job.id}: {job.state} -> {state} is not allowed")
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "handle":
                values["handle_json"] = value.model_dump_json() if value is not None else None
            elif key == "result":
                values["result_json"] = json.dumps(value) if value is not None else None
            elif key == "tried_providers":
                values[key] = json.dumps(value)
            elif key == "error_category":
                values[key] = str(value) if value is not None else None
            else:
                values[key] = value
        new_state = state or job.state
        if new_state in TERMINAL_STATES and new_state != job.state:
            values["finished_at"] = now
            # The interaction token is a credential; a finished job has no use for it.
            values.setdefault("interaction_token", None)
        values["state"] = str(new_state)
        values["updated_at"] = now
        assignments = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE jobs SET {assignments} WHERE id = ? AND state = ?"
        params = (*values.values(), job.id, str(job.state))
        if new_state in TERMINAL_STATES and job.charge_state == "reserved":
            async with self.db.transaction() as conn:
                cur = await conn.execute(sql, params)
                if cur.rowcount != 1:
                    raise InvalidTransitionError(f"job {job.id} is no longer {job.state}")
                # The charge is settled in the same transaction as the job's end: no crash can leave a
                # delivered job uncharged or a failed one charged.
                await settle(conn, job, delivered=new_state is JobState.DELIVERED, now=now, why=str(new_state))
        else:
            # One statement is atomic on its own: no BEGIN/COMMIT round trips for the many updates (a poll
            # that says "still running") that settle nothing.
            async with self.db.read() as conn:
                cur = await conn.execute(sql, params)
            if cur.rowcount != 1:
                raise InvalidTransitionError(f"job {job.id} is no longer {job.state}")
        # The row is now what it was plus these columns: the same change to the cached copy (or, if the
        # job was not cached, to the caller's) gives the new row without reading it back.
        fields: dict[str, Any] = {"state": new_state, "updated_at": now}
        for key, value in changes.items():
            fields[key] = value
        if "finished_at" in values:
            fields["finished_at"] = values["finished_at"]
            fields["interaction_token"] = values["interaction_token"]
        if new_state in TERMINAL_STATES and job.charge_state == "reserved":
            fields["charge_state"] = "committed" if new_state is JobState.DELIVERED else "refunded"
        updated = replace(self._cache.get(job.id, job), **fields)
        if updated.terminal:
            self._cache.pop(job.id, None)
        else:
            self._cache[job.id] = updated
        return updated

    async def mark_deleted(self, job_id: str, *, by: int, now: float) -> None:
        """Record who deleted a job's image (the job's state is not changed: it was delivered)."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE jobs SET deleted_by = ?, updated_at = ? WHERE id = ?", (by, now, job_id))
        self._cache.pop(job_id, None)

    async def count_by_state(self) -> dict[str, int]:
        async with (
            self.db.read() as conn,
            conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state") as cur,
        ):
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}
