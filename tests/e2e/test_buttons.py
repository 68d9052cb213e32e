"""The job buttons through the fake Discord: Cancel, Re-roll, Delete, and who may press them."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from bot.render import COLOUR_PROGRESS
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import Chaos, FakeSeaArt
from tests.conftest import Clock, RunningBot, make_settings, png_bytes, start_bot


def rows(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()


def states(settings: Settings) -> list[str]:
    return [r["state"] for r in rows(settings)]


PANS = ("Pan left", "Pan right", "Pan up", "Pan down")


def finished_labels(
    *rerenders: str, pans: tuple[str, ...] = PANS, worded: bool = True, square: bool = True
) -> list[str]:
    """The buttons under a finished single image, left to right, with the re-render sizes it offers, and the
    pans its shape has room for (all four for a square image, or one whose shape is known only from its image).
    ``worded``: it has words of its member's to change (Change prompt), as any but a re-render has. ``square``: it
    is square already (no Make square)."""
    first = ["Vary (Subtle)", "Vary (Strong)", "Edit", *rerenders, "Zoom out", "Re-roll"]
    last = [*pans, *([] if square else ["Make square"])]
    return [*first, *(["Change prompt"] if worded else []), "Use as reference", "Delete", *last]


def labels(discord_fake: FakeDiscord, message_id: int) -> list[str]:
    message = discord_fake.messages[message_id]
    return [c["label"] for row in message.components for c in row["components"]]


def button(discord_fake: FakeDiscord, message_id: int, label: str) -> str:
    message = discord_fake.messages[message_id]
    for row in message.components:
        for component in row["components"]:
            if component["label"] == label:
                return str(component["custom_id"])
    raise AssertionError(f"no {label} button on {message_id}: {labels(discord_fake, message_id)}")


async def ephemeral_reply(discord_fake: FakeDiscord, click: FakeInteraction) -> str:
    await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=10)
    callback = click.callbacks[0]
    assert callback["type"] == 4 and callback["data"]["flags"] & 64, callback
    return str(callback["data"]["content"])


async def start_running_job(discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings) -> int:
    seaart.hold(True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "hold on"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: labels(discord_fake, message_id) == ["Cancel"], timeout=10)
    return message_id


async def test_cancel_is_only_for_the_requester_or_a_moderator(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message_id = await start_running_job(discord_fake, seaart, settings)
    cancel = button(discord_fake, message_id, "Cancel")

    stranger = await discord_fake.click(message_id, cancel, user_id=discord_fake.other_member_id)
    assert "Only the member who asked" in await ephemeral_reply(discord_fake, stranger)
    assert states(settings) == ["running"]

    await discord_fake.click(message_id, cancel, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    job = rows(settings)[0]
    assert job["cancelled_by"] == discord_fake.member_id and job["error_category"] == "cancelled"
    # The provider was asked to stop the job it accepted (after the member was shown the end).
    await discord_fake.wait_for(lambda: [r.method for r in seaart.requests if r.path.endswith("/cancel")] == ["PUT"])
    await discord_fake.wait_for(lambda: "Cancelled" in discord_fake.messages[message_id].embeds[0]["title"])
    message = discord_fake.messages[message_id]
    assert "Cancel" not in labels(discord_fake, message_id) and not message.files
    # Releasing the provider afterwards delivers nothing: the job stays cancelled.
    seaart.release()
    assert states(settings) == ["cancelled"]


async def test_the_configured_moderator_role_may_cancel_and_delete_another_member_s_job(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`[moderation] moderator_role_id` makes a moderator without Manage Messages (as /mod already takes
    it); the buttons refused them "Only the member who asked (or a moderator)"."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, moderation={"moderator_role_id": discord_fake.helper_role_id}
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        message_id = await start_running_job(discord_fake, seaart, settings)
        by_role = {"user_id": discord_fake.other_member_id}  # the Helper role, and no permission
        await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"), **by_role)
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
        assert rows(settings)[0]["cancelled_by"] == discord_fake.other_member_id
        seaart.hold(False)
        made = await discord_fake.slash_command("imagine", {"prompt": "keep it"})
        await discord_fake.wait_for(lambda: states(settings) == ["cancelled", "delivered"], timeout=10)
        shown = made.original_message_id
        assert shown is not None
        await discord_fake.wait_for(lambda: "Delete" in labels(discord_fake, shown), timeout=10)
        await discord_fake.click(shown, button(discord_fake, shown, "Delete"), **by_role)
        await discord_fake.wait_for(lambda: discord_fake.messages[shown].deleted, timeout=10)
    finally:
        await running.close()


@pytest.mark.parametrize("count", [1, 2], ids=["a-job", "a-batch"])
async def test_a_job_a_moderator_cancelled_offers_no_re_roll_and_one_its_member_cancelled_does(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, count: int
) -> None:
    """Cancelled by its member, a job (or a batch) offers Re-roll, to run it again; cancelled by a moderator
    (here by the configured role), its message says who and offers nothing: before, Re-roll sat under "Cancelled
    by @moderator", one press from running again what the moderator had just stopped."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, moderation={"moderator_role_id": discord_fake.helper_role_id}
    )
    options: dict[str, object] = {"count": count} if count > 1 else {}

    async def cancelled_by(who: int) -> tuple[list[str], int, str]:
        """Start a job (or batch), let ``who`` press its Cancel: the labels its ended message offers, the
        message, and the Cancel's custom_id."""
        made = await discord_fake.slash_command("imagine", {"prompt": f"stopped by {who}", **options})
        await discord_fake.wait_for(lambda: states(settings).count("running") == count, timeout=10)
        message_id = made.original_message_id or 0
        cancel_id = button(discord_fake, message_id, "Cancel")
        await discord_fake.click(message_id, cancel_id, user_id=who)
        await discord_fake.wait_for(lambda: "running" not in states(settings), timeout=10)
        await discord_fake.wait_for(
            lambda: (
                "Cancel" not in labels(discord_fake, message_id)
                and "Cancelled" in json.dumps(discord_fake.messages[message_id].embeds)
            ),
            timeout=10,
        )
        return labels(discord_fake, message_id), message_id, cancel_id

    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold(True)
        by_member, _, _ = await cancelled_by(discord_fake.member_id)
        by_moderator, message_id, cancel_id = await cancelled_by(discord_fake.other_member_id)  # the Helper role
        # The Re-roll a message drawn before this rule still shows (or a modified client sends) is refused.
        old_reroll = cancel_id.replace(":cancel:", ":reroll:")
        discord_fake.messages[message_id].components = [
            {"type": 1, "components": [{"type": 2, "style": 2, "label": "Re-roll", "custom_id": old_reroll}]}
        ]
        press = await discord_fake.click(message_id, old_reroll, user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: bool(press.callbacks), timeout=10)
        await asyncio.sleep(0.5)  # a job the press wrongly started would have its row by now
    finally:
        await running.close()
    assert {r["cancelled_by"] for r in rows(settings)} == {discord_fake.member_id, discord_fake.other_member_id}
    assert "Re-roll" in by_member and "Change prompt" in by_member, by_member
    assert by_moderator == [], by_moderator  # nothing to run again: no Re-roll, no Change prompt
    answer = press.callbacks[0]["data"]
    assert answer["flags"] & 64 and "A moderator cancelled this" in answer["content"], answer
    assert len(rows(settings)) == 2 * count  # the refused press started nothing


@pytest.mark.parametrize("count", [1, 2], ids=["a-job", "a-batch"])
async def test_a_cancel_the_loop_carries_out_before_the_click_s_answer_lands_still_shows_the_end(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, count: int
) -> None:
    """The Cancel click's answer edits the message to the job as read before it is sent ("Cancelling…");
    the job loop, which the cancel's write makes due at once, may carry the cancel out and draw its end
    first. The answer then landed over the end, and the message said "Cancelling…" or "Generating…" for
    good (bench/soak.py --seed 136: a batch). Here Discord holds the click's answer while the loop ends
    the jobs: the end must be what the member is left with."""
    seaart.hold(True)
    options: dict[str, object] = {"prompt": "hold on"} | ({"count": count} if count > 1 else {})
    interaction = await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * count, timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "Cancel" in labels(discord_fake, message_id), timeout=10)
    discord_fake.hold_callbacks()
    click = await discord_fake.click(
        message_id, button(discord_fake, message_id, "Cancel"), user_id=discord_fake.member_id
    )
    await discord_fake.wait_for(lambda: all(r["cancel_requested"] or r["state"] == "cancelled" for r in rows(settings)))
    await asyncio.sleep(1.0)  # the loop's step carries the cancel out meanwhile
    discord_fake.hold_callbacks(False)
    await discord_fake.wait_for(lambda: click.acknowledged and states(settings) == ["cancelled"] * count, timeout=10)
    await asyncio.sleep(1.0)  # whatever edit was still on its way has landed
    embed = discord_fake.messages[message_id].embeds[0]
    assert "Cancelled" in embed["title"] and embed["color"] != COLOUR_PROGRESS.value, embed["title"]
    seaart.release()


async def cancel_while_the_last_poll_returns(discord_fake: FakeDiscord, seaart: FakeSeaArt, message_id: int) -> None:
    """Let the held job end at the provider at its next poll, hold that poll's answer back 1.5 s, and have
    the member press Cancel meanwhile; returns once the bot has taken the click."""
    seaart.chaos = Chaos(rate=1.0, faults=("hang",), hang_seconds=1.5)
    seaart.release()  # done at its next poll: the one that hangs on its way back
    await discord_fake.wait_for(lambda: any(e.path.endswith("/status") for e in seaart.chaos_events), timeout=10)
    seaart.chaos = None
    click = await discord_fake.click(
        message_id, button(discord_fake, message_id, "Cancel"), user_id=discord_fake.member_id
    )
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=5)
    assert click.callbacks[0]["type"] == 7  # taken: the message says "Cancelling…" until it shows the end


async def test_a_cancel_taken_before_the_bot_learns_the_image_exists_is_kept(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The provider finishes the job while a poll is on its way back (its answer held 1.5 s), and the
    member presses Cancel meanwhile. The bot took the click (it updated the message, no "too late" answer),
    so the image that poll brings is not delivered, and the member is not charged."""
    message_id = await start_running_job(discord_fake, seaart, settings)
    await cancel_while_the_last_poll_returns(discord_fake, seaart, message_id)
    await discord_fake.wait_for(lambda: states(settings) != ["running"], timeout=10)
    (job,) = rows(settings)
    assert (job["state"], job["charge_state"], job["cancelled_by"]) == ("cancelled", "refunded", discord_fake.member_id)
    await discord_fake.wait_for(lambda: "Cancelled" in discord_fake.messages[message_id].embeds[0]["title"])
    assert not discord_fake.messages[message_id].files
    # The race it is: the hung poll came back done and the bot fetched the result, so nothing was left to
    # cancel at the provider; the member's earlier word still stood.
    assert [r.method for r in seaart.requests if r.path.endswith("/response")] == ["GET"]
    assert [r for r in seaart.requests if r.path.endswith("/cancel")] == []


async def test_a_cancel_taken_while_the_references_download_sends_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The member presses Cancel while the bot is still reading their reference image (a slow CDN), before the
    create leaves: the step went on and sent it, so the provider made (and billed) a task called off, and the
    member read "Cancelling…" until it came back. Nothing is sent now."""
    discord_fake.hold_downloads()
    ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
    interaction = await discord_fake.slash_command("imagine", {"prompt": "never mind", "image1": ref})
    await discord_fake.wait_for(
        lambda: discord_fake.downloads_waiting == 1 and interaction.original_message_id is not None, timeout=10
    )
    message_id = interaction.original_message_id
    assert message_id is not None
    click = await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"))
    await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=10)
    discord_fake.hold_downloads(False)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    await discord_fake.wait_for(lambda: "Cancelled" in discord_fake.messages[message_id].embeds[0]["title"])
    (job,) = rows(settings)
    assert (job["charge_state"], job["cancelled_by"]) == ("refunded", discord_fake.member_id)
    assert seaart.creates == []


async def test_a_cancel_overtaken_by_the_provider_s_failure_leaves_nothing_to_do(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The poll on its way back when the member presses Cancel brings the provider's failure: the job ends
    failed with the provider's reason, uncharged, and no cancel is left pending or sent for a task that
    is over already."""
    seaart.script("error:INFERENCE_FAILURE")
    message_id = await start_running_job(discord_fake, seaart, settings)
    await cancel_while_the_last_poll_returns(discord_fake, seaart, message_id)
    await discord_fake.wait_for(lambda: states(settings) != ["running"], timeout=10)
    (job,) = rows(settings)
    assert (job["state"], job["charge_state"], job["cancel_requested"]) == ("failed", "refunded", None)
    # The click's own answer ("Cancelling…", drawn without the Cancel button) may land first; the end the
    # loop draws after it shows the provider's reason (fresh-ci once checked in between and failed).
    await discord_fake.wait_for(
        lambda: job["error_message"] in json.dumps(discord_fake.messages[message_id].embeds[0]["fields"]),
        timeout=10,
    )
    assert "Cancel" not in labels(discord_fake, message_id)
    assert [r for r in seaart.requests if r.path.endswith("/cancel")] == []


async def test_cancel_on_an_image_being_delivered_is_too_late(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The bot has the image and is uploading it (Discord answered the upload 500 twice, so discord.py is
    waiting to send it again) when the member presses Cancel: the click is refused as too late, privately,
    and the image arrives as usual."""
    message_id = await start_running_job(discord_fake, seaart, settings)
    discord_fake.fail_next("PATCH", r"/messages/", status=500, times=2, match=lambda r: bool(r.files))
    seaart.release()
    await discord_fake.wait_for(lambda: any(r.files and r.status == 500 for r in discord_fake.requests), timeout=10)
    assert states(settings) == ["succeeded"]
    click = await discord_fake.click(
        message_id, button(discord_fake, message_id, "Cancel"), user_id=discord_fake.member_id
    )
    assert await ephemeral_reply(discord_fake, click) == "Too late to cancel: the image is already on its way."
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=15)
    (job,) = rows(settings)
    assert job["charge_state"] == "committed" and job["cancelled_by"] is None
    assert len(discord_fake.messages[message_id].files) == 1


async def cancel_a_running_job_as(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, user_id: int
) -> None:
    """Start a job the provider holds running, press its Cancel as ``user_id``, wait until it has ended."""
    message_id = await start_running_job(discord_fake, seaart, settings)
    await discord_fake.click(message_id, button(discord_fake, message_id, "Cancel"), user_id=user_id)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)


async def test_moderator_may_cancel(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await cancel_a_running_job_as(discord_fake, seaart, settings, discord_fake.moderator_id)
    assert rows(settings)[0]["cancelled_by"] == discord_fake.moderator_id
    # Like a Delete, a moderator's cancel of someone else's job goes in the moderation log.
    audit = "SELECT action, actor_id, target_id, job_id FROM audit_log WHERE action = 'cancel'"

    def logged() -> list[tuple[object, ...]]:
        with sqlite3.connect(settings.database.path) as conn:
            return conn.execute(audit).fetchall()

    await discord_fake.wait_for(lambda: len(logged()) == 1, timeout=10)
    job = rows(settings)[0]
    assert logged() == [("cancel", discord_fake.moderator_id, job["user_id"], job["id"])]


async def test_a_member_s_own_cancel_is_not_a_moderation_event(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await cancel_a_running_job_as(discord_fake, seaart, settings, discord_fake.member_id)
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'cancel'").fetchone() == (0,)


async def test_reroll_makes_a_new_job_for_the_presser_and_delete_removes(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    interaction = await discord_fake.slash_command("imagine", {"prompt": "again and again", "aspect_ratio": "3:2"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    finished = finished_labels("Re-render 2K", "Re-render 4K", square=False)  # 3:2
    await discord_fake.wait_for(lambda: labels(discord_fake, message_id) == finished, timeout=10)

    reroll = await discord_fake.click(
        message_id, button(discord_fake, message_id, "Re-roll"), user_id=discord_fake.moderator_id
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=10)
    first, second = rows(settings)
    assert second["user_id"] == discord_fake.moderator_id  # charged to whoever pressed it
    assert second["request_json"] == first["request_json"]
    assert [c.json["aspect_ratio"] for c in seaart.creates] == ["3:2", "3:2"]
    assert reroll.original_message_id is not None and reroll.original_message_id != message_id
    assert discord_fake.messages[reroll.original_message_id].files

    stranger = await discord_fake.click(
        message_id,
        button(discord_fake, message_id, "Delete"),
        user_id=discord_fake.other_member_id,
    )
    assert "Only the member who asked" in await ephemeral_reply(discord_fake, stranger)
    assert not discord_fake.messages[message_id].deleted
    await discord_fake.click(message_id, button(discord_fake, message_id, "Delete"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: discord_fake.messages[message_id].deleted, timeout=10)


async def test_a_button_naming_another_server_s_job_does_nothing_here(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A button's id names a job; a modified client may send any id. A job of another server (here the
    row is moved to one) is not re-rolled, varied or cancelled from this one, nor charged to anyone."""
    interaction = await discord_fake.slash_command("imagine", {"prompt": "elsewhere"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "Re-roll" in labels(discord_fake, message_id), timeout=10)
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE jobs SET guild_id = ?", (discord_fake.guild_id + 1,))
    for label in ("Re-roll", "Vary (Strong)", "Re-render 2K"):
        click = await discord_fake.click(message_id, button(discord_fake, message_id, label))
        assert await ephemeral_reply(discord_fake, click) == "That job no longer exists."
    edit = await discord_fake.click(message_id, button(discord_fake, message_id, "Edit"))
    assert await ephemeral_reply(discord_fake, edit) == "That job no longer exists."  # no form opened
    await asyncio.sleep(0.2)
    assert states(settings) == ["delivered"] and len(seaart.creates) == 1
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 2  # the first job's reserve and commit


async def delivered_message(discord_fake: FakeDiscord, settings: Settings) -> int:
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a pear"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: "Delete" in labels(discord_fake, message_id), timeout=10)
    return message_id


def said(discord_fake: FakeDiscord, click: FakeInteraction) -> list[str]:
    """Whatever the presser was told: the click's answer and any follow-up."""
    told = [str(c["data"]["content"]) for c in click.callbacks if (c.get("data") or {}).get("content")]
    return told + [str(discord_fake.messages[m].content) for m in click.followup_ids]


async def test_delete_pressed_twice_at_once_deletes_once_and_tells_nobody_of_an_error(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The member and a moderator (or one double click) press Delete together: the second found the message
    gone and was told "Sorry, something went wrong on our side"."""
    message_id = await delivered_message(discord_fake, settings)
    delete = button(discord_fake, message_id, "Delete")
    first = await discord_fake.click(message_id, delete, user_id=discord_fake.member_id)
    second = await discord_fake.click(message_id, delete, user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: discord_fake.messages[message_id].deleted, timeout=10)
    await asyncio.sleep(1.0)  # an apology would follow the deferral
    assert said(discord_fake, first) == [] and said(discord_fake, second) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Who deleted it is written after the message is deleted: waited for, not read at once.
    await discord_fake.wait_for(lambda: rows(settings)[0]["deleted_by"] is not None, timeout=10)
    assert rows(settings)[0]["deleted_by"] in (discord_fake.member_id, discord_fake.moderator_id)


async def test_delete_works_where_the_bot_itself_may_not_delete(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A channel the bot cannot see: its commands and their answers work (the interaction's token), the bot
    token's delete is refused 403 Missing Access. Delete went through the bot token and apologised."""
    message_id = await delivered_message(discord_fake, settings)
    discord_fake.fail_next(
        "DELETE",
        rf"/channels/\d+/messages/{message_id}$",
        status=403,
        body={"code": 50001, "message": "Missing Access"},
    )
    click = await discord_fake.click(
        message_id, button(discord_fake, message_id, "Delete"), user_id=discord_fake.member_id
    )
    await discord_fake.wait_for(lambda: discord_fake.messages[message_id].deleted, timeout=10)
    await asyncio.sleep(0.5)
    assert said(discord_fake, click) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_two_cancels_at_once_are_credited_to_whoever_wrote_the_cancel(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The member and a moderator press Cancel together, the member's first: the job was cancelled by the
    member, but the moderation log said the moderator had cancelled a member's job."""
    message_id = await start_running_job(discord_fake, seaart, settings)
    cancel = button(discord_fake, message_id, "Cancel")
    discord_fake.hold_callbacks()  # both clicks reach the bot before Discord shows the first one's answer
    await discord_fake.click(message_id, cancel, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=10)
    await discord_fake.click(message_id, cancel, user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 2, timeout=10)
    discord_fake.hold_callbacks(False)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"], timeout=10)
    await asyncio.sleep(0.5)  # the log entry would follow the answer
    assert rows(settings)[0]["cancelled_by"] == discord_fake.member_id
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT action, actor_id FROM audit_log WHERE action = 'cancel'").fetchall() == []
    seaart.release()


async def test_a_job_the_provider_refused_offers_no_re_roll_and_an_old_one_pressed_is_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A prompt the provider blocked would be blocked again as it stands: its message offers no Re-roll, and a
    Re-roll button a message drawn before that rule still shows is refused privately and starts nothing."""
    seaart.script("content_blocked")
    made = await discord_fake.slash_command("imagine", {"prompt": "blocked as it stands"})
    await discord_fake.wait_for(lambda: states(settings) == ["blocked"], timeout=10)
    message_id = made.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(
        lambda: discord_fake.messages[message_id].embeds[0]["color"] != COLOUR_PROGRESS.value, timeout=10
    )
    assert rows(settings)[0]["error_category"] == "content_blocked"
    assert "Re-roll" not in labels(discord_fake, message_id)
    old_reroll = f"bananacord:job:reroll:{rows(settings)[0]['id']}"
    discord_fake.messages[message_id].components = [
        {"type": 1, "components": [{"type": 2, "style": 2, "label": "Re-roll", "custom_id": old_reroll}]}
    ]
    press = await discord_fake.click(message_id, old_reroll, user_id=discord_fake.member_id)
    assert "would only meet the same refusal again" in await ephemeral_reply(discord_fake, press)
    await asyncio.sleep(0.5)  # a job the press wrongly started would have its row by now
    assert states(settings) == ["blocked"]
