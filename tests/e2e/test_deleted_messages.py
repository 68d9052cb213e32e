"""A job whose message is deleted while it runs is cancelled: at the provider, uncharged, never drawn again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.test_buttons import rows, start_running_job, states


def owed(settings: Settings) -> int:
    with sqlite3.connect(settings.database.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM owed_edits").fetchone()[0])


def calls_to(discord_fake: FakeDiscord, message_id: int, after: float) -> list[str]:
    return [f"{r.method} {r.path}" for r in discord_fake.requests if r.at > after and r.path.endswith(f"/{message_id}")]


async def test_deleting_a_running_jobs_message_cancels_it(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    deleted_at = time.monotonic()  # the clock the fake stamps requests with
    await discord_fake.delete_messages(message_id)  # the member deletes it in their client
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    (job,) = rows(settings)
    assert job["charge_state"] == "refunded" and job["cancelled_by"] is None
    assert [r.method for r in seaart.requests if r.path.endswith("/cancel")] == ["PUT"]
    seaart.release()
    await asyncio.sleep(1.0)  # a poll or an edit that should not come would come by now
    assert states(settings) == ["cancelled"]
    # Nothing tried to draw on the deleted message, so nothing is owed either.
    assert calls_to(discord_fake, message_id, deleted_at) == [] and owed(settings) == 0


async def test_a_purge_cancels_the_batch_it_removed_and_nothing_else(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, running_bot: RunningBot
) -> None:
    seaart.hold(True)
    batch = await discord_fake.slash_command("imagine", {"prompt": "two to be purged", "count": 2})
    kept = await discord_fake.slash_command("imagine", {"prompt": "left alone"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    chatter = await discord_fake.post_message("nice")
    assert batch.original_message_id is not None and kept.original_message_id is not None
    await discord_fake.delete_messages(batch.original_message_id, chatter.id)  # one bulk delete
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "cancelled", "running"], timeout=10)
    seaart.release()
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "cancelled", "delivered"], timeout=20)
    by_prompt: dict[str, list[sqlite3.Row]] = {}
    for row in rows(settings):
        by_prompt.setdefault(json.loads(row["request_json"])["prompt"], []).append(row)
    assert {r["state"] for r in by_prompt["two to be purged"]} == {"cancelled"}
    assert {r["charge_state"] for r in by_prompt["two to be purged"]} == {"refunded"}
    assert [r["state"] for r in by_prompt["left alone"]] == ["delivered"]
    assert owed(settings) == 0
