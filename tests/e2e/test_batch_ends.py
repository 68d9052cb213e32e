"""A batch's end (`/imagine count:N`) that Discord refuses to show: drawn again through the interaction while it
lives, and, when it can never be shown, told to the member once for the whole request, with the batch's card.

The runner retries a refused final edit on `[jobs] final_edit_retry_seconds`; these tests configure a short
schedule. A lone job's side of the same is tests/e2e/test_final_edits.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction, RecordedRequest
from bot.testing.providers import FakeSeaArt
from tests.conftest import make_settings, start_bot
from tests.e2e.edits import jobs, states

RETRIES = (0.1, 0.2, 0.2)
MISSING_ACCESS = {"code": 50001, "message": "Missing Access"}  # the bot token in a channel it may not view
NONE_CAME = "None of the 2 images came"


def owed(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [row[0] for row in conn.execute("SELECT job_id FROM owed_edits")]


def tokens(settings: Settings) -> list[str | None]:
    return [row["interaction_token"] for row in jobs(settings)]


def draws(title: str) -> Callable[[RecordedRequest], bool]:
    return lambda request: request.method == "PATCH" and title in json.dumps(request.json, ensure_ascii=False)


def shows_a_failure(request: RecordedRequest) -> bool:
    """An edit of the batch's message whose embed shows a candidate that brought nothing."""
    return request.method == "PATCH" and "❌" in json.dumps(request.json, ensure_ascii=False)


def title(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    message = discord_fake.messages.get(interaction.original_message_id or 0)
    return "" if message is None else str(message.embeds[0]["title"])


def hide(discord_fake: FakeDiscord) -> int:
    """A channel the bot may not view: slash commands work there (their answers edited through the
    interaction's webhook), but the bot token's channel routes are refused."""
    hidden = discord_fake.add_channel("staff", hidden=True)
    discord_fake.fail_next("*", rf"^/channels/{hidden}/", status=403, body=MISSING_ACCESS, times=1000)
    return hidden


async def test_a_batch_s_end_refused_once_is_drawn_again_through_the_interaction(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Every candidate's interaction token was cleared with its end, so the end's next tries went through the bot
    token, which a channel the bot may not view refuses: the member read "Generating 2 images…" with a live
    Cancel until a DM came. A lone job kept its token until its end was shown; now so does a candidate."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": list(RETRIES)})
    hidden = hide(discord_fake)
    # The first draw of the batch's end is refused (a 403 is not retried by discord.py itself).
    discord_fake.fail_next("PATCH", r"/webhooks/", status=403, times=1, match=draws(NONE_CAME))
    seaart.script("error:REQUEST_INVALID", "error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "two refused", "count": 2}, channel_id=hidden
        )
        await discord_fake.wait_for(lambda: NONE_CAME in title(discord_fake, interaction), timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
        await asyncio.sleep(0.5)  # would a DM still come?
    finally:
        await running.close()
    assert states(settings) == ["failed", "failed"]
    assert [r.status for r in discord_fake.requests if draws(NONE_CAME)(r)] == [403, 200]
    assert not [r for r in discord_fake.requests if draws(NONE_CAME)(r) and r.path.startswith("/channels/")]
    assert discord_fake.dms_to(interaction.user_id) == []
    assert tokens(settings) == [None, None]  # a credential: cleared once the end is shown


async def test_a_batch_s_end_owed_across_a_restart_keeps_the_interaction_to_draw_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The debt is kept in SQLite across a stop, and so is the token it is drawn with."""
    waits = [0.1, 60.0]  # the first try refused, the next left for the restart
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": waits})
    hidden = hide(discord_fake)
    refusing = True
    discord_fake.fail_next(
        "PATCH", r"/webhooks/", status=403, times=1000, match=lambda r: refusing and draws(NONE_CAME)(r)
    )
    seaart.script("error:REQUEST_INVALID", "error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "two refused", "count": 2}, channel_id=hidden
        )
        await discord_fake.wait_for(lambda: states(settings) == ["failed", "failed"], timeout=20)
        await discord_fake.wait_for(
            lambda: len([r for r in discord_fake.requests if draws(NONE_CAME)(r)]) >= 2, timeout=10
        )
    finally:
        await running.close()
    [debt] = owed(settings)
    assert [row["interaction_token"] is not None for row in jobs(settings) if row["id"] == debt] == [True]
    refusing = False
    again = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: NONE_CAME in title(discord_fake, interaction), timeout=10)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
    finally:
        await again.close()
    assert discord_fake.dms_to(interaction.user_id) == []
    assert tokens(settings) == [None, None]


async def test_a_batch_s_end_never_shown_is_told_once_with_the_batch_s_card(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Each candidate given up on sent its own DM, each a lone job's card: three DMs for one request."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": list(RETRIES)})
    discord_fake.fail_next("PATCH", r"/messages/", status=403, times=1000, match=shows_a_failure)
    seaart.script("error:REQUEST_INVALID", "error:REQUEST_INVALID", "error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "three refused", "count": 3})
        member = interaction.user_id
        await discord_fake.wait_for(lambda: states(settings) == ["failed"] * 3, timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [] and len(discord_fake.dms_to(member)) >= 1, timeout=20)
        await asyncio.sleep(0.5)  # would a second DM still come?
    finally:
        await running.close()
    assert "Generating 3 images" in title(discord_fake, interaction)  # Discord never let the message change
    [dm] = discord_fake.dms_to(member)
    assert "Your 3 images" in str(dm.content) and "would not let me update their message" in str(dm.content)
    assert dm.embeds[0]["title"] == "🍌 None of the 3 images came"
    assert all(row["id"] in dm.embeds[0]["footer"]["text"] for row in jobs(settings))  # which request

    # The debts are settled: a restart sends nothing more.
    again = await start_bot(settings, discord_fake)
    try:
        await asyncio.sleep(1.0)
    finally:
        await again.close()
    assert len(discord_fake.dms_to(member)) == 1


async def test_a_batch_partly_delivered_whose_end_is_never_shown_is_told_with_the_batch_s_card(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The DM shows the request as its message would have: one image ready, one that brought nothing."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": list(RETRIES)})
    refusing = False
    discord_fake.fail_next(
        "PATCH", r"/messages/", status=403, times=1000, match=lambda r: refusing and shows_a_failure(r)
    )
    seaart.hold()
    seaart.script("success", "error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "one of two", "count": 2})
        member = interaction.user_id
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 2, timeout=20)
        [good] = [key for key, job in seaart.jobs.items() if job.outcome == "success"]
        [bad] = [key for key, job in seaart.jobs.items() if job.outcome != "success"]
        seaart.release(good)
        await discord_fake.wait_for(lambda: "delivered" in states(settings), timeout=20)
        refusing = True
        seaart.release(bad)
        await discord_fake.wait_for(lambda: sorted(states(settings)) == ["delivered", "failed"], timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [] and len(discord_fake.dms_to(member)) >= 1, timeout=20)
        await asyncio.sleep(0.5)  # would a second DM still come?
    finally:
        await running.close()
    [dm] = discord_fake.dms_to(member)
    assert dm.embeds[0]["title"] == "🍌 1 of 2 ready"
    assert "Your 2 images" in str(dm.content)


async def test_a_candidate_given_up_on_while_another_runs_is_shown_by_the_batch_s_next_edit_not_a_dm(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The request has not ended: the next candidate's edit draws the message whole, the failure included, so
    nobody is to be told by DM. Before, the candidate given up on sent its own."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": list(RETRIES)})
    refusing = True
    discord_fake.fail_next(
        "PATCH", r"/messages/", status=403, times=1000, match=lambda r: refusing and shows_a_failure(r)
    )
    seaart.hold()
    seaart.script("error:REQUEST_INVALID", "success")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "one late", "count": 2})
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 2, timeout=20)
        [bad] = [key for key, job in seaart.jobs.items() if job.outcome != "success"]
        seaart.release(bad)
        # Its end written and owed, then given up on (nothing shows it: every edit showing it is refused).
        await discord_fake.wait_for(lambda: "failed" in states(settings), timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=20)
        await asyncio.sleep(0.5)  # would a DM come now?
        assert discord_fake.dms_to(interaction.user_id) == []
        refusing = False
        seaart.hold(False)
        await discord_fake.wait_for(lambda: title(discord_fake, interaction) == "🍌 1 of 2 ready", timeout=20)
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    assert sorted(states(settings)) == ["delivered", "failed"]
    assert discord_fake.dms_to(interaction.user_id) == []
