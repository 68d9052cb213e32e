"""The bot's first answer to a member (the command's response, or its reply to a member's reply) fails,
and the bot cannot tell from the failure whether Discord made the message: a 5xx, a timeout or a dropped
connection can come after the work was done. It asks Discord where the message is: there, the job runs
in it as if nothing had happened (the member would otherwise watch "Queued" forever, and the bot would
never draw on it); not there, the job ends uncharged."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, start_bot
from tests.e2e.edits import bot_image, bot_replies_to, jobs, ledger, states
from tests.e2e.test_buttons import button, start_running_job
from tests.e2e.test_final_edits import short_retry_settings
from tests.e2e.test_member_jobs import private_list

CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
ORIGINAL = r"/webhooks/\d+/[^/]+/messages/@original$"


async def test_a_command_s_answer_made_but_lost_on_its_way_back_still_gets_its_image(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.held_jobs")
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)  # Discord made it, then a 503
    interaction = await discord_fake.slash_command("imagine", {"prompt": "an answer lost"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    # discord.py sends an interaction's answer again after a 5xx; Discord refuses the second (40060).
    assert [r.status for r in discord_fake.requests if r.path.endswith("/callback")] == [503, 400]
    message = discord_fake.messages[interaction.original_message_id or 0]
    assert message.files and "Done" in message.embeds[0]["title"]
    (job,) = jobs(settings)
    assert job["message_id"] == message.id
    assert [kind for kind, _ in ledger(settings, job["id"])] == ["reserve", "commit"]
    # The log says what failed by kind and status, never by the error's text (it may quote the callback URL,
    # which holds the interaction's token).
    assert "the answer failed (HTTPException (HTTP 400, code 40060)), but Discord shows it" in caplog.text
    assert interaction.token not in caplog.text


async def test_a_command_s_answer_never_made_ends_the_job_uncharged(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Too late (past Discord's 3 s): Unknown interaction, and no message exists.
    discord_fake.fail_next("POST", CALLBACK, status=404, body={"code": 10062, "message": "Unknown interaction"})
    interaction = await discord_fake.slash_command("imagine", {"prompt": "an answer refused"})
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=20)
    assert seaart.creates == []
    # Nothing the member sees shows the job, and nothing more is sent on an interaction Discord forgot.
    assert discord_fake.messages.get(interaction.original_message_id or 0) is None
    assert len([r for r in discord_fake.requests if r.path.endswith("/callback")]) == 1
    (job,) = jobs(settings)
    assert [kind for kind, _ in ledger(settings, job["id"])] == ["reserve", "refund"]
    # The operator reads why, once, as a warning: not as an unhandled error with a traceback.
    # Logged after the job is cancelled (bot/held_jobs.py answer_failed, then cogs/imagine.py): waited for.
    expired = r"/imagine expired [\d.]+ s after it was sent, before the bot answered"
    await discord_fake.wait_for(lambda: re.search(expired, caplog.text) is not None, timeout=10)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert re.search(expired, caplog.text)


async def test_a_batch_whose_answer_was_lost_runs_every_candidate_in_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    discord_fake.fail_next("POST", CALLBACK, status=502, after=True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "two, answer lost", "count": 2})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=30)
    assert [r.status for r in discord_fake.requests if r.path.endswith("/callback")] == [502, 400]
    message = discord_fake.messages[interaction.original_message_id or 0]
    assert len(message.attachments) == 2 and "Done" in message.embeds[0]["title"]


async def test_a_reply_posted_but_its_answer_lost_still_shows_the_edit(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await bot_image(discord_fake, settings)
    channel_messages = rf"^/channels/{discord_fake.channel_id}/messages$"
    discord_fake.fail_next("POST", channel_messages, status=503, after=True)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    (answer,) = bot_replies_to(discord_fake, reply.id)  # one reply, the one Discord made
    assert answer.files and "Done" in answer.embeds[0]["title"]
    assert jobs(settings)[1]["message_id"] == answer.id


async def test_a_reply_s_lost_answer_is_found_even_when_the_looks_for_it_fail_at_first(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The answer to a reply was made and lost, and Discord fails the bot's first two looks for it as well
    (the channel's history answered with 503s, which discord.py does not retry): the bot keeps looking for a
    few seconds, finds it, and the edit is shown there. Before, the second failed look counted as "not
    there": the job ended uncharged while the answer, which did exist, said "Queued" for good."""
    image = await bot_image(discord_fake, settings)
    channel_messages = rf"^/channels/{discord_fake.channel_id}/messages$"
    discord_fake.fail_next("POST", channel_messages, status=503, after=True)
    discord_fake.fail_next("GET", channel_messages, status=503, times=2)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    (answer,) = bot_replies_to(discord_fake, reply.id)
    assert answer.files and "Done" in answer.embeds[0]["title"]
    assert jobs(settings)[1]["message_id"] == answer.id
    looks = [r.status for r in discord_fake.requests if r.method == "GET" and re.search(channel_messages, r.path)]
    assert looks[:3] == [503, 503, 200]


async def test_a_reply_whose_answer_discord_refused_with_a_503_is_answered_on_a_second_try(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord answers the bot's reply with a 503 and posts nothing (discord.py does not retry a 503). The
    member's reply must not go unanswered: Discord shows no answer, so the bot posts it again."""
    image = await bot_image(discord_fake, settings)
    channel_messages = rf"^/channels/{discord_fake.channel_id}/messages$"
    discord_fake.fail_next("POST", channel_messages, status=503, times=2)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    (answer,) = bot_replies_to(discord_fake, reply.id)
    assert answer.files and "Done" in answer.embeds[0]["title"]
    edit = jobs(settings)[1]
    assert edit["message_id"] == answer.id and len(seaart.creates) == 2
    member = discord_fake.member_id
    assert ledger(settings, edit["id"]) == [("reserve", member), ("commit", member)]
    posts = [r for r in discord_fake.requests if r.method == "POST" and re.search(channel_messages, r.path)]
    assert [r.status for r in posts] == [503, 503, 200]


async def test_a_reply_discord_posted_and_answered_with_a_502_is_not_posted_twice(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord posts the bot's reply, and the answer is lost (a 502 from a proxy on the way back);
    discord.py sends the same request again a second later, with the same nonce, which it asks Discord to
    enforce (discord.py gives every message one): Discord returns the first reply and makes no second.
    The fake Discord ignored nonces before, so it made a second reply here, one real Discord never makes."""
    image = await bot_image(discord_fake, settings)
    channel_messages = rf"^/channels/{discord_fake.channel_id}/messages$"
    discord_fake.fail_next("POST", channel_messages, status=502, after=True)
    reply = await discord_fake.post_message("make it night", reply_to=image.id, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    (answer,) = bot_replies_to(discord_fake, reply.id)
    assert answer.files and "Done" in answer.embeds[0]["title"]
    assert jobs(settings)[1]["message_id"] == answer.id
    posts = [r for r in discord_fake.requests if r.method == "POST" and re.search(channel_messages, r.path)]
    assert [r.status for r in posts] == [502, 200], "discord.py sent it again, and Discord made no second reply"


async def test_a_cancel_pressed_while_the_lost_answer_is_being_sorted_out_is_shown_on_the_message(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The member sees the job's message (Discord made it) and presses Cancel before the bot knows the
    message is its own (discord.py waits a second before sending the lost answer again): the job ends
    then, and once the bot learns its message, it shows the end there, not "Cancelling…" for good."""
    seaart.hold(True)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "cancelled in the gap"})
    await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None and jobs(settings)[0]["message_id"] is None  # not known to the bot yet
    click = await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"))
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    assert click.callbacks and click.callbacks[0]["type"] == 7  # taken: "Cancelling…"

    def shows_the_end() -> bool:
        embeds = discord_fake.messages[message_id].embeds
        return bool(embeds) and embeds[0]["title"] == "🍌 Cancelled"

    await discord_fake.wait_for(shows_the_end, timeout=10)
    assert jobs(settings)[0]["message_id"] == message_id and seaart.creates == []
    assert [kind for kind, _ in ledger(settings, jobs(settings)[0]["id"])] == ["reserve", "refund"]


async def test_a_jobs_cancel_while_the_lost_answer_is_looked_for_is_shown_on_the_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """As above, but cancelled from /jobs, which knows no message, while the bot's first looks for it fail: the
    job ended with its end drawn nowhere, and the member's message said "Queued" for good once found. In a
    channel the bot may not view (its token refused there), so the end must go through the interaction's
    token, which the end drawn nowhere must not have used up."""
    settings = short_retry_settings(tmp_path, discord_fake, seaart)
    hidden = discord_fake.add_channel("staff", hidden=True)
    missing_access = {"code": 50001, "message": "Missing Access"}
    discord_fake.fail_next("*", rf"^/channels/{hidden}/", status=403, body=missing_access, times=1000)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake)
    try:
        discord_fake.fail_next("POST", CALLBACK, status=503, after=True)  # Discord made the message; answer lost
        discord_fake.fail_next("GET", ORIGINAL, status=503, times=3)  # the bot's first looks for it fail
        interaction = await discord_fake.slash_command("imagine", {"prompt": "cancelled from /jobs"}, channel_id=hidden)
        await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
        message_id = interaction.original_message_id
        assert message_id is not None and jobs(settings)[0]["message_id"] is None
        shown = await private_list(discord_fake)
        await discord_fake.click(shown.id, shown.components[0]["components"][0]["custom_id"])
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)

        def shows_the_end() -> bool:
            embeds = discord_fake.messages[message_id].embeds
            return bool(embeds) and embeds[0]["title"] == "🍌 Cancelled"

        await discord_fake.wait_for(shows_the_end, timeout=20)  # after the looks' pauses (1 + 2 + 4 s)
        # The token, a credential, is cleared once the end is shown (not before: it had to draw it).
        await discord_fake.wait_for(lambda: jobs(settings)[0]["interaction_token"] is None, timeout=10)
    finally:
        await running.close()
    assert jobs(settings)[0]["message_id"] == message_id and seaart.creates == []
    assert [kind for kind, _ in ledger(settings, jobs(settings)[0]["id"])] == ["reserve", "refund"]
    assert discord_fake.dms_to(interaction.user_id) == []


async def test_a_delete_whose_answer_was_lost_still_deletes_the_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord took the Delete click (the answer was made, then lost: discord.py's resend is refused as
    already acknowledged); the member asked for the image to go, so it goes."""
    image = await bot_image(discord_fake, settings)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    await discord_fake.click(image.id, button(discord_fake, image.id, "Delete"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: discord_fake.messages[image.id].deleted, timeout=10)
    await discord_fake.wait_for(lambda: jobs(settings)[0]["deleted_by"] == discord_fake.member_id, timeout=10)


async def test_a_moderator_s_cancel_whose_answer_was_lost_is_carried_out_and_logged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    cancel = button(discord_fake, message_id, "Cancel")
    await discord_fake.click(message_id, cancel, user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    job = jobs(settings)[0]
    assert job["cancelled_by"] == discord_fake.moderator_id and job["charge_state"] == "refunded"
    cancelled_at = f"/model/v1/queue/nano_banana_2/requests/{job['provider_job_id']}/cancel"
    await discord_fake.wait_for(lambda: [r.path for r in seaart.requests if r.method == "PUT"] == [cancelled_at])

    def logged() -> list[tuple[object, ...]]:
        with sqlite3.connect(settings.database.path) as conn:
            return conn.execute("SELECT action, actor_id, job_id FROM audit_log WHERE action = 'cancel'").fetchall()

    # The moderation log has it, as for any moderator's cancel of another member's job.
    await discord_fake.wait_for(lambda: bool(logged()), timeout=10)
    assert logged() == [("cancel", discord_fake.moderator_id, job["id"])]


async def test_a_command_s_answer_made_lost_and_deleted_before_the_bot_looks_ends_quietly(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Discord made the answer, its reply to the bot was lost, and the member deleted the message before
    the bot went looking for it (found by bench/soak.py: lost answers and quick deletions). Nothing is
    left to show or to tell: the job ends uncharged, and that is not an error of the bot's."""
    caplog.set_level(logging.INFO)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "made, lost, deleted"})
    await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
    await discord_fake.delete_messages(interaction.original_message_id or 0)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=20)
    assert [r.status for r in discord_fake.requests if r.path.endswith("/callback")] == [503, 400]
    assert seaart.creates == []
    (job,) = jobs(settings)
    assert [kind for kind, _ in ledger(settings, job["id"])] == ["reserve", "refund"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    # No "something went wrong" note either: the answer was taken; there is nobody to tell.
    assert not [r for r in discord_fake.requests if "/webhooks/" in r.path and r.method == "POST"]


@pytest.mark.parametrize(
    ("label", "stranger"),
    [pytest.param("Delete", True, id="a-refusal"), pytest.param("Edit", False, id="the-edit-form")],
)
async def test_a_button_s_answer_made_but_lost_is_not_an_error(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    label: str,
    stranger: bool,
) -> None:
    """A private answer (another member may not Delete this image) or the Edit button's form: Discord
    makes it, a proxy loses the reply, discord.py sends it again and is refused (already acknowledged).
    The member has the answer: the bot logs what happened, not an error with a traceback, and does
    nothing more (bench/soak.py --seed 97 found the first)."""
    caplog.set_level(logging.INFO)
    image = await bot_image(discord_fake, settings)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    user = discord_fake.member_id + 1000 if stranger else discord_fake.member_id
    click = await discord_fake.click(image.id, button(discord_fake, image.id, label), user_id=user)
    await discord_fake.wait_for(lambda: "reply to it was lost" in caplog.text or "Ignoring exception" in caplog.text)
    (answer,) = click.callbacks
    if stranger:
        assert answer["data"]["content"].startswith("Only the member who asked") and answer["data"]["flags"] & 64
    else:
        assert answer["type"] == 9  # the form
    clicks = [r.status for r in discord_fake.requests if r.path.endswith("/callback")][1:]
    assert clicks == [503, 400]  # made and lost, then refused: the member saw it once
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not discord_fake.messages[image.id].deleted and jobs(settings)[0]["deleted_by"] is None
    assert len(jobs(settings)) == 1


async def test_a_command_s_private_answer_made_but_lost_is_not_an_error(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The same for a command's answer (/quota show): no "unhandled error", and no apology sent after
    an answer the member has."""
    caplog.set_level(logging.INFO)
    discord_fake.fail_next("POST", CALLBACK, status=503, after=True)
    shown = await discord_fake.slash_command("quota show", {})
    await discord_fake.wait_for(lambda: "reply to it was lost" in caplog.text or "unhandled error" in caplog.text)
    (answer,) = shown.callbacks
    assert answer["data"]["embeds"] and answer["data"]["flags"] & 64
    assert [r.status for r in discord_fake.requests if r.path.endswith("/callback")] == [503, 400]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    ("label", "stranger"),
    [pytest.param("Delete", True, id="a-refusal"), pytest.param("Cancel", False, id="a-cancel")],
)
async def test_a_button_answered_after_discord_s_3_s_is_a_warning_not_an_error(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    label: str,
    stranger: bool,
) -> None:
    """The bot's answer to a press came after Discord's 3 s (the bot slow, or its database held up), and
    Discord refuses it: Unknown interaction (10062). Nothing more can be sent on it, and the member was
    shown "This interaction failed". The operator reads one WARNING line, as for a command; before, it was
    discord.py's ERROR "Ignoring exception in dynamic item callback" with a traceback (bench/soak.py
    --db-locks, seed 126, for a Cancel). A cancel recorded before its answer is carried out all the same."""
    caplog.set_level(logging.INFO)
    if stranger:
        message_id = (await bot_image(discord_fake, settings)).id
    else:
        message_id = await start_running_job(discord_fake, seaart, settings)
    discord_fake.fail_next("POST", CALLBACK, status=404, body={"code": 10062, "message": "Unknown interaction"})
    user = discord_fake.member_id + 1000 if stranger else discord_fake.member_id
    await discord_fake.click(message_id, button(discord_fake, message_id, label), user_id=user)
    await discord_fake.wait_for(lambda: "answered too late" in caplog.text or "Ignoring exception" in caplog.text)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    (late,) = [r for r in caplog.records if "answered too late" in r.getMessage()]
    assert late.levelno == logging.WARNING and f"the {label.lower()} button" in late.getMessage()
    if stranger:
        assert not discord_fake.messages[message_id].deleted and jobs(settings)[0]["deleted_by"] is None
    else:
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
        assert jobs(settings)[0]["charge_state"] == "refunded"
