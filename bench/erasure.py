"""How long a member's erasure (/privacy, bot/store/erasure.py) and its look (`kept_about`) take on a long history,
and how long the job loop's writes wait behind it.

Builds a SQLite file with --requests ended requests of one member (a prompt of about 600 characters and a reference
link each, as the bot writes them, copied row by row in SQL), then times through the real aiosqlite connection:

  * ``kept_about`` (what /privacy shows);
  * ``erase`` (``CHUNK`` rows a transaction, secure_delete on, the write-ahead log truncated after);
  * while it runs, a one-row write every 10 ms from another task, as the job loop's: the longest any of them waited;
    and the event loop's longest stall (what Discord's heartbeat and members' commands wait meanwhile).

Figures, not a pass/fail test. Run from the project root with the venv active: `python bench/erasure.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bot.models import GenerationRequest, JobState, ReferenceImage
from bot.store import Database
from bot.store.erasure import erase, kept_about
from bot.store.jobs import JobStore, NewJob

GUILD, MEMBER = 1, 7


async def build(path: Path, requests: int) -> None:
    db = Database(path)
    await db.connect()
    try:
        store = JobStore(db)
        reference = ReferenceImage(
            url="https://cdn.discordapp.com/attachments/1/2/photo.png", content_type="image/png", size=1
        )
        request = GenerationRequest(
            model="nano_banana_2", prompt="a lighthouse on a cliff at dawn, " * 18, reference_images=(reference,)
        )
        new = NewJob(provider="seaart", model="nano_banana_2", request=request, guild_id=GUILD, user_id=MEMBER)
        (job,) = await store.create_batch([new], now=1, deadline_seconds=60)
        await store.update(job, now=2, state=JobState.CANCELLED)
    finally:
        await db.close()
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
        values = ", ".join("printf('%016x', abs(random()))" if c == "id" else c for c in columns)
        numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT i FROM n"
        conn.execute(
            f"INSERT INTO jobs ({', '.join(columns)}) SELECT {values} FROM jobs, ({numbers}) WHERE id = ?",
            (requests - 1, job.id),
        )


async def measure(path: Path) -> dict[str, float]:
    db = Database(path)
    await db.connect()
    try:
        began = time.perf_counter()
        kept = await kept_about(db, GUILD, MEMBER)
        looked = time.perf_counter() - began
        waits: list[float] = []
        done = asyncio.Event()

        async def loop_writes() -> None:
            while not done.is_set():
                asked = time.perf_counter()
                async with db.transaction() as conn:
                    await conn.execute("UPDATE jobs SET attempts = attempts WHERE rowid = 1")
                waits.append(time.perf_counter() - asked)
                await asyncio.sleep(0.01)

        stalls: list[float] = []

        async def ticking() -> None:
            # The event loop's own lag: what every other task (Discord's heartbeat, members' commands) waits.
            while not done.is_set():
                asked = time.perf_counter()
                await asyncio.sleep(0.005)
                stalls.append(time.perf_counter() - asked - 0.005)

        writer = asyncio.create_task(loop_writes())
        ticker = asyncio.create_task(ticking())
        began = time.perf_counter()
        erased = await erase(db, GUILD, MEMBER, now=time.time())
        took = time.perf_counter() - began
        done.set()
        await writer
        await ticker
    finally:
        await db.close()
    return {
        "requests": kept.requests,
        "kept_about_s": looked,
        "erased": erased.requests,
        "erase_s": took,
        "loop_writes": len(waits),
        "longest_wait_s": max(waits, default=0.0),
        "longest_stall_s": max(stalls, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="ended requests of the member (10000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-erasure-") as folder:
        path = Path(folder) / "bot.sqlite3"
        asyncio.run(build(path, args.requests))
        figures = asyncio.run(measure(path))
    print(
        f"{figures['requests']:,.0f} requests: /privacy's look {figures['kept_about_s'] * 1000:.0f} ms; erased "
        f"{figures['erased']:,.0f} in {figures['erase_s']:.2f} s; {figures['loop_writes']:.0f} one-row writes "
        f"beside it, the longest waiting {figures['longest_wait_s'] * 1000:.0f} ms; the event loop's longest stall "
        f"{figures['longest_stall_s'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
