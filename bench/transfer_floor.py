"""What one job costs at the least, whatever the bot does around it: the floor under bench/load.py's CPU figure.

Every delivered job moves its result through the bot twice (downloaded from the provider, uploaded to
Discord) and polls the provider a few times. This script measures those bare operations, with nothing
of the bot around them, in a child process of its own (its CPU read with getrusage, user and system
apart), against a local aiohttp server in this process:

  transfer    GET a result of --size bytes into memory, then POST it as multipart/form-data (as
              discord.py uploads a file), with aiohttp alone: the cheapest way Python moves the bytes
  polls       --polls small GETs of a JSON status through httpx.AsyncClient over the bot's own
              transport (bot/transport.py), as the adapters send them, nothing else

Run it next to `python bench/load.py` with the same --size and polls per job that load.py printed: if the
floor alone is near or over a target, no change to the bot's own code can meet that target.

    python bench/transfer_floor.py --jobs 400 --polls 9.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parent.parent


def _child(port: int, jobs: int, polls: float, concurrency: int) -> dict[str, float]:
    """Runs in the child: the measured work, then its own CPU figures."""
    import aiohttp
    import httpx

    from bot.transport import AiohttpTransport, CookielessClient

    base = f"http://127.0.0.1:{port}"

    async def transfer(session: aiohttp.ClientSession, gate: asyncio.Semaphore) -> None:
        async with gate:
            async with session.get(f"{base}/result.png") as response:
                body = await response.read()
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps({"content": None}), content_type="application/json")
            form.add_field("files[0]", body, filename="result.png", content_type="image/png")
            async with session.post(f"{base}/upload", data=form) as response:
                await response.read()

    # As the adapters send them (bot/providers/_adapter.py): the link parsed once, the headers as httpx keeps them.
    status_url = httpx.URL(f"{base}/status")
    headers = httpx.Headers({"Authorization": "Bearer floor-key", "Accept": "application/json"})

    async def poll(client: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        async with gate:
            response = await client.get(status_url, headers=headers)
            response.json()

    def cpu() -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime, usage.ru_stime

    async def main() -> dict[str, float]:
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession() as session:
            await transfer(session, gate)  # warm the connection pool and imports before measuring
            u0, s0 = cpu()
            await asyncio.gather(*(transfer(session, gate) for _ in range(jobs)))
            u1, s1 = cpu()
        async with CookielessClient(transport=AiohttpTransport()) as client:
            await poll(client, gate)
            n = round(jobs * polls)
            u2, s2 = cpu()
            await asyncio.gather(*(poll(client, gate) for _ in range(n)))
            u3, s3 = cpu()
        return {
            "transfer_user": (u1 - u0) / jobs * 1000,
            "transfer_sys": (s1 - s0) / jobs * 1000,
            "polls_user": (u3 - u2) / jobs * 1000,
            "polls_sys": (s3 - s2) / jobs * 1000,
        }

    return asyncio.run(main())


async def _serve(args: argparse.Namespace) -> None:
    from bot.testing.providers._base import noise_png

    side = 1
    while len(noise_png(side * 64, side * 64)) < args.size and side < 64:
        side += 1
    image = noise_png(side * 64, side * 64)

    async def result(_: web.Request) -> web.Response:
        return web.Response(body=image, content_type="image/png")

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "1"})

    async def status(_: web.Request) -> web.Response:
        return web.json_response({"code": 0, "data": {"status": "processing", "progress": 40}})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/result.png", result)
    app.router.add_post("/upload", upload)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    call = f"t._child({port}, {args.jobs}, {args.polls}, {args.concurrency})"
    code = f"import json, bench.transfer_floor as t; print(json.dumps({call}))"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=REPO, env=env, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    await runner.cleanup()
    figures = json.loads(out)
    mb = len(image) / 1e6
    print(f"floor per job, {mb:.1f} MB result, {args.polls:g} polls, concurrency {args.concurrency}, {args.jobs} jobs:")
    print(f"{'':22}{'user ms':>9}{'sys ms':>9}{'total ms':>10}")
    for name, label in (("transfer", "download + upload"), ("polls", f"{args.polls:g} polls (httpx)")):
        user, sys_ = figures[f"{name}_user"], figures[f"{name}_sys"]
        print(f"{label:22}{user:9.2f}{sys_:9.2f}{user + sys_:10.2f}")
    total = sum(figures.values())
    print(f"{'floor':22}{'':18}{total:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--polls", type=float, default=9.5, help="status requests per job (load.py prints it)")
    parser.add_argument("--size", type=int, default=3_000_000, help="result bytes (about; a noise PNG)")
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
