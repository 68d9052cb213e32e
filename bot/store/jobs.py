"""The jobs repository: rows in, ``Job`` dataclasses out, transitions checked."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

import aiosqlite
from pydantic import TypeAdapter

from bot.errors import ErrorCategory
from bot.gate import light_form
from bot.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    GenerationRequest,
    JobHandle,
    JobResult,
    JobState,
    ProviderAttempt,
)
from bot.store import SEARCH_FORM, Database
from bot.store.agenda import Agenda, AgendaIndex, DueJob, Shelf
from bot.store.ledger import settle, settled_state

ACTIVE_STATES = ("queued", "submitted", "running", "succeeded")
_ACTIVE_MARKS = ",".join("?" * len(ACTIVE_STATES))
# How many of a member's latest jobs in a server /jobs search: reads (JobStore.matching).
SEARCHED_JOBS = 5000
# The unfinished jobs whose row names a kept result file (bot/result_files.py), with ACTIVE_STATES as its
# parameters: read by a starting bot (the files to keep) and by `bananacord db backup` (the files to copy).
JOBS_NAMING_RESULT_FILES = (
    f"SELECT id FROM jobs WHERE state IN ({_ACTIVE_MARKS})"
    ' AND (handle_json LIKE \'%"file":"%\' OR result_json LIKE \'%"file":"%\')'
)
# Under SQLite's oldest ceiling on bound parameters (999); a bulk delete names up to 100 messages.
_IDS_PER_QUERY = 500


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
    result: JobResult = field(default_factory=JobResult)
    error_category: ErrorCategory | None = None
    error_message: str | None = None
    cost_units: int = 0
    cancelled_by: int | None = None
    # A cancel asked for and not yet carried out: "show" its end, or "silent" (its message is gone).
    cancel_requested: str | None = None
    cost_micro_usd: int | None = None
    tried_providers: list[ProviderAttempt] = field(default_factory=list)
    charge_state: str | None = None
    charge_units: int = 0
    safety_level: int | None = None
    deleted_by: int | None = None
    schedule_kind: str | None = None
    clock_started_at: float | None = None
    last_poll_at: float | None = None
    last_queued_at: float | None = None
    reply_to_message_id: int | None = None
    # One of several candidates of one request (/imagine count), shown together in one message.
    batch_id: str | None = None
    batch_index: int | None = None  # 1-based: the number the member reads ("#2")
    # The Discord attachments this job's delivered images became (kept by id by later edits of a batch).
    attachment_ids: list[int] = field(default_factory=list)
    # Taken waiting its turn (bot/waiting_requests.py): its member's limit of requests at once, had they as many
    # generating; 0, had only the server no room. None: it never waited, or has started.
    waits_for: int | None = None
    # When its words were erased (/privacy, [privacy] keep_words_days: bot/store/erasure.py); None: kept. And when its
    # message was drawn again without them (None while owed).
    erased_at: float | None = None
    erasure_shown_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


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
    # A job started by a member's message (a reply) rather than an interaction: that message's id.
    reply_to_message_id: int | None = None


# Runs inside the transaction that inserts jobs, given their ids (one, or every candidate of a batch).
InTransaction = Callable[[aiosqlite.Connection, Sequence[str]], Awaitable[None]]


class InvalidTransitionError(RuntimeError):
    """A state change the lifecycle forbids (e.g. delivered -> running); always a bug or a race lost."""


# A job's fields are its columns, under the same names, except these, kept as JSON: field -> column.
_JSON_COLUMNS: dict[str, tuple[str, TypeAdapter[Any]]] = {
    "request": ("request_json", TypeAdapter(GenerationRequest)),
    "handle": ("handle_json", TypeAdapter(JobHandle)),
    "result": ("result_json", TypeAdapter(JobResult)),
    "tried_providers": ("tried_providers", TypeAdapter(list[ProviderAttempt])),
    "attachment_ids": ("attachment_ids", TypeAdapter(list[int])),
}
# TEXT columns that hold an enum's value.
_ENUMS: dict[str, type[StrEnum]] = {"state": JobState, "error_category": ErrorCategory}
_FIELDS = {f.name: f for f in fields(Job)}
# What a refused update says beyond the state it compared on (see ``update``'s ``unless_cancelled``).
_OR_CANCELLED = {False: "", True: ", or has a cancel requested"}
_COLUMN = {name: _JSON_COLUMNS[name][0] if name in _JSON_COLUMNS else name for name in _FIELDS}
# Never changed by update(): set when the job is created, moved by update's own ``state`` argument or
# its clock, or (the charge) written by the ledger, bot/store/ledger.py. The request is changed only by a
# failover that leaves out options the member's /preferences filled in (bot/failover.py); the deadline only
# when a waiting request starts, its time waiting not being the provider's (bot/waiting_requests.py).
_FIXED = frozenset(
    {"id", "source", "model", "created_at", "state", "updated_at"}
    | {"charge_state", "charge_units", "batch_id", "batch_index"}
)


def _to_column(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _JSON_COLUMNS:
        return _JSON_COLUMNS[name][1].dump_json(value).decode()
    if name in _ENUMS:
        return str(value)
    return value


def _to_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """Job fields -> {column: SQLite value}."""
    return {_COLUMN[name]: _to_column(name, value) for name, value in values.items()}


# ``JobStore.turn_of``, over the server's reserved jobs (the partial index jobs_in_flight, 0003): the member's
# other requests generating, their requests waiting taken before the one asked about, the server's images
# generating, its images waiting for its room alone (``waits_for`` 0) taken before, and the images of the request
# asked about still waiting.
_REQUEST = "COALESCE(batch_id, id)"
TURN_SQL = (
    f"SELECT COUNT(DISTINCT CASE WHEN user_id = ? AND waits_for IS NULL AND {_REQUEST} != ? THEN {_REQUEST} END), "
    f"COUNT(DISTINCT CASE WHEN user_id = ? AND waits_for IS NOT NULL AND created_at < ? THEN {_REQUEST} END), "
    "COUNT(CASE WHEN waits_for IS NULL THEN 1 END), "
    f"COUNT(CASE WHEN waits_for = 0 AND created_at < ? AND {_REQUEST} != ? THEN 1 END), "
    f"COUNT(CASE WHEN waits_for IS NOT NULL AND {_REQUEST} = ? THEN 1 END) "
    "FROM jobs WHERE guild_id = ? AND charge_state = 'reserved'"
)


@dataclass(frozen=True, slots=True)
class Turn:
    """Where a waiting request stands (``JobStore.turn_of``): its member's other requests ``generating`` and
    ``ahead`` of it (waiting, taken before it); the server's images ``server_generating`` and ``server_ahead``
    (waiting for its room alone, taken before it); its own ``images`` still waiting."""

    generating: int
    ahead: int
    server_generating: int
    server_ahead: int
    images: int


# The fields ``JobStore.note_poll`` may keep in memory only.
POLL_FIELDS = frozenset({"attempts", "poll_errors", "next_poll_at", "last_poll_at", "last_queued_at"})


def _moved(job: Job, unless_cancelled: bool) -> InvalidTransitionError:
    return InvalidTransitionError(f"job {job.id} is no longer {job.state}" + _OR_CANCELLED[unless_cancelled])


def _due_job(job: Job) -> DueJob:
    return DueJob(
        job.id, job.state, job.provider, job.schedule_kind, job.next_poll_at, job.clock_started_at, job.last_poll_at
    )


def new_job_id() -> str:
    # Short enough for a button custom_id, random enough never to collide in one database.
    return secrets.token_hex(8)


def _row_to_job(row: aiosqlite.Row) -> Job:
    values: dict[str, Any] = {}
    for name, column in _COLUMN.items():
        value = row[column]
        if name in _JSON_COLUMNS:
            values[name] = _JSON_COLUMNS[name][1].validate_json(value) if value else _default(name)
        elif name in _ENUMS:
            values[name] = _ENUMS[name](value) if value else None
        else:
            values[name] = value
    return Job(**values)


def _default(name: str) -> Any:
    """What an empty JSON column reads as: the field's default."""
    default = _FIELDS[name]
    return default.default_factory() if default.default_factory is not MISSING else default.default


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
        # What the loop schedules by, for every unfinished job: read from the table once (the first
        # agenda), then kept by this class's own writes, so a pass of the loop costs no SQL.
        self._agenda: AgendaIndex | None = None
        # Poll bookkeeping held only in memory (see ``note_poll``), written with the job's next update.
        self._unsaved: dict[str, dict[str, Any]] = {}
        # Told of each job whose reservation an update settled: its member, or its server, may have a request
        # waiting for that room (bot/waiting_requests.py). Called after the commit; it must not raise.
        self.on_settled: Callable[[Job], None] | None = None
        # Told of each job an update ended (bot/metrics.py counts them). Called after the write; it must not raise.
        self.on_ended: Callable[[Job], None] | None = None

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
        (job,) = await self.create_batch(
            [new], now=now, deadline_seconds=deadline_seconds, within=within, start_at=start_at
        )
        return job

    async def create_batch(
        self,
        news: Sequence[NewJob],
        *,
        now: float,
        deadline_seconds: float,
        within: InTransaction | None = None,
        start_at: float | None = None,
    ) -> list[Job]:
        """Insert the jobs in one transaction with ``within``: all of them or none. Two or more are one
        batch (the candidates of one request, numbered from 1 in the given order)."""
        batch_id = new_job_id() if len(news) > 1 else None
        rows = [
            _to_row(
                {
                    "id": new_job_id(),
                    "state": JobState.QUEUED,
                    "deadline_at": now + deadline_seconds,
                    "created_at": now,
                    "updated_at": now,
                    "next_poll_at": now if start_at is None else start_at,
                    "batch_id": batch_id,
                    "batch_index": index if batch_id is not None else None,
                    **{f.name: getattr(new, f.name) for f in fields(NewJob)},
                }
            )
            for index, new in enumerate(news, start=1)
        ]
        ids = [str(row["id"]) for row in rows]
        async with self.db.transaction() as conn:
            for row in rows:
                sql = f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
                await conn.execute(sql, tuple(row.values()))
            if within is not None:
                await within(conn, ids)
            # Read back inside the transaction (defaults filled in): one statement more, not one more turn
            # of the database's lock per job, which a member's command waits through (bot/store/turns.py).
            marks = ", ".join("?" * len(ids))
            found = {
                str(row["id"]): _row_to_job(row)
                for row in await conn.execute_fetchall(f"SELECT * FROM jobs WHERE id IN ({marks})", ids)
            }
        jobs = [found[job_id] for job_id in ids]
        for job in jobs:
            self._cache[job.id] = job
            self._track(job)
        return jobs

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

    async def agenda(self, now: float, *, exclude: Collection[str], limit: int, skip: Collection[Shelf] = ()) -> Agenda:
        """The loop's read per pass: up to ``limit`` due jobs (not in ``exclude``, nor at a provider in a
        state ``skip`` names), oldest due first, as the few fields it schedules by, and when the next one
        falls due. From memory after the first."""
        if self._agenda is None:
            self._agenda = await self._load_agenda()
        return self._agenda.agenda(now, exclude=exclude, limit=limit, skip=skip)

    def waiting(self) -> list[DueJob]:
        """The unfinished jobs with a next poll planned, as the loop sees them (none before its first pass)."""
        if self._agenda is None:
            return []
        return [entry for entry in self._agenda.values() if entry.next_poll_at is not None]

    async def _load_agenda(self) -> AgendaIndex:
        async with (
            self.db.read() as conn,
            conn.execute(
                f"""SELECT id, state, provider, schedule_kind, next_poll_at, clock_started_at, last_poll_at
                FROM jobs WHERE state IN ({_ACTIVE_MARKS})""",
                ACTIVE_STATES,
            ) as cur,
        ):
            rows = await cur.fetchall()
        agenda = AgendaIndex(DueJob(r[0], JobState(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows)
        # A job written between the read and now (create and update track only a loaded agenda).
        for job in self._cache.values():
            agenda.put(_due_job(job))
        return agenda

    def _track(self, job: Job) -> None:
        if self._agenda is None:
            return
        if job.terminal:
            self._agenda.discard(job.id)
        else:
            self._agenda.put(_due_job(job))

    async def find_active(self, provider: str, provider_job_id: str) -> Job | None:
        """The unfinished job a provider knows as ``provider_job_id`` (a callback names it so)."""
        return await self._first(
            f"SELECT * FROM jobs WHERE provider = ? AND provider_job_id = ? AND state IN ({_ACTIVE_MARKS})",
            (provider, provider_job_id, *ACTIVE_STATES),
        )

    async def by_message(self, message_id: int) -> Job | None:
        """The job shown in the bot's message ``message_id`` (the newest, should several have used it). Of a
        batch's message, the first candidate delivered: the one whose image the message shows first."""
        job = await self._first(
            "SELECT * FROM jobs WHERE message_id = ? "
            "ORDER BY created_at DESC, state = 'delivered' DESC, batch_index LIMIT 1",
            (message_id,),
        )
        # An unfinished job's freshest state is the cached one (poll bookkeeping may not be written yet).
        return self._cache.get(job.id, job) if job is not None else None

    async def answering(self, message_id: int) -> Job | None:
        """The job started by the member's message ``message_id`` (a reply to one of the bot's images):
        of several, one the member was shown (it has a message), else the newest."""
        job = await self._first(
            "SELECT * FROM jobs WHERE reply_to_message_id = ? ORDER BY message_id IS NULL, created_at DESC LIMIT 1",
            (message_id,),
        )
        return self._cache.get(job.id, job) if job is not None else None

    async def replies_left_unanswered(self, *, after: int) -> list[tuple[int, int]]:
        """(channel, message) of the members' replies posted after message id ``after`` (ids grow with
        time) whose jobs all ended without ever being shown: a run took the reply and died before
        answering it (the restart cancels such a job uncharged, bot/held_jobs.py ``HeldJobs.recover``). Oldest
        first; a range of the reply index of migration 0013."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT MIN(channel_id), reply_to_message_id FROM jobs WHERE reply_to_message_id > ? "
                "GROUP BY reply_to_message_id "
                f"HAVING COUNT(message_id) = 0 AND SUM(state IN ({_ACTIVE_MARKS})) = 0 AND MIN(channel_id) > 0 "
                "ORDER BY reply_to_message_id",
                (after, *ACTIVE_STATES),
            ) as cur,
        ):
            return [(int(row[0]), int(row[1])) for row in await cur.fetchall()]

    async def channels_shown_in(self, guild_id: int, *, since: float, limit: int) -> list[int]:
        """The channels of ``guild_id`` where the bot showed jobs' images created since ``since``, the most
        recent first: where members may have replied to them."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT channel_id FROM jobs WHERE guild_id = ? AND created_at >= ? AND message_id IS NOT NULL "
                "AND channel_id IS NOT NULL GROUP BY channel_id ORDER BY MAX(created_at) DESC LIMIT ?",
                (guild_id, since, limit),
            ) as cur,
        ):
            return [int(row[0]) for row in await cur.fetchall()]

    async def images_shown_since(self, since: float, *, limit: int) -> list[tuple[int, int, int]]:
        """The bot's messages in servers that show images delivered since ``since``, the latest first, each once
        (a batch's): (guild, channel, message). By the ``jobs_finished`` index of migration 0023."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT guild_id, channel_id, message_id FROM jobs WHERE finished_at >= ? AND state = ? "
                "AND message_id IS NOT NULL AND channel_id IS NOT NULL AND guild_id IS NOT NULL AND deleted_by IS NULL "
                "GROUP BY message_id ORDER BY MAX(finished_at) DESC LIMIT ?",
                (since, JobState.DELIVERED, limit),
            ) as cur,
        ):
            return [(int(row[0]), int(row[1]), int(row[2])) for row in await cur.fetchall()]

    async def unfinished_shown_since(self, since: float, *, limit: int) -> list[tuple[int, int, int]]:
        """The bot's messages in servers of images still being made, asked for since ``since``, the latest first,
        each once (a batch's): (guild, channel, message). Read once a start (cogs/missed_reactions.py)."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT guild_id, channel_id, message_id FROM jobs "
                f"WHERE state IN ({_ACTIVE_MARKS}) AND created_at >= ? "
                "AND message_id IS NOT NULL AND channel_id IS NOT NULL AND guild_id IS NOT NULL "
                "GROUP BY message_id ORDER BY MAX(created_at) DESC LIMIT ?",
                (*ACTIVE_STATES, since, limit),
            ) as cur,
        ):
            return [(int(row[0]), int(row[1]), int(row[2])) for row in await cur.fetchall()]

    async def delivering_shown(self) -> list[str]:
        """The jobs whose image is made and being delivered, in a message (``succeeded``: one a stop caught between
        the message's edit and the row's write is among them). Read once a start (cogs/missed_reactions.py)."""
        return await self._ids(
            "SELECT id FROM jobs WHERE state = ? AND message_id IS NOT NULL ORDER BY created_at",
            (JobState.SUCCEEDED,),
        )

    async def of_member(self, guild_id: int, user_id: int, *, ended: int) -> tuple[list[Job], list[Job]]:
        """A member's jobs in one server (``/jobs``): every unfinished one, oldest first, and the ``ended``
        most recent finished ones, newest first; by the (user_id, created_at) index of migration 0001."""
        where = "user_id = ? AND guild_id = ? AND state"
        active = await self._all(
            f"SELECT * FROM jobs WHERE {where} IN ({_ACTIVE_MARKS}) ORDER BY created_at",
            (user_id, guild_id, *ACTIVE_STATES),
        )
        finished = await self._all(
            f"SELECT * FROM jobs WHERE {where} NOT IN ({_ACTIVE_MARKS}) ORDER BY created_at DESC LIMIT ?",
            (user_id, guild_id, *ACTIVE_STATES, ended),
        )
        # An unfinished job's freshest state is the cached one (poll bookkeeping may not be written yet).
        return [self._cache.get(job.id, job) for job in active], finished

    async def unfinished_in_server(self, guild_id: int, *, limit: int) -> list[Job]:
        """A server's unfinished jobs, oldest first, at most ``limit`` (``/mod queue``); by the (guild_id, state,
        created_at) index of migration 0004."""
        active = await self._all(
            f"SELECT * FROM jobs WHERE guild_id = ? AND state IN ({_ACTIVE_MARKS}) ORDER BY created_at LIMIT ?",
            (guild_id, *ACTIVE_STATES, limit),
        )
        return [self._cache.get(job.id, job) for job in active]

    async def unfinished_counts(self, guild_id: int) -> tuple[int, int]:
        """A server's members' images generating, and waiting their turn (their reserved rows: the partial index of
        migration 0003)."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT COUNT(*) - COUNT(waits_for), COUNT(waits_for) FROM jobs "
                "WHERE guild_id = ? AND charge_state = 'reserved'",
                (guild_id,),
            ) as cur,
        ):
            row = await cur.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def finished_before(self, guild_id: int, user_id: int, before: float, *, limit: int) -> list[Job]:
        """A member's finished jobs in one server created before ``before``, newest first, at most ``limit``
        (``/jobs``' earlier pages); by the (user_id, created_at) index of migration 0001."""
        return await self._all(
            "SELECT * FROM jobs WHERE user_id = ? AND guild_id = ? AND created_at < ? "
            f"AND state NOT IN ({_ACTIVE_MARKS}) ORDER BY created_at DESC LIMIT ?",
            (user_id, guild_id, before, *ACTIVE_STATES, limit),
        )

    async def matching(
        self, guild_id: int, user_id: int, words: Sequence[str], *, limit: int, within: int = SEARCHED_JOBS
    ) -> list[Job]:
        """A member's finished jobs in one server whose prompt holds every one of ``words`` (any letter in either
        case: both sides in the search form, bot/store/__init__.py ``_search_form``), newest first, at most
        ``limit``, among their latest ``within`` jobs there; read by the (user_id, created_at) index of migration
        0001 and the prompt in each row's request. The bound keeps the read short: the database's one connection
        waits for it, job writes included (5,000 rows of 30 words with no match took 18 ms here, 9 ms with SQLite's
        ASCII-only ``lower``)."""
        forms = [form for form in map(light_form, words) if form]
        if not forms:  # words of invisible characters alone: nothing to look for
            return []
        prompt = f"{SEARCH_FORM}(json_extract(request_json, '$.prompt'))"
        holds = " AND ".join(f"instr({prompt}, ?) > 0" for _ in forms)
        latest = "SELECT rowid FROM jobs WHERE user_id = ? AND guild_id = ? ORDER BY created_at DESC LIMIT ?"
        return await self._all(
            f"SELECT * FROM jobs WHERE rowid IN ({latest}) AND state NOT IN ({_ACTIVE_MARKS}) AND erased_at IS NULL"
            f" AND {holds} ORDER BY created_at DESC LIMIT ?",
            (user_id, guild_id, within, *ACTIVE_STATES, *forms, limit),
        )

    async def _first(self, sql: str, params: tuple[object, ...]) -> Job | None:
        async with self.db.read() as conn, conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return _row_to_job(row) if row else None

    async def newest_mark(self) -> int:
        """The row number of the newest job: every job recorded after this call has a larger one. Row numbers,
        not times: a clock set back (NTP stepping a machine's time) would make a job started later look older.
        Job rows are never deleted, so SQLite numbers new ones past the largest."""
        async with self.db.read() as conn, conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM jobs") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    async def recorded_by(self, job_ids: Sequence[str], mark: int) -> set[str]:
        """Those of ``job_ids`` recorded by the time ``newest_mark`` returned ``mark``."""
        if not job_ids:
            return set()
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT id FROM jobs WHERE rowid <= ? AND id IN ({','.join('?' * len(job_ids))})",
                (mark, *job_ids),
            ) as cur,
        ):
            return {str(row[0]) for row in await cur.fetchall()}

    async def _all(self, sql: str, params: tuple[object, ...]) -> list[Job]:
        async with self.db.read() as conn, conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_row_to_job(r) for r in rows]

    async def naming_result_files(self) -> list[str]:
        """The unfinished jobs whose row names a kept result file (bot/result_files.py): the files a
        restart must keep. A file of any other job (one killed between writing it and writing its row)
        can never be used."""
        async with self.db.read() as conn, conn.execute(JOBS_NAMING_RESULT_FILES, ACTIVE_STATES) as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def has_unanswered_create(self, provider: str) -> bool:
        """Whether some job sent ``provider`` a create whose answer it never got (bot/lost_tasks.py). Such a job
        has no provider job id yet: the (provider, provider_job_id) index finds it without reading the jobs
        that have one, which are most of a database's history."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT 1 FROM jobs WHERE provider = ? AND provider_job_id IS NULL AND state = 'queued' "
                "AND submit_started_at IS NOT NULL LIMIT 1",
                (provider,),
            ) as cur,
        ):
            return await cur.fetchone() is not None

    async def count_active(self) -> int:
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({_ACTIVE_MARKS})", ACTIVE_STATES) as cur,
        ):
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def held(self, held_for: float) -> list[Job]:
        """Queued jobs with no message yet, created to start ``held_for`` seconds later (more than half of
        it, whatever the time now): created held, never released. Looked for by their start against their
        creation, not against now: a restart more than half an hour later missed them, and they started
        with no message to show them in."""
        return await self._all(
            "SELECT * FROM jobs WHERE state = 'queued' AND message_id IS NULL AND submit_started_at IS NULL "
            "AND next_poll_at > created_at + ?",
            (held_for / 2,),
        )

    async def turn_of(self, job: Job) -> Turn:
        """Where the waiting request ``job`` belongs to stands. A batch's candidates count as one request to its
        member, as the quota counts them (bot/quotas.py), and each as an image to the server."""
        request = job.batch_id or job.id
        params = (job.user_id, request, job.user_id, job.created_at, job.created_at, request, request, job.guild_id)
        async with self.db.read() as conn, conn.execute(TURN_SQL, params) as cur:
            row = await cur.fetchone()
        return Turn(*(int(n) for n in row)) if row else Turn(0, 0, 0, 0, 0)

    async def waiting_on_member(self, guild_id: int, user_id: int) -> list[str]:
        """The member's jobs waiting for room among their requests at once (bot/waiting_requests.py)."""
        return await self._ids(
            "SELECT id FROM jobs WHERE guild_id = ? AND user_id = ? AND charge_state = 'reserved' AND waits_for > 0",
            (guild_id, user_id),
        )

    async def waiting_members(self, guild_id: int) -> list[int]:
        """The members of a server with a request waiting for room among their requests at once."""
        return [
            int(user_id)
            for user_id in await self._ids(
                "SELECT DISTINCT user_id FROM jobs WHERE guild_id = ? AND charge_state = 'reserved' "
                "AND waits_for > 0 AND user_id IS NOT NULL",
                (guild_id,),
            )
        ]

    async def waiting_in_server(self, guild_id: int) -> list[str]:
        """The server's jobs waiting their turn, for its room or their member's (bot/waiting_requests.py)."""
        return await self._ids(
            "SELECT id FROM jobs WHERE guild_id = ? AND charge_state = 'reserved' AND waits_for IS NOT NULL",
            (guild_id,),
        )

    async def waiting_in_request(self, batch_id: str) -> list[str]:
        """The candidates of a batch still waiting their turn (bot/waiting_requests.py)."""
        return await self._ids(
            "SELECT id FROM jobs WHERE batch_id = ? AND charge_state = 'reserved' AND waits_for IS NOT NULL",
            (batch_id,),
        )

    async def _ids(self, sql: str, params: tuple[object, ...]) -> list[str]:
        async with self.db.read() as conn, conn.execute(sql, params) as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def cancels_untold(self) -> list[Job]:
        """Jobs ended by a cancel whose provider was not yet asked to stop (the bot died in between)."""
        return await self._all(
            f"SELECT * FROM jobs WHERE cancel_requested IS NOT NULL AND state NOT IN ({_ACTIVE_MARKS})", ACTIVE_STATES
        )

    async def cancel_told(self, job_id: str) -> None:
        """The provider of this ended job has been asked to stop it: nothing is left to do for the cancel."""
        async with self.db.read() as conn:
            await conn.execute(
                f"UPDATE jobs SET cancel_requested = NULL WHERE id = ? AND state NOT IN ({_ACTIVE_MARKS})",
                (job_id, *ACTIVE_STATES),
            )

    async def shown_in(self, message_ids: Collection[int]) -> tuple[list[str], list[str]]:
        """The jobs shown in any of these messages (a batch's candidates share one): the unfinished ones, and the
        ended ones not marked deleted yet. By the message_id index (migration 0007), in one read: it runs for every
        message deleted where the bot is, and most are no image of the bot's."""
        ids = list(message_ids)
        active: list[str] = []
        ended: list[str] = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT id, state IN ({_ACTIVE_MARKS}) FROM jobs WHERE message_id IN ({marks}) "
                f"AND (deleted_by IS NULL OR state IN ({_ACTIVE_MARKS}))"
            )
            async with self.db.read() as conn, conn.execute(sql, (*ACTIVE_STATES, *chunk, *ACTIVE_STATES)) as cur:
                for job_id, unfinished in await cur.fetchall():
                    (active if unfinished else ended).append(str(job_id))
        return active, ended

    async def shown_of_member(
        self, guild_id: int, user_id: int, *, since: float, limit: int
    ) -> list[tuple[str, int, int, bool]]:
        """The member's requests in the server asked since ``since`` whose message is still shown, the latest first,
        at most ``limit``: (job, channel, message, unfinished). What ``/mod purge`` deletes (cogs/purge.py); by the
        (user_id, created_at) index of migration 0001."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT id, channel_id, message_id, state IN ({_ACTIVE_MARKS}) FROM jobs WHERE user_id = ? "
                "AND created_at >= ? AND guild_id = ? AND message_id IS NOT NULL AND channel_id IS NOT NULL "
                f"AND (deleted_by IS NULL OR state IN ({_ACTIVE_MARKS})) ORDER BY created_at DESC LIMIT ?",
                (*ACTIVE_STATES, user_id, since, guild_id, *ACTIVE_STATES, limit),
            ) as cur,
        ):
            return [(str(r[0]), int(r[1]), int(r[2]), bool(r[3])) for r in await cur.fetchall()]

    async def mark_gone(self, job_ids: Sequence[str], *, now: float) -> int:
        """Ended jobs whose message was deleted in Discord (by a moderator, a purge, a member who may) marked
        deleted (``deleted_by`` 0: Discord does not say by whom), so that /jobs and the privacy download no longer
        link to them and the reading of missed reactions skips them. How many."""
        if not job_ids:
            return 0
        async with self.db.transaction() as conn:
            cur = await conn.executemany(
                "UPDATE jobs SET deleted_by = 0, updated_at = ? WHERE id = ? AND deleted_by IS NULL",
                [(now, job_id) for job_id in job_ids],
            )
            return cur.rowcount

    async def active_in(self, guild_id: int, channel_id: int | None = None) -> list[str]:
        """The unfinished jobs of a server, or of one of its channels (one just deleted, or a server the bot
        was removed from); by the guild-and-state index, the channel checked on the few rows it finds."""
        sql = f"SELECT id FROM jobs WHERE guild_id = ? AND state IN ({_ACTIVE_MARKS})"
        params: tuple[object, ...] = (guild_id, *ACTIVE_STATES)
        if channel_id is not None:
            sql, params = sql + " AND channel_id = ?", (*params, channel_id)
        async with self.db.read() as conn, conn.execute(sql, params) as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def guilds_with_active_jobs(self) -> list[int]:
        """The servers with unfinished jobs (cogs/deleted_messages.py compares them with the servers the bot is
        in when it connects)."""
        sql = f"SELECT DISTINCT guild_id FROM jobs WHERE state IN ({_ACTIVE_MARKS}) AND guild_id IS NOT NULL"
        async with self.db.read() as conn, conn.execute(sql, ACTIVE_STATES) as cur:
            return [int(row[0]) for row in await cur.fetchall() if row[0]]

    async def batch(self, batch_id: str) -> list[Job]:
        """Every candidate of a batch, in order; the unfinished ones as this store last wrote them."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT * FROM jobs WHERE batch_id = ? ORDER BY batch_index", (batch_id,)) as cur,
        ):
            rows = await cur.fetchall()
        # An unfinished job's freshest state is the cached one (poll bookkeeping may not be written yet).
        return [self._cache.get(job.id, job) for job in map(_row_to_job, rows)]

    async def active(self) -> list[Job]:
        return await self._all(
            f"SELECT * FROM jobs WHERE state IN ({_ACTIVE_MARKS}) ORDER BY created_at", ACTIVE_STATES
        )

    async def ended_since(self, since: float) -> list[Job]:
        """The jobs shown in a message that ended at or after ``since``, the first to end first (read by the
        start's sweep for ends whose ping was never owed, cogs/ready_pings.py)."""
        return await self._all(
            "SELECT * FROM jobs WHERE finished_at >= ? AND message_id IS NOT NULL ORDER BY finished_at", (since,)
        )

    async def update(
        self,
        job: Job,
        *,
        now: float,
        state: JobState | None = None,
        within: InTransaction | None = None,
        unless_cancelled: bool = False,
        **changes: Any,
    ) -> Job:
        """Write ``changes`` (and a checked transition to ``state``) if the row is still in ``job.state``;
        ``within`` (given the job's id) runs in the same transaction. ``unless_cancelled``: and only if no
        cancel was requested meanwhile (``cancel_requested`` is written without the job's lock, compared on
        the same state, so a step that read the job before it would otherwise go ahead).

        The compare-and-set on state means two tasks can never both move the same job: the loser gets
        InvalidTransitionError and re-reads.
        """
        unknown = set(changes) - (_COLUMN.keys() - _FIXED)
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        if state is not None and state != job.state and state not in TRANSITIONS[job.state]:
            raise InvalidTransitionError(f"job {job.id}: {job.state} -> {state} is not allowed")
        unsaved = self._unsaved.pop(job.id, {})
        values = _to_row({**unsaved, **changes})
        new_state = state or job.state
        if new_state in TERMINAL_STATES and new_state != job.state:
            values["finished_at"] = now
            # The interaction token is a credential; a finished job has no use for it.
            values.setdefault("interaction_token", None)
        values["state"] = str(new_state)
        values["updated_at"] = now
        settles = new_state in TERMINAL_STATES and job.charge_state == "reserved"
        if settles:
            values["charge_state"] = settled_state(new_state is JobState.DELIVERED)
        assignments = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE jobs SET {assignments} WHERE id = ? AND state = ?"
        if unless_cancelled:
            sql += " AND cancel_requested IS NULL"
        params = (*values.values(), job.id, str(job.state))
        try:
            if settles or within is not None:
                async with self.db.transaction() as conn:
                    cur = await conn.execute(sql, params)
                    if cur.rowcount != 1:
                        raise _moved(job, unless_cancelled)
                    if settles:
                        # The charge is settled in the same transaction as the job's end: no crash can leave a
                        # delivered job uncharged or a failed one charged.
                        delivered = new_state is JobState.DELIVERED
                        await settle(conn, job, delivered=delivered, now=now, why=str(new_state))
                    if within is not None:
                        await within(conn, [job.id])
            else:
                # One statement is atomic on its own: no BEGIN/COMMIT round trips for the many updates (a
                # poll that says "still running") that settle nothing.
                async with self.db.read() as conn:
                    cur = await conn.execute(sql, params)
                if cur.rowcount != 1:
                    raise _moved(job, unless_cancelled)
        except BaseException:
            if unsaved:
                # Not written (the job moved on, or the database refused the write): the job's next update
                # writes them, with whatever was noted meanwhile.
                self._unsaved[job.id] = {**unsaved, **self._unsaved.get(job.id, {})}
            raise
        # The row is now what it was plus these columns: the same change to the cached copy (or, if the
        # job was not cached, to the caller's) gives the new row without reading it back.
        changed: dict[str, Any] = {"state": new_state, "updated_at": now, **changes}
        if "finished_at" in values:
            changed["finished_at"] = values["finished_at"]
            changed["interaction_token"] = values["interaction_token"]
        if settles:
            changed["charge_state"] = values["charge_state"]
        updated = replace(self._cache.get(job.id, job), **changed)
        if updated.terminal:
            self._cache.pop(job.id, None)
        else:
            self._cache[job.id] = updated
        self._track(updated)
        if settles and self.on_settled is not None:
            self.on_settled(updated)
        if "finished_at" in values and self.on_ended is not None:
            self.on_ended(updated)
        return updated

    async def note_poll(self, job: Job, **changes: Any) -> Job:
        """Record a poll that changed nothing but the job's bookkeeping (``POLL_FIELDS``: how many polls,
        when the next), in memory only; the job's next ``update`` writes it. A poll that finds a job still
        running is most of a job's steps, and its own UPDATE was a third of the SQL per job. Losing these
        fields in a crash costs nothing: a restarted bot polls every unfinished job at once anyway.
        Like ``update``, refuses a stale ``job`` (one whose state has moved on)."""
        unknown = set(changes) - POLL_FIELDS
        if unknown:
            raise ValueError(f"not poll bookkeeping: {sorted(unknown)}")
        current = self._cache.get(job.id)
        if current is None or self._agenda is None:
            # Not under this store's watch (a job read before it was cached): write it as ever.
            return await self.update(job, now=job.updated_at, **changes)
        if current.state != job.state:
            raise InvalidTransitionError(f"job {job.id} is no longer {job.state}")
        self._unsaved.setdefault(job.id, {}).update(changes)
        updated = replace(current, **changes)
        self._cache[job.id] = updated
        self._track(updated)
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
