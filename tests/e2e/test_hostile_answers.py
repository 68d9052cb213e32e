"""Hostile answers from a provider's API itself (not its result links): every one is cut short, and the
job goes on to its image or ends with a clear message; nothing waits on the provider for ever.

The fake SeaArt answers status calls (or the create) with a body that never ends (a byte at a time, never
quiet long enough for a read timeout), a body of hundreds of megabytes of valid JSON, or JSON nested
deeper than a parser recurses (bot/testing/providers/_base.py Chaos), or a 429 asking to wait a day. The
real bot runs against it and the fake Discord.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.budget import MAX_RETRY_AFTER_SECONDS
from bot.models import KEPT_TEXT_CHARS
from bot.providers._adapter import HttpAdapter
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers._base import Chaos
from tests.conftest import Clock, final_message, make_settings, start_bot
from tests.e2e.test_failover import Fakes
from tests.e2e.test_hostile_results import job_row, run_outcome


async def first_status_answer_is(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, chaos: Chaos, caplog: pytest.LogCaptureFixture
) -> tuple[dict[str, Any], float]:
    """One /imagine whose status calls get ``chaos`` until the first such answer has begun, then honest
    ones. Returns the final job row and the seconds from the command to the image."""
    caplog.set_level(logging.INFO)
    settings = make_settings(
        tmp_path, discord_fake, seaart, providers={"seaart": {"base_url": seaart.base_url, "request_timeout": 1.0}}
    )
    seaart.chaos = chaos
    running = await start_bot(settings, discord_fake, Clock())
    db = settings.database.path
    try:
        sent = time.monotonic()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a lighthouse in fog"})
        await discord_fake.wait_for(lambda: bool(seaart.chaos_events), timeout=10)
        seaart.chaos = None

        def shown() -> bool:
            message = final_message(discord_fake, interaction.id)
            return message is not None and bool(message.files)

        await discord_fake.wait_for(shown, timeout=20)
        took = time.monotonic() - sent
    finally:
        await running.close()
    assert [event.fault for event in seaart.chaos_events][:1] == list(chaos.faults)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    return job_row(db), took


async def test_a_status_answer_that_never_ends_is_cut_at_the_request_timeout(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    chaos = Chaos(rate=1.0, faults=("drip",), drip_seconds=0.2, gets_only=True)
    row, took = await first_status_answer_is(tmp_path, discord_fake, seaart, chaos, caplog)
    assert row["state"] == "delivered" and row["charge_state"] == "committed"
    # The dripping answer was dropped at the 1 s request timeout; the job went on and was shown.
    assert took < 10
    assert seaart.hostile_answers and all(fault == "drip" for fault, _ in seaart.hostile_answers)


async def test_a_status_answer_of_hundreds_of_megabytes_is_refused_early(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    chaos = Chaos(rate=1.0, faults=("huge",), huge_bytes=256 * 1024 * 1024, gets_only=True)
    row, _ = await first_status_answer_is(tmp_path, discord_fake, seaart, chaos, caplog)
    assert row["state"] == "delivered" and row["charge_state"] == "committed"
    # The bot stopped reading near its limit for an API answer: the fake could not write much more than
    # that (plus what the sockets buffer) before the bot hung up.
    sent = [size for fault, size in seaart.hostile_answers if fault == "huge"]
    assert sent and max(sent) < HttpAdapter.max_answer_bytes + 16 * 1024 * 1024, sent


async def test_json_nested_past_the_parser_is_a_malformed_answer_not_a_crash(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    chaos = Chaos(rate=1.0, faults=("deep",), gets_only=True)
    row, took = await first_status_answer_is(tmp_path, discord_fake, seaart, chaos, caplog)
    assert row["state"] == "delivered" and row["charge_state"] == "committed"
    assert took < 10


async def test_a_create_answered_with_json_nested_past_the_parser_ends_clearly_and_uncharged(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seaart.chaos = Chaos(rate=1.0, faults=("deep",))
    # run_outcome also checks that nothing was posted as an image and the member was not charged.
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "success")
    assert row["state"] == "failed"
    # The create was made once, and the member is told what happened, not that the bot restarted.
    assert len(seaart.creates) == 1
    assert "restarted" not in shown
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


async def test_a_429_asking_to_wait_a_day_holds_the_job_a_minute_at_most(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A provider may ask for hours (a daily quota spent); a job is asked about again within a minute,
    and its deadline still applies, rather than the job (and every request to the provider) being
    held for the day the answer asked for."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.chaos = Chaos(rate=1.0, faults=("429",), retry_after="86400", gets_only=True)
    running = await start_bot(settings, discord_fake, Clock())
    db = settings.database.path
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a lighthouse in fog"})
        await discord_fake.wait_for(lambda: job_row(db).get("poll_errors", 0) >= 1, timeout=20)
        answered_at = time.time()
        row = job_row(db)
    finally:
        await running.close()
    assert row["state"] in ("submitted", "running")
    assert row["next_poll_at"] - answered_at <= MAX_RETRY_AFTER_SECONDS + 1
    assert [event.fault for event in seaart.chaos_events] == ["429"], "one status call, no retries inside it"


async def test_an_answer_bloated_with_text_and_accounting_keeps_only_what_is_shown_and_recorded(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A Gemini answer with its image, 20 MB of text, a 5 MB string and 100,000 numbers in its usage and
    50,000 web sources: all of it went into the job's row (and stayed in memory while the job ran). Now
    the row keeps 4,000 characters of the text, the usage entries that fit 16 KiB and ten sources."""
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
        fakes.gemini.script("bloated")
        running = await start_bot(settings, discord_fake, Clock())
        try:
            options = {"prompt": "a poster", "model": "nano_banana_pro"}
            interaction = await discord_fake.slash_command("imagine", options)
            await discord_fake.wait_for(lambda: job_row(settings.database.path).get("state") == "delivered", timeout=30)
        finally:
            await running.close()
    row = job_row(settings.database.path)
    result = json.loads(row["result_json"])
    assert len(row["result_json"]) < 32 * 1024 and len(row["handle_json"] or "") < 32 * 1024
    assert result["text"].startswith("Here is your image. and more") and len(result["text"]) == KEPT_TEXT_CHARS
    assert "padding" not in result["usage"] and "counts" not in result["usage"]
    assert result["usage"]["totalTokenCount"] > 0 and len(result["usage"]["groundingSources"]) == 10
    message = final_message(discord_fake, interaction.id)
    assert message is not None and len(message.files) == 1
    said = next(f["value"] for f in message.embeds[0]["fields"] if f["name"] == "The model said")
    assert said.startswith("Here is your image. and more") and len(said) <= 1024
