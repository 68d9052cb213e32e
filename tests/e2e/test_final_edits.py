"""When Discord refuses the edit that would show how a job ended: retried, given up, the member told by DM.

The runner retries the final edit on `[jobs] final_edit_retry_seconds` (about nine minutes in all); these
tests configure a short schedule so the give-up is reached in a second. The restart case (the debt kept in
SQLite across a SIGKILL) is tests/e2e/test_restart.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction, RecordedRequest
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, make_settings, start_bot

RETRIES = (0.1, 0.2, 0.2)
REFUSED_TITLE = "The provider refused the request"


def final_edit(request: RecordedRequest) -> bool:
    return request.method == "PATCH" and REFUSED_TITLE in json.dumps(request.json)


def owed(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [row[0] for row in conn.execute("SELECT job_id FROM owed_edits")]


def job_state(settings: Settings) -> str | None:
    with sqlite3.connect(settings.database.path) as conn:
        found = conn.execute("SELECT state FROM jobs").fetchone()
    return None if found is None else str(found[0])


UNKNOWN_MESSAGE = {"code": 10008, "message": "Unknown Message"}  # Discord's answer for a deleted message


def short_retry_settings(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> Settings:
    return make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": list(RETRIES)})


async def told_by_dm(settings: Settings, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> FakeInteraction:
    """An /imagine the provider refuses, whose message Discord never lets change (a failing PATCH the caller
    scripted): run until its member has the DM saying how it ended and nothing is owed, then a moment more (would a
    try more, or a second DM, still come?)."""
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "refused every time"})
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(interaction.user_id)) == 1, timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=20)
        await asyncio.sleep(0.5)
    finally:
        await running.close()
    return interaction


async def test_an_end_discord_never_lets_us_show_is_sent_to_the_member_by_dm(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    tries = 1 + len(RETRIES)
    # 403 is not retried by discord.py itself: every try is the runner's own.
    discord_fake.fail_next("PATCH", r"/messages/", status=403, times=tries + 5, match=final_edit)
    interaction = await told_by_dm(settings, discord_fake, seaart)
    member = interaction.user_id
    assert len([r for r in discord_fake.requests if final_edit(r)]) == tries
    assert job_state(settings) == "failed"
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    assert REFUSED_TITLE not in message.embeds[0]["title"]  # Discord never let the message change
    [dm] = discord_fake.dms_to(member)
    assert "Discord would not let me update its message" in dm.content
    assert dm.embeds[0]["title"] == f"🍌 {REFUSED_TITLE}"
    assert "refused every time" in json.dumps(dm.embeds[0])  # which job: its prompt

    # The debt is settled: a restart tries nothing more and sends nothing more.
    again = await start_bot(settings, discord_fake)
    try:
        await asyncio.sleep(1.0)
    finally:
        await again.close()
    assert len([r for r in discord_fake.requests if final_edit(r)]) == tries
    assert len(discord_fake.dms_to(member)) == 1


async def test_an_end_is_drawn_through_the_interaction_while_it_lives(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """In a channel the bot may not view, a slash command still works and its answer is edited through the
    interaction's webhook; the bot token's channel routes are refused (403 Missing Access). The end was drawn
    with the bot token (the row's end had cleared the interaction token), so the member read "Queued…" until a
    DM came. The token, a credential, is cleared once the end is shown."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    hidden = discord_fake.add_channel("staff", hidden=True)
    missing_access = {"code": 50001, "message": "Missing Access"}
    discord_fake.fail_next("*", rf"^/channels/{hidden}/", status=403, body=missing_access, times=1000)
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana"}, channel_id=hidden)

        def shows_the_end() -> bool:
            message = discord_fake.messages.get(interaction.original_message_id or 0)
            return message is not None and REFUSED_TITLE in str(message.embeds[0]["title"])

        await discord_fake.wait_for(shows_the_end, timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
    finally:
        await running.close()
    assert job_state(settings) == "failed" and discord_fake.dms_to(interaction.user_id) == []
    assert not [r for r in discord_fake.requests if final_edit(r) and r.path.startswith("/channels/")]
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT interaction_token FROM jobs").fetchall() == [(None,)]


async def test_a_deleted_message_ends_the_retries_without_a_dm(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    discord_fake.fail_next("PATCH", r"/messages/", status=503, times=1, match=final_edit)
    # Then the member deletes it.
    discord_fake.fail_next("PATCH", r"/messages/", status=404, body=UNKNOWN_MESSAGE, times=10, match=final_edit)
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "deleted while failing"})
        await discord_fake.wait_for(
            lambda: any(r.status == 404 for r in discord_fake.requests if final_edit(r)), timeout=20
        )
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=20)
        await asyncio.sleep(sum(RETRIES) + 0.5)  # long enough for every retry left
    finally:
        await running.close()
    statuses = [r.status for r in discord_fake.requests if final_edit(r)]
    # discord.py retries a 503 itself before the runner sees it; then one try meets the 404 and stops.
    assert statuses[-1] == 404 and statuses.count(404) == 1, statuses
    assert job_state(settings) == "failed"
    assert discord_fake.dms_to(interaction.user_id) == []


async def test_an_end_whose_message_is_gone_is_not_owed(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Discord says the message no longer exists at the first try: nothing to retry, nothing written down."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    discord_fake.fail_next("PATCH", r"/messages/", status=404, body=UNKNOWN_MESSAGE, times=10, match=final_edit)
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "gone before it failed"})
        await discord_fake.wait_for(lambda: job_state(settings) == "failed", timeout=20)
        # The end is drawn after its row is written: its first try waited for, then time for any retry.
        await discord_fake.wait_for(lambda: any(final_edit(r) for r in discord_fake.requests), timeout=10)
        await asyncio.sleep(sum(RETRIES) + 0.5)
    finally:
        await running.close()
    assert [r.status for r in discord_fake.requests if final_edit(r)] == [404]
    assert owed(settings) == [] and discord_fake.dms_to(interaction.user_id) == []


async def stop_gracefully(running: RunningBot) -> float:
    """SIGTERM's way (job steps in flight get a 20 s grace); how long the stop took, in seconds."""
    began = asyncio.get_running_loop().time()
    await running.bot.shutdown(grace=20.0)
    took = asyncio.get_running_loop().time() - began
    await asyncio.wait_for(running.task, 5)
    return took


async def next_start_shows_the_refusal(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, interaction: FakeInteraction
) -> None:
    """A start on the same database draws the end it owes (its first try soon, so the test need not wait
    half a minute for it), and the debt is paid."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    again = await start_bot(settings, discord_fake)
    try:
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        await discord_fake.wait_for(lambda: REFUSED_TITLE in message.embeds[0]["title"], timeout=20)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=20)
    finally:
        await again.close()


async def test_a_graceful_stop_does_not_wait_out_a_final_edit_s_next_try(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Discord refused the edit that shows how a job ended and the next try is half a minute away when a
    graceful stop comes (SIGTERM: job steps in flight get ``[jobs] shutdown_grace_seconds``). The edit is
    owed in SQLite and the next start tries it, so there is nothing to wait for: the stop is over at once,
    where it used to wait out the whole grace (seen in soaks as SIGTERMs that took 20.1 s). The next
    start, on the same database, shows the end."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"final_edit_retry_seconds": [30.0]})
    discord_fake.fail_next("PATCH", r"/messages/", status=403, match=final_edit)
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "refused, then stopped"})
        await discord_fake.wait_for(lambda: any(final_edit(r) and r.status == 403 for r in discord_fake.requests))
        await discord_fake.wait_for(lambda: len(owed(settings)) == 1, timeout=20)
    finally:
        took = await stop_gracefully(running)
    assert took < 5.0, f"the stop waited {took:.1f} s on a retry 30 s away"
    assert len(owed(settings)) == 1 and job_state(settings) == "failed"

    await next_start_shows_the_refusal(tmp_path, discord_fake, seaart, interaction)


async def test_a_graceful_stop_does_not_wait_on_an_end_s_first_edit_that_discord_holds(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The job has ended (its end and the edit owed are written) and the step is drawing that end, which
    Discord is slow to take (discord.py retries a 5xx for up to ~25 s): a stop has nothing to wait for, as
    the next start draws the end. It used to wait out the grace (seen in bench/soak.py seed 121: two such
    steps held a SIGTERM for 20.8 s)."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.script("error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        discord_fake.hold_edits()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "refused, and slow to show it"})
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting == 1, timeout=10)
        assert job_state(settings) == "failed" and len(owed(settings)) == 1
    finally:
        took = await stop_gracefully(running)
    assert took < 5.0, f"the stop waited {took:.1f} s on an end's edit it owes in SQLite"
    assert len(owed(settings)) == 1

    discord_fake.hold_edits(False)
    await next_start_shows_the_refusal(tmp_path, discord_fake, seaart, interaction)


async def test_a_graceful_stop_does_not_wait_on_a_batch_candidate_s_end_that_discord_holds(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A batch candidate's end is drawn on the batch's message before its row is written, so a stop found
    its step unfinished and waited for an edit Discord was slow to take: the whole 20 s grace (bench/soak.py
    seed 128: a SIGTERM took 20.2 s, the step in DiscordSink._edit). Now the stop cancels the draw alone;
    the step writes the end with its edit owed, and the next start draws it. The stop takes about 2 s here,
    more on a loaded machine: 10 s tells it from the grace with room on both sides."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.script("error:REQUEST_INVALID", "error:REQUEST_INVALID")
    running = await start_bot(settings, discord_fake)
    try:
        discord_fake.hold_edits()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "two refused, slow to show", "count": 2})
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting >= 1 and len(seaart.creates) == 2, timeout=10)
    finally:
        took = await stop_gracefully(running)
    assert took < 10.0, f"the stop waited {took:.1f} s on a batch candidate's end"
    with sqlite3.connect(settings.database.path) as conn:
        ended = [row[0] for row in conn.execute("SELECT state FROM jobs")]
    # The candidate whose draw was held ended, owed; the other, if its refusal had not been polled yet (a
    # slow machine), is still running: the next start asks again and ends it too.
    assert "failed" in ended and len(owed(settings)) >= 1

    discord_fake.hold_edits(False)
    again = await start_bot(settings, discord_fake)
    try:
        message = discord_fake.messages[interaction.original_message_id or 0]
        await discord_fake.wait_for(lambda: json.dumps(message.embeds).count("refused") >= 2, timeout=15)
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)
    finally:
        await again.close()


async def test_a_graceful_stop_does_not_wait_on_the_end_of_a_job_that_ends_during_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The stop waits for a step whose create is in flight; the answer comes back refused during the grace,
    the job ends, and its end's edit is held by Discord. That draw gets 2 s, then is left owed for the next
    start, where the stop used to wait out its whole 20 s grace on it. So the stop takes 2.5 s here, more on
    a loaded machine: 10 s tells it from the grace with room on both sides."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.script("create_403_model")
    seaart.hold_create_answers(True)
    running = await start_bot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "refused during the stop"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=10)
        await asyncio.sleep(0.5)  # the first answer's progress drawn
        discord_fake.hold_edits()
    finally:
        stopping = asyncio.ensure_future(stop_gracefully(running))
        await asyncio.sleep(0.5)
        seaart.hold_create_answers(False)  # refused: the step ends the job and draws its end, held
        took = await stopping
    assert took < 10.0, f"the stop waited {took:.1f} s on the end of a job that ended during it"
    assert job_state(settings) == "failed" and len(owed(settings)) == 1

    discord_fake.hold_edits(False)
    again = await start_bot(short_retry_settings(tmp_path, discord_fake, seaart), discord_fake)
    try:
        message = discord_fake.messages[interaction.original_message_id or 0]
        await discord_fake.wait_for(lambda: owed(settings) == [], timeout=10)  # drawn by the next start
        assert message.embeds[0]["title"] == "🍌 The provider rejected the bot's key"  # its end, not "Submitting"
    finally:
        await again.close()


async def test_a_graceful_stop_does_not_wait_on_a_progress_edit_that_discord_holds(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A step is drawing a running job's progress (its state already written) and Discord is slow to take
    the edit: the stop cancels it at once, and the next start carries the job on to its image. A stop used
    to wait out the grace on such an edit (bench/soak.py seed 122: a "Waiting for the provider" edit held
    a SIGTERM for 20 s)."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake)
    try:
        discord_fake.hold_edits()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "drawn slowly, then stopped"})
        await discord_fake.wait_for(lambda: discord_fake.edits_waiting == 1, timeout=10)
        assert job_state(settings) in ("submitted", "running")
    finally:
        took = await stop_gracefully(running)
    assert took < 5.0, f"the stop waited {took:.1f} s on a progress edit"

    discord_fake.hold_edits(False)
    seaart.hold(False)
    again = await start_bot(settings, discord_fake)
    try:
        await discord_fake.wait_for(lambda: job_state(settings) == "delivered", timeout=20)
    finally:
        await again.close()
    assert interaction.original_message_id is not None
    assert len(discord_fake.messages[interaction.original_message_id].files) == 1
    assert len(seaart.creates) == 1


async def test_an_end_notice_discord_fails_once_is_sent_again_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The DM telling a member how a job ended whose message Discord never let change: a 503 on it (which discord.py
    does not retry) lost it, after the message itself was lost. It is sent again, once."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    discord_fake.fail_next("PATCH", r"/messages/", status=403, times=len(RETRIES) + 6, match=final_edit)

    def the_notice(request: RecordedRequest) -> bool:
        return "would not let me update" in json.dumps(request.json)

    discord_fake.fail_next("POST", r"^/channels/\d+/messages$", status=503, match=the_notice)
    member = (await told_by_dm(settings, discord_fake, seaart)).user_id
    assert [r.status for r in discord_fake.requests if r.method == "POST" and the_notice(r)] == [503, 200]
    assert len(discord_fake.dms_to(member)) == 1
