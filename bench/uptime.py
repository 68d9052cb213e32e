"""Days of use in minutes: does the REAL bot's memory settle, or grow with every job, member and message it has seen?

The load benchmark (bench/load.py) measures one burst. A bot that runs for weeks must also give back what each job,
member and message cost it: a cache keyed by message, member or job that is never emptied grows for as long as the
bot runs, and shows only after days. This runs the bot as its own process (`python -m bot run`, bench/harness.py)
against the fake Discord and a fake SeaArt, in --waves waves. Each wave brings --members members the bot has never
seen, who send --jobs /imagine between them over --spread s (provider time --min..--max s, small --image results),
then work on what came back as members do: a third of the images get a ⭐ from another new member, a tenth a ✉️ (a
copy by DM), a tenth a **Vary (Subtle)** press (a job more, in a message more). Once a wave's jobs are over the bot is
left idle --settle s, and its resident memory (VmRSS in /proc/PID/status) is read.

Python keeps memory it has freed for later use, so the first waves raise the RSS as the bot's pools fill; a bot
that gives back what it used levels off, and one that keeps something per job, member or message climbs by the same
amount at every wave. The script prints each wave's RSS, its change, and the CPU the wave took, then the growth per
1,000 jobs over the later half of the waves (after the pools filled) beside the first half's.

Run from the project root with the venv active: `python bench/uptime.py` (about 3 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    BOT_TOKEN,
    PROVIDER_KEY,
    BotProcess,
    BotSource,
    Config,
    StartFailed,
    base_config,
    bench_folder,
    finished_jobs,
    fmt,
    machine,
    render_config,
    start_bot,
    stop_bot,
    wait_finished,
)

from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from bot.testing.providers._base import ImageStyle

# Each wave's members get ids of their own, far from the fake's own members.
FIRST_MEMBER = 900_000_000_000_000_000
STARRED, COPIED, VARIED = 1 / 3, 1 / 10, 1 / 10


@dataclass
class Wave:
    jobs: int  # jobs over by the end of the wave, since the start
    members: int  # members seen by the end of the wave
    rss: float  # MiB, after the settle
    cpu: float  # s of the bot's CPU during the wave


@dataclass
class Plan:
    waves: int
    jobs: int
    members: int
    spread: float
    low: float
    high: float
    image: ImageStyle
    settle: float
    seed: int
    keep: bool


def write_config(workdir: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> Path:
    config: Config = base_config(discord_fake, workdir)
    config["providers.seaart"] = {"enabled": True, "base_url": seaart.base_url, "request_timeout": 30.0}
    config["quotas"] = {"enabled": False}
    text, _ = render_config(config, BotSource())
    path = workdir / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def one_wave(
    discord_fake: FakeDiscord, bot: BotProcess, db: Path, plan: Plan, number: int, draw: random.Random
) -> int:
    """A wave of new members: their /imagine, then ⭐, ✉️ and Vary on what came back; how many jobs it made."""
    members = [FIRST_MEMBER + number * plan.members + i for i in range(plan.members)]
    before = finished_jobs(db)
    prompts = [f"wave {number} job {i}: a ripe banana on a blue plate" for i in range(plan.jobs)]
    interactions = await send_spread_as(discord_fake, [(p, draw.choice(members)) for p in prompts], plan.spread)
    await wait_finished(bot, db, before + plan.jobs, plan.spread + plan.high + 120)
    shown = [m for i in interactions if (m := _message(discord_fake, i)) is not None and m.files]
    varied = 0
    for message in shown:
        other = draw.choice(members)
        if draw.random() < STARRED:
            await discord_fake.react(message.id, "⭐", user_id=other)
        if draw.random() < COPIED:
            await discord_fake.react(message.id, "✉️", user_id=other)
        if draw.random() < VARIED and (vary := _button(message, "Vary (Subtle)")) is not None:
            await discord_fake.click(message.id, vary, user_id=other)
            varied += 1
    await wait_finished(bot, db, before + plan.jobs + varied, plan.high + 120)
    return plan.jobs + varied


async def send_spread_as(
    discord_fake: FakeDiscord, sent: list[tuple[str, int]], spread: float
) -> list[FakeInteraction]:
    """One /imagine per (prompt, member), evenly over ``spread`` s."""
    start = time.monotonic()
    gap = spread / (len(sent) - 1) if len(sent) > 1 else 0.0
    interactions = []
    for index, (prompt, member) in enumerate(sent):
        await asyncio.sleep(max(0.0, start + index * gap - time.monotonic()))
        interactions.append(await discord_fake.slash_command("imagine", {"prompt": prompt}, user_id=member))
    return interactions


def _message(discord_fake: FakeDiscord, interaction: FakeInteraction) -> FakeMessage | None:
    message_id = interaction.original_message_id
    return discord_fake.messages.get(message_id) if message_id is not None else None


def _button(message: FakeMessage, label: str) -> str | None:
    for row in message.components:
        for component in row.get("components", []):
            if component.get("label") == label:
                return str(component["custom_id"])
    return None


async def run(plan: Plan) -> list[Wave]:
    draw = random.Random(plan.seed)
    waves: list[Wave] = []
    provider = random.Random(plan.seed + 1)
    seaart = FakeSeaArt(
        api_key=PROVIDER_KEY, provider_time=lambda: provider.uniform(plan.low, plan.high), images=plan.image
    )
    with bench_folder("uptime", plan.keep) as workdir:
        async with FakeDiscord(bot_token=BOT_TOKEN, keep_upload_bytes=4096) as discord_fake, seaart:
            config = write_config(workdir, discord_fake, seaart)
            db = workdir / "bot.sqlite3"
            bot = await start_bot(config, discord_fake, BotSource().env())
            try:
                await asyncio.sleep(plan.settle)
                waves.append(Wave(0, 0, bot.rss_mb(), 0.0))
                print(f"started: RSS {bot.rss_mb():.1f} MiB", file=sys.stderr, flush=True)
                jobs = 0
                for number in range(plan.waves):
                    cpu_before = bot.cpu_seconds()
                    jobs += await one_wave(discord_fake, bot, db, plan, number, draw)
                    cpu = bot.cpu_seconds() - cpu_before
                    await asyncio.sleep(plan.settle)
                    waves.append(Wave(jobs, (number + 1) * plan.members, bot.rss_mb(), cpu))
                    print(
                        f"wave {number + 1}/{plan.waves}: {jobs} jobs, RSS {waves[-1].rss:.1f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                await stop_bot(bot)
    return waves


def per_thousand(first: Wave, last: Wave) -> float:
    jobs = last.jobs - first.jobs
    return (last.rss - first.rss) / jobs * 1000 if jobs else float("nan")


def report(waves: list[Wave], plan: Plan) -> None:
    print(f"\nmachine: {machine()}")
    print(
        f"{plan.waves} waves of {plan.jobs} /imagine from {plan.members} new members each, then ⭐ on a third, ✉️ and "
        f"Vary on a tenth; provider time {plan.low:g}-{plan.high:g} s, {plan.image} images; idle {plan.settle:g} s "
        "before each reading\n"
    )
    print(f"{'wave':>5} {'jobs':>7} {'members':>8} {'RSS MiB':>9} {'change':>8} {'CPU s':>7}")
    for index, wave in enumerate(waves):
        change = "" if index == 0 else f"{wave.rss - waves[index - 1].rss:+.1f}"
        label = "start" if index == 0 else str(index)
        print(f"{label:>5} {wave.jobs:>7} {wave.members:>8} {wave.rss:>9.1f} {change:>8} {fmt(wave.cpu, 1):>7}")
    middle = len(waves) // 2
    print(
        f"\nRSS growth per 1,000 jobs: first half {fmt(per_thousand(waves[0], waves[middle]), 1)} MiB, "
        f"second half {fmt(per_thousand(waves[middle], waves[-1]), 1)} MiB "
        "(a bot that gives back what each job cost levels off: the second half near 0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waves", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=300, help="/imagine per wave")
    parser.add_argument("--members", type=int, default=60, help="new members per wave")
    parser.add_argument("--spread", type=float, default=15.0, help="seconds each wave's commands are sent over")
    parser.add_argument("--min", dest="low", type=float, default=0.5, help="provider time, least (s)")
    parser.add_argument("--max", dest="high", type=float, default=3.0, help="provider time, most (s)")
    parser.add_argument("--image", choices=("gradient", "noise"), default="gradient")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before each reading")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (bot.log, the database)")
    args = parser.parse_args()
    plan = Plan(
        args.waves,
        args.jobs,
        args.members,
        args.spread,
        args.low,
        args.high,
        args.image,
        args.settle,
        args.seed,
        args.keep,
    )
    try:
        waves = asyncio.run(run(plan))
    except (StartFailed, TimeoutError, RuntimeError) as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(1)
    report(waves, plan)


if __name__ == "__main__":
    main()
