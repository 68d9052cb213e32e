"""A thousand jobs in flight: what each costs the bot (CPU, memory, SQLite) and how soon members see them.

The REAL bot runs as its own process (`python -m bot run --config ...`, bench/harness.py) against the
fake Discord and a fake SeaArt in time mode in this process: each job takes a provider time drawn
uniformly from [--min, --max] s however often it is polled, and its result is a --image PNG ("noise":
incompressible, about 3 MB at 1K, what a real result weighs; served from one cached copy). --jobs
/imagine commands go out through the fake Discord over --spread seconds; once every job has ended the
bot is stopped with SIGTERM (so it writes ``<database>.stats.json``) and the script prints:

  delivered / failed    job rows by final state
  CPU ms/job            utime + stime of the bot process (/proc/PID/stat) from the first command to the
                        last job's end, divided by the jobs; a re-encode count says whether any was paid for;
                        the note under the row splits it: the main thread's (the event loop's,
                        /proc/PID/task/PID/stat) and the other threads' (SQLite, image checks, file copies)
  peak RSS              VmHWM of the bot process (/proc/PID/status), read before it is stopped
  notice p50 / p95      FakeMessage.files_at - the fake job's ready_at: when the member saw the image minus
                        when the provider had it
  sched p95             the delay the poll schedule alone imposes: per job, from ready_at to the first
                        status request at or after it; the notice target is this plus 1 s
  ack p95               from the fake dispatching the interaction to the bot's first accepted callback
  SQL/job               SQLite statements (stats file, end minus start) / jobs
  polls/job             status requests at the provider / jobs

--baseline REV runs the same workload, in the same run, on another commit of this repository: a
`git worktree add` of REV, run with the same interpreter and that tree first on PYTHONPATH, given only
the config keys that version knows. Its row is printed under this checkout's.

--metrics-beside runs this checkout once more with ``[metrics]`` on, its /metrics scraped every 5 s as
Prometheus would (more often than the usual 15 s, so that its cost shows), in the same turns: what the
counters and the scrapes cost a job.

--resume N pre-fills the database with N submitted jobs whose tasks the fake already has (written with
the bot's own JobStore, in this process, before the bot starts; the tasks stay running for --resume-hold
seconds, and the rows have no Discord message, so the figure is the bot's own resume work), starts the
bot, sends --resume-commands /imagine commands over --spread seconds while it resumes, and prints
their ack figures and the time until every pre-filled job had its first step (its first status
request at the fake); then leaves the jobs in flight --resume-steady seconds and prints the bot's CPU
over that time (share of a core, status polls per second, CPU per poll).

Quotas are disabled; `requests_per_second` is --rps (default 0: no ceiling, so the bot's own costs are
measured rather than the provider budget's waits); everything else is the bot's default.
Run from the project root with the venv active: `python bench/load.py` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import (
    BOT_TOKEN,
    PROVIDER_KEY,
    BotProcess,
    BotSource,
    Config,
    StartFailed,
    base_config,
    bench_folder,
    fmt,
    interactions_for,
    machine,
    percentile,
    read_stats,
    render_config,
    send_and_wait,
    send_spread,
    start_bot,
    stop_bot,
    worktree,
)

from bot.models import GenerationRequest, JobHandle, JobState
from bot.store import Database
from bot.store.jobs import JobStore, NewJob
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeJob, FakeSeaArt
from bot.testing.providers._base import ImageStyle
from bot.testing.serving import free_port

MODEL = "nano_banana_2"
# The fake Discord keeps this much of each upload: a thousand 3 MB images need not stay in memory.
KEEP_UPLOAD_BYTES = 4096

# The targets.
CPU_MS_TARGET = 5.0
RSS_MB_TARGET = 250.0
NOTICE_SLACK_S = 1.0
ACK_P95_TARGET = 1.0
# How often --metrics-beside scrapes the bot's /metrics: Prometheus' common 15 s, made tighter so its cost shows.
SCRAPE_SECONDS = 5.0


@dataclass(frozen=True)
class Plan:
    jobs: int
    spread: float
    low: float
    high: float
    image: ImageStyle
    resolution: str
    concurrency: int
    rps: float
    seed: int
    keep: bool
    timeout: float


@dataclass
class LoadRow:
    label: str
    sent: int = 0
    states: dict[str, int] = field(default_factory=dict)
    cpu: float = float("nan")
    peak_rss: float = float("nan")
    notice: list[float] = field(default_factory=list)
    schedule: list[float] = field(default_factory=list)
    # The notice delay in its parts, per delivered job (NOTICE_STAGES): where a slow tail comes from.
    stages: dict[str, list[float]] = field(default_factory=dict)
    acks: list[float] = field(default_factory=list)
    unacknowledged: int = 0
    statements: float | None = None
    # The cycle collector over the measured jobs, from the stats file (bot/gcwatch.py): seconds, full
    # passes; and the objects exempted at start-up. None where the bot does not write them.
    gc: tuple[float, float, float] | None = None
    status_polls: int = 0
    discord_calls: Counter[str] = field(default_factory=Counter)  # REST requests by method and route shape
    reencoded: int = 0
    wall: float = 0.0
    harness_cpu: float = float("nan")  # this process (the fakes) over the same window
    cpu_system: float = float("nan")  # the part of ``cpu`` spent in the kernel (socket I/O, page faults)
    cpu_loop: float = float("nan")  # the part of ``cpu`` spent on the main thread (the event loop's)
    error: str | None = None
    dropped_keys: list[str] = field(default_factory=list)
    scrapes: int = 0  # with [metrics] on: the scrapes answered, and those that failed
    scrapes_failed: int = 0

    @property
    def delivered(self) -> int:
        return self.states.get(str(JobState.DELIVERED), 0)

    @property
    def failed(self) -> int:
        return sum(n for state, n in self.states.items() if state != str(JobState.DELIVERED))

    def per_job(self, value: float | None) -> float:
        return value / self.sent if value is not None and self.sent else float("nan")


def provider_times(plan: Plan) -> Callable[[], float]:
    # The same seeded sequence for every bot in a run, so the rows compare like with like.
    draw = random.Random(plan.seed)
    return lambda: draw.uniform(plan.low, plan.high)


def write_config(
    workdir: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, plan: Plan, source: BotSource, metrics_port: int = 0
) -> tuple[Path, list[str]]:
    config: Config = base_config(discord_fake, workdir)
    config["providers.seaart"] = {
        "enabled": True,
        "base_url": seaart.base_url,
        "request_timeout": 30.0,
        "requests_per_second": plan.rps,
    }
    config["jobs"] = {"concurrency": plan.concurrency}
    config["quotas"] = {"enabled": False}
    if source.metrics:
        config["metrics"] = {"enabled": True, "listen_port": metrics_port}
    text, dropped = render_config(config, source)
    path = workdir / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path, dropped


async def stats_at_start(db: Path, bot: BotProcess, timeout: float = 15) -> dict[str, float] | None:
    """The counters the bot wrote on its first loop pass: the start-up's statements, to subtract."""
    deadline = time.monotonic() + timeout
    while bot.alive() and time.monotonic() < deadline:
        stats = read_stats(db)
        if stats is not None:
            return stats
        await asyncio.sleep(0.1)
    return None


def job_states(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        return {str(s): int(n) for s, n in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}


# From the image existing at the provider to the member seeing it: the status poll that finds it done,
# the request for its result, the start of its download (when the delivery lane took the job), and the
# download, check and upload to Discord (FakeMessage.files_at).
NOTICE_STAGES = ("unseen", "to result", "to download", "download+upload")


def notice_stages(
    job: FakeJob, polls: list[float], results: list[float], downloads: list[float], files_at: float
) -> tuple[float, ...] | None:
    """The notice delay of one delivered job split into NOTICE_STAGES, from the arrival times of its
    status polls, result requests and image downloads (None if a step is not on record)."""
    if job.ready_at is None:
        return None
    marks = [job.ready_at]
    for times in (polls, results, downloads):
        after = [at for at in times if at >= marks[-1]]
        if not after:
            return None
        marks.append(min(after))
    marks.append(files_at)
    return tuple(b - a for a, b in itertools.pairwise(marks))


def task_times(seaart: FakeSeaArt, endpoint: str) -> dict[str, list[float]]:
    """Task id -> arrival times of its GET requests to ``endpoint`` ("status", "response"), in order."""
    times: dict[str, list[float]] = {}
    for request in seaart.requests:
        if request.method == "GET" and request.path.endswith(f"/{endpoint}"):
            times.setdefault(request.path.rsplit("/", 2)[-2], []).append(request.at)
    return times


def download_times(seaart: FakeSeaArt) -> dict[str, list[float]]:
    """Image name -> arrival times of its downloads (/files/{name}.png)."""
    times: dict[str, list[float]] = {}
    for request in seaart.requests:
        if request.method == "GET" and request.path.startswith("/files/"):
            times.setdefault(request.path.removeprefix("/files/").removesuffix(".png"), []).append(request.at)
    return times


def status_times(seaart: FakeSeaArt) -> dict[str, list[float]]:
    """Task id -> arrival times of its status requests, in order."""
    return task_times(seaart, "status")


def schedule_delay(job: FakeJob, polls: list[float]) -> float | None:
    """From ready_at to the first status request at or after it: what the schedule alone costs."""
    if job.ready_at is None:
        return None
    after = [at for at in polls if at >= job.ready_at]
    return min(after) - job.ready_at if after else None


# ---- the load run ---------------------------------------------------------------------------------


async def run_load(source: BotSource, plan: Plan) -> LoadRow:
    row = LoadRow(source.label, sent=plan.jobs)
    print(f"[{source.label}] {plan.jobs} jobs over {plan.spread:g} s ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    seaart = FakeSeaArt(api_key=PROVIDER_KEY, provider_time=provider_times(plan), images=plan.image)
    with bench_folder("load-run", plan.keep) as workdir:
        async with FakeDiscord(bot_token=BOT_TOKEN, keep_upload_bytes=KEEP_UPLOAD_BYTES) as discord_fake, seaart:
            metrics_port = free_port()
            config, row.dropped_keys = write_config(workdir, discord_fake, seaart, plan, source, metrics_port)
            db = workdir / "bot.sqlite3"
            prompts = [f"load job {i}: a ripe banana on a blue plate" for i in range(plan.jobs)]
            bot: BotProcess | None = None
            start_stats: dict[str, float] | None = None
            try:
                bot = await start_bot(config, discord_fake, source.env())
                start_stats = await stats_at_start(db, bot) if source.has_stats() else None
                (user_before, system_before), harness_before = bot.cpu_times(), time.process_time()
                loop_before = bot.loop_cpu_seconds()
                scraping = asyncio.create_task(scrape_metrics(metrics_port, row)) if source.metrics else None
                try:
                    sent = await send_and_wait(
                        discord_fake,
                        bot,
                        db,
                        prompts,
                        plan.spread,
                        plan.spread + plan.high + plan.timeout,
                        {"resolution": plan.resolution},
                    )
                except (TimeoutError, RuntimeError) as exc:
                    row.error = str(exc)
                    sent = interactions_for(discord_fake, prompts)
                finally:
                    if scraping is not None:
                        scraping.cancel()
                        await asyncio.gather(scraping, return_exceptions=True)
                user_after, system_after = bot.cpu_times()
                row.cpu = user_after + system_after - user_before - system_before
                row.cpu_system = system_after - system_before
                row.cpu_loop = bot.loop_cpu_seconds() - loop_before
                row.harness_cpu = time.process_time() - harness_before
                row.peak_rss = bot.peak_rss_mb()
            except StartFailed as exc:
                row.error = f"bot did not start: {exc}"
                return row
            finally:
                if bot is not None:
                    await stop_bot(bot)
            end_stats = read_stats(db)
            if start_stats is not None and end_stats is not None:
                row.statements = end_stats["sqlite_statements"] - start_stats["sqlite_statements"]
                if "gc_seconds" in end_stats and "gc_seconds" in start_stats:
                    row.gc = (
                        end_stats["gc_seconds"] - start_stats["gc_seconds"],
                        end_stats["gc_full_passes"] - start_stats["gc_full_passes"],
                        end_stats["gc_frozen"],
                    )
            row.states = job_states(db)
            _measure(row, seaart, discord_fake, sent)
    row.wall = time.monotonic() - began
    return row


async def scrape_metrics(port: int, row: LoadRow) -> None:
    """Prometheus' part: ``GET /metrics`` every ``SCRAPE_SECONDS`` while the jobs run, counted in ``row``."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            await asyncio.sleep(SCRAPE_SECONDS)
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/metrics")
            except httpx.HTTPError:
                row.scrapes_failed += 1
                continue
            if answer.status_code == 200 and "bananacord_jobs_ended" in answer.text:
                row.scrapes += 1
            else:
                row.scrapes_failed += 1


def _measure(row: LoadRow, seaart: FakeSeaArt, discord_fake: FakeDiscord, sent: dict[str, FakeInteraction]) -> None:
    jobs = {str(j.body.get("prompt")): j for j in seaart.jobs.values()}
    polls = status_times(seaart)
    results, downloads = task_times(seaart, "response"), download_times(seaart)
    row.status_polls = sum(len(times) for times in polls.values())
    # Snowflakes and tokens out of the path, so requests group by route ("PATCH /webhooks/#/#/messages/#").
    row.discord_calls.update(
        f"{r.method} {re.sub(r'/[0-9]+|/[A-Za-z0-9_-]{40,}', '/#', r.path)}" for r in discord_fake.requests
    )
    for prompt, interaction in sent.items():
        if interaction.response_delay is None:
            row.unacknowledged += 1
        else:
            row.acks.append(interaction.response_delay)
        job = jobs.get(prompt)
        if job is None:
            continue
        delay = schedule_delay(job, polls.get(job.request_id, []))
        if delay is not None:
            row.schedule.append(delay)
        message = discord_fake.messages.get(interaction.original_message_id or -1)
        if message is None or message.files_at is None or job.ready_at is None:
            continue
        row.notice.append(message.files_at - job.ready_at)
        parts = notice_stages(
            job,
            polls.get(job.request_id, []),
            results.get(job.request_id, []),
            downloads.get(job.image_names[0], []) if job.image_names else [],
            message.files_at,
        )
        for stage, seconds in zip(NOTICE_STAGES, parts or (), strict=False):
            row.stages.setdefault(stage, []).append(seconds)
        served = len(seaart.image_bytes(job.image_names[0])) if job.image_names else None
        if served is not None and message.attachments and message.attachments[0].get("size") != served:
            row.reencoded += 1


# ---- report ---------------------------------------------------------------------------------------


def report(rows: list[LoadRow], plan: Plan) -> None:
    print(f"machine: {machine()}")
    print(
        f"workload: {plan.jobs} jobs over {plan.spread:g} s, provider time uniform {plan.low:g}-{plan.high:g} s "
        f"(seed {plan.seed}), {plan.resolution} {plan.image} PNG results; [jobs] concurrency = {plan.concurrency}, "
        f"requests_per_second = {plan.rps:g}, quotas off, other settings at each bot's defaults"
    )
    print()
    header = (
        f"{'bot':<22}{'delivered':>10}{'failed':>7}{'CPU ms/job':>11}{'peak RSS MB':>12}"
        f"{'notice p50':>11}{'p95':>7}{'sched p95':>10}{'ack p95':>8}{'SQL/job':>8}{'polls/job':>10}{'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.error and not row.states:
            print(f"{row.label:<22}{row.error}")
            continue
        print(
            f"{row.label:<22}{row.delivered:>10}{row.failed:>7}{fmt(1000 * row.per_job(row.cpu)):>11}"
            f"{fmt(row.peak_rss, 0):>12}{fmt(percentile(row.notice, 50)):>11}{fmt(percentile(row.notice, 95)):>7}"
            f"{fmt(percentile(row.schedule, 95)):>10}{fmt(percentile(row.acks, 95)):>8}"
            f"{fmt(row.per_job(row.statements), 1):>8}{fmt(row.per_job(row.status_polls), 1):>10}{row.wall:>7.0f}"
        )
        notes = [row.error] if row.error else []
        # The fakes share the machine with the bot: if they were busy, the delays include their queueing.
        notes.append(
            f"bot CPU {row.cpu:.1f} s ({row.cpu - row.cpu_system:.1f} user, {row.cpu_system:.1f} system;"
            f" {row.cpu_loop:.1f} on the event loop's thread, {row.cpu - row.cpu_loop:.1f} on other threads);"
            f" the fakes (this process) used {row.harness_cpu:.1f} s CPU meanwhile"
        )
        if row.gc is not None:
            seconds, passes, frozen = row.gc
            notes.append(
                f"cycle collector {seconds:.2f} s of it ({passes:.0f} full passes);"
                f" {frozen:.0f} start-up objects exempt"
            )
        if row.stages:
            parts = ", ".join(
                f"{stage} {fmt(percentile(row.stages[stage], 50))} / {fmt(percentile(row.stages[stage], 95))}"
                for stage in NOTICE_STAGES
                if stage in row.stages
            )
            notes.append(f"notice p50 / p95 by stage (s): {parts}")
        if row.discord_calls:
            calls = sum(row.discord_calls.values())
            top = ", ".join(f"{route} {row.per_job(n):.1f}" for route, n in row.discord_calls.most_common(4))
            notes.append(f"Discord REST calls/job {row.per_job(calls):.1f}: {top}")
        if row.scrapes or row.scrapes_failed:
            notes.append(
                f"[metrics] on: scraped every {SCRAPE_SECONDS:g} s, {row.scrapes} answered, {row.scrapes_failed} failed"
            )
        if row.unacknowledged:
            notes.append(f"{row.unacknowledged} interaction(s) never acknowledged")
        if row.reencoded:
            notes.append(f"{row.reencoded} image(s) re-encoded (their CPU is in the figure)")
        if row.statements is None:
            notes.append("SQL/job: this bot writes no <database>.stats.json")
        if row.dropped_keys:
            notes.append(f"config keys this bot does not know, left out: {', '.join(row.dropped_keys)}")
        others = {s: n for s, n in row.states.items() if s != str(JobState.DELIVERED)}
        if others:
            notes.append("not delivered: " + ", ".join(f"{s} {n}" for s, n in sorted(others.items())))
        for note in notes:
            print(f"{'':22}{note}")
    print()
    print(f"{'targets (issue 10)':<48}" + "".join(f"{row.label:<34}" for row in rows))
    lines: list[tuple[str, Callable[[LoadRow], str]]] = [
        (f"bot CPU <= {CPU_MS_TARGET:g} ms/job (excluding re-encodes)", _cpu_verdict),
        (f"peak RSS <= {RSS_MB_TARGET:g} MB", _rss_verdict),
        (f"notice p95 <= schedule's p95 + {NOTICE_SLACK_S:g} s", _notice_verdict),
        (f"ack p95 <= {ACK_P95_TARGET:g} s", _ack_verdict),
    ]
    for name, verdict in lines:
        print(f"  {name:<46}" + "".join(f"{verdict(row):<34}" for row in rows))


def report_medians(rows: list[LoadRow], labels: list[str]) -> None:
    """Per bot, the median of its turns, and each turn's CPU per job as a ratio to the first bot's."""
    print()
    print("medians over the turns (CPU ms/job, SQL/job; ratio: this bot / the first, turn by turn)")
    first = [row for row in rows if row.label.startswith(f"{labels[0]} #")]
    for label in labels:
        mine = [row for row in rows if row.label.startswith(f"{label} #")]
        cpu = [1000 * row.per_job(row.cpu) for row in mine]
        ratios = [b / a for a, b in zip((1000 * r.per_job(r.cpu) for r in first), cpu, strict=True) if a > 0]
        print(
            f"  {label:<22} CPU {statistics.median(cpu):.2f} ms/job (runs: {', '.join(f'{c:.2f}' for c in cpu)})"
            f"  SQL {statistics.median([row.per_job(row.statements) for row in mine]):.1f}/job"
            f"  ratio {statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
        )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _cpu_verdict(row: LoadRow) -> str:
    ms = 1000 * row.per_job(row.cpu)
    if ms != ms:
        return "n/a"
    note = f" ({row.reencoded} re-encodes)" if row.reencoded else ""
    return f"{ms:.2f} ms{note}: {_verdict(ms <= CPU_MS_TARGET)}"


def _rss_verdict(row: LoadRow) -> str:
    if row.peak_rss != row.peak_rss:
        return "n/a"
    return f"{row.peak_rss:.0f} MB: {_verdict(row.peak_rss <= RSS_MB_TARGET)}"


def _notice_verdict(row: LoadRow) -> str:
    notice, schedule = percentile(row.notice, 95), percentile(row.schedule, 95)
    if notice != notice or schedule != schedule:
        return "n/a"
    return f"{notice:.2f} vs {schedule:.2f}+{NOTICE_SLACK_S:g} s: {_verdict(notice <= schedule + NOTICE_SLACK_S)}"


def _ack_verdict(row: LoadRow) -> str:
    ack = percentile(row.acks, 95)
    if ack != ack:
        return "n/a"
    return f"{ack:.3f} s: {_verdict(ack <= ACK_P95_TARGET and not row.unacknowledged)}"


# ---- resume ---------------------------------------------------------------------------------------


@dataclass
class ResumeRow:
    label: str
    prefilled: int = 0
    prefill_seconds: float = 0.0
    commands: int = 0
    first_steps: list[float] = field(default_factory=list)  # s from spawn, per pre-filled task
    ready_after: float = float("nan")  # s from spawn to the gateway being ready
    all_stepped_after: float | None = None  # s from spawn until every pre-filled job had a status request
    acks: list[float] = field(default_factory=list)
    unacknowledged: int = 0
    cpu: float = float("nan")
    peak_rss: float = float("nan")
    statements: float | None = None
    steady_seconds: float = 0.0  # how long the jobs were then left in flight, measured
    steady_cpu: float = float("nan")  # bot CPU s over that time
    steady_polls: int = 0  # status requests over that time
    error: str | None = None


async def prefill(db_path: Path, seaart: FakeSeaArt, discord_fake: FakeDiscord, count: int, hold: float) -> list[str]:
    """``count`` submitted jobs, written with the bot's own JobStore; their tasks made at the fake.
    Returns the task ids."""
    now = time.time()
    times, seaart.provider_time = seaart.provider_time, lambda: hold
    db = Database(db_path)
    await db.connect()
    store = JobStore(db)
    task_ids = []
    try:
        for index in range(count):
            prompt = f"resumed job {index}: a ripe banana on a blue plate"
            task = seaart.add_task({"prompt": prompt, "resolution": "1K"}, model=MODEL)
            job = await store.create(
                NewJob(
                    provider="seaart",
                    model=MODEL,
                    request=GenerationRequest(model=MODEL, prompt=prompt, resolution="1K"),
                    guild_id=discord_fake.guild_id,
                    channel_id=discord_fake.channel_id,
                    user_id=discord_fake.member_id,
                    application_id=discord_fake.application_id,
                ),
                now=now,
                deadline_seconds=hold + 600,
            )
            handle = JobHandle(
                provider="seaart", model=MODEL, provider_job_id=task.request_id, extra=seaart.task_urls(task)
            )
            # As the runner leaves a job after its create was answered (bot/job_submit.py record_created).
            await store.update(
                job,
                now=now,
                state=JobState.SUBMITTED,
                handle=handle,
                provider_job_id=task.request_id,
                submit_started_at=now,
                started_at=now,
                next_poll_at=now,
                clock_started_at=now,
            )
            task_ids.append(task.request_id)
    finally:
        await db.close()
        seaart.provider_time = times
    return task_ids


async def run_resume(source: BotSource, plan: Plan, count: int, commands: int, hold: float, steady: float) -> ResumeRow:
    row = ResumeRow(source.label, prefilled=count, commands=commands)
    seaart = FakeSeaArt(api_key=PROVIDER_KEY, provider_time=provider_times(plan), images=plan.image)
    with bench_folder("load-resume", plan.keep) as workdir:
        async with FakeDiscord(bot_token=BOT_TOKEN, keep_upload_bytes=KEEP_UPLOAD_BYTES) as discord_fake, seaart:
            config, _ = write_config(workdir, discord_fake, seaart, plan, source)
            db = workdir / "bot.sqlite3"
            print(f"[{source.label}] writing {count} submitted jobs ...", file=sys.stderr, flush=True)
            began = time.monotonic()
            task_ids = await prefill(db, seaart, discord_fake, count, hold)
            row.prefill_seconds = time.monotonic() - began
            tasks = [seaart.jobs[t] for t in task_ids]
            print(f"[{source.label}] resuming, {commands} /imagine meanwhile ...", file=sys.stderr, flush=True)
            bot: BotProcess | None = None
            prompts = [f"during resume {i}: a ripe banana on a blue plate" for i in range(commands)]
            try:
                bot = await start_bot(config, discord_fake, source.env())
                row.ready_after = time.time() - bot.started_at
                sending = asyncio.create_task(send_spread(discord_fake, prompts, plan.spread, {"resolution": "1K"}))
                running = bot
                with contextlib.suppress(TimeoutError):
                    await discord_fake.wait_for(
                        lambda: all(t.polls for t in tasks) or not running.alive(), timeout=plan.timeout + count / 50
                    )
                sent = await sending
                with contextlib.suppress(TimeoutError):
                    await discord_fake.wait_for(lambda: all(i.acknowledged for i in sent.values()), timeout=30)
                row.cpu = bot.cpu_seconds()  # since spawn: loading the unfinished jobs is part of resuming
                if steady > 0 and bot.alive():
                    # Then the jobs simply stay in flight: what keeping them costs, per second.
                    before_cpu, before_polls = bot.cpu_seconds(), len(seaart.requests)
                    await asyncio.sleep(steady)
                    row.steady_seconds = steady
                    row.steady_cpu = bot.cpu_seconds() - before_cpu
                    row.steady_polls = sum(
                        1 for r in seaart.requests[before_polls:] if r.method == "GET" and r.path.endswith("/status")
                    )
                row.peak_rss = bot.peak_rss_mb()
                if not bot.alive():
                    row.error = f"bot exited: {bot.last_line()}"
            except StartFailed as exc:
                row.error = f"bot did not start: {exc}"
                return row
            finally:
                if bot is not None:
                    await stop_bot(bot)
            # From start to stop: the resume's work, the commands' and the start-up's.
            end_stats = read_stats(db)
            if end_stats is not None:
                row.statements = end_stats["sqlite_statements"]
            polls = status_times(seaart)
            row.first_steps = [min(polls[t]) - bot.started_at for t in task_ids if polls.get(t)]
            if len(row.first_steps) == count:
                row.all_stepped_after = max(row.first_steps)
            for interaction in sent.values():
                if interaction.response_delay is None:
                    row.unacknowledged += 1
                else:
                    row.acks.append(interaction.response_delay)
    return row


def report_resume(row: ResumeRow, plan: Plan, hold: float) -> None:
    print(f"machine: {machine()}")
    print(
        f"resume: {row.prefilled} submitted jobs pre-filled with JobStore in {row.prefill_seconds:.1f} s (tasks "
        f"running at the fake for {hold:g} s, no Discord message); {row.commands} /imagine over {plan.spread:g} s "
        f"from the moment the bot is ready; [jobs] concurrency = {plan.concurrency}, "
        f"requests_per_second = {plan.rps:g}"
    )
    if row.error:
        print(f"  error: {row.error}")
    stepped = len(row.first_steps)
    if row.all_stepped_after is not None:
        after = row.all_stepped_after
        when = f"{after:.1f} s after spawn ({after - row.ready_after:.1f} s after ready)"
    else:
        when = f"NOT REACHED: {stepped}/{row.prefilled} stepped"
    print(f"  bot ready (gateway) after spawn:              {row.ready_after:.1f} s")
    print(f"  every pre-filled job had its first step:      {when}")
    print(
        f"  first steps, s after spawn:                   p50 {fmt(percentile(row.first_steps, 50), 1)}, "
        f"p95 {fmt(percentile(row.first_steps, 95), 1)}"
    )
    ack = percentile(row.acks, 95)
    verdict = "n/a" if ack != ack else _verdict(ack <= ACK_P95_TARGET and not row.unacknowledged)
    print(
        f"  ack during the resume:                        p50 {fmt(percentile(row.acks, 50), 3)} s, "
        f"p95 {fmt(ack, 3)} s, max {fmt(max(row.acks, default=float('nan')), 3)} s "
        f"({len(row.acks)}/{row.commands} acknowledged)   target p95 <= {ACK_P95_TARGET:g} s: {verdict}"
    )
    print(f"  bot CPU from spawn until all were stepped:    {fmt(row.cpu, 1)} s; peak RSS {fmt(row.peak_rss, 0)} MB")
    if row.steady_seconds:
        per_poll = 1000 * row.steady_cpu / max(1, row.steady_polls)
        print(
            f"  then {row.prefilled} jobs in flight for {row.steady_seconds:g} s:   bot CPU "
            f"{100 * row.steady_cpu / row.steady_seconds:.0f}% of a core, {row.steady_polls / row.steady_seconds:.0f} "
            f"status polls/s, {per_poll:.2f} ms CPU per poll"
        )
    if row.statements is not None:
        print(
            f"  SQLite statements, start to stop:             {row.statements:.0f} "
            f"({row.statements / max(1, row.prefilled):.1f} per pre-filled job)"
        )


# ---- entry point ----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    plan = Plan(
        jobs=args.jobs,
        spread=args.spread,
        low=args.min,
        high=args.max,
        image=args.image,
        resolution=args.resolution,
        concurrency=args.concurrency,
        rps=args.rps,
        seed=args.seed,
        keep=args.keep,
        timeout=args.timeout,
    )
    current = BotSource()
    if args.resume:
        row = await run_resume(current, plan, args.resume, args.resume_commands, args.resume_hold, args.resume_steady)
        report_resume(row, plan, args.resume_hold)
        return 0
    with contextlib.ExitStack() as stack:
        sources = [current]
        if args.baseline:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-baseline-"))
            sources.append(stack.enter_context(worktree(args.baseline, Path(tmp) / "tree")))
        if args.metrics_beside:
            sources.append(BotSource(label="with [metrics]", metrics=True))
        rows = []
        # Taken in turns (A B A B ...), so a stretch when the shared machine is slow falls on both bots.
        for turn in range(1, args.repeat + 1):
            for source in sources:
                row = await run_load(source, plan)
                if args.repeat > 1:
                    row.label = f"{row.label} #{turn}"
                rows.append(row)
    report(rows, plan)
    if args.repeat > 1:
        report_medians(rows, [source.label for source in sources])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs (default 1000)")
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which they are sent (10)")
    parser.add_argument("--min", type=float, default=30.0, help="shortest provider time, s (30)")
    parser.add_argument("--max", type=float, default=60.0, help="longest provider time, s (60)")
    parser.add_argument("--image", choices=("noise", "gradient"), default="noise", help="result images (noise)")
    parser.add_argument("--resolution", default="1K", help="resolution asked for, hence the image size (1K)")
    parser.add_argument("--concurrency", type=int, default=64, help="[jobs] concurrency (64)")
    parser.add_argument("--rps", type=float, default=0.0, help="[providers.seaart] requests_per_second; 0 = none")
    parser.add_argument("--seed", type=int, default=1, help="seed of the provider times (1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="extra seconds for jobs to end (300)")
    parser.add_argument("--baseline", metavar="REV", help="also run this commit's bot on the same workload")
    parser.add_argument(
        "--metrics-beside",
        action="store_true",
        help=f"also run this checkout with [metrics] on, scraped every {SCRAPE_SECONDS:g} s",
    )
    parser.add_argument("--resume", type=int, metavar="N", default=0, help="resume N pre-filled jobs instead")
    parser.add_argument("--resume-commands", type=int, default=100, help="/imagine sent during the resume (100)")
    parser.add_argument("--resume-hold", type=float, default=3600.0, help="how long pre-filled tasks run (3600 s)")
    parser.add_argument(
        "--resume-steady",
        type=float,
        default=30.0,
        metavar="S",
        help="then leave the jobs in flight S seconds and print the CPU that costs (30; 0: skip)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's config, log and database")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="run each bot N times, in turns, and print medians (1)"
    )
    args = parser.parse_args()
    if args.resume and args.metrics_beside:
        parser.error("--metrics-beside compares load runs, not a resume")
    if args.resume and args.baseline:
        parser.error("--baseline compares load runs; run --resume on each checkout instead")
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
