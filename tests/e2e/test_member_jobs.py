"""/jobs through the real bot, the fake Discord and the fake SeaArt: a member finds their own images in
the server again (what is generating, the latest ended, links to their messages), never anyone else's,
and its Cancel stops what the list showed, as the jobs' own Cancel buttons would: the provider asked to
stop, each message shown cancelled, the units refunded; a job started after the list is spared."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.db_copy import backup, restore
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, make_settings, start_bot
from tests.e2e.edits import jobs


async def answered(discord_fake: FakeDiscord, name: str, options: dict[str, Any], **kwargs: Any) -> FakeInteraction:
    interaction = await discord_fake.slash_command(name, options, **kwargs)
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    return interaction


async def private_list(discord_fake: FakeDiscord) -> FakeMessage:
    """/jobs by the member: the private message it answered with."""
    interaction = await answered(discord_fake, "jobs", {})
    assert interaction.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    assert message.ephemeral
    return message


async def job_message(discord_fake: FakeDiscord, settings: Settings, options: dict[str, Any], **kw: Any) -> FakeMessage:
    """/imagine, answered with its (public) message; the jobs are running at SeaArt."""
    interaction = await answered(discord_fake, "imagine", options, **kw)
    assert interaction.original_message_id is not None, interaction.callbacks
    await discord_fake.wait_for(lambda: all(r["state"] != "queued" for r in jobs(settings)), timeout=10)
    return discord_fake.messages[interaction.original_message_id]


def listed(message: FakeMessage) -> str:
    return str(message.embeds[0]["description"])


def link(discord_fake: FakeDiscord, message: FakeMessage) -> str:
    return f"https://discord.com/channels/{discord_fake.guild_id}/{message.channel_id}/{message.id}"


def refunded(settings: Settings) -> set[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return {row[0] for row in conn.execute("SELECT job_id FROM ledger WHERE kind = 'refund'")}


async def test_jobs_lists_a_members_own_images_and_cancels_what_it_showed(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_user": None})
    member, other = discord_fake.member_id, discord_fake.admin_id
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        empty = await private_list(discord_fake)
        assert "Nothing right now." in listed(empty) and "None yet" in listed(empty)
        assert empty.components == []

        # Two that ended (one delivered, one blocked), then three requests left running: one image, a
        # batch of two, and another member's.
        seaart.script("error:CONTENT_BLOCKED")
        blocked = await job_message(discord_fake, settings, {"prompt": "blocked **for once**"})
        await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "blocked", timeout=10)
        done = await job_message(discord_fake, settings, {"prompt": "a lighthouse"})
        await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)
        seaart.hold(True)
        single = await job_message(discord_fake, settings, {"prompt": "a harbour at night"})
        pair = await job_message(discord_fake, settings, {"prompt": "two boats", "count": 2})
        theirs = await job_message(discord_fake, settings, {"prompt": "not yours"}, user_id=other)

        shown = await private_list(discord_fake)
        text = listed(shown)
        generating, latest = text.split("**Latest**")
        assert "**Generating (2)**" in generating
        assert link(discord_fake, single) in generating and "a harbour at night" in generating
        assert link(discord_fake, pair) in generating and "Generating · 2 images" in generating
        # Oldest first while generating; newest first once ended.
        assert generating.index("a harbour") < generating.index("two boats")
        assert latest.index("a lighthouse") < latest.index("blocked")
        assert link(discord_fake, done) in latest and "**Done**" in latest
        assert "Blocked by the provider's safety filter" in latest and link(discord_fake, blocked) in latest
        assert "blocked \\*\\*for once\\*\\*" in latest  # the prompt as written, not bold
        assert "not yours" not in text and link(discord_fake, theirs) not in text
        assert [c["label"] for row in shown.components for c in row["components"]] == ["Cancel 2 generating"]
        cancel_id = shown.components[0]["components"][0]["custom_id"]

        # Started after the list: its Cancel must not reach it, even with the machine's clock set back
        # meanwhile (NTP stepping it), which made it look older than the list.
        clock.offset -= 60
        later = await job_message(discord_fake, settings, {"prompt": "started afterwards"})
        click = await discord_fake.click(shown.id, cancel_id, user_id=member)
        await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
        answer = click.callbacks[0]
        assert answer["type"] == 7
        note = answer["data"]["embeds"][0]["description"]
        assert note.startswith("✖️ Cancelling 2 requests: you will not be charged for them."), (
            cancel_id,
            [
                (r["request"][:40], r["state"], r["created_at"], r["cancel_requested"], r["batch_id"])
                for r in jobs(settings)
            ],
        )

        listed_ids = {r["id"] for r in jobs(settings) if r["message_id"] in (single.id, pair.id)}
        assert len(listed_ids) == 3
        await discord_fake.wait_for(
            lambda: {r["id"] for r in jobs(settings) if r["state"] == "cancelled"} == listed_ids, timeout=10
        )
        await discord_fake.wait_for(lambda: single.embeds[0]["title"] == "🍌 Cancelled", timeout=10)
        await discord_fake.wait_for(lambda: pair.embeds[0]["title"] == "🍌 Cancelled", timeout=10)
        cancelled_at_seaart = {r["provider_job_id"] for r in jobs(settings) if r["id"] in listed_ids}
        await discord_fake.wait_for(lambda: cancels_asked(seaart) == cancelled_at_seaart, timeout=10)
        assert refunded(settings) >= listed_ids
        by_message = {r["message_id"]: r for r in jobs(settings)}
        assert {by_message[later.id]["state"], by_message[theirs.id]["state"]} <= {"submitted", "running"}
        assert by_message[later.id]["cancelled_by"] is None

        # The list again: the spared job is what is left to cancel.
        again = await private_list(discord_fake)
        assert "**Generating (1)**" in listed(again) and link(discord_fake, later) in listed(again)
        assert [c["label"] for row in again.components for c in row["components"]] == ["Cancel 1 generating"]
        seaart.hold(False)
        await discord_fake.wait_for(lambda: by_message_state(settings, later.id) == "delivered", timeout=10)
    finally:
        await running.close()


def cancels_asked(seaart: FakeSeaArt) -> set[str]:
    """The SeaArt request ids whose cancel the bot sent (PUT .../requests/{id}/cancel)."""
    return {r.path.split("/")[-2] for r in seaart.requests if r.path.endswith("/cancel")}


def by_message_state(settings: Settings, message_id: int) -> str:
    return next(str(r["state"]) for r in jobs(settings) if r["message_id"] == message_id)


async def test_a_cancel_drawn_by_the_bot_before_row_marks_still_spares_what_started_after(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A list opened before an upgrade carries the time it was drawn (milliseconds), not a row mark: its
    Cancel still works after the restart, and still spares a job started after it."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_user": None})
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        seaart.hold(True)
        listed = await job_message(discord_fake, settings, {"prompt": "a harbour at night"})
        shown = await private_list(discord_fake)
        # As the bot before drew it: the moment of the list, in milliseconds of its clock.
        old_id = f"bananacord:jobs:cancel:{int(clock() * 1000) + 1}"
        shown.components[0]["components"][0]["custom_id"] = old_id
        clock.offset += 5  # the list is older than the next job by more than a clock's resolution
        later = await job_message(discord_fake, settings, {"prompt": "started afterwards"})
        click = await discord_fake.click(shown.id, old_id, user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
        note = click.callbacks[0]["data"]["embeds"][0]["description"]
        assert note.startswith("✖️ Cancelling 1 request: you will not be charged for it.")
        await discord_fake.wait_for(lambda: by_message_state(settings, listed.id) == "cancelled", timeout=10)
        assert by_message_state(settings, later.id) in {"submitted", "running"}
    finally:
        await running.close()


async def test_a_list_drawn_before_a_restore_spares_a_job_started_after_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A `db restore` of an older copy hands its row numbers out again: a list's row mark alone took a job
    started after the restore for one the list showed. The moment the list was drawn spares it."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_user": None})
    database, copy = settings.database.path, tmp_path / "monday.sqlite3"
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        kept = await job_message(discord_fake, settings, {"prompt": "kept by the copy"})
        backup(database, copy)
        for prompt in ("lost with the restore", "lost too"):
            await job_message(discord_fake, settings, {"prompt": prompt})
        shown = await private_list(discord_fake)
        cancel_id = shown.components[0]["components"][0]["custom_id"]
    finally:
        await running.close()
    restore(copy, database, now=datetime.now(UTC))
    running = await start_bot(settings, discord_fake, Clock())
    try:
        later = await job_message(discord_fake, settings, {"prompt": "started after the restore"})
        click = await discord_fake.click(shown.id, cancel_id, user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
        note = click.callbacks[0]["data"]["embeds"][0]["description"]
        assert note.startswith("✖️ Cancelling 1 request: you will not be charged for it."), note
        await discord_fake.wait_for(lambda: by_message_state(settings, kept.id) == "cancelled", timeout=10)
        assert by_message_state(settings, later.id) in {"submitted", "running"}
    finally:
        await running.close()


async def test_jobs_search_finds_a_member_s_earlier_images_by_the_words_of_their_prompts(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Scrolled away in a busy channel, an image from last week is found again by its prompt's words: each word,
    in any case and order, the member's own images in this server only, a batch as one line."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_user": None})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        night = await job_message(discord_fake, settings, {"prompt": "A Lighthouse at night, *stormy*"})
        await job_message(discord_fake, settings, {"prompt": "a lighthouse at dawn"})
        pair = await job_message(discord_fake, settings, {"prompt": "two lighthouses at NIGHT", "count": 2})
        await job_message(discord_fake, settings, {"prompt": "a lighthouse at night"}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"] * 5, timeout=20)

        interaction = await answered(discord_fake, "jobs", {"search": "night  LIGHTHOUSE"})
        assert interaction.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        assert message.ephemeral
        text = listed(message)
        assert text.startswith("**Matching night LIGHTHOUSE**")
        # Newest first; the batch once, whole; the other member's and the one without "night" left out.
        assert text.index(link(discord_fake, pair)) < text.index(link(discord_fake, night))
        assert "2 of 2 ready" in text and text.count(link(discord_fake, pair)) == 1
        assert "dawn" not in text and text.count("[message]") == 2
        assert "\\*stormy\\*" in text  # the prompt as written, not italics

        none = await answered(discord_fake, "jobs", {"search": "submarine"})
        assert none.original_message_id is not None
        assert "Nothing of yours in this server matches" in listed(discord_fake.messages[none.original_message_id])
        blank = await answered(discord_fake, "jobs", {"search": "   "})
        assert "needs a word" in str(blank.callbacks[0]["data"]["content"])
    finally:
        await running.close()


def button_ids(message: FakeMessage) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


async def test_earlier_pages_through_a_members_finished_images_and_latest_comes_back(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Past the five latest, /jobs had only `search:`: a member who did not remember the words could not find an
    image from before. Earlier turns the list's page, five requests at a time (a batch one of them, whole), in
    place; Latest comes back; neither shows another member's images."""
    prompts = [f"picture number {n}" for n in range(1, 8)]
    for prompt in prompts[:3]:
        await job_message(discord_fake, settings, {"prompt": prompt})
        await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)
    await job_message(discord_fake, settings, {"prompt": "a pair of kites", "count": 2})
    await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)][-2:] == ["delivered"] * 2, timeout=10)
    for prompt in prompts[3:]:
        await job_message(discord_fake, settings, {"prompt": prompt})
        await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)
    await job_message(discord_fake, settings, {"prompt": "someone else's"}, user_id=discord_fake.admin_id)
    await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)

    first = await private_list(discord_fake)
    newest_first = ["picture number 7", "picture number 6", "picture number 5", "picture number 4", "a pair of kites"]
    text = listed(first)
    assert [text.index(p) for p in newest_first] == sorted(text.index(p) for p in newest_first)
    assert "picture number 3" not in text and "someone else" not in text
    assert list(button_ids(first)) == ["Earlier"]

    await discord_fake.click(first.id, button_ids(first)["Earlier"])
    await discord_fake.wait_for(lambda: "**Earlier**" in listed(first), timeout=10)
    text = listed(first)
    older = ["picture number 3", "picture number 2", "picture number 1"]
    assert [text.index(p) for p in older] == sorted(text.index(p) for p in older)
    assert "kites" not in text and "picture number 4" not in text and "someone else" not in text
    assert list(button_ids(first)) == ["Latest"]  # nothing earlier than the first

    await discord_fake.click(first.id, button_ids(first)["Latest"])
    await discord_fake.wait_for(lambda: "**Latest**" in listed(first), timeout=10)
    assert "picture number 7" in listed(first) and list(button_ids(first)) == ["Earlier"]


async def test_a_moderator_lists_a_member_s_images_pages_through_them_and_searches_them(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A moderator looking into a report, or before a purge, had to scroll the channels for a member's images.
    `/mod images member:` lists them as the member's /jobs does (their mention on top, no Cancel: read only), its
    Earlier and Latest turn that member's pages, and `search:` finds theirs; none of it shows the moderator's
    own. A member who is no moderator may not turn such a list's pages, nor use the command."""
    member, moderator = discord_fake.member_id, discord_fake.moderator_id
    for n in range(1, 7):
        await job_message(discord_fake, settings, {"prompt": f"their picture {n}"})
        await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)
    await job_message(discord_fake, settings, {"prompt": "the moderator's own"}, user_id=moderator)
    await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=10)
    seaart.hold(True)
    running = await job_message(discord_fake, settings, {"prompt": "their picture still going"})

    asked = await answered(discord_fake, "mod images", {"member": str(member)}, user_id=moderator)
    assert asked.original_message_id is not None
    shown = discord_fake.messages[asked.original_message_id]
    assert shown.ephemeral and asked.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}
    text = listed(shown)
    assert shown.embeds[0]["title"] == "🍌 A member's images in this server"
    assert text.startswith(f"The requests of <@{member}>.")
    assert "**Generating (1)**" in text and link(discord_fake, running) in text
    newest = [f"their picture {n}" for n in (6, 5, 4, 3, 2)]
    assert [text.index(p) for p in newest] == sorted(text.index(p) for p in newest)
    assert "their picture 1" not in text and "moderator's own" not in text
    assert list(button_ids(shown)) == ["Earlier"], "read only: a moderator cancels from the image or with /mod ban"

    stranger = discord_fake.other_member_id
    refused = await discord_fake.click(shown.id, button_ids(shown)["Earlier"], user_id=stranger)
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    assert refused.callbacks[0]["type"] == 4 and refused.callbacks[0]["data"]["flags"] & 64  # privately
    assert "their picture" not in str(refused.callbacks)

    await discord_fake.click(shown.id, button_ids(shown)["Earlier"], user_id=moderator)
    await discord_fake.wait_for(lambda: "**Earlier**" in listed(shown), timeout=10)
    assert "their picture 1" in listed(shown) and "moderator's own" not in listed(shown)
    assert listed(shown).startswith(f"The requests of <@{member}>.")
    await discord_fake.click(shown.id, button_ids(shown)["Latest"], user_id=moderator)
    await discord_fake.wait_for(lambda: "**Latest**" in listed(shown), timeout=10)
    assert "their picture 6" in listed(shown) and "moderator's own" not in listed(shown)

    found = await answered(
        discord_fake, "mod images", {"member": str(member), "search": "picture 3"}, user_id=moderator
    )
    assert found.original_message_id is not None
    text = listed(discord_fake.messages[found.original_message_id])
    assert "their picture 3" in text and "their picture 4" not in text
    none = await answered(
        discord_fake, "mod images", {"member": str(member), "search": "lighthouse"}, user_id=moderator
    )
    assert none.original_message_id is not None
    assert "Nothing of theirs in this server matches" in listed(discord_fake.messages[none.original_message_id])

    plain = await answered(discord_fake, "mod images", {"member": str(moderator)}, user_id=member)
    assert "moderator's own" not in str(plain.callbacks) and plain.callbacks[0]["data"]["flags"] & 64
    seaart.hold(False)
