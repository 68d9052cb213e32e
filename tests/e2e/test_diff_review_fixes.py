"""Fixes from a review of one day's diff, through the real bot against the fake providers and the fake Discord.

A job whose provider was turned off before a restart ends, refunded and told why (it ran for ever past its
deadline, and looped with tracebacks before it); a failover that drops a preferred resolution charges the units
and size delivered (it charged the preference's); a lost task's callback kept during a stop is taken up by a
start that comes after the job's wait (the job failed "uncertain" and the kept callback was dropped).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeGemini
from bot.testing.serving import free_port
from tests.conftest import answered, final_message, start_bot
from tests.e2e.test_callbacks import settings_for
from tests.e2e.test_failover import KEY, Fakes, boot, done, fakes, rows  # noqa: F401 (the fixture)
from tests.e2e.test_lost_tasks import jobs, kie_fake, ledger, logged, waiting

DOWN_FOR = 660  # eleven minutes: past the default deadline of ten


def move_back(db: Path, seconds: float) -> None:
    """What ``seconds`` of the bot being down leaves: every time the rows hold is that much older."""
    columns = ("created_at", "next_poll_at", "deadline_at", "started_at", "submit_started_at", "token_expires_at")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobs SET " + ", ".join(f"{c} = {c} - ?1" for c in columns), (seconds,))
    conn.close()


def ledger_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT kind, units, size, provider FROM ledger ORDER BY id").fetchall()


def step_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum("step failed" in r.getMessage() for r in caplog.records)


def shown(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    message = final_message(discord_fake, interaction.id)
    return json.dumps(message.embeds) if message is not None else ""


async def a_job_running_on_seaart_then_seaart_turned_off(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fake: Fakes,
    *,
    down_for: float,
) -> tuple[Settings, FakeInteraction]:
    """A job SeaArt took and has not finished; the bot stops, is down ``down_for`` seconds, and comes back with
    SeaArt turned off (Kie still on). Returns the second run's settings and the job's interaction."""
    first = fake.settings(tmp_path, discord_fake, ["seaart", "kie"], quotas={"enabled": True})
    fake.seaart.hold(True)
    running = await boot(first, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "made on seaart"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(first)] == ["running"], timeout=20)
    finally:
        await running.close()
    move_back(first.database.path, down_for)
    return fake.settings(tmp_path, discord_fake, ["kie"], quotas={"enabled": True}), interaction


@pytest.mark.parametrize(
    ("down_for", "state", "category"),
    [(DOWN_FOR, "expired", "expired"), (0, "failed", "internal")],
    ids=["back-after-the-deadline", "back-before-the-deadline"],
)
async def test_a_job_whose_provider_was_turned_off_ends_refunded_and_its_member_told(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    down_for: float,
    state: str,
    category: str,
) -> None:
    """Past its deadline the job was asked about once more (today's change), and the poll's provider_of raised
    outside the poll's own handling: "step failed; will retry" for ever, the job running, its units held. Before
    its deadline it looped the same way until the deadline. Now it ends at its first step, refunded, saying the
    provider was turned off; nothing is sent to a provider, and no step fails."""
    caplog.set_level(logging.INFO)
    second, interaction = await a_job_running_on_seaart_then_seaart_turned_off(
        tmp_path, discord_fake, fakes, down_for=down_for
    )
    creates = len(fakes.seaart.creates)
    running = await boot(second, discord_fake)
    try:
        await discord_fake.wait_for(lambda: done(second), timeout=30)
        await discord_fake.wait_for(lambda: "turned off" in shown(discord_fake, interaction), timeout=10)
    finally:
        await running.close()
    (job,) = rows(second)
    assert (job["state"], job["error_category"], job["charge_state"]) == (state, category, "refunded")
    assert "`seaart`" in job["error_message"] and "not charged" in job["error_message"]
    assert [kind for kind, *_ in ledger_rows(second)] == ["reserve", "refund"]
    assert step_failures(caplog) == 0
    assert len(fakes.seaart.creates) == creates and fakes.kie.creates == [], "nothing sent again"


async def test_a_failover_that_drops_a_preferred_4k_charges_the_units_and_size_delivered(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """4K saved in /preferences; SeaArt out of credit; Gemini (a model making 1K only) takes the job without
    the 4K. The reservation kept the 4K's 3 units and size, and the commit charged them for a 1K image."""
    lite = FakeGemini(api_key=KEY, hang_seconds=5, models={"gemini-3.1-flash-lite-image": "flash"})
    async with lite:
        fakes.gemini = lite
        settings = fakes.settings(tmp_path, discord_fake, ["seaart", "gemini"])
        settings.providers.gemini.model_ids["nano_banana_2"] = "gemini-3.1-flash-lite-image"
        fakes.seaart.script("out_of_credit")
        running = await boot(settings, discord_fake)
        try:
            await answered(discord_fake, "preferences", {"resolution": "4K"})
            await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
            await discord_fake.wait_for(lambda: done(settings), timeout=30)
        finally:
            await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["provider"], job["charge_state"]) == ("delivered", "gemini", "committed")
    assert json.loads(job["request_json"]).get("resolution") is None
    assert ledger_rows(settings) == [("reserve", 1, "1K", "seaart"), ("commit", 1, "1K", "gemini")]
    assert job["charge_units"] == 1


async def test_a_failover_that_would_hold_more_units_than_reserved_is_refused(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """Units where the 4K is the cheaper size (1 unit, 1K 2): the move without the 4K would charge more than
    the quota admitted, and the runner cannot check the member's quota (it depends on their roles). The job
    ends with SeaArt's own failure, refunded, as when no other provider serves it; it was moved and charged
    the 4K's 1 unit for a 1K image."""
    lite = FakeGemini(api_key=KEY, hang_seconds=5, models={"gemini-3.1-flash-lite-image": "flash"})
    async with lite:
        fakes.gemini = lite
        units = {"nano_banana_2": {"512": 1, "1K": 2, "2K": 2, "4K": 1}}
        settings = fakes.settings(tmp_path, discord_fake, ["seaart", "gemini"], quotas={"units": units})
        settings.providers.gemini.model_ids["nano_banana_2"] = "gemini-3.1-flash-lite-image"
        fakes.seaart.script("out_of_credit")
        running = await boot(settings, discord_fake)
        try:
            await answered(discord_fake, "preferences", {"resolution": "4K"})
            await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
            await discord_fake.wait_for(lambda: done(settings), timeout=30)
        finally:
            await running.close()
        assert lite.creates == []
    (job,) = rows(settings)
    assert (job["state"], job["provider"], job["charge_state"]) == ("failed", "seaart", "refunded")
    assert job["error_category"] == "out_of_credit"
    assert ledger_rows(settings) == [("reserve", 1, "4K", "seaart"), ("refund", -1, "4K", "seaart")]


async def test_a_callback_kept_during_a_stop_is_taken_up_by_a_start_after_the_job_s_wait(
    tmp_path: Path, discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while a create hangs; Kie's callback for its task comes 0.5 s later, within the job's 6 s wait,
    and is answered 503 and kept. The bot is back after the wait (the rows and the kept callback moved back ten
    seconds, as being down that long leaves them). The runner's loop, started before the kept task was traced,
    failed the job "uncertain" at its first step, and the kept task, called back more than the wait ago, was
    dropped: Kie made and billed an image the member never got."""
    caplog.set_level(logging.INFO)
    async with kie_fake(0.5) as kie:
        kie.script("create_hang")
        settings = settings_for(
            tmp_path, discord_fake, kie, free_port(), quotas=True, request_timeout=4.0, lost_task_wait_seconds=6.0
        )
        db = settings.database.path
        kept = db.with_name(db.name + ".lost-task-callbacks")
        running = await start_bot(settings, discord_fake)
        try:
            await discord_fake.slash_command("imagine", {"prompt": "a banana, then a SIGTERM"})
            await discord_fake.wait_for(lambda: len(kie.jobs) == 1, timeout=10)
            stopping = asyncio.create_task(running.bot.shutdown(10.0))
            await discord_fake.wait_for(lambda: bool(kie.callbacks) and kie.callbacks[0].status is not None, 10)
            await stopping
        finally:
            await running.close()
        assert [c.status for c in kie.callbacks] == [503] and waiting(settings) and kept.exists()
        move_back(db, 10)
        kept.write_text(json.dumps([{**e, "at": e["at"] - 10} for e in json.loads(kept.read_text())]))
        running = await start_bot(settings, discord_fake)
        try:
            await discord_fake.wait_for(
                lambda: [r["state"] for r in jobs(settings)] in (["delivered"], ["failed"]), timeout=30
            )
        finally:
            await running.close()
    (task_id,) = kie.jobs
    (job,) = jobs(settings)
    assert job["state"] == "delivered", f"{job['state']} ({job['error_category']}): {job['error_message']}"
    assert job["provider_job_id"] == task_id and len(kie.creates) == 1
    assert ledger(settings) == ["reserve", "commit"], "charged once, for the image received"
    assert logged(caplog, f"callback names its task {task_id}") == 1
    assert not kept.exists(), "done with once traced"
