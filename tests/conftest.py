"""Shared fixtures: the fakes over real sockets, settings pointing at them, and the real bot in-process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from PIL import Image

from bot.app import Bananacord, point_discord_at
from bot.config import ENV_PREFIX, SECRET_ENV_VARS, Settings, load_settings
from bot.store import Database
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from bot.transport import tls_context
from tests.providers.helpers import TIMEOUT, SleepRecorder

# On CI the property tests try the same examples every run (derandomize), with no per-example deadline: an
# example found by chance, or one slow on a loaded machine, would fail a change that did not cause it. Run
# locally they search afresh each time; what they find is kept as an @example beside the test.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    # With `-n 3` (pytest-xdist), each worker takes tests from the front of one queue, two at a time, rather
    # than in chunks of hundreds: a worker left holding a chunk of long tests at the end kept the run going
    # half a minute after the others had finished (docs/performance.md, "The test suite's own time"). In
    # pytest's order the short unit tests (tests/test_*.py, tests/testing) come last, so they are what the
    # workers share at the end. Running the end-to-end tests first as well made the run longer: three at once
    # left the cores waiting, and the unit tests at the end had three workers on two cores.
    if config.getoption("maxschedchunk", None) is None and hasattr(config.option, "maxschedchunk"):
        config.option.maxschedchunk = 1


SEAART_KEY = "test-seaart-key-5f2c"
BOT_TOKEN = "test-bot-token-9a1b"


def png_bytes(size: tuple[int, int] = (64, 64), colour: tuple[int, int, int] = (200, 180, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def operator_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables an operator's shell may hold that would reach the bot: ``BANANACORD_*`` overrides, the
    bot token and every provider or webhook key."""
    secrets = set(SECRET_ENV_VARS.values())
    return [
        name for name in environ if name.upper().startswith(ENV_PREFIX) or name.endswith("_API_KEY") or name in secrets
    ]


@pytest.fixture(autouse=True, scope="session")
def _no_operator_environment() -> Iterator[None]:
    """The suite runs without the operator's settings and keys: an exported ``KIE_API_KEY`` or
    ``BANANACORD_PROVIDERS__KIE__BASE_URL`` once sent the tests' requests to a real, billed provider.
    A test that needs one sets it itself (monkeypatch.setenv, or a subprocess's own env)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in operator_variables(os.environ):
            patch.delenv(name)
        yield


def make_settings(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, **sections: Any) -> Settings:
    base: dict[str, Any] = {
        "discord": {"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        "database": {"path": str(tmp_path / "bananacord.sqlite3")},
        "providers": {"seaart": {"base_url": seaart.base_url, "request_timeout": 2.0}},
        "jobs": {
            "poll_interval_seconds": 0.05,
            "max_poll_interval_seconds": 0.2,
            "progress_interval_seconds": 0,
        },
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    # environment=False: only these settings, whatever the environment holds (see _no_operator_environment).
    return load_settings(None, environment=False, discord_token=BOT_TOKEN, seaart_api_key=SEAART_KEY, **base)


class Clock:
    """The time a test moves by hand (token expiry, deadlines, quota windows): wall time plus ``offset``,
    or, given ``start``, an instant that stands still until the test moves ``now``."""

    def __init__(self, start: float | None = None) -> None:
        self._start = start
        self.offset = 0.0

    def __call__(self) -> float:
        return (time.time() if self._start is None else self._start) + self.offset

    @property
    def now(self) -> float:
        return self()

    @now.setter
    def now(self, value: float) -> None:
        if self._start is None:
            self.offset = value - time.time()
        else:
            self._start = value - self.offset


class RunningBot:
    """The real Bananacord connected to the fake Discord."""

    def __init__(self, bot: Bananacord, task: asyncio.Task[None]) -> None:
        self.bot = bot
        self.task = task

    async def close(self) -> None:
        await self.bot.close()
        # connect() returns once closed; if it died earlier (e.g. a payload it could not parse), this raises.
        await asyncio.wait_for(self.task, 5)


async def start_bot(
    settings: Settings, discord_fake: FakeDiscord, clock: Callable[[], float] = time.time
) -> RunningBot:
    point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
    # discord.py announces "ready" once no server has arrived for guild_ready_timeout after READY: an idle
    # wait at every start of every test. The fake sends its one GUILD_CREATE right behind READY, so a short
    # wait is enough, and the server's arrival is awaited below in any case.
    bot = Bananacord(settings, clock=clock, guild_ready_timeout=0.02)
    await bot.login(BOT_TOKEN)
    task = asyncio.create_task(bot.connect())
    try:
        await discord_fake.wait_until_ready(timeout=15)
        # discord.py announces on_ready after guild_ready_timeout; a bot closed before then would announce
        # it with its loop gone (an un-awaited coroutine, which fails the run).
        await asyncio.wait_for(bot.wait_until_ready(), 15)
        # On a loaded machine the GUILD_CREATE may be read after that short wait (discord.py then announces
        # the server as joined): a test starts once the bot knows its server in full, as after a longer wait.
        await discord_fake.wait_for(lambda: all(not guild.unavailable for guild in bot.guilds), 15)
    except BaseException:
        await bot.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise
    return RunningBot(bot, task)


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def seaart() -> AsyncIterator[FakeSeaArt]:
    async with FakeSeaArt(api_key=SEAART_KEY) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated SQLite file of the test's own."""
    database = Database(tmp_path / "bot.sqlite3")
    await database.connect()
    yield database
    await database.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The real httpx client the provider adapters send with (TIMEOUT: the provider tests' patience). Its TLS
    context is the bot's, made once: httpx makes a context per client otherwise, 60 ms of CPU each time."""
    async with httpx.AsyncClient(timeout=TIMEOUT, verify=tls_context()) as http:
        yield http


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def settings(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> Settings:
    return make_settings(tmp_path, discord_fake, seaart)


@pytest.fixture
async def running_bot(settings: Settings, discord_fake: FakeDiscord, clock: Clock) -> AsyncIterator[RunningBot]:
    running = await start_bot(settings, discord_fake, clock)
    yield running
    await running.close()


def final_message(discord_fake: FakeDiscord, interaction_id: int) -> FakeMessage | None:
    interaction = discord_fake.interactions[interaction_id]
    if interaction.original_message_id is None:
        return None
    return discord_fake.messages.get(interaction.original_message_id)


# A command still waiting on the database 2 s after it was asked (a loaded machine) is answered "thinking…"
# first (a type 5 deferral, cogs/slow_answers.py); its answer is then the follow-up that replaces it. Only
# /imagine and the Edit menu (promises) are never deferred; every other command may be.
DEFERRED = 5


async def answer_given(discord_fake: FakeDiscord, interaction: FakeInteraction, timeout: float = 30) -> None:
    """Wait until ``interaction`` has its answer: its first callback, and after a deferral its follow-up.
    ``timeout`` only bounds a wait that fails the test anyway."""
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=timeout)
    if interaction.callbacks[0]["type"] == DEFERRED:
        await discord_fake.wait_for(lambda: bool(interaction.followup_ids), timeout=timeout)


def answer_data(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, Any]:
    """The data of the answer :func:`answer_given` waited for, as the member reads it: the first callback's,
    or after a deferral the follow-up's content, embeds, components, attachments and flags."""
    callback = interaction.callbacks[0]
    if callback["type"] != DEFERRED:
        return dict(callback.get("data") or {})
    message = discord_fake.messages[interaction.followup_ids[0]]
    return {
        "content": message.content,
        "embeds": message.embeds,
        "components": message.components,
        "attachments": message.attachments,
        "allowed_mentions": message.allowed_mentions,
        "flags": message.flags,
    }


async def first_answer(discord_fake: FakeDiscord, interaction: FakeInteraction, timeout: float = 30) -> dict[str, Any]:
    """The first answer to ``interaction`` shaped as its callback, ``{"type", "data"}``; after a deferral,
    type 5 with the follow-up's data (:func:`answer_data`)."""
    await answer_given(discord_fake, interaction, timeout)
    return {"type": interaction.callbacks[0]["type"], "data": answer_data(discord_fake, interaction)}


async def answered(
    discord_fake: FakeDiscord, name: str, options: dict[str, Any], timeout: float = 30, **kwargs: Any
) -> FakeInteraction:
    """A slash command, sent and answered (after a deferral, its follow-up too: the command is done)."""
    interaction = await discord_fake.slash_command(name, options, **kwargs)
    await answer_given(discord_fake, interaction, timeout)
    return interaction
