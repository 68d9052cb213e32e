"""Images inside requests and answers (Gemini): the bot's memory with many of them at once (issue 10).

The REAL bot runs as its own process (bench/harness.py) against the fake Discord and a fake Gemini in
this process that serves incompressible PNGs (images="noise", the weight of real results: 12.6 MB at 2K).
Two scenes, each on a fresh bot and database:

  results      --results /imagine commands for Nano Banana Pro at --size are held at Gemini until all
               have reached it, then answered together: each answer carries its image as base64. Printed:
               the bot's peak RSS (VmHWM) and the seconds until every image was posted.
  references   --calls commands, each with --refs noise references of about --ref-side px a side
               (attachments of the fake Discord), are held at Gemini: the calls in flight while Google
               draws. Printed: the bot's RSS with all of them waiting, and its peak over the scene.

Idle RSS (after start-up, before the first command) is printed beside both. --baseline REV runs the same
scenes on another commit of this repository (a git worktree, as bench/load.py does), side by side.
Run from the project root with the venv active: `python bench/inline_memory.py` (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
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
    finished_jobs,
    machine,
    render_config,
    start_bot,
    stop_bot,
    worktree,
)

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeGemini
from bot.testing.providers._base import noise_png


@dataclass
class Row:
    label: str
    idle_mb: float = float("nan")
    results_peak_mb: float = float("nan")
    results_seconds: float = float("nan")
    held_mb: float = float("nan")
    references_peak_mb: float = float("nan")
    note: str = ""


def write_config(workdir: Path, discord_fake: FakeDiscord, gemini: FakeGemini, source: BotSource) -> Path:
    config: Config = base_config(discord_fake, workdir)
    config["providers.seaart"] = {"enabled": False}
    config["providers.gemini"] = {"enabled": True, "base_url": gemini.base_url, "request_timeout": 120.0}
    config["quotas"] = {"enabled": False}
    config["imagine"] = {"max_attachment_bytes": 20 * 1024 * 1024}
    config["jobs"] = {"concurrency": 64}
    text, _ = render_config(config, source)
    path = workdir / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def scene(source: BotSource, workdir: Path) -> AsyncIterator[tuple[FakeDiscord, FakeGemini, BotProcess]]:
    async with (
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=100 * 1024 * 1024) as discord_fake,
        FakeGemini(api_key=PROVIDER_KEY, hang_seconds=600, images="noise") as gemini,
    ):
        config = write_config(workdir, discord_fake, gemini, source)
        bot = await start_bot(config, discord_fake, source.env())
        try:
            await asyncio.sleep(1.0)  # let start-up settle before idle is read
            yield discord_fake, gemini, bot
        finally:
            await stop_bot(bot)


async def results_scene(source: BotSource, args: argparse.Namespace, workdir: Path, row: Row) -> None:
    async with scene(source, workdir) as (discord_fake, gemini, bot):
        row.idle_mb = bot.rss_mb()
        gemini.hold(True)
        for n in range(args.results):
            await discord_fake.slash_command(
                "imagine", {"prompt": f"poster {n}", "model": "nano_banana_pro", "resolution": args.size}
            )
        await discord_fake.wait_for(lambda: len(gemini.jobs) == args.results, timeout=300)
        side = {"1K": 1024, "2K": 2048, "4K": 4096}[args.size]
        await gemini._png((side, side))  # made before the release, so every answer leaves at once
        started = time.monotonic()
        gemini.hold(False)
        db = workdir / "bot.sqlite3"
        await discord_fake.wait_for(lambda: finished_jobs(db) == args.results, timeout=600)
        row.results_seconds = time.monotonic() - started
        row.results_peak_mb = bot.peak_rss_mb()


async def references_scene(source: BotSource, args: argparse.Namespace, workdir: Path, row: Row) -> None:
    pngs = [await asyncio.to_thread(noise_png, args.ref_side + n, args.ref_side) for n in range(args.refs)]
    async with scene(source, workdir) as (discord_fake, gemini, bot):
        gemini.hold(True)
        for n in range(args.calls):
            references = {
                f"image{i + 1}": discord_fake.add_attachment(png, f"ref{i}.png", "image/png")
                for i, png in enumerate(pngs)
            }
            await discord_fake.slash_command("imagine", {"prompt": f"collage {n}", **references})
        await discord_fake.wait_for(lambda: len(gemini.jobs) == args.calls, timeout=300)
        await asyncio.sleep(1.0)
        row.held_mb = bot.rss_mb()
        gemini.hold(False)
        await discord_fake.wait_for(lambda: finished_jobs(workdir / "bot.sqlite3") == args.calls, timeout=600)
        row.references_peak_mb = bot.peak_rss_mb()


async def run(source: BotSource, args: argparse.Namespace) -> Row:
    row = Row(source.label)
    print(f"[{source.label}] results, then references ...", file=sys.stderr, flush=True)
    try:
        for name, scene_of in (("results", results_scene), ("references", references_scene)):
            with tempfile.TemporaryDirectory(prefix=f"bench-inline-{name}-") as tmp:
                await scene_of(source, args, Path(tmp), row)
    except (StartFailed, TimeoutError) as exc:
        row.note = f"{type(exc).__name__}: {str(exc)[:120]}"
    return row


def report(rows: list[Row], args: argparse.Namespace, ref_mb: float) -> None:
    print(machine())
    print(
        f"results: {args.results} Nano Banana Pro answers at {args.size} released together; references: "
        f"{args.calls} calls held at Gemini, {args.refs} references of {ref_mb:.1f} MB each"
    )
    print()
    columns = ("idle MB", 8), ("results peak MB", 16), ("all posted s", 13), ("refs held MB", 13), ("refs peak MB", 13)
    head = f"{'bot':<20} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.label:<20} {r.idle_mb:>8.0f} {r.results_peak_mb:>16.0f} {r.results_seconds:>13.1f} "
            f"{r.held_mb:>13.0f} {r.references_peak_mb:>13.0f}" + (f"  {r.note}" if r.note else "")
        )


async def main_async(args: argparse.Namespace) -> int:
    sources = [BotSource()]
    with contextlib.ExitStack() as stack:
        if args.baseline:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-inline-baseline-"))
            sources.append(stack.enter_context(worktree(args.baseline, Path(tmp) / "tree")))
        rows = [await run(source, args) for source in sources]
    ref_mb = len(noise_png(args.ref_side, args.ref_side)) / 1e6
    report(rows, args, ref_mb)
    return 0 if not any(r.note for r in rows) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20, help="answers carrying an image, released together (20)")
    parser.add_argument("--size", choices=("1K", "2K", "4K"), default="2K", help="their resolution (2K: 12.6 MB)")
    parser.add_argument("--calls", type=int, default=16, help="calls held at Gemini with references (16)")
    parser.add_argument("--refs", type=int, default=2, help="references per call (2)")
    parser.add_argument("--ref-side", type=int, default=1200, help="pixels a side of each reference (1200: 4.3 MB)")
    parser.add_argument("--baseline", metavar="REV", help="also run this commit's bot on the same scenes")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
