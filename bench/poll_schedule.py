"""How soon a member sees a finished image, and what the polling costs, under each poll schedule.

The REAL bot runs as its own process (`python -m bot run --config ...`, as an operator runs it) against
the fake Discord and a fake provider in time mode (bot/testing/providers/_base.py): each job takes a
provider time drawn uniformly from [--min, --max] seconds, however often it is polled. /imagine
commands go out through the fake Discord spread over --spread seconds; once every job has finished the
script reads, per variant:

  notice delay  files_at - ready_at: when the member's message got its image (bot/testing/discord/records.py)
                minus when the provider had it ready; p50 / p95 / p99 over delivered jobs
  polls/job     requests to the provider's status endpoint / jobs
  req/job       every API request (create, status, result) / jobs; file downloads not counted
  peak req/s    the most API requests the provider saw in one 1-s bin of wall time
  bot CPU s     user + system CPU of the bot process over the measured jobs (/proc/PID/stat)

Variants (--variants picks some; each runs on a fresh fake Discord, fake provider and database):
  a  learned schedule after --train finished jobs of the same kind (trained, then the bot restarts on
     the same database and the measured jobs run)
  b  learned schedule with no history (before enough samples it is today's backoff)
  c  fixed 1 s          d  fixed 5 s          e  today's backoff: 3 s growing x1.5 up to 15 s
  f  learned at --equal-dense (4.5) seconds, trained like (a): about the polls per job of (e)
  g  the request budget binding: --budget-jobs jobs sent over --budget-spread s, requests_per_second =
     --budget-rps, trained like (a); the busiest 1-s bin at the provider must not exceed the budget
  h  Kie with callbacks: the fake calls back, signed with an HMAC key; the bot listens on a free port
  i  learned from siblings: trained like (a) but every training job has one reference image (another
     kind), then the measured jobs (none) run: with no history of their own kind, what the bot does

Variants (a, b, f, g, i) set [jobs] poll_schedule, (g) [providers.seaart] requests_per_second, (h)
[callbacks]. A bot that does not know a key refuses the file with one line; that line is shown in the
variant's row and the other variants still run. Where the bot knows them, c, d and e name
poll_schedule = "backoff", and every variant but (g) gets requests_per_second = --rps (default 0, no
ceiling), so the schedules are compared unthrottled; on an older bot c, d and e run without them.

Run from the project root with the venv active: `python bench/poll_schedule.py` (about 12 minutes
on 2 cores with the defaults; `--quick` is a smoke run of a few seconds per variant; `--csv PATH`
adds one line per job).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BOT_TOKEN,
    HMAC_KEY,
    PROVIDER_KEY,
    BotProcess,
    BotSource,
    StartFailed,
    bench_folder,
    interactions_for,
    machine,
    peak_per_second,
    percentile,
    send_and_wait,
    start_bot,
    stop_bot,
)
from harness import fmt as _f
from pydantic import BaseModel

from bot.config import JobsSettings, ProviderSettings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeJob, FakeKie, FakeProviderServer, FakeSeaArt, Recorded, make_png
from bot.testing.providers.kie import FakeKieJob
from bot.testing.serving import free_port

# One job kind throughout, so the learned schedule's history applies to the measured jobs.
RESOLUTION = "1K"
OPTIONS = {"resolution": RESOLUTION}
VARIANT_KEYS = "abcdefghi"


@functools.cache
def _png() -> bytes:
    """One image for every job: a fresh 1K encode per job would load the machine the bot runs on."""
    return make_png(1024, 1024)


class BenchSeaArt(FakeSeaArt):
    def image_bytes(self, name: str) -> bytes:
        return _png()


class BenchKie(FakeKie):
    def image_bytes(self, name: str) -> bytes:
        return _png()


# ---- variants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    jobs_lines: tuple[str, ...] = ()  # under [jobs]
    trained: bool = False
    budget: bool = False
    kie_callbacks: bool = False
    train_with_reference: bool = False  # training jobs of another kind than the measured ones


def _variants(dense: float, equal_dense: float) -> dict[str, Variant]:
    backoff = ('poll_schedule = "backoff"',) if _knows("jobs", "poll_schedule") else ()
    learned = ('poll_schedule = "learned"',)
    return {
        v.key: v
        for v in (
            Variant("a", "learned, trained", (*learned, f"dense_poll_seconds = {dense:g}"), trained=True),
            Variant("b", "learned, no history", learned),
            Variant("c", "fixed 1 s", (*backoff, "poll_interval_seconds = 1.0", "max_poll_interval_seconds = 1.0")),
            Variant("d", "fixed 5 s", (*backoff, "poll_interval_seconds = 5.0", "max_poll_interval_seconds = 5.0")),
            Variant(
                "e",
                "backoff 3 s x1.5 to 15 s",
                (*backoff, "poll_interval_seconds = 3.0", "max_poll_interval_seconds = 15.0"),
            ),
            Variant(
                "f",
                f"learned, dense {equal_dense:g} s, trained",
                (*learned, f"dense_poll_seconds = {equal_dense:g}"),
                trained=True,
            ),
            Variant("g", "budget, learned, trained", learned, trained=True, budget=True),
            Variant("h", "Kie callbacks", (), kie_callbacks=True),
            Variant("i", "learned from siblings (1 ref)", learned, trained=True, train_with_reference=True),
        )
    }


def _knows(section: str, key: str) -> bool:
    """Whether this checkout's bot accepts ``[section] key`` (older ones refuse unknown keys)."""
    models: dict[str, type[BaseModel]] = {"jobs": JobsSettings, "providers": ProviderSettings}
    return key in models[section].model_fields


# ---- the bot as its own process (bench/harness.py) ------------------------------------------------


def _bot_env(kie_callbacks: bool) -> dict[str, str]:
    return BotSource().env({"KIE_WEBHOOK_HMAC_KEY": HMAC_KEY} if kie_callbacks else None)


def write_config(
    workdir: Path,
    discord_fake: FakeDiscord,
    base_url: str,
    variant: Variant,
    rps: float | None,
    callback_port: int | None,
) -> Path:
    provider = "kie" if variant.kie_callbacks else "seaart"
    budget = f"requests_per_second = {rps:g}" if rps is not None else ""
    lines = [
        'log_level = "INFO"',
        "[discord]",
        f'api_base_url = "{discord_fake.api_base_url}"',
        f'gateway_url = "{discord_fake.gateway_url}"',
        "[database]",
        f'path = "{workdir / "bot.sqlite3"}"',
        "[providers.seaart]",
        f"enabled = {'true' if provider == 'seaart' else 'false'}",
    ]
    if provider == "seaart":
        lines += [f'base_url = "{base_url}"', "request_timeout = 30.0", budget]
    else:
        lines += ["[providers.kie]", "enabled = true", f'base_url = "{base_url}"', "request_timeout = 30.0", budget]
        lines += ["[imagine]", f'default_provider = "{provider}"']
    lines += [
        "[jobs]",
        "concurrency = 64",
        "deadline_seconds = 3600",
        # Progress edits are Discord traffic, not provider traffic: keep them out of the figures.
        "progress_interval_seconds = 3600",
        *variant.jobs_lines,
        "[quotas]",
        "enabled = false",
    ]
    if callback_port is not None:
        lines += [
            "[callbacks]",
            "enabled = true",
            f'public_url = "http://127.0.0.1:{callback_port}"',
            'listen_host = "127.0.0.1"',
            f"listen_port = {callback_port}",
        ]
    config = workdir / "config.toml"
    config.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
    return config


# ---- figures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measured job, for --csv."""

    prompt: str
    created_at: float
    running_at: float | None
    ready_at: float | None
    files_at: float | None
    status_polls: int


@dataclass
class Row:
    variant: Variant
    sent: int = 0
    delivered: int = 0
    delays: list[float] = field(default_factory=list)
    status_polls: int = 0
    api_requests: int = 0
    peak_bin: int = 0
    peak_sliding: int = 0
    cpu: float = float("nan")
    wall: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return bool(self.delays)

    def p(self, pct: float) -> float:
        return percentile(self.delays, pct)

    @property
    def polls_per_job(self) -> float:
        return self.status_polls / self.sent if self.sent else float("nan")


def _is_api(fake: FakeProviderServer, request: Recorded) -> bool:
    """A provider API call: what a request budget counts (file downloads are not)."""
    return request.path.startswith("/api/" if isinstance(fake, FakeKie) else "/model/")


def _is_status(fake: FakeProviderServer, request: Recorded) -> bool:
    if isinstance(fake, FakeKie):
        return request.path == "/api/v1/jobs/recordInfo"
    return request.method == "GET" and request.path.endswith("/status")


def _jobs_by_prompt(fake: FakeProviderServer) -> dict[str, FakeJob | FakeKieJob]:
    """Prompt -> the task the fake made for it."""
    if isinstance(fake, FakeKie):
        return {str(j.fields.get("prompt")): j for j in fake.jobs.values()}
    assert isinstance(fake, FakeSeaArt)
    return {str(j.body.get("prompt")): j for j in fake.jobs.values()}


# ---- one variant ----------------------------------------------------------------------------------


@dataclass
class Plan:
    jobs: int
    spread: float
    low: float
    high: float
    train: int
    train_spread: float
    budget_jobs: int
    budget_spread: float
    budget_rps: float
    rps: float
    seed: int
    keep: bool


def _provider_time(plan: Plan, *, training: bool = False) -> Callable[[], float]:
    # Measured jobs get the same sequence of times in every variant; training jobs their own.
    draw = random.Random(f"{plan.seed}-training" if training else plan.seed)
    return lambda: draw.uniform(plan.low, plan.high)


async def run_variant(variant: Variant, plan: Plan) -> Row:
    row = Row(variant)
    jobs = plan.budget_jobs if variant.budget else plan.jobs
    spread = plan.budget_spread if variant.budget else plan.spread
    rps: float | None = plan.budget_rps if variant.budget else plan.rps
    if not variant.budget and not _knows("providers", "requests_per_second"):
        rps = None  # a bot without the budget has no key to set
    timeout = spread + plan.high + 300
    fake: BenchKie | BenchSeaArt
    if variant.kie_callbacks:
        fake = BenchKie(api_key=PROVIDER_KEY, provider_time=_provider_time(plan), webhook_hmac_key=HMAC_KEY)
    else:
        fake = BenchSeaArt(api_key=PROVIDER_KEY, provider_time=_provider_time(plan))
    print(f"({variant.key}) {variant.label}: {jobs} jobs over {spread:g} s ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    with bench_folder(f"poll-{variant.key}", plan.keep, f"({variant.key})") as workdir:
        async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, fake:
            port = free_port() if variant.kie_callbacks else None
            config = write_config(workdir, discord_fake, fake.base_url, variant, rps, port)
            db = workdir / "bot.sqlite3"
            env = _bot_env(variant.kie_callbacks)
            bot: BotProcess | None = None
            try:
                if variant.trained and plan.train:
                    fake.provider_time = _provider_time(plan, training=True)
                    bot = await start_bot(config, discord_fake, env)
                    training = [f"training job {i}: a ripe banana on a blue plate" for i in range(plan.train)]
                    options: dict[str, Any] = dict(OPTIONS)
                    if variant.train_with_reference:
                        options["image1"] = discord_fake.add_attachment(_png(), "reference.png", "image/png")
                    await send_and_wait(
                        discord_fake, bot, db, training, plan.train_spread, plan.train_spread + timeout, options
                    )
                    # A restart on the same database: what was learned must have been kept in SQLite.
                    await stop_bot(bot)
                    bot = None
                fake.provider_time = _provider_time(plan)
                bot = await start_bot(config, discord_fake, env)
                first_request = len(fake.requests)
                first_callback = len(fake.callbacks) if isinstance(fake, FakeKie) else 0
                cpu_before = bot.cpu_seconds()
                prompts = [f"measured job {i}: a ripe banana on a blue plate" for i in range(jobs)]
                row.sent = jobs
                try:
                    sent = await send_and_wait(discord_fake, bot, db, prompts, spread, timeout, OPTIONS)
                except (TimeoutError, RuntimeError) as exc:
                    row.error = str(exc)
                    sent = interactions_for(discord_fake, prompts)
                row.cpu = bot.cpu_seconds() - cpu_before
            except StartFailed as exc:
                row.error = f"bot did not start: {exc}"
                return row
            finally:
                if bot is not None:
                    await stop_bot(bot)
            _measure(row, fake, discord_fake, sent, first_request)
            if isinstance(fake, FakeKie):
                calls = fake.callbacks[first_callback:]
                answered = sum(1 for c in calls if c.status is not None and 200 <= c.status < 300)
                row.notes.append(f"callbacks sent {len(calls)}, answered 2xx {answered}")
    row.wall = time.monotonic() - began
    return row


def _measure(
    row: Row, fake: FakeProviderServer, discord_fake: FakeDiscord, sent: dict[str, FakeInteraction], first: int
) -> None:
    jobs = _jobs_by_prompt(fake)
    for prompt, interaction in sent.items():
        message = discord_fake.messages.get(interaction.original_message_id or -1)
        job = jobs.get(prompt)
        if job is None:
            continue
        files_at = message.files_at if message is not None else None
        row.samples.append(Sample(prompt, job.created_at, job.running_at, job.ready_at, files_at, job.polls))
        if files_at is None or job.ready_at is None:
            continue
        row.delivered += 1
        row.delays.append(files_at - job.ready_at)
    requests = [r for r in fake.requests[first:] if _is_api(fake, r)]
    row.api_requests = len(requests)
    row.status_polls = sum(1 for r in requests if _is_status(fake, r))
    row.peak_bin, row.peak_sliding = peak_per_second([r.at for r in requests])


# ---- report ---------------------------------------------------------------------------------------


def report(rows: list[Row], plan: Plan) -> None:
    print(f"machine: {machine()}")
    print(
        f"jobs: {plan.jobs} over {plan.spread:g} s (budget variant: {plan.budget_jobs} over {plan.budget_spread:g} s), "
        f"provider time uniform {plan.low:g}-{plan.high:g} s, seed {plan.seed}, training jobs: {plan.train}"
    )
    budget_note = f"{plan.rps:g}/s" if plan.rps else "none"
    print(f"requests_per_second outside (g): {budget_note} (where the bot has the key); resolution {RESOLUTION}")
    print()
    header = (
        f"{'':2}{'schedule':<28}{'jobs':>9}  {'notice p50':>10}{'p95':>7}{'p99':>7}  "
        f"{'polls/job':>9}{'req/job':>8}{'peak req/s':>11}{'bot CPU s':>10}{'wall s':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        v = row.variant
        if not row.ran and row.error:
            print(f"{v.key:<2}{v.label:<28}{row.error}")
            continue
        jobs = f"{row.delivered}/{row.sent}"
        print(
            f"{v.key:<2}{v.label:<28}{jobs:>9}  {_f(row.p(50)):>10}{_f(row.p(95)):>7}{_f(row.p(99)):>7}  "
            f"{_f(row.polls_per_job, 1):>9}{_f(row.api_requests / row.sent if row.sent else float('nan'), 1):>8}"
            f"{row.peak_bin:>11}{_f(row.cpu, 1):>10}{row.wall:>8.0f}"
        )
        for note in ([row.error] if row.error else []) + row.notes:
            print(f"{'':30}{note}")
    print()
    _targets({row.variant.key: row for row in rows}, plan)


def _targets(rows: dict[str, Row], plan: Plan) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print("targets (issue 9)                                         measured")
    a, e, f, g, h = (rows.get(k) for k in "aefgh")
    if a is not None and a.ran:
        ok = a.p(95) <= 2.0 and a.polls_per_job <= 16
        got = f"p95 {a.p(95):.2f} s, {a.polls_per_job:.1f} polls/job: {verdict(ok)}"
    else:
        got = "n/a: (a) did not run"
    print(f"  learned p95 <= 2.0 s with <= 16 polls/job              {got}")
    if f is not None and f.ran and e is not None and e.ran:
        ok = f.p(95) <= e.p(95) / 3
        got = (
            f"p95 {f.p(95):.2f} s vs today's {e.p(95):.2f} s (ratio {f.p(95) / e.p(95):.2f}); "
            f"polls/job {f.polls_per_job:.1f} vs {e.polls_per_job:.1f}: {verdict(ok)}"
        )
    else:
        got = "n/a: needs (e) and (f)"
    print(f"  learned at equal polls: p95 <= 1/3 of today's          {got}")
    if g is not None and g.ran:
        ok = g.peak_bin <= plan.budget_rps
        got = (
            f"max {g.peak_bin} in a 1-s bin (sliding 1-s window: {g.peak_sliding}) vs {plan.budget_rps:g}/s, "
            f"notice p95 {g.p(95):.2f} s: {verdict(ok)}"
        )
    else:
        got = "n/a: (g) did not run"
    print(f"  budget never exceeded                                  {got}")
    if h is not None and h.ran:
        ok = h.p(95) <= 0.5 and h.polls_per_job <= 1
        got = f"p50 {h.p(50):.2f} s, p95 {h.p(95):.2f} s, {h.polls_per_job:.1f} status requests/job: {verdict(ok)}"
    else:
        got = "n/a: (h) did not run"
    print(f"  Kie callbacks p95 <= 0.5 s with <= 1 status request/job {got}")


# ---- entry point ----------------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        # A smoke run: few, short jobs; enough training jobs to pass the learned schedule's threshold.
        return Plan(
            jobs=8, spread=2, low=1, high=3, train=25, train_spread=2,
            budget_jobs=60, budget_spread=2, budget_rps=20, rps=args.rps, seed=args.seed, keep=args.keep,
        )  # fmt: skip
    return Plan(
        jobs=args.jobs,
        spread=args.spread,
        low=args.min,
        high=args.max,
        train=args.train,
        train_spread=args.train_spread,
        budget_jobs=args.budget_jobs,
        budget_spread=args.budget_spread,
        budget_rps=args.budget_rps,
        rps=args.rps,
        seed=args.seed,
        keep=args.keep,
    )


async def main_async(args: argparse.Namespace) -> None:
    plan = _plan(args)
    variants = _variants(args.dense, args.equal_dense)
    wanted = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in variants]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {','.join(VARIANT_KEYS)}")
    rows = []
    for key in wanted:
        try:
            rows.append(await run_variant(variants[key], plan))
        except Exception as exc:  # one broken variant must not cost the others' figures
            row = Row(variants[key], error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
    report(rows, plan)
    if args.csv is not None:
        write_csv(rows, args.csv)
        print(f"\nper-job figures: {args.csv}")


def write_csv(rows: list[Row], path: Path) -> None:
    """One line per measured job: when it was made, ready and seen, and how often it was polled."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["variant", "prompt", "created_at", "provider_s", "ready_at", "files_at", "notice_s", "status_polls"]
        )
        for row in rows:
            for s in row.samples:
                provider_s = s.ready_at - s.running_at if s.ready_at is not None and s.running_at is not None else ""
                notice = s.files_at - s.ready_at if s.files_at is not None and s.ready_at is not None else ""
                writer.writerow(
                    [
                        row.variant.key,
                        s.prompt,
                        s.created_at,
                        provider_s,
                        s.ready_at,
                        s.files_at,
                        notice,
                        s.status_polls,
                    ]
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="measured jobs per variant (default 200)")
    parser.add_argument("--spread", type=float, default=20.0, help="seconds over which they are sent (20)")
    parser.add_argument("--min", type=float, default=15.0, help="shortest provider time, s (15)")
    parser.add_argument("--max", type=float, default=45.0, help="longest provider time, s (45)")
    parser.add_argument("--variants", default=",".join(VARIANT_KEYS), help="e.g. a,c,e (default: all)")
    parser.add_argument("--train", type=int, default=100, help="finished jobs the learned variants see first (100)")
    parser.add_argument("--train-spread", type=float, default=5.0, help="seconds over which those are sent (5)")
    parser.add_argument("--dense", type=float, default=1.5, help="dense_poll_seconds of variant (a) (1.5)")
    parser.add_argument(
        "--equal-dense",
        type=float,
        default=4.5,
        help="dense_poll_seconds of variant (f), chosen to poll about as often as today's backoff (4.5)",
    )
    parser.add_argument("--budget-jobs", type=int, default=1000, help="jobs of variant (g) (1000)")
    parser.add_argument("--budget-spread", type=float, default=10.0, help="seconds over which (g) sends (10)")
    parser.add_argument("--budget-rps", type=float, default=100.0, help="requests_per_second of (g) (100)")
    parser.add_argument(
        "--rps", type=float, default=0.0, help="requests_per_second for the other variants; 0 = no ceiling (0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the provider times (1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 jobs of 1-3 s per variant")
    parser.add_argument("--keep", action="store_true", help="keep each variant's config, log and database")
    parser.add_argument("--csv", type=Path, help="also write one line per measured job to this CSV file")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
