"""What a fault soak checks once the bot has drained: nothing lost, nothing made or charged twice, the
ledger balanced, every failure explained to the member.

It reads the bot's SQLite file (read only), the tasks the fake provider made and the messages the fake
Discord holds, and judges each /imagine the soak sent. Shared by bench/soak.py (the long run, with
figures) and tests/e2e/test_soak.py (a short run in the suite), so both hold the bot to the same rules:

  lost            a job row not in a terminal state; or a job whose member message is not final (still
                  "thinking", still a progress embed, or not matching the row: a delivered job without
                  its image, a failed one without its reason); or an acknowledged command with no row
  unanswered      a command the bot never acknowledged and never recorded: it died in between, so
                  Discord tells the member the application did not respond and nothing is charged
  answered late   a command or press whose answer came after Discord's 3 s (where the fake Discord
                  enforces it: FakeDiscord.answer_window), which the member saw fail
  created twice   a prompt (each command has its own) for which the provider made more than one task
  another's task  a job whose provider job id names a task made for another prompt (taken up by the wrong
                  job: bot/lost_tasks.py traces a lost create's task to its job)
  charged twice   a job with more than one commit row in the ledger
  unclear         a job that ended without an image and without an error message
  ledger          every job holds exactly one reservation, a terminal job exactly one settlement (a
                  commit if delivered, a refund of the same units otherwise), an unfinished one none; and
                  reserved + refunded == committed units over the whole ledger
  over a limit    with ``limits`` (a soak whose quotas bind): replaying the ledger in the order it was
                  written, no reservation took a member past their daily units, nor past the requests
                  they may have generating at once (the candidates of one /imagine count:N are one)

``MemberActions`` makes members change their minds during a soak: a seeded share of the commands get
their Cancel button pressed, or their message deleted, a moment after they were sent, kills and faults
notwithstanding. The rules above hold for those jobs too, and one more (``MemberActions.problems``): a
Cancel click the bot took is never delivered or charged. ``MemberActions.lines`` says how they ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ledger_audit import JobCharge, LedgerRow, LedgerTotals, audit_ledger
from bot.models import TERMINAL_STATES, JobState
from bot.reference_roles import with_roles
from bot.render import COLOUR_DONE, COLOUR_PROGRESS, truncate
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.discord.validation import walk_components
from bot.testing.providers import FakeGemini, FakeSeaArt, FakeSegmind
from bot.testing.providers._base import FakeProviderServer
from bot.testing.providers.gemini import FakeGeminiCall

_TERMINAL = {str(s) for s in TERMINAL_STATES}
_DELIVERED = str(JobState.DELIVERED)
# The failure embed's field that carries the row's error message (bot/render.py failure_embed).
_REASON_FIELD = "What happened"
# The batch embed's field listing each candidate's state (bot/render.py batch_embed).
_CANDIDATES_FIELD = "Images"
# The answers to a button that take the click: the message edited now (UPDATE_MESSAGE, "Cancelling…")
# or later (DEFERRED_UPDATE_MESSAGE); a refusal ("too late") is an ephemeral message instead.
_TAKES_THE_CLICK = (6, 7)


@dataclass
class Audit:
    """The verdict on one soak. ``problems()`` is empty when every invariant holds."""

    submitted: int = 0
    rows: int = 0
    states: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    failed_with_message: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    answered_late: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    created_twice: list[str] = field(default_factory=list)
    # Jobs whose provider job id names a task made for another prompt: a task taken up by the wrong job (a
    # create whose answer was lost is traced to its job by kie.ai's callback: bot/lost_tasks.py).
    wrong_task: list[str] = field(default_factory=list)
    charged_twice: list[str] = field(default_factory=list)
    ledger: list[str] = field(default_factory=list)
    totals: LedgerTotals = field(default_factory=LedgerTotals)
    tasks: int = 0
    candidates: int = 0  # jobs that were one candidate of several (/imagine count:N)
    failed_over: int = 0  # jobs another provider took after the first failed them
    over_limit: list[str] = field(default_factory=list)  # reservations a binding quota should have refused
    refused: Counter[str] = field(default_factory=Counter)  # commands answered privately, by why

    def problems(self) -> list[str]:
        found = [f"lost: {what}" for what in self.lost]
        found += [f"created twice: {what}" for what in self.created_twice]
        found += [f"another job's task: {what}" for what in self.wrong_task]
        found += [f"charged twice: {what}" for what in self.charged_twice]
        found += [f"no clear message: {what}" for what in self.unclear]
        found += [f"ledger: {what}" for what in self.ledger]
        found += [f"over a limit: {what}" for what in self.over_limit]
        found += [f"answered after Discord's 3 s: {what}" for what in self.answered_late]
        if not self.totals.balanced:
            t = self.totals
            found.append(
                f"ledger: reserved {t.reserved} + refunded {t.refunded} != committed {t.committed} "
                f"(still reserved: {t.open})"
            )
        return found

    def lines(self) -> list[str]:
        """The figures, one per line, for a report."""
        t = self.totals
        failed = ", ".join(f"{c} {n}" for c, n in sorted(self.categories.items())) or "none"
        return [
            f"commands and button presses sent      {self.submitted}",
            f"  recorded by the bot (job rows)      {self.rows}",
            f"  unanswered (bot died first)         {self.unanswered}",
            f"  answered after Discord's 3 s        {len(self.answered_late)}",
            f"  refused, answered privately         {sum(self.refused.values())}"
            + (f"  ({', '.join(f'{why} {n}' for why, n in sorted(self.refused.items()))})" if self.refused else ""),
            f"  candidates of batches (count:N)     {self.candidates}",
            f"  moved to another provider           {self.failed_over}",
            f"delivered                             {self.delivered}",
            f"failed with a clear message           {self.failed_with_message}  ({failed})",
            f"failed without a message              {len(self.unclear)}",
            f"lost                                  {len(self.lost)}",
            f"created twice at the provider         {len(self.created_twice)}  ({self.tasks} tasks made)",
            f"another job's task taken              {len(self.wrong_task)}",
            f"charged twice                         {len(self.charged_twice)}",
            f"reservations past a quota's limit     {len(self.over_limit)}",
            f"ledger: reserved {t.reserved}, committed {t.committed}, refunded {t.refunded}, still reserved {t.open}: "
            + ("balanced" if t.balanced and not self.ledger else "NOT BALANCED"),
        ]


def db_rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def prompt_of(interaction: FakeInteraction) -> str | None:
    options = interaction.payload.get("data", {}).get("options", [])
    value = next((o.get("value") for o in options if o.get("name") == "prompt"), None)
    return str(value) if value is not None else None


def message_verdict(message: FakeMessage | None, job: Mapping[str, Any]) -> str | None:
    """Why the member's message is not the final state of ``job`` (None if it is)."""
    if message is None:
        return "no message"
    if message.deleted:
        return None  # deleted by a member or moderator: gone is final
    if message.loading:
        return 'still "thinking"'
    embed = message.embeds[0] if message.embeds else {}
    if embed.get("color") == COLOUR_PROGRESS.value:
        return f"still a progress embed ({embed.get('title')!r})"
    if job["state"] == _DELIVERED:
        if not message.attachments or embed.get("color") != COLOUR_DONE.value:
            return "delivered in the database, but the message has no image"
        return None
    reasons = [f.get("value") for f in embed.get("fields", []) if f.get("name") == _REASON_FIELD]
    expected = truncate(job["error_message"] or "Unknown error.", 1024)
    if reasons != [expected]:
        return f"{job['state']} in the database, but the message does not say why (has {embed.get('title')!r})"
    return None


def batch_verdict(message: FakeMessage | None, jobs: list[Mapping[str, Any]]) -> str | None:
    """Why the shared message of a batch's candidates (``jobs``) is not their final state (None if it is):
    one image per delivered candidate, and each candidate's line saying "ready" or why it brought none."""
    if message is None:
        return "no message"
    if message.deleted:
        return None
    if message.loading:
        return 'still "thinking"'
    embed = message.embeds[0] if message.embeds else {}
    if embed.get("color") == COLOUR_PROGRESS.value:
        return f"still a progress embed ({embed.get('title')!r})"
    delivered = sum(1 for job in jobs if job["state"] == _DELIVERED)
    if len(message.attachments) != delivered:
        shown = len(message.attachments)
        return f"{delivered} candidate(s) delivered in the database, but the message shows {shown} image(s)"
    listing = next((str(f.get("value")) for f in embed.get("fields", []) if f.get("name") == _CANDIDATES_FIELD), "")
    lines = {line.split("**")[1]: line for line in listing.splitlines() if line.count("**") >= 2}
    for job in jobs:
        label = f"#{job['batch_index'] or 1}"
        line = lines.get(label)
        if line is None:
            return f"candidate {label} is not listed"
        expected = "ready" if job["state"] == _DELIVERED else (job["error_message"] or "failed")[:60]
        if expected not in line:
            return f"candidate {label} is {job['state']} in the database, but its line says {line!r}"
    return None


def jobs_by_interaction(jobs: Iterable[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """The job rows each command made (several for /imagine count:N), in candidate order."""
    found: dict[int, list[Mapping[str, Any]]] = {}
    for job in jobs:
        if job["interaction_id"] is not None:
            found.setdefault(int(job["interaction_id"]), []).append(job)
    for mine in found.values():
        mine.sort(key=lambda j: j["batch_index"] or 0)
    return found


def job_prompt(job: Mapping[str, Any]) -> str:
    """The prompt a job row was made with, as the provider received it (with what a style reference is for:
    GenerationRequest.sent_prompt)."""
    request = json.loads(job["request_json"])
    references = request.get("reference_images", ())
    return with_roles(
        str(request.get("prompt")), [ref.get("role") for ref in references], [ref.get("weight") for ref in references]
    )


def job_tried(job: Mapping[str, Any]) -> list[Any]:
    """The providers a job left before the one it ended with (failover), from its row."""
    raw = job.get("tried_providers")
    return list(json.loads(raw)) if raw else []


def audit(
    db: Path,
    discord_fake: FakeDiscord,
    tasks_by_prompt: Mapping[str, int],
    interactions: Iterable[FakeInteraction],
    *,
    quotas: bool = True,
    limits: QuotaRules | None = None,
    task_prompts: Mapping[str, str] | None = None,
) -> Audit:
    """Judge every interaction in ``interactions`` (the soak's /imagine commands) against the database,
    the fake Discord's messages and ``tasks_by_prompt`` (prompt -> tasks the provider made for it);
    with ``limits``, also every reservation against the quotas the bot ran with; with ``task_prompts``
    (task id -> the prompt it was made for), that every job's task was made for that job's prompt."""
    result = Audit()
    jobs = db_rows(db, "SELECT * FROM jobs") if db.exists() else []
    by_interaction = jobs_by_interaction(jobs)
    result.rows = len(jobs)
    for row in jobs:
        result.states[row["state"]] += 1
    ours: set[str] = set()
    # A job may have one task at a provider: a command makes one job or one per candidate (count:N), and
    # a press of Re-roll another with the same prompt (of Vary, one with the prompt the Vary words).
    allowed = Counter(job_prompt(job) for job in jobs)
    for interaction in interactions:
        result.submitted += 1
        if interaction.late_answers and not interaction.acknowledged:
            result.answered_late.append(f"interaction {interaction.id} ({prompt_of(interaction)!r})")
        mine = by_interaction.get(interaction.id, [])
        prompt = job_prompt(mine[0]) if mine else prompt_of(interaction)
        if not mine:
            if not interaction.acknowledged:
                result.unanswered += 0 if interaction.late_answers else 1
            elif not _ephemeral_answer(discord_fake, interaction):
                result.lost.append(f"{prompt!r}: acknowledged, but no job row")
            else:
                result.refused[_why_refused(discord_fake, interaction)] += 1
            continue
        result.candidates += len(mine) if len(mine) > 1 else 0
        ended = True
        for job in mine:
            ours.add(job["id"])
            what = f"job {job['id']} ({prompt!r})"
            made_for = (task_prompts or {}).get(job["provider_job_id"] or "")
            if made_for is not None and made_for != job_prompt(job):
                result.wrong_task.append(f"{what}: its task {job['provider_job_id']} was made for {made_for!r}")
            if job["state"] not in _TERMINAL:
                held = " (held: never released)" if job["message_id"] is None else ""
                result.lost.append(f"{what}: still {job['state']} at the end{held}")
                ended = False
                continue
            if job["state"] == _DELIVERED:
                result.delivered += 1
            elif (job["error_message"] or "").strip():
                result.failed_with_message += 1
                result.categories[str(job["error_category"])] += 1
            else:
                result.unclear.append(f"{what}: {job['state']} without an error message")
            if len(job_tried(job)) > 0:
                result.failed_over += 1
        if ended and interaction.acknowledged and _ephemeral_answer(discord_fake, interaction):
            # Answered privately (the database was busy: cogs/in_time.py) and the rows written after that
            # answer taken back. None of them may have been delivered or given a message.
            shown = [j["id"] for j in mine if j["state"] == _DELIVERED or j["message_id"] is not None]
            if shown:
                result.lost.append(f"job(s) {', '.join(shown)} ({prompt!r}): answered privately, yet shown")
        elif ended and interaction.acknowledged:
            message = discord_fake.messages.get(interaction.original_message_id or -1)
            is_batch = len(mine) > 1 or mine[0]["batch_id"] is not None
            why = batch_verdict(message, mine) if is_batch else message_verdict(message, mine[0])
            if why is not None:
                ids = ", ".join(j["id"] for j in mine)
                result.lost.append(f"job(s) {ids} ({prompt!r}): member message not final: {why}")
    result.tasks = sum(tasks_by_prompt.values())
    result.created_twice = [
        f"{p!r}: {n} tasks for {allowed.get(p, 1)} job(s)"
        for p, n in sorted(tasks_by_prompt.items())
        if n > allowed.get(p, 1)
    ]
    # Every job's reservation is judged (a reply's or a rework's too); only the commands' must exist.
    _check_ledger(result, db, {j["id"]: j for j in jobs}, ours, quotas=quotas)
    if limits is not None and db.exists():
        ledger = list(db_rows(db, "SELECT * FROM ledger ORDER BY id"))
        result.over_limit = limits.broken_by(ledger, jobs) + limits.generating_past(ledger, jobs)
    return result


@dataclass(frozen=True)
class ServerRoomChange:
    """An admin's ``/quota server in_flight:`` during a soak: sent at ``asked`` and answered at ``answered``
    (wall-clock seconds, the bot's clock; None: no answer came, the bot killed meanwhile, so it may or may not have
    been saved), setting the server's images at once to ``limit``."""

    asked: float
    answered: float | None
    limit: int


@dataclass(frozen=True)
class QuotaRules:
    """The quotas a soak's bot ran with, where they bind: ``daily`` units per member (the whole soak is
    one day's window unless it runs over the reset, which ``broken_by`` allows for) and ``in_flight``
    requests a member may have generating at once, with ``waiting`` more waiting their turn; and for the whole
    server, if given, ``guild_in_flight`` images generating at once (each candidate of a batch is one; those waiting
    their turn not yet) and ``guild_monthly`` units a month. ``deadline``: the bot's, by which a job's start is read."""

    daily: int
    in_flight: int
    guild_in_flight: int | None = None
    guild_monthly: int | None = None
    waiting: int = 3
    # No default: read by a deadline other than the bot's, a waiting request's start is misplaced.
    deadline: float = field(kw_only=True)
    # The server's images at once changed by an admin during the run (``--server-changes``), in the order sent.
    server_changes: tuple[ServerRoomChange, ...] = field(default=(), kw_only=True)

    def server_limit_at(self, at: float) -> int | None:
        """The most images the server may have had generating at ``at`` (None: no limit): ``guild_in_flight``, then
        each change from its answer; between its sending and its answer (or, unanswered, until the next is sent)
        either limit may hold, so the larger is allowed."""
        limit = self.guild_in_flight
        for change in self.server_changes:
            if at < change.asked:
                break
            if change.answered is not None and at >= change.answered:
                limit = change.limit
            elif limit is not None:
                limit = max(limit, change.limit)
        return limit

    def broken_by(self, ledger: Iterable[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Each reservation in ``ledger`` (its rows in the order written: each reservation is checked and
        written in one transaction, so that is the order the bot saw) that took its member past a limit."""
        request_of = {str(j["id"]): str(j["batch_id"] or j["id"]) for j in jobs}
        used: Counter[tuple[int, int]] = Counter()  # (member, day) -> units reserved, net of refunds
        open_jobs: dict[int, dict[str, str]] = {}  # member -> job still reserved -> its request
        server_used: Counter[tuple[int, str]] = Counter()  # (guild, month) -> units, net
        server_open: dict[int, set[str]] = {}  # guild -> jobs still reserved
        found: list[str] = []
        for row in ledger:
            member, job_id, kind = int(row["user_id"]), str(row["job_id"]), str(row["kind"])
            guild = int(row["guild_id"])
            day = int(float(row["window_at"]) // 86400)
            month = time.strftime("%Y-%m", time.gmtime(float(row["window_at"])))
            if kind in ("reserve", "refund", "grant"):
                used[(member, day)] += int(row["units"])
                server_used[(guild, month)] += int(row["units"])
            mine = open_jobs.setdefault(member, {})
            generating = server_open.setdefault(guild, set())
            if kind in ("commit", "refund"):
                mine.pop(job_id, None)
                generating.discard(job_id)
            if kind != "reserve" or row["job_id"] is None:
                continue
            generating.add(job_id)
            if self.guild_monthly is not None and server_used[(guild, month)] > self.guild_monthly:
                found.append(f"server {guild}: job {job_id} took the month's units to {server_used[(guild, month)]}")
            request = request_of.get(job_id, job_id)
            others = {r for r in mine.values() if r != request}
            if len(others) >= self.in_flight + self.waiting:
                found.append(
                    f"member {member}: job {job_id} reserved with {len(others)} other request(s) generating or waiting"
                )
            mine[job_id] = request
            if used[(member, day)] > self.daily:
                found.append(f"member {member}: job {job_id} took the day's units to {used[(member, day)]}")
        return found

    def generating_past(self, ledger: Sequence[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Each request that started while its member had ``in_flight`` others generating, and each image that
        started while its server had ``guild_in_flight`` others. A job starts when reserved, or, if it waited its
        turn (bot/waiting_requests.py), when its deadline was set again, at its start; it generates until it
        ends, and a request until its last candidate does, as their reservations count until then. One that
        ended still waiting (``waits_for`` set: cancelled, say) never generated."""
        reserved = {str(r["job_id"]): float(r["created_at"]) for r in ledger if r["kind"] == "reserve"}
        spans: dict[int, dict[str, tuple[float, float]]] = {}  # member -> request -> (start, end)
        images: dict[int, dict[str, tuple[float, float]]] = {}  # server -> job -> (start, end)
        for job in jobs:
            job_id = str(job["id"])
            if job_id not in reserved or job["waits_for"] is not None:
                continue
            start = max(reserved[job_id], float(job["deadline_at"]) - self.deadline)
            end = float(job["finished_at"]) if job["finished_at"] is not None else math.inf
            images.setdefault(int(job["guild_id"]), {})[job_id] = (start, end)
            requests = spans.setdefault(int(job["user_id"]), {})
            request = str(job["batch_id"] or job_id)
            first_start, last_end = requests.get(request, (start, end))
            requests[request] = (min(first_start, start), max(last_end, end))
        found = []
        for member, requests in spans.items():
            for request, (start, _) in requests.items():
                during = [other for other, (s, e) in requests.items() if other != request and s <= start < e]
                if len(during) >= self.in_flight:
                    found.append(f"member {member}: request {request} started with {len(during)} other(s) generating")
        for guild, started in images.items():
            for job_id, (start, _) in started.items():
                server_limit = self.server_limit_at(start)
                if server_limit is None:
                    continue
                during = [other for other, (s, e) in started.items() if other != job_id and s <= start < e]
                if len(during) >= server_limit:
                    found.append(f"server {guild}: job {job_id} started with {len(during)} other image(s) generating")
        return found


def _why_refused(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """What a private answer to a command said, in a word, for the report."""
    message = discord_fake.messages.get(interaction.original_message_id or -1)
    if message is None:
        return "other"
    text = " ".join([message.content or ""] + [str(e.get("description") or "") for e in message.embeds])
    if "This server" in text and ("generating" in text or "units" in text or "budget" in text):
        return "server quota"
    if "quota" in text or "generating (limit" in text:
        return "quota"
    if "cannot save" in text:
        return "database busy"
    if "choices in braces" in text:
        return "too many choices"
    # The moderation soak's (--moderation): cogs/policy.py's words for a ban and a blocked term.
    if "banned from using this bot" in text or "on a cooldown" in text:
        return "banned"
    if "this server does not allow" in text or "no longer allows" in text:
        return "blocked term"
    if "have paused image making" in text:  # --pause: cogs/policy.py's words for a moderator's pause
        return "paused"
    return "other"


def _ephemeral_answer(discord_fake: FakeDiscord, interaction: FakeInteraction) -> bool:
    """The command was answered with an ephemeral message (a refusal: nothing was recorded or charged)."""
    message = discord_fake.messages.get(interaction.original_message_id or -1)
    return message is not None and message.ephemeral and not message.loading


def _check_ledger(
    result: Audit, db: Path, jobs: Mapping[str, Mapping[str, Any]], ours: set[str], *, quotas: bool
) -> None:
    """The ledger's invariants (bot/ledger_audit.py, as `bananacord db audit` checks them); with ``quotas``,
    also that every job of the soak's commands holds a reservation."""
    entries = db_rows(db, "SELECT job_id, kind, units FROM ledger WHERE job_id IS NOT NULL") if db.exists() else []
    checked = audit_ledger(
        {job_id: JobCharge(str(job["state"]), job["charge_state"]) for job_id, job in jobs.items()},
        [LedgerRow(str(e["job_id"]), str(e["kind"]), int(e["units"])) for e in entries],
    )
    result.totals = checked.totals
    result.charged_twice += checked.charged_twice
    result.ledger += checked.problems
    if quotas:
        reserved = {str(e["job_id"]) for e in entries if e["kind"] == "reserve"}
        result.ledger += [f"job {job_id}: no reservation" for job_id in sorted(ours - reserved)]


# A ping of a slow request's end (cogs/ready_pings.py): the member's mention, then what became of it.
_PING = re.compile(r"<@(\d+)> (?:your |none of your |\d+ of your )")


def _pings(discord_fake: FakeDiscord) -> Iterator[tuple[FakeMessage, re.Match[str]]]:
    """The bot's pings in ``discord_fake``, each with its words matched."""
    for message in discord_fake.messages.values():
        found = _PING.match(message.content or "")
        if message.author_id is None and message.reference is not None and found is not None:
            yield message, found


def ping_audit(discord_fake: FakeDiscord) -> tuple[int, list[str]]:
    """The bot's pings of slow requests' ends (cogs/ready_pings.py): how many requests were pinged, and what is
    wrong with them: a request pinged twice (a retry or a restart sending it again), or a ping that may mention
    anyone but its member."""
    pinged: Counter[int] = Counter()
    problems: list[str] = []
    for message, found in _pings(discord_fake):
        assert message.reference is not None
        pinged[int(message.reference["message_id"])] += 1
        mentions = message.allowed_mentions or {}
        if mentions.get("parse") != [] or [str(user) for user in mentions.get("users") or []] != [found[1]]:
            problems.append(f"ping {message.id} may mention more than its member: {mentions}")
    problems += [f"message {target} pinged {times} times" for target, times in pinged.items() if times > 1]
    return len(pinged), problems


def _requests_due(db: Path) -> dict[str, list[dict[str, Any]]]:
    """With every end pinging (``[imagine] ping_after_seconds = 0``): the requests in ``db`` whose end asks for a
    ping (by the batch's id, else the job's), their rows: those shown in a message with an image delivered, or
    ended with none and none cancelled (a cancel pings nobody, and a batch whose last end was a cancel is not
    pinged for its failures)."""
    requests: dict[str, list[dict[str, Any]]] = {}
    for row in db_rows(db, "SELECT id, batch_id, state, message_id FROM jobs") if db.exists() else []:
        requests.setdefault(row["batch_id"] or row["id"], []).append(row)
    due = {}
    for key, rows in requests.items():
        if any(row["message_id"] is None for row in rows):
            continue
        states = {row["state"] for row in rows}
        ended = states <= _TERMINAL
        if _DELIVERED in states or (ended and str(JobState.CANCELLED) not in states):
            due[key] = rows
    return due


def pings_due(db: Path) -> int:
    """How many requests in ``db`` ask for a ping where every end pings (``_requests_due``)."""
    return len(_requests_due(db))


def unpinged(db: Path, discord_fake: FakeDiscord) -> list[str]:
    """The requests in ``db`` whose end asks for a ping (``_requests_due``) that ``discord_fake`` holds no ping of,
    each with what its row of owed pings says (never owed, owed and not sent, or paid). A request whose message a
    member deleted is owed none: a ping would point at nothing (Discord refuses the reply)."""
    pinged = {int(message.reference["message_id"]) for message, _ in _pings(discord_fake) if message.reference}
    owed = {str(row["request_key"]): row for row in db_rows(db, "SELECT request_key, paid_at FROM owed_pings")}
    found = []
    for key, rows in _requests_due(db).items():
        shown_in = discord_fake.messages.get(int(rows[0]["message_id"]))
        if int(rows[0]["message_id"]) in pinged or (shown_in is not None and shown_in.deleted):
            continue
        row = owed.get(key)
        said = "never owed" if row is None else "owed, not sent" if row["paid_at"] is None else "paid, not seen"
        found.append(f"request {key} ({', '.join(sorted({str(r['state']) for r in rows}))}): {said}")
    return found


def tasks_per_prompt(prompts: Iterable[object]) -> dict[str, int]:
    """Prompt -> how many tasks carry it (give it the prompts of every task the fake provider made)."""
    return dict(Counter(str(p) for p in prompts))


@dataclass(frozen=True)
class ProviderRecord:
    """What the fake providers of a soak did, as the judges above take it."""

    tasks: dict[str, int]  # prompt -> tasks made for it, over every provider (``audit``)
    task_prompts: dict[str, str]  # task id -> the prompt it was made for (``audit``)
    finished: dict[str, float]  # task id -> when its image existed, wall clock (``MemberActions``)
    cancels: list[str]  # the path of every cancel call received (``providers_not_told``)


def provider_record(fakes: Iterable[FakeProviderServer[Any]]) -> ProviderRecord:
    prompts: list[str] = []
    task_prompts: dict[str, str] = {}
    finished: dict[str, float] = {}
    cancels: list[str] = []
    for fake in fakes:
        for task_id, task in fake.jobs.items():
            prompts.append(_task_prompt(fake, task))
            task_prompts[task_id] = prompts[-1]
            if (when := _task_ready_at(task)) is not None:
                finished[task_id] = when
        cancels += [r.path for r in fake.requests if r.method == "PUT" and r.path.endswith("/cancel")]
    return ProviderRecord(tasks_per_prompt(prompts), task_prompts, finished, cancels)


def _task_prompt(fake: FakeProviderServer[Any], task: Any) -> str:
    """The prompt a fake's task was made for (SeaArt and Segmind keep it in the body, Kie in its ``input``, Gemini in
    the text part of the last turn)."""
    if isinstance(fake, FakeSeaArt | FakeSegmind):
        return str(task.body.get("prompt"))
    if isinstance(fake, FakeGemini):
        parts = task.body["contents"][-1]["parts"]
        return str(next(part["text"] for part in parts if "text" in part))
    return str(task.fields.get("prompt"))


def _task_ready_at(task: Any) -> float | None:
    """When a fake's task had its image (None: not yet); a Gemini call has it when it is made."""
    if isinstance(task, FakeGeminiCall):
        return task.created_at
    at = task.ready_at
    return float(at) if at is not None else None


# The [quotas] section a soak runs with: enabled, so the ledger is exercised, and limits no soak reaches
# (every command comes from the same member).
GENEROUS_QUOTAS: dict[str, Any] = {
    "enabled": True,
    "daily": 1_000_000,
    "in_flight_per_user": 1_000_000,
    "in_flight_per_guild": 1_000_000,
}


@dataclass
class MemberAction:
    """A member changing their mind about one command: ``kind`` "cancel" (the Cancel button), "delete" (the
    message, in their client) or "cross" (a ❌ reaction: the bot deletes the message, cogs/delete_reaction.py).
    ``outcome`` says what came of the attempt: "clicked", "deleted", "crossed" (the reaction sent to a live bot;
    one that dies before handling it never sees it, as with Discord), or why it was not made ("finished": no
    Cancel button any more; "no message"; "bot down")."""

    command: FakeInteraction
    kind: str
    outcome: str = "pending"
    click: FakeInteraction | None = None
    at: float | None = None  # wall clock of the click or deletion


class MemberActions:
    """Cancel or delete a seeded ``share`` of the commands handed to ``after_sent``, each after a delay
    drawn from ``delay`` seconds; half of them by the button, half by deleting the message (with ``crosses``,
    half of those by reacting ❌ to it instead)."""

    def __init__(
        self,
        discord_fake: FakeDiscord,
        share: float,
        *,
        seed: int,
        delay: tuple[float, float],
        crosses: bool = False,
    ) -> None:
        self.discord = discord_fake
        self.share = share
        self.delay = delay
        self.actions: list[MemberAction] = []
        self._random = random.Random(seed)
        # Drawn apart, so that a seed's cancels and deletions stay what they were.
        self._crosses = random.Random(f"{seed}-crosses") if crosses else None
        self._tasks: set[asyncio.Task[None]] = set()

    def after_sent(self, command: FakeInteraction) -> None:
        if self._random.random() >= self.share:
            return
        kind = self._random.choice(("cancel", "delete"))
        if kind == "delete" and self._crosses is not None and self._crosses.random() < 0.5:
            kind = "cross"
        action = MemberAction(command, kind)
        self.actions.append(action)
        task = asyncio.create_task(self._act(action, self._random.uniform(*self.delay)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self) -> None:
        """Wait for the actions still to come (each gives up within about a minute)."""
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _act(self, action: MemberAction, delay: float) -> None:
        await asyncio.sleep(delay)
        deadline = time.monotonic() + 30
        message = None
        while time.monotonic() < deadline:  # the bot may be restarting: its answer comes later
            message = self.discord.messages.get(action.command.original_message_id or -1)
            if message is not None and not message.loading:
                break
            await asyncio.sleep(0.2)
        if message is None or message.deleted or message.ephemeral:
            action.outcome = "no message"
            return
        try:
            if action.kind == "delete":
                action.at = time.time()
                await self.discord.delete_messages(message.id)
                action.outcome = "deleted"
                return
            if action.kind == "cross":
                action.at = time.time()
                sent = await self.discord.react(message.id, "❌", user_id=action.command.user_id)
                action.outcome = "crossed" if sent else "bot down"
                return
            buttons = [
                str(c["custom_id"])
                for row in message.components
                for c in row.get("components", [])
                if c.get("label") == "Cancel"
            ]
            if not buttons:
                action.outcome = "finished"
                return
            action.at = time.time()
            action.click = await self.discord.click(message.id, buttons[0], user_id=action.command.user_id)
            action.outcome = "clicked"
        except (TimeoutError, AssertionError):  # no live bot for a while, or the message went meanwhile
            action.outcome = "bot down"

    def _message_deleted(self, command: FakeInteraction) -> bool:
        message = self.discord.messages.get(command.original_message_id or -1)
        return message is not None and message.deleted

    def problems(self, db: Path, ready_at: Mapping[str, float] | None = None) -> list[str]:
        """A Cancel click the bot took (answered by updating the message, rather than with "too late") is
        a promise: that job is neither delivered nor charged, kills notwithstanding. One click cancels every
        candidate of a batch (count:N) still running; a candidate whose image the bot already had is
        delivered rather than thrown away, so a delivered candidate is allowed only if its task had
        finished at the provider (``ready_at``: provider task id -> wall clock) before the click was taken.
        """
        columns = "interaction_id, id, state, charge_state, batch_id, batch_index, provider_job_id"
        by_interaction = jobs_by_interaction(db_rows(db, f"SELECT {columns} FROM jobs") if db.exists() else [])
        found = []
        for action in self.actions:
            if not _taken(action):
                continue
            mine = by_interaction.get(action.command.id, [])
            taken_at = _taken_at(action)
            for job in mine:
                if job["state"] != _DELIVERED and job["charge_state"] != "committed":
                    continue
                finished = (ready_at or {}).get(str(job["provider_job_id"]), float("inf"))
                if job["batch_id"] is not None and finished <= taken_at:
                    continue  # this candidate's image existed before the click: delivered, as it should be
                found.append(f"job {job['id']}: Cancel taken, yet {job['state']} and {job['charge_state']}")
        return found

    def lines(self, db: Path, ready_at: Mapping[str, float] | None = None) -> list[str]:
        """How the members' actions went and how their jobs ended, for a report. With ``ready_at`` (provider
        task id -> when the provider had its image, wall clock), each job delivered although its member acted
        says whether its image existed by then: the bot delivers an image it has rather than throw it away."""
        columns = "interaction_id, state, batch_index, provider_job_id"
        by_interaction = jobs_by_interaction(db_rows(db, f"SELECT {columns} FROM jobs") if db.exists() else [])
        lines = [f"member actions: {len(self.actions)} (a share of {self.share:.0%} of the commands)"]
        for kind in ("cancel", "delete", "cross"):
            mine = [a for a in self.actions if a.kind == kind]
            if kind == "cross" and not mine:
                continue
            made = Counter(a.outcome for a in mine)
            acted = [a for a in mine if a.outcome in ("clicked", "deleted", "crossed")]
            ended = Counter(str(j["state"]) for a in acted for j in by_interaction.get(a.command.id, [])) or Counter(
                {"no row": len(acted)} if acted else {}
            )
            taken = sum(1 for a in mine if _taken(a))
            told_too_late = sum(1 for a in mine if a.click is not None and a.click.acknowledged and not _taken(a))
            what = {"cancel": "Cancel pressed", "delete": "message deleted", "cross": "❌ reacted"}[kind]
            tried = ", ".join(f"{o} {n}" for o, n in sorted(made.items())) or "none"
            lines.append(f"  {what:<16} {len(mine):>3}: {tried}")
            if kind == "cancel":
                lines.append(f'  {"":<16}      clicks taken by the bot: {taken}; answered "too late": {told_too_late}')
            if kind == "cross":
                gone = sum(1 for a in mine if a.outcome == "crossed" and self._message_deleted(a.command))
                lines.append(f"  {'':<16}      their messages deleted by the bot: {gone}")
            lines.append(
                f"  {'':<16}      their jobs ended: " + (", ".join(f"{s} {n}" for s, n in sorted(ended.items())) or "-")
            )
            late = [
                f"{ready_at[str(j['provider_job_id'])] - a.at:+.1f} s"
                for a in acted
                if a.at is not None and ready_at is not None
                for j in by_interaction.get(a.command.id, [])
                if j["state"] == _DELIVERED and str(j["provider_job_id"]) in ready_at
            ]
            if late:
                lines.append(
                    f"  {'':<16}      delivered anyway; image ready at the provider vs the action: {', '.join(late)}"
                )
        return lines


# The buttons of a delivered image that make a new job (bot/render.py views): a batch's message has Re-roll.
# Edit, Use as reference and Change prompt open a form, and the job comes with its submit; Re-render 2K is a 1K
# image drawn again larger. The message menu's remix (cogs/remix.py) is there on any message with an image, and
# opens a form too.
REMIX_MENU = "Edit with Nano Banana"
FORM_LABELS = ("Edit", "Use as reference", "Change prompt", REMIX_MENU)
PAN_LABELS = ("Pan left", "Pan down")  # two of the four arrows: a pan's share of the presses about Zoom out's
# A batch's More menu (cogs/imagine.py ``_more_menu``): a private message whose buttons zoom out from or use as a
# reference one of the batch's images.
MORE = "More"
ONE_CLICK = ("Vary (Subtle)", "Vary (Strong)", "Re-roll", "Re-render 2K", "Zoom out", *PAN_LABELS, "Make square")
# The share of forms filled in with choices in braces (``Reworks._fill_in``).
CHOSEN_WORDS = 0.25
# Not a button: a ✉️ reaction, a copy of the image by DM (cogs/dm_reaction.py).
ENVELOPE = "✉️"
REWORK_LABELS = (*ONE_CLICK, *FORM_LABELS, MORE, ENVELOPE)
# The share of the reworked commands whose message a bystander also reacts ✉️ to while its image is still being made
# (live, or while the bot is down): the copy comes once it shows (cogs/image_waits.py), once.
EARLY_ENVELOPES = 0.3
# The steps whose image offers Change prompt for that step again with other words (Midjourney's Remix: cogs/imagine.py
# ``Imagine._rework_with``); a re-render's does not.
STEPS = ("Vary (Subtle)", "Vary (Strong)", "Zoom out", *PAN_LABELS, "Make square", "Edit")
CHANGE_PROMPT = "Change prompt"
MODAL = 9  # an interaction callback that opens a form
SELECT = 3  # a string select (a form's Reframe choice)
# The edit forms' Reframe choices (cogs/imagine.py EDIT_SHAPE_ID, cogs/remix.py SHAPE_ID).
EDIT_SHAPE = "shape"
FRAME_SELECTS = frozenset({EDIT_SHAPE, "bananacord:remix:shape"})
# Their Where choices (cogs/imagine.py EDIT_REGION_ID, cogs/remix.py REGION_ID).
REGION_SELECTS = frozenset({"region", "bananacord:remix:region"})


@dataclass
class Rework:
    """A member pressing Vary, Re-roll, Edit, Use as reference or Change prompt (and submitting its form),
    Re-render, Zoom out, a pan, a batch's More (and a button of its menu) or the message menu's remix (its form
    too) on the image one command brought. ``outcome``: "pressed", or why
    not ("not delivered", "no message", "bot down", "no form": answered without one). ``press`` is the
    interaction that made the job (for a form, its submit)."""

    command: FakeInteraction
    labels: tuple[str, ...]  # in the order the member looks for them
    outcome: str = "pending"
    label: str | None = None
    press: FakeInteraction | None = None
    # Pressed under the image of an earlier rework's step (``Reworks.remixes``), not of a command.
    of_step: bool = False


class Reworks:
    """Members keep working on a seeded ``share`` of what they get: once a command's message shows its
    image, they press Vary, Re-roll, Edit (typing what to change), Use as reference (typing a prompt), Change
    prompt (typing new words), Zoom out, a pan or Re-render 2K (whichever it offers; a batch's message offers
    Re-roll, Change prompt and More, whose private menu's Zoom out or Use as reference they press), or use the
    message menu's remix, kills and faults notwithstanding.
    Each is a new job in a new message, to be judged as a command is (``presses``: hand them to ``audit``
    with the commands)."""

    def __init__(
        self, discord_fake: FakeDiscord, share: float, *, seed: int, patience: float = 120.0, remixes: float = 0.0
    ) -> None:
        self.discord = discord_fake
        self.share = share
        # The share of steps (``STEPS``) whose member then presses Change prompt under the step's image.
        self.remixes = remixes
        self.patience = patience
        self.reworks: list[Rework] = []
        # The ✉️ reactions given: (message id, member); and those given while the bot was down, which Discord never
        # tells it (cogs/missed_reactions.py reads them back at its next start).
        self.envelopes: list[tuple[int, int]] = []
        self.envelopes_away = 0
        # Of them, those given on an image still being made (``EARLY_ENVELOPES``), and of those, while the bot was down.
        self.early_envelopes = 0
        self.early_away = 0
        self._random = random.Random(f"{seed}-reworks")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def presses(self) -> list[FakeInteraction]:
        return [r.press for r in self.reworks if r.press is not None]

    def after_sent(self, command: FakeInteraction) -> None:
        if self._random.random() >= self.share:
            return
        labels = list(REWORK_LABELS)
        self._random.shuffle(labels)
        self._start(Rework(command, tuple(labels)))
        if self._random.random() < EARLY_ENVELOPES:
            task = asyncio.create_task(self._early_envelope(command, after=self._random.uniform(0.2, 3.0)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _early_envelope(self, command: FakeInteraction, *, after: float) -> None:
        """A bystander's ✉️ on ``command``'s message while its image is still being made, if it still is."""
        await asyncio.sleep(after)
        message = self.discord.messages.get(command.original_message_id or -1)
        if message is None or message.deleted or message.ephemeral or shows_an_image(message):
            return
        if ends_without_an_image(message):
            return
        away = not self.discord.connected
        try:
            await self.discord.react(message.id, ENVELOPE, user_id=self.discord.other_member_id, seen=not away)
        except (TimeoutError, AssertionError):  # the bot went away meanwhile; or the message was deleted
            return
        self.envelopes.append((message.id, self.discord.other_member_id))
        self.envelopes_away += away
        self.early_envelopes += 1
        self.early_away += away

    def _start(self, rework: Rework) -> None:
        self.reworks.append(rework)
        task = asyncio.create_task(self._rework(rework))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _then_remix(self, rework: Rework) -> None:
        """After a step (a Vary, an Edit, a zoom out, a pan) was pressed: a seeded share of them, Change prompt under
        its image once it shows, that step again with other words."""
        if rework.press is not None and rework.label in STEPS and self._random.random() < self.remixes:
            self._start(Rework(rework.press, (CHANGE_PROMPT,), of_step=True))

    async def finish(self, answered_within: float = 15.0) -> None:
        """Wait for the presses still to come (each waits at most ``patience`` s for its image), then for
        the bot to answer them (a press not answered within ``answered_within`` s counts as unanswered):
        a judge that looked before would call a press still being handled unanswered, and the run would
        stop the bot while it holds that press's jobs."""
        while self._tasks:  # a step's remix starts only once the step was pressed
            await asyncio.gather(*list(self._tasks))
        with contextlib.suppress(TimeoutError):
            await self.discord.wait_for(lambda: all(p.acknowledged for p in self.presses), timeout=answered_within)

    async def _rework(self, rework: Rework) -> None:
        message = await settled_message(self.discord, rework.command, self.patience)
        if message is None or message.deleted:
            rework.outcome = "no message"
            return
        found = {
            str(c.get("label")): str(c["custom_id"]) for row in message.components for c in row.get("components", [])
        }
        found[REMIX_MENU] = ""  # not a button: the message's menu
        found[ENVELOPE] = ""  # nor a reaction
        label = next((label for label in rework.labels if label in found), None)
        if not shows_an_image(message) or label is None:
            rework.outcome = "not delivered"
            return
        rework.label = f"{label} of a step" if rework.of_step else label
        for _ in range(6):  # the bot may be down: the press waits for the next one
            if label == ENVELOPE:
                away = not self.discord.connected
                try:
                    await self.discord.react(message.id, ENVELOPE, user_id=rework.command.user_id, seen=not away)
                except TimeoutError:
                    continue
                except AssertionError:  # deleted meanwhile
                    rework.outcome = "no message"
                    return
                rework.outcome = "reacted ✉️"
                self.envelopes.append((message.id, rework.command.user_id))
                self.envelopes_away += away
                return
            try:
                if label == REMIX_MENU:
                    click = await self.discord.message_command(REMIX_MENU, message.id, user_id=rework.command.user_id)
                else:
                    click = await self.discord.click(message.id, found[label], user_id=rework.command.user_id)
            except TimeoutError:
                continue
            except AssertionError:  # deleted meanwhile
                rework.outcome = "no message"
                return
            if label == MORE:
                await self._from_menu(rework, click)
                return
            if label in FORM_LABELS:
                await self._fill_in(rework, click)
            else:
                rework.press, rework.outcome = click, "pressed"
            self._then_remix(rework)
            return
        rework.outcome = "bot down"

    async def _from_menu(self, rework: Rework, click: FakeInteraction) -> None:
        """Press one of the More menu's buttons (a zoom out, or Use as reference with its form filled in), or pick
        from its list (a pan, Make square)."""
        with contextlib.suppress(TimeoutError):  # the bot may die before answering: then there is no menu
            await self.discord.wait_for(lambda: click.original_message_id is not None, timeout=15)
        menu = self.discord.messages.get(click.original_message_id or 0)
        buttons = [c for row in menu.components for c in row.get("components", [])] if menu is not None else []
        if menu is None or not buttons:
            rework.outcome = "no form"
            return
        chosen = self._random.choice(buttons)
        listed = [str(option["value"]) for option in chosen.get("options") or []]
        picked = [self._random.choice(listed)] if listed else None
        try:
            pressed = await self.discord.click(
                menu.id, str(chosen["custom_id"]), user_id=rework.command.user_id, values=picked
            )
        except TimeoutError:
            rework.outcome = "bot down"
            return
        as_reference = ":reference:" in str(chosen["custom_id"])
        step = "Use as reference" if as_reference else "Zoom out"
        rework.label = f"{MORE}: {picked[0].partition(':')[0] if picked else step}"
        if as_reference:
            await self._fill_in(rework, pressed)
            return
        rework.press, rework.outcome = pressed, "pressed"

    async def _fill_in(self, rework: Rework, click: FakeInteraction) -> None:
        """Type what to change into the Edit form's box (and pick a way to reframe it) and submit it, as a
        member would; the form may be submitted to a later process than the one that opened it."""
        with contextlib.suppress(TimeoutError):  # the bot may die before answering: then there is no form
            await self.discord.wait_for(lambda: click.acknowledged, timeout=15)
        forms = [c["data"] for c in click.callbacks if c["type"] == MODAL]
        if not forms:  # refused (a private note), or the bot died before answering
            rework.outcome = "no form"
            return
        fields = walk_components(list(forms[-1].get("components") or []))
        boxes = [c["custom_id"] for c in fields if c["type"] == 4]
        # A share with choices in braces: an edit (or a prompt) for each, one batch (cogs/prompt_choices.py).
        hat = "a {red, blue} hat" if self._random.random() < CHOSEN_WORDS else "a red hat"
        values: dict[str, str | list[str]] = {boxes[0]: f"give it {hat} ({prompt_of(rework.command)})"}
        # The form's Reframe choice (cogs/shape_field.py): kept as it is, a zoom out or a new shape, and then
        # half the time no words at all.
        for select in (c for c in fields if c["type"] == SELECT and c["custom_id"] not in REGION_SELECTS):
            frame = self._random.choice([str(o["value"]) for o in select.get("options") or []])
            values[select["custom_id"]] = [frame]
            # Only a Reframe choice may stand without words: the Model and Use it for lists (cogs/prompt_form.py,
            # cogs/reference_form.py) sit beside a prompt the form requires.
            if select["custom_id"] in FRAME_SELECTS and frame != "keep" and self._random.random() < 0.5:
                values[boxes[0]] = ""
        # The edit forms' Where (cogs/region_field.py): a part of the image, a share of the edits that keep its frame
        # and say what to change (with a reframe, or no words, the form refuses one).
        for select in (c for c in fields if c["type"] == SELECT and c["custom_id"] in REGION_SELECTS):
            kept = all(values.get(frame, ["keep"]) == ["keep"] for frame in FRAME_SELECTS) and values[boxes[0]]
            parts = [str(o["value"]) for o in select.get("options") or []][1:]
            chosen = [self._random.choice(parts)] if kept and self._random.random() < 0.3 else []
            values[select["custom_id"]] = chosen
        for _ in range(6):
            try:
                rework.press = await self.discord.submit_modal(click, values)
            except TimeoutError:
                continue
            rework.outcome = "pressed"
            return
        rework.outcome = "bot down"

    def lines(self, db: Path) -> list[str]:
        """How the presses went and how their jobs ended, for a report."""
        jobs = db_rows(db, "SELECT interaction_id, state, batch_index FROM jobs") if db.exists() else []
        by_interaction = jobs_by_interaction(jobs)
        made = Counter(r.outcome for r in self.reworks)
        labels = Counter(r.label for r in self.reworks if r.press is not None)
        ended = Counter(str(job["state"]) for press in self.presses for job in by_interaction.get(press.id, []))
        return [
            f"reworks: {len(self.reworks)} (a share of {self.share:.0%} of the commands): "
            + (", ".join(f"{o} {n}" for o, n in sorted(made.items())) or "none"),
            f"  {'':<16}      pressed: " + (", ".join(f"{label} {n}" for label, n in sorted(labels.items())) or "-"),
            f"  {'':<16}      their jobs ended: " + (", ".join(f"{s} {n}" for s, n in sorted(ended.items())) or "-"),
            f"  {'':<16}      ✉️ reacted {len(self.envelopes)} ({self.envelopes_away} while the bot was down; "
            f"{self.early_envelopes} on an image still being made, {self.early_away} of them while down): "
            f"{sum(1 for n in self._copies() if n)} copies with images came by DM, {self._owed_missing()} of those "
            "on images shown missing",
        ]

    def problems(self) -> list[str]:
        """A ✉️ answered with more than one copy: each is sent once, a copy Discord made but whose answer was lost
        included (its nonce), and one read back after a restart only where none was sent."""
        return [
            f"✉️ on message {message_id} by member {member}: {copies} copies"
            for (message_id, member), copies in zip(self.envelopes, self._copies(), strict=True)
            if copies > 1
        ]

    def _owed_missing(self) -> int:
        """The ✉️ still on a message that shows images at the end with no copy by DM (one Discord kept failing, or
        one the bot lost)."""
        missing = 0
        for (message_id, member), copies in zip(self.envelopes, self._copies(), strict=True):
            message = self.discord.messages.get(message_id)
            if copies or message is None or message.deleted or not shows_an_image(message):
                continue
            missing += member in message.reacted.get(ENVELOPE, [])
        return missing

    def _copies(self) -> list[int]:
        """How many DMs with the message's images each ✉️ brought (cogs/dm_reaction.py)."""
        return [
            sum(1 for dm in self.discord.dms_to(member) if dm.files and f"/{message_id})" in json.dumps(dm.embeds))
            for message_id, member in self.envelopes
        ]


async def settled_message(discord_fake: FakeDiscord, command: FakeInteraction, patience: float) -> FakeMessage | None:
    """The message a command brought, once it shows an image or an end (or is deleted, or the command was
    refused: a private answer); else, after ``patience`` seconds, as it is then (None if there is none)."""
    deadline = time.monotonic() + patience
    while True:
        message = discord_fake.messages.get(command.original_message_id or -1)
        if message is not None and (
            message.deleted
            or shows_an_image(message)
            or ends_without_an_image(message)
            or (message.ephemeral and not message.loading)
        ):
            return message
        if time.monotonic() >= deadline:
            return message
        await asyncio.sleep(0.5)


def shows_an_image(message: FakeMessage) -> bool:
    """The message shows a finished image (the "Done" embed and its attachment)."""
    embed = message.embeds[0] if message.embeds else {}
    return bool(message.attachments) and embed.get("color") == COLOUR_DONE.value


def ends_without_an_image(message: FakeMessage) -> bool:
    """The message shows an end with no image (failed, cancelled)."""
    embed = message.embeds[0] if message.embeds else {}
    return not message.loading and not message.attachments and embed.get("color") not in (None, COLOUR_PROGRESS.value)


def providers_not_told(
    db: Path, cancel_paths: Iterable[str], ready_at: Mapping[str, float], *, cancellable: Iterable[str] = ("seaart",)
) -> list[str]:
    """Cancelled jobs the provider had accepted but was never asked to stop, though its task was still
    running when the job ended (the operator pays for those); and cancels left half done. ``cancel_paths``:
    the paths of every cancel request the fake provider received; ``ready_at``: provider job id -> when
    its task finished (wall clock, as the bot's); ``cancellable``: the providers that have a cancel call
    (Kie and sinancode document none: their tasks run their course)."""
    columns = "id, state, provider, provider_job_id, finished_at, cancel_requested"
    rows = db_rows(db, f"SELECT {columns} FROM jobs") if db.exists() else []
    can_cancel = set(cancellable)
    asked = {part for path in cancel_paths for part in path.split("/")}
    found = []
    for row in rows:
        if row["cancel_requested"] is not None:
            found.append(f"job {row['id']}: {row['state']} with a cancel still to carry out or tell")
        task = row["provider_job_id"]
        if row["state"] != "cancelled" or task is None or task in asked or row["provider"] not in can_cancel:
            continue
        if ready_at.get(task, float("inf")) > (row["finished_at"] or 0.0):
            found.append(
                f"job {row['id']}: cancelled while its task {task} ran, and the provider never asked to stop it"
            )
    return found


def _taken_at(action: MemberAction) -> float:
    """When the bot took the click (wall clock): sent at ``at``, answered ``response_delay`` later."""
    click = action.click
    delay = click.response_delay if click is not None else None
    return (action.at or 0.0) + (delay or 0.0)


def _taken(action: MemberAction) -> bool:
    """The bot took this Cancel click: it answered by updating the message, not with "too late"."""
    click = action.click
    return click is not None and bool(click.callbacks) and click.callbacks[0].get("type") in _TAKES_THE_CLICK


# The bot's log lines start "2026-12-02 23:08:21,973 ERROR   logger: ..." (bot/logs.py).
LOG_ERROR = re.compile(r"^\S+ \S+ (ERROR|CRITICAL)\b")


def log_secrets(log: Path, secrets: Iterable[str]) -> list[str]:
    """The lines of the bot's log that carry one of ``secrets`` (its token, a provider's key), each shown
    with the secret masked. The bot's log filter (bot/logs.py) must hold on every path a soak's faults
    drive it down, at any level: run at DEBUG, its error paths log requests, answers and tracebacks."""
    if not log.exists():
        return []
    found: list[str] = []
    wanted = [secret for secret in secrets if secret]
    for line in log.read_text(errors="replace").splitlines():
        if any(secret in line for secret in wanted):
            for secret in wanted:
                line = line.replace(secret, "<SECRET>")
            found.append(line[:300])
    return found


def log_errors(log: Path) -> list[str]:
    """The error lines in the bot's log. Every fault the soak injects is one the bot is built to meet, so
    an error logged (an exception nothing handled, a job the runner could not settle) is a finding even
    when every invariant holds: a soak once held them all while a button's handler died on a lost
    answer (bench/soak.py --seed 97)."""
    if not log.exists():
        return []
    return [line[:300] for line in log.read_text(errors="replace").splitlines() if LOG_ERROR.match(line)]
