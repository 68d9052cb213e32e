"""How many jobs per second the JobRunner pushes through submit -> poll -> download -> deliver.

Uses the real runner, a real SQLite file and the real httpx client against the fake SeaArt on
127.0.0.1, with a sink that only counts. Prints throughput, per-job latency percentiles and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

from bot.config import load_settings
from bot.events import RunnerEvent
from bot.images import PreparedImage
from bot.jobs import JobRunner
from bot.models import GenerationRequest
from bot.providers.seaart import SeaArtProvider
from bot.store import Database
from bot.store.jobs import Job, JobStore, NewJob
from bot.testing.providers import FakeSeaArt

KEY = "bench-key"


class CountingSink:
    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        self.finished: dict[str, str] = {}

    async def progress(self, job: Job) -> None:
        return None

    async def deliver(self, job: Job, images: list[PreparedImage]) -> None:
        self.delivered[job.id] = time.monotonic()

    async def finished(self, job: Job) -> None:
        self.finished[job.id] = str(job.state)

    async def locate(self, job: Job) -> int | None:
        return None

    def notify(self, event: RunnerEvent) -> None:
        return None


async def run(jobs: int, concurrency: int) -> None:
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSeaArt(api_key=KEY, queued_polls=1, running_polls=1) as fake:
            settings = load_settings(
                None,
                seaart_api_key=KEY,
                database={"path": str(Path(tmp) / "bench.sqlite3")},
                jobs={
                    "poll_interval_seconds": 0.05,
                    "max_poll_interval_seconds": 0.2,
                    "concurrency": concurrency,
                },
            )
            db = Database(settings.database.path)
            await db.connect()
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency * 2)) as http:
                provider = SeaArtProvider(api_key=KEY, base_url=fake.base_url, client=http)
                sink = CountingSink()
                runner = JobRunner(JobStore(db), {"seaart": provider}, sink, settings.jobs, settings.imagine, http=http)
                request = GenerationRequest(model="nano_banana_2", prompt="bench", resolution="512")
                created: dict[str, float] = {}
                start = time.monotonic()
                for _ in range(jobs):
                    job = await runner.create(NewJob(provider="seaart", model="nano_banana_2", request=request))
                    created[job.id] = time.monotonic()
                await runner.start()
                while len(sink.delivered) + len(sink.finished) < jobs:  # noqa: ASYNC110 - sampling
                    await asyncio.sleep(0.05)
                elapsed = time.monotonic() - start
                await runner.stop()
            await db.close()
    _, peak = tracemalloc.get_traced_memory()
    latencies = sorted(sink.delivered[j] - created[j] for j in sink.delivered)
    print(f"jobs: {jobs}  concurrency: {concurrency}")
    print(f"delivered: {len(sink.delivered)}  failed: {len(sink.finished)}")
    print(f"wall time: {elapsed:.2f} s  throughput: {jobs / elapsed:.1f} jobs/s")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"latency from create: p50 {q[49]:.2f} s  p95 {q[94]:.2f} s  max {latencies[-1]:.2f} s")
    print(f"peak traced memory: {peak / 1_048_576:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.concurrency))


if __name__ == "__main__":
    main()
