"""Serve the fake Discord standalone: ``python -m bot.testing.discord --port 8080``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .driver import FakeDiscord


async def _serve(host: str, port: int, token: str) -> None:
    async with FakeDiscord(host=host, port=port, bot_token=token) as fake:
        print(f"api_base_url: {fake.api_base_url}", flush=True)
        print(f"gateway_url:  {fake.gateway_url}", flush=True)
        print(f"bot token: {fake.bot_token}  guild: {fake.guild_id}  channel: {fake.channel_id}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.testing.discord", description="Serve a fake Discord.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="fake-bot-token", help="bot token the fake accepts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
