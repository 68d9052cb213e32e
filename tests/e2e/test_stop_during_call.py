"""A graceful stop while a Gemini call's answer is in hand and its "Generating" edit is still going.

A Gemini job's create is the drawing itself: a call of a minute or more, whose answer is the image (paid
for). Beside the call the bot redraws the job's message as "Generating", and the answer is shown only once
that edit has ended, so the edit never lands over it. When Discord is slow to take that edit (discord.py
retries a 5xx for up to ~25 s), the answer waited on it, in memory only; a stop that gave up on the step
lost the image, and the next start could only call the job uncertain and refund it.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from bot.providers import provider_class
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeGemini
from tests.conftest import SEAART_KEY
from tests.e2e.bot_process import bot_env, bot_processes, write_config
from tests.e2e.test_failing_disk import ledger, rows, states


async def test_a_stop_while_the_generating_edit_hangs_keeps_the_image_the_call_returned(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    async with FakeGemini(api_key=SEAART_KEY) as gemini:
        config = write_config(
            tmp_path,
            discord_fake,
            gemini,
            provider="gemini",
            request_timeout=30.0,
            jobs="shutdown_grace_seconds = 2",
        )
        db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
        env = bot_env() | {provider_class("gemini").key_env: SEAART_KEY}
        with bot_processes(config, log, env) as start:
            first = start()
            await discord_fake.wait_until_ready(timeout=30)
            gemini.hold(True)
            command = await discord_fake.slash_command("imagine", {"prompt": "drawn while Discord stalls"})
            await discord_fake.wait_for(lambda: len(gemini.jobs) == 1 and bool(command.callbacks), timeout=20)
            discord_fake.hold_edits()  # the "Generating" edit, about a second after the first message
            await discord_fake.wait_for(lambda: discord_fake.edits_waiting == 1, timeout=20)
            gemini.hold(False)  # the image comes back while that edit hangs
            with contextlib.suppress(TimeoutError):
                await discord_fake.wait_for(lambda: states(db) == ["submitted"], timeout=5)
            first.send_signal(signal.SIGTERM)
            await discord_fake.wait_for(lambda: first.poll() is not None, timeout=30)
            assert first.returncode == 0
            discord_fake.hold_edits(False)
            start()
            await discord_fake.wait_for(lambda: states(db) not in ([], ["queued"], ["submitted"]), timeout=30)
            await discord_fake.wait_for(lambda: states(db) != ["succeeded"], timeout=30)
    (job,) = rows(db)
    assert job["state"] == "delivered", (job["state"], job["error_message"])
    assert job["charge_state"] == "committed" and ledger(db) == [(job["id"], "reserve"), (job["id"], "commit")]
    assert len(gemini.creates) == 1
    assert command.original_message_id is not None
    shown = discord_fake.messages[command.original_message_id]
    assert len(shown.files) == 1 and "Done" in str(shown.embeds[0]["title"])
    assert "cancelling 1 job step(s) still running after 2 s: job-" in log.read_text(encoding="utf-8")
