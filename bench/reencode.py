"""Verifying results and fitting them under an upload limit: time per image, and memory when many 4K
results need re-encoding at once (issue 10).

Four tables:
1. verification per image size: before (Pillow decoding every pixel, as bot/images.py did) and after
   (the structure walk with PNG CRCs, bot/images.py inspect()), and what the CRCs alone cost;
2. prepare() under a few limits (verify, and re-encode only when over the limit);
3. one 4K result that needs re-encoding, each variant in its own process: time and peak memory above
   the process's idle size (VmHWM), before/after and per JPEG option;
4. 50 4K results needing re-encoding "arriving at once": a child process downloads them from a local
   server and prepares them with the runner's own calls (ImageWork.download and ImageWork.prepare:
   the memory gate and the re-encode pool), and prints its peak RSS against a bound; the old path
   (bytes in memory, asyncio.to_thread per result) runs the same way for comparison.

Linux only (reads /proc/self/status and resets the peak through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from bot import images
from bot.images import inspect, prepare
from bot.imagework import SPOOL_IN_MEMORY, ImageWork
from bot.testing.providers import image_size_for, make_png

MIB = 1024 * 1024
FOUR_K = (4096, 4096)
# Under this every fake 4K result (2.8 MB) has to be re-encoded.
LIMIT = 1 * MIB
# Settings for the 50-at-once run: config.example.toml's defaults.
IMAGES_IN_MEMORY = 8
REENCODE_WORKERS = 2
# httpx and aiohttp buffers, the pool's threads and their malloc arenas, the event loop's tasks.
SLACK_MB = 40


# ---- the old path, kept here only to compare against ---------------------------------------------


def legacy_inspect(data: bytes) -> None:
    """What bot/images.py did before issue 10: verify(), then decode every pixel."""
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def legacy_prepare(data: bytes, limit: int) -> int:
    """The old prepare(): decode to verify, decode again to re-encode, progressive + optimized JPEG."""
    legacy_inspect(data)
    if len(data) <= limit:
        return len(data)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rgb = img.convert("RGB")
    for quality in (92, 85, 75, 60):
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
        if buf.tell() <= limit:
            return buf.tell()
    raise RuntimeError("did not fit")


# ---- memory of this process ----------------------------------------------------------------------


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Make VmHWM start again from the current RSS; return that RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_mb("VmRSS")


def timed_ms(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


# ---- 1. verification -----------------------------------------------------------------------------


def verification_table() -> None:
    print("1. Verifying a result (fake PNGs; median of runs)")
    print(f"{'size':>10} {'file KiB':>9} {'before: decode ms':>18} {'after: structure ms':>20} {'of which CRC ms':>16}")
    for side in (512, 1024, 2048, 4096):
        data = make_png(side, side)
        repeat = 20 if side < 4096 else 5
        before = timed_ms(functools.partial(legacy_inspect, data), repeat)
        after = timed_ms(functools.partial(inspect, data), repeat * 5)
        crc = timed_ms(functools.partial(zlib.crc32, data), repeat * 5)
        print(f"{side:>4}x{side:<5} {len(data) / 1024:>9.0f} {before:>18.1f} {after:>20.2f} {crc:>16.2f}")
    print()


# ---- 2. prepare() under limits -------------------------------------------------------------------


def limits_table() -> None:
    print("2. prepare(): verify, and re-encode only over the limit")
    for resolution, ratio in (("1K", "1:1"), ("2K", "16:9"), ("4K", "1:1"), ("4K", "21:9")):
        data = make_png(*image_size_for({"resolution": resolution, "aspect_ratio": ratio}))
        for limit in (10 * MIB, 1 * MIB, 300 * 1024):
            start = time.perf_counter()
            result = prepare(data, limit=limit, stem="bench")
            took = (time.perf_counter() - start) * 1000
            print(
                f"{resolution:>2} {ratio:>5}  source {len(data) / 1024:8.0f} KiB"
                f"  limit {limit / 1024:6.0f} KiB"
                f"  -> {result.size / 1024:7.0f} KiB {result.width}x{result.height}"
                f"{' (re-encoded)' if result.reencoded else ''}  {took:7.1f} ms"
            )
    print()


# ---- 3. one 4K re-encode, each variant in its own process ----------------------------------------

VARIANTS: dict[str, str] = {
    "before": "old path: decode to verify, decode again, progressive + optimize",
    "after": "now: structure only, one decode, baseline JPEG (bot/images.py)",
    "after-optimize": "now, but optimize=True",
    "after-progressive": "now, but progressive=True, optimize=True",
}


def child_one(variant: str) -> dict[str, Any]:
    data = make_png(*FOUR_K)
    if variant == "after-optimize":
        images._JPEG_OPTIONS = {"optimize": True}
    elif variant == "after-progressive":
        images._JPEG_OPTIONS = {"optimize": True, "progressive": True}
    idle = reset_peak()
    start = time.perf_counter()
    size = legacy_prepare(data, LIMIT) if variant == "before" else prepare(data, limit=LIMIT, stem="bench").size
    took = (time.perf_counter() - start) * 1000
    return {"ms": took, "peak_above_idle_mb": status_mb("VmHWM") - idle, "out_kib": size / 1024}


def one_4k_table() -> float:
    """Print the table; return the peak of the "after" variant (MB), the basis of the bound in table 4."""
    print(f"3. One 4K result ({FOUR_K[0]}x{FOUR_K[1]} PNG) re-encoded under {LIMIT / MIB:g} MiB, in a process each")
    print(f"{'variant':<18} {'ms':>7} {'peak MB above idle':>19} {'JPEG KiB':>9}  what")
    after_peak = 0.0
    for variant, what in VARIANTS.items():
        row = run_child(["one", variant])
        if variant == "after":
            after_peak = row["peak_above_idle_mb"]
        print(f"{variant:<18} {row['ms']:>7.0f} {row['peak_above_idle_mb']:>19.0f} {row['out_kib']:>9.0f}  {what}")
    print()
    return after_peak


# ---- 4. fifty at once ----------------------------------------------------------------------------


async def child_many(base_url: str, count: int, path: str) -> dict[str, Any]:
    import httpx

    from bot.fetch import download

    async with httpx.AsyncClient() as client:
        # Warm up: imports, the connection pool, the thread pools; then measure from here.
        await download(client, f"{base_url}/0.png", max_bytes=64 * MIB, timeout=60)
        work = ImageWork(images_in_memory=IMAGES_IN_MEMORY, reencode_workers=REENCODE_WORKERS)
        idle = reset_peak()
        start = time.perf_counter()

        async def new_path(n: int) -> int:
            source = await work.download(client, f"{base_url}/{n}.png", max_bytes=64 * MIB, timeout=120)
            image = await work.prepare(source, limit=LIMIT, stem=f"r{n}", source_url=None)
            image.close()
            return image.size

        async def old_path(n: int) -> int:
            data = await download(client, f"{base_url}/{n}.png", max_bytes=64 * MIB, timeout=120)
            return await asyncio.to_thread(legacy_prepare, data, LIMIT)

        job = new_path if path == "new" else old_path
        sizes = await asyncio.gather(*(job(n) for n in range(count)))
        took = time.perf_counter() - start
        work.close()
    assert all(size <= LIMIT for size in sizes)
    return {"idle_mb": idle, "peak_mb": status_mb("VmHWM"), "seconds": took}


async def many_table(count: int, per_reencode_mb: float) -> None:
    from aiohttp import web

    data = make_png(*FOUR_K)

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{n}.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base_url = f"http://127.0.0.1:{port}"
    print(
        f"4. {count} 4K results needing re-encoding, all started at once: downloaded from a local server "
        f"and prepared in a child process"
    )
    try:
        new = await run_child_async(["many", base_url, str(count), "new"])
        bound = new["idle_mb"] + REENCODE_WORKERS * per_reencode_mb + IMAGES_IN_MEMORY * SPOOL_IN_MEMORY / MIB
        bound += SLACK_MB
        verdict = "within" if new["peak_mb"] <= bound else "OVER"
        print(
            f"   now (ImageWork: images_in_memory={IMAGES_IN_MEMORY}, reencode_workers={REENCODE_WORKERS}): "
            f"peak RSS {new['peak_mb']:.0f} MB (idle {new['idle_mb']:.0f} MB), {new['seconds']:.1f} s"
        )
        print(
            f"   bound {bound:.0f} MB = idle + {REENCODE_WORKERS} re-encodes x {per_reencode_mb:.0f} MB"
            f" (table 3, 'after') + {IMAGES_IN_MEMORY} spools x {SPOOL_IN_MEMORY / MIB:g} MiB + {SLACK_MB} MB slack"
            f" (buffers, threads): {verdict}, whatever the number of results"
        )
        old = await run_child_async(["many", base_url, str(count), "old"])
        print(
            f"   old path (bytes, asyncio.to_thread(prepare) each): peak RSS {old['peak_mb']:.0f} MB "
            f"(idle {old['idle_mb']:.0f} MB), {old['seconds']:.1f} s"
        )
    finally:
        await runner.cleanup()


# ---- plumbing ------------------------------------------------------------------------------------


def run_child(args: list[str]) -> dict[str, Any]:
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def run_child_async(args: list[str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"child {args} exited with {proc.returncode}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at-once", type=int, default=50, help="results arriving at once in table 4 (50)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_one(rest[0]) if kind == "one" else asyncio.run(child_many(rest[0], int(rest[1]), rest[2]))
        print(json.dumps(result))
        return
    verification_table()
    limits_table()
    per_reencode = one_4k_table()
    asyncio.run(many_table(args.at_once, per_reencode))


if __name__ == "__main__":
    main()
