"""Links carrying a user name and password (``http://user:pass@host/...``), as a provider's result and as a member's
reference: httpx turned the userinfo into an Authorization header, aiohttp refused to send both with a ValueError
nothing caught, and the result was tried six times (a traceback each) or the reference's job step retried until
its deadline. Now the address guard refuses such a link once, saying why, and no log line names the password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, png_bytes
from tests.e2e.edits import jobs
from tests.e2e.test_hostile_results import run_outcome
from tests.e2e.test_remix import INSTRUCTION, MENU, form_of

PASSWORD = "CANARY-PASSWORD-77"


async def test_a_result_link_with_userinfo_is_refused_once_with_a_clear_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seaart.redirect_target = f"http://cdnuser:{PASSWORD}@127.0.0.1:{seaart.port}/files/anything.png"
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:internal")
    assert (row["state"], row["error_category"], row["delivery_attempts"]) == ("failed", "delivery", 0)
    assert "user name or password" in shown, shown
    assert not any(r.path == "/files/anything.png" for r in seaart.requests)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert PASSWORD not in caplog.text


async def test_a_reference_link_with_userinfo_ends_the_job_at_once_naming_it(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    linked = discord_fake.add_attachment(png_bytes(), "sky.png", "image/png")
    url = linked["url"].replace("://", f"://member:{PASSWORD}@", 1)
    post = await discord_fake.post_message("look", image_links=[url], user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    await form_of(discord_fake, used)
    await discord_fake.submit_modal(used, {INSTRUCTION: "make it a watercolour"})
    # Before, the job's step failed with a traceback and was retried until the job's deadline.
    await discord_fake.wait_for(lambda: [row["state"] for row in jobs(settings)] == ["failed"], timeout=30)
    (job,) = jobs(settings)
    assert "user name or password" in str(job["error_message"]), job["error_message"]
    assert not [r for r in caplog.records if "step failed; will retry" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert seaart.creates == [], "nothing was sent to the provider"
    assert PASSWORD not in caplog.text
