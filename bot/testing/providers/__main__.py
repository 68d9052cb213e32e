"""Run the fake providers standalone: `python -m bot.testing.providers [--port N] [--key K]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from bot.testing.providers import FakeGemini, FakeKie, FakeProviderServer, FakeSeaArt, FakeSegmind


async def _serve(args: argparse.Namespace) -> None:
    port = args.port

    # Consecutive ports when one is given (easy to remember), free ones otherwise.
    def at(offset: int) -> int:
        return port + offset if port else 0

    fakes: dict[str, FakeProviderServer[Any]] = {
        "seaart": FakeSeaArt(api_key=args.key, host=args.host, port=at(0)),
        "kie": FakeKie(flavour="kie", api_key=args.key, host=args.host, port=at(1)),
        "sinancode": FakeKie(flavour="sinancode", api_key=args.key, host=args.host, port=at(2)),
        "segmind": FakeSegmind(api_key=args.key, host=args.host, port=at(3)),
        "gemini": FakeGemini(api_key=args.key, host=args.host, port=at(4)),
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Containers stop us with SIGTERM; close the sockets cleanly either way.
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows has no signal handlers
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for name, fake in fakes.items():
            await stack.enter_async_context(fake)
            print(f"fake {name:<10} base_url={fake.base_url} key={fake.api_key}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake provider APIs on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port of the first fake; 0 picks free ports")
    parser.add_argument("--key", default="test-key", help="the API key clients must send")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
