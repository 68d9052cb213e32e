"""The bot as an operator runs it: a `bananacord run` process against the fakes over sockets.

One process per database (a second one refuses to start; `generate` moves aside), SIGTERM stops it
gracefully (a create in flight gets its id stored, nothing new starts), and a DEBUG log carries no
credential.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.providers import provider_class
from bot.render import RESTARTING_NOTE
from bot.store.lock import DatabaseInUseError, DatabaseLock
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeGemini, FakeKie, FakeSeaArt, FakeSegmind
from bot.testing.providers._base import FakeProviderServer
from tests.conftest import png_bytes
from tests.e2e.bot_process import (
    BotProcess,
    bot_env,
    bot_processes,
    command_being_answered,
    start_process,
    write_config,
)
from tests.e2e.proxy import FaultProxy
from tests.e2e.test_rework import press


async def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m bot ...` without blocking the event loop the fakes answer on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env or bot_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_exit(proc: BotProcess, discord_fake: FakeDiscord, timeout: float = 30) -> int:
    # Polled, not proc.wait(): the bot needs this event loop (the fakes) to finish its work.
    await discord_fake.wait_for(lambda: proc.poll() is not None, timeout=timeout)
    assert proc.returncode is not None
    return proc.returncode


def stop_all(*procs: BotProcess | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def rows(db: Path, sql: str = "SELECT * FROM jobs ORDER BY created_at") -> list[dict[str, Any]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def states(db: Path) -> list[str]:
    return [r["state"] for r in rows(db)]


def logins(discord_fake: FakeDiscord) -> int:
    return sum(1 for r in discord_fake.requests if r.method == "GET" and r.path == "/users/@me")


# ---- one process per database ------------------------------------------------------------------


async def test_a_gemini_model_id_google_retired_stops_the_start_naming_its_setting(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Every job sent to a retired id fails (404); `run` asks Gemini for its ids first and refuses to start
    with one it does not know, naming the setting, before logging in to Discord. Known ids start as before."""
    async with FakeGemini(api_key="gemini-key") as gemini:
        retired = 'model_ids = { nano_banana_2 = "gemini-2.9-flash-image-retired" }'
        config = write_config(tmp_path, discord_fake, gemini, provider="gemini", provider_settings=retired)
        env = {**bot_env(), "GEMINI_API_KEY": "gemini-key"}
        code, _, stderr = await run_cli("run", "--config", str(config), cwd=tmp_path, env=env)
        assert code != 0 and "gemini.model_ids.nano_banana_2" in stderr, stderr
        assert "gemini-key" not in stderr
        assert logins(discord_fake) == 0 and discord_fake.identify_count == 0
        asked = [r.path for r in gemini.requests if r.method == "GET"]
        assert "/v1beta/models/gemini-2.9-flash-image-retired" in asked

        config = write_config(tmp_path, discord_fake, gemini, provider="gemini")
        bot = start_process(config, tmp_path / "bot.log", env=env)
        try:
            await discord_fake.wait_until_ready(timeout=30)
        finally:
            stop_all(bot)


async def test_second_bot_on_the_same_database_refuses_to_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    first = start_process(config, tmp_path / "first.log")
    try:
        await discord_fake.wait_until_ready(timeout=30)

        code, _, stderr = await run_cli("run", "--config", str(config), cwd=tmp_path)

        lines = stderr.strip().splitlines()
        assert code != 0
        assert len(lines) == 1, stderr
        assert str(db) in lines[0]
        assert f"pid {first.pid}" in lines[0] and socket.gethostname() in lines[0]
        # The second process never logged in or opened a gateway connection.
        assert logins(discord_fake) == 1 and discord_fake.identify_count == 1

        interaction = await discord_fake.slash_command("imagine", {"prompt": "only once"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        assert len(seaart.creates) == 1
        uploads = [r for r in discord_fake.requests if r.files]
        assert len(uploads) == 1
        assert interaction.original_message_id is not None
        assert len(discord_fake.messages[interaction.original_message_id].files) == 1
    finally:
        stop_all(first)


def test_lock_names_its_holder_and_is_free_again_once_released(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "bot.sqlite3"
    with DatabaseLock(db):
        with pytest.raises(DatabaseInUseError) as info, DatabaseLock(db):
            pass
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in info.value.user_message
        assert str(db) in info.value.user_message
    with DatabaseLock(db):  # released: a later process (or a restart after a crash) gets it
        pass


async def test_generate_beside_a_running_bot_leaves_the_bot_s_database_alone(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    bot = start_process(config, tmp_path / "bot.log")
    try:
        await discord_fake.wait_until_ready(timeout=30)
        # An unfinished job of the bot's: a generate that resumed it would send its create again.
        seaart.hold(True)
        await discord_fake.slash_command("imagine", {"prompt": "the bot's own job"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=20)
        seaart.hold(False)

        code, stdout, stderr = await run_cli(
            "generate", "--config", str(config), "--out", str(tmp_path / "out"), "from the shell", cwd=tmp_path
        )

        assert code == 0, stderr
        assert '"state": "delivered"' in stdout
        assert list((tmp_path / "out").iterdir())
        # Nothing of the shell's job in the bot's database, and the bot's job was not sent twice.
        assert [r["source"] for r in rows(db)] == ["discord"]
        prompts = [c.json["prompt"] for c in seaart.creates if c.json]
        assert sorted(prompts) == ["from the shell", "the bot's own job"]
    finally:
        stop_all(bot)


async def test_generate_with_the_bot_stopped_never_takes_up_the_bot_s_jobs(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """With no bot holding the database, generate ran its job runner on it, and the runner's start resumed
    every unfinished job there: a member's image went to the operator's folder, the member was charged,
    and their message said "Queued" for good. Generate's job runs on a database of its own now."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    bot = start_process(config, tmp_path / "bot.log")
    try:
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        await discord_fake.slash_command("imagine", {"prompt": "a member's job"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(db)] == ["running"], timeout=20)
        bot.send_signal(signal.SIGTERM)
        # Waited for off the event loop, so the fake SeaArt (on this loop) takes what the stopping bot sends
        # meanwhile (its grace lets a poll of the member's job finish): a blocking wait left that poll unread
        # until after the count below, and it was counted as the shell's (seen with -n 4).
        assert await asyncio.to_thread(bot.wait, 30) == 0
    finally:
        stop_all(bot)
    await asyncio.sleep(0.5)  # anything the bot sent just before it exited is read and recorded by now
    seaart.hold(False)  # the member's image is ready at SeaArt now
    before = len(seaart.requests)
    out = tmp_path / "out"
    code, stdout, stderr = await run_cli("generate", "--config", str(config), "--out", str(out), "mine", cwd=tmp_path)
    assert code == 0, stderr
    assert json.loads(stdout)["state"] == "delivered" and len(list(out.iterdir())) == 1
    assert [(r["source"], r["state"], r["charge_state"]) for r in rows(db)] == [("discord", "running", "reserved")]
    asked = {r.path for r in seaart.requests[before:] if r.method == "GET" and r.path.endswith("/status")}
    assert len(asked) == 1, "only the shell's own job was polled"


async def test_generate_into_a_folder_it_cannot_write_pays_for_nothing(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    code, _, stderr = await run_cli("generate", "--config", str(config), "--out", str(blocked), "x", cwd=tmp_path)
    assert code != 0 and f"--out {blocked}: cannot write there" in stderr and "Traceback" not in stderr
    assert seaart.creates == []


# ---- SIGTERM ------------------------------------------------------------------------------------


class HeldCreates(FaultProxy):
    """The fake SeaArt behind a proxy that holds each create until released: a provider that is slow
    to answer, but answers."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, self._hold_creates)
        self.arrived = 0
        self._open = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/model"

    def release(self) -> None:
        self._open.set()

    async def _hold_creates(self, request: web.Request) -> web.StreamResponse | None:
        if request.method == "POST" and "/requests/" not in request.path:
            self.arrived += 1
            await self._open.wait()
        return None

    async def __aexit__(self, *exc: object) -> None:
        self._open.set()
        await super().__aexit__(*exc)


@pytest.fixture
async def held_creates(seaart: FakeSeaArt) -> AsyncIterator[HeldCreates]:
    async with HeldCreates(seaart.origin) as proxy:
        yield proxy


async def test_a_bot_started_with_nohup_outlives_the_hangup(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`nohup bananacord run &` ignores SIGHUP so the bot outlives the ssh session that started it: the bot's
    own SIGHUP handler, put on top, stopped it when the session closed."""
    config = write_config(tmp_path, discord_fake, seaart)
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    bot = start_process(config, log, nohup=True)
    try:
        await discord_fake.wait_until_ready(timeout=30)
        bot.send_signal(signal.SIGHUP)  # the session closes
        await discord_fake.slash_command("imagine", {"prompt": "after the hangup"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        assert bot.poll() is None
        assert await _stop(bot, discord_fake) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait(timeout=10)
    output = log.read_text(errors="replace")
    assert "SIGHUP received" not in output and "SIGTERM received" in output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_sigterm_lets_the_create_in_flight_finish_and_starts_nothing_new(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    held_creates: HeldCreates,
    stop_signal: signal.Signals,
) -> None:
    """SIGHUP too (a closed terminal or ssh session, `kill -HUP`): it killed the bot on the spot, and the create
    in flight, made and billed at the provider, ended "uncertain" after the restart."""
    # One job at a time, so the second /imagine waits for a free slot while the first is in flight.
    config = write_config(
        tmp_path,
        discord_fake,
        held_creates.base_url,
        request_timeout=10.0,
        jobs="concurrency = 1\nshutdown_grace_seconds = 20",
    )
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    first = start_process(config, log)
    second: BotProcess | None = None
    try:
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "in flight"})
        await discord_fake.wait_for(lambda: held_creates.arrived == 1, timeout=20)
        await discord_fake.slash_command("imagine", {"prompt": "waiting"})
        # Released by the cog (it has a message id) and due: only the missing slot keeps it back.
        await discord_fake.wait_for(
            lambda: len(rows(db, "SELECT 1 FROM jobs WHERE message_id IS NOT NULL")) == 2, timeout=20
        )

        first.send_signal(stop_signal)
        await discord_fake.wait_for(
            lambda: f"{stop_signal.name} received" in log.read_text(errors="replace"), timeout=20
        )
        held_creates.release()  # the provider answers the create while the bot is stopping

        assert await wait_exit(first, discord_fake) == 0
        output = log.read_text(errors="replace")
        assert "stopped cleanly" in output and "Traceback" not in output
        by_prompt = {json.loads(r["request_json"])["prompt"]: r for r in rows(db)}
        in_flight, waiting = by_prompt["in flight"], by_prompt["waiting"]
        assert in_flight["provider_job_id"] is not None and in_flight["state"] in ("submitted", "running")
        assert waiting["state"] == "queued" and waiting["submit_started_at"] is None
        assert len(seaart.creates) == 1, "nothing new was started while stopping"

        second = start_process(config, log)
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "delivered"], timeout=30)
        assert await _stop(second, discord_fake) == 0
        prompts = sorted(c.json["prompt"] for c in seaart.creates if c.json)
        assert prompts == ["in flight", "waiting"], "exactly one create per job"
    finally:
        stop_all(first, second)


async def test_a_command_sent_while_the_bot_stops_is_told_it_goes_on_once_the_bot_is_back(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, held_creates: HeldCreates
) -> None:
    """A member's /imagine reaches the bot during a stop's grace (a create in flight holds the stop): it is
    recorded and answered, but nothing starts before the next start, so its "Queued" says the bot is
    restarting. Before, it said "Queued" alone, for as long as the bot was down."""
    config = write_config(
        tmp_path, discord_fake, held_creates.base_url, request_timeout=10.0, jobs="shutdown_grace_seconds = 20"
    )
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "in flight"})
        await discord_fake.wait_for(lambda: held_creates.arrived == 1, timeout=20)
        # Ready (a stop before then abandons the start-up and its gateway at once).
        await discord_fake.wait_for(lambda: "connected as" in log.read_text(errors="replace"), timeout=20)
        first.send_signal(signal.SIGTERM)
        await discord_fake.wait_for(lambda: "SIGTERM received" in log.read_text(errors="replace"), timeout=20)

        during = await discord_fake.slash_command("imagine", {"prompt": "during the stop"})
        await discord_fake.wait_for(lambda: during.original_message_id is not None, timeout=10)
        assert during.original_message_id is not None
        (answer,) = discord_fake.messages[during.original_message_id].embeds
        fields = {f["name"]: f["value"] for f in answer["fields"]}
        assert answer["title"].startswith("🍌 Queued")
        assert fields["Restarting"] == RESTARTING_NOTE

        held_creates.release()
        assert await wait_exit(first, discord_fake) == 0
        stopped_cleanly(log)
        waiting = next(r for r in rows(db) if json.loads(r["request_json"])["prompt"] == "during the stop")
        assert waiting["state"] == "queued" and waiting["message_id"] == during.original_message_id

        second = start()
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "delivered"], timeout=30)
        assert await _stop(second, discord_fake) == 0
    done = discord_fake.messages[during.original_message_id]
    assert done.files and "Restarting" not in {f["name"] for f in done.embeds[0]["fields"]}


def stopped_cleanly(log: Path) -> str:
    """The bot's log, once it says the stop was clean and holds no traceback and no error line."""
    output = log.read_text(errors="replace")
    assert "stopped cleanly" in output and "Traceback" not in output and " ERROR " not in output, output[-2000:]
    return output


async def test_sigterm_lets_a_command_being_answered_finish_before_the_database_closes(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member's /imagine is being answered when the stop comes (Discord slow to take the answer). The
    bot closes the gateway (nothing new arrives), lets that answer finish, and only then closes the
    database: the job is recorded in its message, and the next start runs it. Before, the database
    closed under the command's handler ("Cannot operate on a closed database", an error with a traceback,
    seen in bench/soak.py --terms 3 --seed 102), and the job waited held for the next start to find
    its message."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        interaction = await command_being_answered(discord_fake, "answered while stopping")
        first.send_signal(signal.SIGTERM)
        await discord_fake.wait_for(lambda: not discord_fake.connected, timeout=20)  # the gateway closed
        await asyncio.sleep(1.0)  # the stop goes on meanwhile; nothing else is in flight
        discord_fake.hold_callbacks(False)  # Discord takes the answer
        assert await wait_exit(first, discord_fake) == 0
        stopped_cleanly(log)
        (job,) = rows(db)
        assert job["message_id"] == interaction.original_message_id is not None  # recorded in its message
        assert job["state"] == "queued" and seaart.creates == []  # nothing started while stopping

        second = start()
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        assert await _stop(second, discord_fake) == 0
        assert len(seaart.creates) == 1 and discord_fake.messages[job["message_id"]].files


async def test_sigterm_does_not_wait_for_ever_on_a_command_discord_never_answers(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The same command, but Discord never takes the answer: the stop waits for it only so long
    (bot/gateway_drain.py HANDLER_DRAIN_SECONDS), cancels it, and exits 0 without an error; the next
    start finds no message for the job and ends it uncharged."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        interaction = await command_being_answered(discord_fake, "never answered")
        first.send_signal(signal.SIGTERM)
        assert await wait_exit(first, discord_fake, timeout=20) == 0
        assert "1 handler(s) still running after 5 s cancelled" in stopped_cleanly(log)
        discord_fake.expire_token(interaction.token)  # the interaction is gone: nobody saw a message
        discord_fake.hold_callbacks(False)
        start()
        await discord_fake.wait_for(lambda: states(db) == ["cancelled"], timeout=30)
        (job,) = rows(db)
        assert job["charge_state"] == "refunded" and seaart.creates == []


@pytest.mark.parametrize("action", ["Re-roll", "Edit", "reply"], ids=["a-button", "the-edit-form", "a-reply"])
async def test_sigterm_lets_a_press_a_form_or_a_reply_being_answered_finish_before_the_database_closes(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, action: str
) -> None:
    """As for a command, for the other kinds of handler a stop must wait on (discord.py runs each in a
    task of its own, bot/gateway_drain.py): a button press (Re-roll) and a submitted form (Edit's) whose
    answer Discord holds when SIGTERM comes, and a member's reply to the image whose answer Discord
    failed once (500: discord.py tries again a second later). The new job is recorded in the message
    its answer made, and the next start runs it."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    with bot_processes(config, log) as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "a lighthouse"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        original = discord_fake.messages[rows(db)[0]["message_id"]]
        await discord_fake.wait_for(lambda: bool(original.files), timeout=10)
        if action == "reply":
            posts = rf"^/channels/{discord_fake.channel_id}/messages$"
            discord_fake.fail_next("POST", posts, status=500)
            reply = await discord_fake.post_message("make it night", reply_to=original.id)
            await discord_fake.wait_for(
                lambda: any(r.method == "POST" and r.status == 500 for r in discord_fake.requests), timeout=20
            )
        elif action == "Edit":
            edit = await press(discord_fake, original, "Edit")
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)  # the form is open
            discord_fake.hold_callbacks()
            answered = await discord_fake.submit_modal(edit, {"instruction": "at night"})
        else:
            discord_fake.hold_callbacks()
            answered = await press(discord_fake, original, action)
        if action != "reply":
            await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
        first.send_signal(signal.SIGTERM)
        await discord_fake.wait_for(lambda: not discord_fake.connected, timeout=20)  # the gateway closed
        if action != "reply":
            await asyncio.sleep(1.0)
            discord_fake.hold_callbacks(False)  # Discord takes the answer
        assert await wait_exit(first, discord_fake) == 0
        stopped_cleanly(log)
        _, job = rows(db)
        if action == "reply":
            (answer,) = discord_fake.bot_replies_to(reply.id)
            assert job["message_id"] == answer.id and job["reply_to_message_id"] == reply.id
        else:
            assert job["message_id"] == answered.original_message_id is not None  # recorded in its message
        assert job["state"] == "queued" and len(seaart.creates) == 1  # nothing started while stopping

        second = start()
        await discord_fake.wait_for(lambda: states(db) == ["delivered", "delivered"], timeout=30)
        assert await _stop(second, discord_fake) == 0
        assert len(seaart.creates) == 2 and discord_fake.messages[job["message_id"]].files


async def _stop(proc: BotProcess, discord_fake: FakeDiscord) -> int:
    proc.send_signal(signal.SIGTERM)
    return await wait_exit(proc, discord_fake)


async def test_sigint_also_stops_cleanly(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    log = tmp_path / "bot.log"
    proc = start_process(config, log)
    try:
        await discord_fake.wait_until_ready(timeout=30)
        proc.send_signal(signal.SIGINT)
        assert await wait_exit(proc, discord_fake) == 0
    finally:
        stop_all(proc)
    output = log.read_text(errors="replace")
    assert "SIGINT received" in output and "stopped cleanly" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


# ---- no credential in a DEBUG log ---------------------------------------------------------------


async def test_debug_log_carries_no_credentials(tmp_path: Path) -> None:
    token = f"canary-discord-token-{secrets.token_hex(8)}"
    key = f"canary-seaart-key-{secrets.token_hex(8)}"
    log = tmp_path / "bot.log"
    async with FakeDiscord(bot_token=token) as discord_fake, FakeSeaArt(api_key=key) as seaart:
        config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0, log_level="DEBUG")
        db = tmp_path / "bot.sqlite3"
        proc = start_process(config, log, env=bot_env(token, key))
        try:
            await discord_fake.wait_until_ready(timeout=30)
            reference = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
            seaart.script("success", "error:CONTENT_BLOCKED", "create_401", "hostile:loop")
            interactions: list[FakeInteraction] = []

            async def imagine(options: dict[str, Any], then: list[str]) -> None:
                interactions.append(await discord_fake.slash_command("imagine", options))
                await discord_fake.wait_for(lambda: states(db) == then, timeout=30)

            await imagine({"prompt": "ok", "image1": reference}, ["delivered"])
            await imagine({"prompt": "blocked"}, ["delivered", "blocked"])
            await imagine({"prompt": "rejected key"}, ["delivered", "blocked", "failed"])
            await imagine({"prompt": "a looping link"}, ["delivered", "blocked", "failed", "failed"])
            liar = discord_fake.add_attachment(b"<html>not an image</html>", "liar.png", "image/png")
            ended = ["delivered", "blocked", "failed", "failed", "failed"]
            await imagine({"prompt": "a lying file", "image1": liar}, ended)
            # And a member's Cancel: the click's token, the provider's cancel call.
            seaart.hold(True)
            await imagine({"prompt": "called off"}, [*ended, "running"])
            message = discord_fake.messages[interactions[-1].original_message_id or 0]
            (cancel,) = [c["custom_id"] for row in message.components for c in row["components"]]
            interactions.append(await discord_fake.click(message.id, str(cancel), user_id=discord_fake.member_id))
            await discord_fake.wait_for(lambda: states(db) == [*ended, "cancelled"], timeout=30)
            await discord_fake.wait_for(lambda: any(r.path.endswith("/cancel") for r in seaart.requests), timeout=10)
            assert await _stop(proc, discord_fake) == 0
        finally:
            stop_all(proc)
    output = log.read_text(errors="replace")
    assert " DEBUG " in output, "the run logged at DEBUG, so the check below means something"
    for secret in (token, key, *(i.token for i in interactions)):
        assert secret not in output
    # Hostile links and lying files are expected faults: handled with a message, not a traceback.
    assert "Traceback" not in output


# Each provider's fake and how the adapter is set up; every one sends its key its own way (Bearer for Kie
# and sinancode, x-api-key for Segmind, x-goog-api-key for Gemini).
OTHER_PROVIDERS: dict[str, tuple[Callable[[str], FakeProviderServer[Any]], str]] = {
    "kie": (lambda key: FakeKie(flavour="kie", api_key=key), ""),
    "sinancode": (lambda key: FakeKie(flavour="sinancode", api_key=key), ""),
    "segmind": (lambda key: FakeSegmind(api_key=key), 'mode = "v2"'),
    "gemini": (lambda key: FakeGemini(api_key=key, retry_delay="0.2s"), ""),
}


@pytest.mark.parametrize("provider", sorted(OTHER_PROVIDERS))
async def test_debug_log_carries_no_credentials_of_any_provider(tmp_path: Path, provider: str) -> None:
    """As above, for the providers that send their key their own way: a job delivered, one refused for a
    rejected key, one delivered after the provider's 429, all logged at DEBUG."""
    make_fake, extra = OTHER_PROVIDERS[provider]
    token = f"canary-discord-token-{secrets.token_hex(8)}"
    key = f"canary-{provider}-key-{secrets.token_hex(8)}"
    log = tmp_path / "bot.log"
    fake = make_fake(key)
    async with FakeDiscord(bot_token=token) as discord_fake, fake:
        config = write_config(
            tmp_path,
            discord_fake,
            fake,
            log_level="DEBUG",
            request_timeout=10.0,
            provider=provider,
            provider_settings=extra,
        )
        db = tmp_path / "bot.sqlite3"
        proc = start_process(config, log, env={**bot_env(token), provider_class(provider).key_env: key})
        try:
            await discord_fake.wait_until_ready(timeout=30)
            fake.script("success", "auth", "rate_limited", "success")
            interactions = []
            for prompt, then in (
                ("ok", ["delivered"]),
                ("rejected key", ["delivered", "failed"]),
                ("rate limited", ["delivered", "failed", "delivered"]),
            ):
                interactions.append(await discord_fake.slash_command("imagine", {"prompt": prompt}))
                await discord_fake.wait_for(lambda then=then: states(db) == then, timeout=60)
            assert await _stop(proc, discord_fake) == 0
        finally:
            stop_all(proc)
    output = log.read_text(errors="replace")
    assert " DEBUG " in output and f"{provider}" in output
    for secret in (token, key, *(i.token for i in interactions)):
        assert secret not in output
    assert "Traceback" not in output


async def test_the_bot_exempts_its_start_up_objects_from_the_cycle_collector(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`bananacord run` freezes what start-up built (bot/gcwatch.py) and reports the collector's time in
    the stats file bench/load.py reads; a job still runs to delivery after the freeze."""
    config = write_config(tmp_path, discord_fake, seaart, request_timeout=10.0)
    db = tmp_path / "bot.sqlite3"
    proc = start_process(config, tmp_path / "bot.log")
    try:
        await discord_fake.wait_until_ready(timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "after the freeze"})
        await discord_fake.wait_for(lambda: states(db) == ["delivered"], timeout=30)
        assert await _stop(proc, discord_fake) == 0
    finally:
        stop_all(proc)
    stats = json.loads(db.with_name(db.name + ".stats.json").read_text(encoding="utf-8"))
    # discord.py, pydantic, httpx and aiohttp alone are tens of thousands of objects.
    assert stats["gc_frozen"] > 20_000
    assert stats["gc_seconds"] >= 0 and stats["gc_full_passes"] >= 0
