"""The bot as its own process, the way an operator runs it: a config file, the environment, `bananacord run`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers._base import FakeProviderServer
from tests.conftest import BOT_TOKEN, SEAART_KEY
from tests.forked_cli import ForkedProcess, forking, start_bot


def discord_and_database(tmp_path: Path, discord_fake: FakeDiscord) -> str:
    """The config's [discord] section pointing at the fake, and [database] at ``tmp_path/bot.sqlite3``."""
    database = tmp_path / "bot.sqlite3"
    return (
        f'[discord]\napi_base_url = "{discord_fake.api_base_url}"\ngateway_url = "{discord_fake.gateway_url}"\n'
        f'[database]\npath = "{database}"'
    )


def write_config(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeProviderServer[Any] | str,
    *,
    log_level: str = "INFO",
    request_timeout: float = 2.0,
    jobs: str = "",
    provider: str = "seaart",
    provider_settings: str = "",
    max_poll_interval: float = 0.2,
    busy_timeout: float | None = None,
) -> Path:
    """A config.toml pointing at the fakes; ``seaart`` is the fake or any base URL (a proxy in front of it).
    Another ``provider`` named is the only one enabled, at that fake, with ``provider_settings`` added.
    ``busy_timeout``: how long one write waits for another program's lock, if not the bot's default."""
    base_url = seaart if isinstance(seaart, str) else seaart.base_url
    others = "" if provider == "seaart" else "[providers.seaart]\nenabled = false\n"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
log_level = "{log_level}"
{discord_and_database(tmp_path, discord_fake)}
{"" if busy_timeout is None else f"busy_timeout_seconds = {busy_timeout}"}
{others}[providers.{provider}]
enabled = true
base_url = "{base_url}"
request_timeout = {request_timeout}
{provider_settings}
[jobs]
poll_interval_seconds = 0.05
max_poll_interval_seconds = {max_poll_interval}
progress_interval_seconds = 0
{jobs}
""",
        encoding="utf-8",
    )
    return config


def bot_env(token: str = BOT_TOKEN, key: str = SEAART_KEY) -> dict[str, str]:
    """This environment without BANANACORD_* overrides, plus the bot token and the SeaArt key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_")}
    return {**clean, "DISCORD_TOKEN": token, "SEAART_API_KEY": key}


# As `nohup` starts a command: SIGHUP ignored, which the exec keeps.
NOHUP = "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); os.execv(sys.executable, sys.argv[1:])"

# A bot process as the tests hold it: a real one, or one forked from the tests' fork server (tests/forked_cli.py).
BotProcess = subprocess.Popen[bytes] | ForkedProcess


def start_process(
    config: Path, log: Path, env: dict[str, str] | None = None, *, nohup: bool = False, real: bool = False
) -> BotProcess:
    """`python -m bot run --config CONFIG`, its output appended to ``log``; ``nohup``: started as `nohup` would.

    Forked from the tests' fork server, which has imported the bot already (about 1.5 s of CPU less a start), unless
    ``real``: a test that measures the process's own memory starts a fresh interpreter, as an operator's is."""
    args = ["run", "--config", str(config)]
    with log.open("ab") as out:
        if forking() and not real:
            return start_bot(
                args, env=env or bot_env(), cwd=config.parent, stdout=out.fileno(), stderr=out.fileno(), nohup=nohup
            )
        command = [sys.executable, "-m", "bot", *args]
        return subprocess.Popen(
            [sys.executable, "-c", NOHUP, *command] if nohup else command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or bot_env(),
            cwd=config.parent,
        )


@contextlib.contextmanager
def bot_processes(config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[Callable[[], BotProcess]]:
    """``start()`` runs one more bot process (as ``start_process``, with ``env``); any still running at the
    end is stopped, so a test that kills one and starts the next leaves none behind, whatever fails."""
    started: list[BotProcess] = []

    def start() -> BotProcess:
        started.append(start_process(config, log, env))
        return started[-1]

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


async def command_being_answered(discord_fake: FakeDiscord, prompt: str) -> FakeInteraction:
    """An /imagine whose answer the bot has sent and Discord holds, unanswered (``hold_callbacks``): the
    moment to stop or kill the bot in. ``hold_callbacks(False)`` lets Discord take it."""
    await discord_fake.wait_until_ready(timeout=30)
    discord_fake.hold_callbacks()
    interaction = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
    return interaction
