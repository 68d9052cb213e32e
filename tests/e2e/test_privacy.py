"""/privacy: a member sees what the bot keeps about them in a server and erases their words (cogs/privacy.py,
bot/store/erasure.py): their ended requests' words, their preferences and their stars go; what they were charged,
their images' figures and the other members' requests stay; nothing is made from an erased request again, and one
still generating keeps its words until it ends."""

from __future__ import annotations

import asyncio
import copy
import csv
import gzip
import io
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.models import GenerationRequest, JobState
from bot.store import Database
from bot.store.jobs import JobStore, NewJob
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from cogs.imagine import ERASED_REFUSAL
from cogs.privacy import ERASURE_WAITS, NOT_YOURS, NOT_YOURS_TO_DOWNLOAD
from tests.conftest import Clock, RunningBot, answer_data, answer_given, answered, make_settings, start_bot
from tests.discord_markdown import as_read
from tests.e2e.edits import states
from tests.e2e.test_batches import batch_message
from tests.e2e.test_buttons import button, labels
from tests.e2e.test_locked_database import writes_refused
from tests.e2e.test_remix import MENU, form_of, submitted
from tests.e2e.test_replies import answer_to
from tests.e2e.test_rework import fetch, imagine, press
from tests.e2e.test_star_reaction import stars
from tests.e2e.test_usage_review_fixes import as_departed
from tests.e2e.test_waiting_turns import prompts_sent


def stored(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql).fetchall()


async def privacy_answer(discord_fake: FakeDiscord, **kw: Any) -> FakeMessage:
    interaction = await answered(discord_fake, "privacy", {}, **kw)
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64 and data["allowed_mentions"] == {"parse": []}  # private, pings nobody
    assert interaction.original_message_id is not None
    return discord_fake.messages[interaction.original_message_id]


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def erase_mine(discord_fake: FakeDiscord) -> None:
    """The member's /privacy, and its Erase pressed, answered."""
    shown = await privacy_answer(discord_fake)
    pressed = await discord_fake.click(shown.id, button(discord_fake, shown.id, "Erase my words here"))
    await answer_given(discord_fake, pressed)


async def drawn_at_next_start(settings: Settings, discord_fake: FakeDiscord, clock: Clock) -> None:
    """The bot started again, until the one request's redraw is done, and stopped."""
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(
            lambda: stored(settings, "SELECT erasure_shown_at IS NOT NULL FROM jobs") == [(1,)], timeout=10
        )
    finally:
        await running.close()


async def test_a_member_erases_their_words_and_nothing_is_made_from_them_again(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    member, other = discord_fake.member_id, discord_fake.other_member_id
    mine = await imagine(discord_fake, {"prompt": "a secret garden behind my grandmother's house"})
    theirs = await imagine(discord_fake, {"prompt": "a lighthouse in a storm"}, user_id=other)
    assert await discord_fake.react(mine.id, "⭐")
    await discord_fake.wait_for(lambda: len(stars(settings)) == 1, timeout=10)
    await answered(discord_fake, "preferences", {"suffix": "in my late aunt's watercolour style"})
    assert stored(settings, "SELECT suffix FROM member_preferences") == [("in my late aunt's watercolour style",)]
    # One still generating: it keeps its words until it ends.
    seaart.hold(True)
    await discord_fake.slash_command("imagine", {"prompt": "a garden gate, still drawing"})
    await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == 3, timeout=10)
    charged_before = stored(settings, "SELECT id, charge_state, charge_units, cost_micro_usd, model FROM jobs")
    ledger_before = stored(settings, "SELECT * FROM ledger ORDER BY rowid")
    report = await answered(discord_fake, "usage report", {}, user_id=discord_fake.admin_id)
    report_before = answer_data(discord_fake, report)["embeds"]

    shown = await privacy_answer(discord_fake)
    kept = fields(shown)
    assert kept["Requests"].startswith("1 with their words"), kept
    assert "1 still generating or waiting" in kept["Requests"], kept
    assert kept["Preferences"] == "Yours are set (`/preferences`)" and kept["Stars"] == "1 image(s) starred"
    erase_id = f"bananacord:privacy:erase:{member}"
    assert button(discord_fake, shown.id, "Erase my words here") == erase_id

    # Another member's click on that button (a modified client: the answer is private) erases nothing.
    refused = await discord_fake.click(shown.id, erase_id, user_id=other)
    await answer_given(discord_fake, refused)
    assert answer_data(discord_fake, refused)["content"] == NOT_YOURS

    pressed = await discord_fake.click(shown.id, erase_id)
    await discord_fake.wait_for(lambda: bool(pressed.callbacks), timeout=10)
    done = discord_fake.messages[shown.id]
    assert done.embeds[0]["title"] == "Erased"
    assert done.embeds[0]["description"] == (
        "Erased from this server's records: the words of 1 request(s), your preferences and 1 star(s). 1 request(s) "
        "still generating or waiting keep their words until they end: run `/privacy` again then."
    )
    assert done.components == []

    requests = [json.loads(r[0]) for r in stored(settings, "SELECT request_json FROM jobs ORDER BY created_at")]
    erased = stored(settings, "SELECT erased_at IS NOT NULL FROM jobs ORDER BY created_at")
    assert erased == [(1,), (0,), (0,)]
    assert requests[0]["prompt"] == "(its words were erased)"
    assert requests[0]["model"] == "nano_banana_2"
    assert "grandmother" not in json.dumps(requests[0]) and "watercolour" not in json.dumps(requests[0])
    assert requests[1]["prompt"] == "a lighthouse in a storm"  # another member's: theirs
    assert requests[2]["prompt"].startswith("a garden gate, still drawing")  # still generating: kept until it ends
    assert stored(settings, "SELECT COUNT(*) FROM member_preferences") == [(0,)] and stars(settings) == []
    # The server's accounting is as it was: what was charged, for which model, at what cost.
    assert stored(settings, "SELECT id, charge_state, charge_units, cost_micro_usd, model FROM jobs") == charged_before
    assert stored(settings, "SELECT * FROM ledger ORDER BY rowid") == ledger_before
    report = await answered(discord_fake, "usage report", {}, user_id=discord_fake.admin_id)
    assert answer_data(discord_fake, report)["embeds"] == report_before

    # Nothing is made from the erased request again, whoever presses; Use as reference still takes the image.
    sent = len(prompts_sent(seaart))
    for label, who in (("Re-roll", other), ("Vary (Subtle)", member), ("Zoom out", other)):
        again = await press(discord_fake, mine, label, user_id=who)
        await answer_given(discord_fake, again)
        assert answer_data(discord_fake, again)["content"] == ERASED_REFUSAL, label
    as_reference = await press(discord_fake, mine, "Use as reference", user_id=other)
    await discord_fake.wait_for(lambda: bool(as_reference.callbacks), timeout=10)
    assert as_reference.callbacks[0]["type"] == 9  # its form opens
    # The other member's image is theirs to work on still.
    vary = await press(discord_fake, theirs, "Vary (Subtle)", user_id=other)
    await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == sent + 1, timeout=10)
    assert vary.callbacks
    assert len(stored(settings, "SELECT id FROM jobs")) == 4

    # Searching their words finds nothing, nor does the word that stands in for them; /privacy says what is left.
    for words in ("grandmother", "erased"):
        search = await answered(discord_fake, "jobs", {"search": words})
        listed = answer_data(discord_fake, search)["embeds"][0]["description"]
        assert "Nothing of yours in this server matches." in listed, (words, listed)
    again = fields(await privacy_answer(discord_fake))
    assert again["Requests"].startswith("None with their words"), again
    assert "1 erased before" in again["Requests"] and again["Preferences"] == "None"
    seaart.hold(False)
    # Their suffix went with their preferences: a new prompt of theirs is sent as typed.
    await imagine(discord_fake, {"prompt": "a plain apple"})
    assert prompts_sent(seaart)[-1] == "a plain apple"


async def test_a_reply_to_an_erased_image_edits_the_image_alone_and_carries_no_erased_words_forward(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A reply to the bot's image continues its conversation: its request carries the earlier steps' words. Once
    their member erased them, a reply (anyone's) edits the image as any other image, and no erased word reaches the
    new request's row or the provider."""
    first = await imagine(discord_fake, {"prompt": "my childhood bedroom with the blue wallpaper"})
    asked = await discord_fake.post_message("now make it night", reply_to=first.id)
    answer = await answer_to(discord_fake, settings, asked)
    assert "blue wallpaper" in stored(settings, "SELECT request_json FROM jobs ORDER BY created_at")[1][0]

    await erase_mine(discord_fake)
    assert stored(settings, "SELECT COUNT(*) FROM jobs WHERE erased_at IS NOT NULL") == [(2,)]

    other = discord_fake.other_member_id
    reply = await discord_fake.post_message("add falling snow", reply_to=answer.id, user_id=other)
    await answer_to(discord_fake, settings, reply)
    newest = stored(settings, "SELECT request_json FROM jobs ORDER BY created_at")[2][0]
    assert "falling snow" in newest
    for erased in ("blue wallpaper", "make it night", "erased"):
        assert erased not in newest, erased
        assert erased not in json.dumps(seaart.creates[2].json), erased
    assert seaart.creates[2].json["image_urls"] == [answer.attachments[0]["url"]]  # the image itself, edited


async def test_edit_with_nano_banana_on_an_erased_image_edits_the_image_alone(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await imagine(discord_fake, {"prompt": "the cafe where we first met", "aspect_ratio": "4:5"})
    await erase_mine(discord_fake)
    used = await discord_fake.message_command(MENU, image.id, user_id=discord_fake.admin_id)
    await form_of(discord_fake, used)
    await submitted(discord_fake, settings, used, "add a tiny hat")
    newest = stored(settings, "SELECT request_json FROM jobs ORDER BY created_at")[1][0]
    assert "add a tiny hat" in newest
    for erased in ("first met", "erased"):
        assert erased not in newest and erased not in json.dumps(seaart.creates[1].json), erased
    assert seaart.creates[1].json["image_urls"] == [image.attachments[0]["url"]]


async def test_an_admin_erases_the_words_of_a_member_who_has_left_and_answers_for_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member who left the server has no /privacy there any more: they ask an admin, who draws theirs with
    ``member:`` and presses Erase. The audit log and the moderation log channel keep who did it; a member who is no
    admin may not look at another's."""
    gone, admin = discord_fake.other_member_id, discord_fake.admin_id
    log_channel = discord_fake.add_text_channel("mod-log")
    await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id)
    await imagine(discord_fake, {"prompt": "my old address, 12 Elm Street"}, user_id=gone)
    nosy = await answered(discord_fake, "privacy", {"member": gone})
    assert "Manage Server" in answer_data(discord_fake, nosy)["content"]

    drawn = await as_departed(discord_fake, "privacy", {"member": gone}, user_id=admin)
    shown = discord_fake.messages[drawn.original_message_id or 0]
    drawn_again = await as_departed(discord_fake, "privacy", {"member": gone}, user_id=admin)
    shown_again = discord_fake.messages[drawn_again.original_message_id or 0]
    assert shown.embeds[0]["title"] == "What the bot keeps about Another Member here"
    assert fields(shown)["Requests"].startswith("1 with their words"), fields(shown)
    # Their requests first, for the admin to send them (a forged click by someone else is refused).
    download_theirs = button(discord_fake, shown.id, "Download their requests")
    forged = await discord_fake.click(shown.id, download_theirs)
    await answer_given(discord_fake, forged)
    assert answer_data(discord_fake, forged)["content"] == NOT_YOURS_TO_DOWNLOAD
    got = await discord_fake.click(shown.id, download_theirs, user_id=admin)
    await answer_given(discord_fake, got)
    assert answer_data(discord_fake, got)["content"] == f"<@{gone}>'s 1 request(s) in this server, as CSV."
    (attachment,) = discord_fake.messages[got.original_message_id or 0].attachments
    assert "12 Elm Street" in (await fetch(attachment["url"]))[1].decode("utf-8")
    erase_theirs = button(discord_fake, shown.id, "Erase their words here")
    pressed = await discord_fake.click(shown.id, erase_theirs, user_id=admin)
    await answer_given(discord_fake, pressed)
    done = discord_fake.messages[shown.id].embeds[0]
    assert done["description"] == f"Erased from this server's records for <@{gone}>: the words of 1 request(s)."
    # The second answer, drawn before, pressed after: nothing is left, and it says so.
    twice = await discord_fake.click(shown_again.id, erase_theirs, user_id=admin)
    await answer_given(discord_fake, twice)
    assert discord_fake.messages[shown_again.id].embeds[0]["description"] == f"Nothing was left to erase for <@{gone}>."
    (request,) = stored(settings, "SELECT request_json FROM jobs")
    assert "Elm Street" not in request[0]
    audit = stored(
        settings, "SELECT action, actor_id, target_id FROM audit_log WHERE action LIKE 'privacy%' ORDER BY id"
    )
    # The erasure once: the second erased nothing.
    assert audit == [("privacy_downloaded", admin, gone), ("privacy_erased", admin, gone)]
    await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) == 3, timeout=10)
    posts = [post.content for post in discord_fake.messages_in(log_channel)[1:]]  # after "set the log channel"
    assert posts == [
        f"<@{admin}> downloaded the 1 request(s) of <@{gone}> (`/privacy`).",
        f"<@{admin}> erased the words of 1 request(s) of <@{gone}> (`/privacy`).",
    ]


async def test_words_older_than_the_bot_keeps_them_are_erased_at_start_and_said_so(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """``[privacy] keep_words_days``: a request that ended longer ago loses its words at the next sweep (at start and
    hourly after), as a member's /privacy would erase them; one that ended since keeps them."""
    settings = make_settings(tmp_path, discord_fake, seaart, privacy={"keep_words_days": 2})
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        old = await imagine(discord_fake, {"prompt": "the street I grew up on"})
    finally:
        await running.close()
    clock.offset += 2 * 86_400 + 60  # two days and a minute later
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(
            lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE erasure_shown_at IS NOT NULL") == [(1,)],
            timeout=10,
        )
        recent = await imagine(discord_fake, {"prompt": "a kite on the beach"})
        reroll = await press(discord_fake, old, "Re-roll")
        await answer_given(discord_fake, reroll)
        kept = fields(await privacy_answer(discord_fake))
        await press(discord_fake, recent, "Re-roll")
        await discord_fake.wait_for(lambda: prompts_sent(seaart)[-1] == "a kite on the beach", timeout=10)
    finally:
        await running.close()
    rows = stored(settings, "SELECT request_json FROM jobs ORDER BY created_at")
    prompts = [json.loads(row[0])["prompt"] for row in rows]
    assert prompts[:2] == ["(its words were erased)", "a kite on the beach"]
    assert answer_data(discord_fake, reroll)["content"] == ERASED_REFUSAL
    assert "grew up" not in json.dumps(discord_fake.messages[old.id].embeds)  # its message drawn again too
    assert kept["How long"] == "This bot erases every request's words 2 days after it ends."
    assert kept["Requests"].startswith("1 with their words") and "1 erased before" in kept["Requests"], kept


async def test_the_messages_of_erased_requests_are_drawn_again_without_their_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The channel's copy of the words is the most read one: each erased request's message is drawn again from its
    row (the embed, the images' alt text), its image and buttons as they were; a message deleted since owes
    nothing. Words of the member's that no message shows any more: none of the bot's messages holds them."""
    single = await imagine(discord_fake, {"prompt": "my daughter's first bicycle, secretword"})
    pair = await batch_message(discord_fake, {"prompt": "our secretword holiday {at dawn, at dusk}"})
    await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == 3, timeout=10)  # the pair's creates made
    seaart.script("content_blocked")
    blocked = await batch_message(discord_fake, {"prompt": "a secretword the filter refuses"})
    gone = await imagine(discord_fake, {"prompt": "a secretword to delete first"})
    await discord_fake.wait_for(
        lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE finished_at IS NULL") == [(0,)], timeout=20
    )
    assert await discord_fake.react(gone.id, "❌")
    await discord_fake.wait_for(lambda: discord_fake.messages[gone.id].deleted, timeout=10)
    buttons_before = labels(discord_fake, single.id)
    size_before = fields(discord_fake.messages[single.id])["Size"]

    await erase_mine(discord_fake)
    await discord_fake.wait_for(
        lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE erasure_shown_at IS NULL") == [(0,)], timeout=20
    )

    redrawn = discord_fake.messages[single.id]
    assert as_read(redrawn.embeds[0]["description"]) == "(its words were erased)"
    assert [a["description"] for a in redrawn.attachments] == ["(its words were erased)"]
    assert labels(discord_fake, single.id) == buttons_before and fields(redrawn)["Size"] == size_before
    # The image still shown in the embed: the same attachment, kept.
    assert f"/attachments/{redrawn.attachments[0]['id']}/" in redrawn.embeds[0]["image"]["url"]
    batch = discord_fake.messages[pair.id]
    assert "at dawn" not in json.dumps(batch.embeds)  # the choice each candidate took: the member's words too
    assert len(batch.attachments) == 2 and {a["description"] for a in batch.attachments} == {
        "(its words were erased) (#1)",
        "(its words were erased) (#2)",
    }
    assert as_read(discord_fake.messages[blocked.id].embeds[0]["description"]) == "(its words were erased)"
    for message in discord_fake.messages_in(discord_fake.channel_id):
        if message.author_id is None and not message.deleted:  # the bot's
            assert "secretword" not in json.dumps([message.content, message.embeds, message.attachments]), message.id


async def test_a_redraw_the_bot_stopped_before_is_done_at_its_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """What a bot killed between an erasure and its redraw leaves: the rows erased, their redraw owed, the message
    as it was. The next start draws it again."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "grandpa's secretword boat"})
        as_it_was = copy.deepcopy((image.embeds, image.attachments))
        await erase_mine(discord_fake)
        await discord_fake.wait_for(
            lambda: stored(settings, "SELECT erasure_shown_at IS NOT NULL FROM jobs") == [(1,)], timeout=10
        )
    finally:
        await running.close()
    image.embeds, image.attachments = as_it_was
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE jobs SET erasure_shown_at = NULL")
    assert "secretword" in json.dumps(image.embeds)
    await drawn_at_next_start(settings, discord_fake, clock)
    redrawn = discord_fake.messages[image.id]
    assert "secretword" not in json.dumps([redrawn.embeds, redrawn.attachments])
    assert as_read(redrawn.embeds[0]["description"]) == "(its words were erased)"


async def test_a_redraw_discord_fails_stays_owed_and_is_done_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A 503 (which discord.py does not retry) on the redraw's edit: nothing is marked drawn, the pass waits to try
    again; the bot stopped meanwhile draws it at its next start."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "the secretword treehouse"})
        discord_fake.fail_next("PATCH", rf"/messages/{image.id}$", status=503)
        await erase_mine(discord_fake)
        edit = f"/messages/{image.id}"
        await discord_fake.wait_for(
            lambda: any(r.method == "PATCH" and r.path.endswith(edit) for r in discord_fake.requests), timeout=10
        )
        await asyncio.sleep(0.3)
        assert stored(settings, "SELECT erasure_shown_at FROM jobs") == [(None,)]
        assert "secretword" in json.dumps(discord_fake.messages[image.id].embeds)
    finally:
        await running.close()
    await drawn_at_next_start(settings, discord_fake, clock)
    assert "secretword" not in json.dumps(discord_fake.messages[image.id].embeds)


async def test_an_erasure_the_database_holds_up_says_so_in_time_and_finishes_once_it_is_free(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Another program holds the database's write lock (a DB browser): the press is answered within Discord's 3 s,
    saying the erasure has not finished (not "nothing was saved": it goes on), and once the lock goes it does, its
    message drawn again too."""
    discord_fake.answer_window = 3.0
    image = await imagine(discord_fake, {"prompt": "the secretword swing"})
    shown = await privacy_answer(discord_fake)
    with writes_refused("locked", None, settings.database.path):
        pressed = await discord_fake.click(shown.id, button(discord_fake, shown.id, "Erase my words here"))
        await answer_given(discord_fake, pressed, timeout=5)
        assert stored(settings, "SELECT erased_at FROM jobs") == [(None,)]
    assert answer_data(discord_fake, pressed)["content"] == ERASURE_WAITS
    await discord_fake.wait_for(
        lambda: stored(settings, "SELECT erasure_shown_at IS NOT NULL FROM jobs") == [(1,)], timeout=10
    )
    assert "secretword" not in json.dumps(discord_fake.messages[image.id].embeds)


async def test_a_member_downloads_their_requests_and_no_one_elses(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Before an erasure (or instead of one): every request of theirs in this server as a CSV file, their words as
    they asked them, the links back; a prompt a spreadsheet would take for a formula is kept as text."""
    member, other = discord_fake.member_id, discord_fake.other_member_id
    mine = await imagine(discord_fake, {"prompt": "=a lighthouse at night", "aspect_ratio": "16:9"})
    await imagine(discord_fake, {"prompt": "their own words"}, user_id=other)
    shown = await privacy_answer(discord_fake)
    download = button(discord_fake, shown.id, "Download my requests")
    assert download == f"bananacord:privacy:download:{member}"
    refused = await discord_fake.click(shown.id, download, user_id=other)
    await answer_given(discord_fake, refused)
    assert answer_data(discord_fake, refused)["content"] == NOT_YOURS_TO_DOWNLOAD
    got = await discord_fake.click(shown.id, download)
    await answer_given(discord_fake, got)
    answer = answer_data(discord_fake, got)
    assert answer["content"] == "Your 1 request(s) in this server, as CSV." and answer["flags"] & 64
    (attachment,) = discord_fake.messages[got.original_message_id or 0].attachments
    status, body = await fetch(attachment["url"])
    assert status == 200
    (row,) = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert row["prompt"] == "'=a lighthouse at night" and row["aspect_ratio"] == "16:9" and row["words_erased"] == "no"
    assert row["message"] == f"https://discord.com/channels/{discord_fake.guild_id}/{mine.channel_id}/{mine.id}"
    assert row["state"] == "delivered" and row["model"] == "nano_banana_2"


async def test_a_long_history_downloads_compressed_or_is_refused_saying_why(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    """Past the channel's upload limit the CSV goes gzip-compressed; past it even so, the member reads why."""
    other = Database(settings.database.path)  # another connection, as the rows of months would be there
    await other.connect()
    try:
        store = JobStore(other)
        for n in range(300):
            request = GenerationRequest(model="nano_banana_2", prompt=f"request {n}: " + "a long prompt " * 50)
            new = NewJob(
                provider="seaart",
                model="nano_banana_2",
                request=request,
                guild_id=discord_fake.guild_id,
                user_id=discord_fake.member_id,
            )
            (job,) = await store.create_batch([new], now=10 + n, deadline_seconds=600)
            await store.update(job, now=20 + n, state=JobState.CANCELLED)
    finally:
        await other.close()
    discord_fake.attachment_size_limit = 60_000
    shown = await privacy_answer(discord_fake)
    got = await discord_fake.click(shown.id, button(discord_fake, shown.id, "Download my requests"))
    await answer_given(discord_fake, got)
    (attachment,) = discord_fake.messages[got.original_message_id or 0].attachments
    assert attachment["filename"] == f"bananacord-requests-{discord_fake.guild_id}.csv.gz"
    status, body = await fetch(attachment["url"])
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(body).decode("utf-8"))))
    assert status == 200 and len(gzip.decompress(body)) > 60_000 and len(rows) == 300
    assert rows[0]["prompt"].startswith("request 0: a long prompt")
    discord_fake.attachment_size_limit = 2_000
    refused = await discord_fake.click(shown.id, button(discord_fake, shown.id, "Download my requests"))
    await answer_given(discord_fake, refused)
    said = answer_data(discord_fake, refused)["content"]
    assert said.startswith("Your 300 request(s) here come to ") and said.endswith(
        "KiB even compressed, over the 2 KiB this channel takes: ask the bot's operator."
    ), said


async def test_a_change_prompt_form_opened_before_an_erasure_and_sent_after_makes_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The form held the words when it opened; sent after its member erased them, the request it would repeat (its
    options, its references) is gone: refused privately, nothing made."""
    image = await imagine(discord_fake, {"prompt": "the old secretword mill"})
    opened = await press(discord_fake, image, "Change prompt", user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    assert opened.callbacks[0]["type"] == 9  # the form
    await erase_mine(discord_fake)
    sent = await discord_fake.submit_modal(opened, {"prompt": "the old mill at night"})
    await answer_given(discord_fake, sent)
    assert answer_data(discord_fake, sent)["content"] == ERASED_REFUSAL
    assert len(prompts_sent(seaart)) == 1 and stored(settings, "SELECT COUNT(*) FROM jobs") == [(1,)]


async def test_a_redraw_discord_refuses_for_good_holds_up_no_other(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 400 on a redraw's edit would be the same answer every minute: the redraw is given up, said once, and the
    next message is drawn at once, not held behind it for ever."""
    refused = await imagine(discord_fake, {"prompt": "the first secretword"})
    drawn = await imagine(discord_fake, {"prompt": "the second secretword"})
    discord_fake.fail_next("PATCH", rf"/messages/{refused.id}$", status=400)
    with caplog.at_level(logging.WARNING, logger="bot.erased_messages"):
        await erase_mine(discord_fake)
        await discord_fake.wait_for(
            lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE erasure_shown_at IS NULL") == [(0,)], timeout=10
        )
    assert "secretword" not in json.dumps(discord_fake.messages[drawn.id].embeds)
    assert "secretword" in json.dumps(discord_fake.messages[refused.id].embeds)  # as Discord left it
    assert [r.getMessage() for r in caplog.records if "not tried again" in r.getMessage()] == [
        f"erasure: Discord did not take job {stored(settings, 'SELECT id FROM jobs ORDER BY created_at')[0][0]}'s "
        "redraw (HTTP 400, code 0); not tried again"
    ]


async def test_a_new_erasure_does_not_wait_out_the_minute_an_earlier_redraw_failed(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A redraw Discord failed with a 503 waits a minute to be tried again; another member's erasure meanwhile
    begins the pass again at once: their messages are drawn within seconds (and the first with them)."""
    mine = await imagine(discord_fake, {"prompt": "my secretword"})
    theirs = await imagine(discord_fake, {"prompt": "their secretword"}, user_id=discord_fake.other_member_id)
    discord_fake.fail_next("PATCH", rf"/messages/{mine.id}$", status=503)
    await erase_mine(discord_fake)
    edit = f"/messages/{mine.id}"
    await discord_fake.wait_for(
        lambda: any(r.method == "PATCH" and r.path.endswith(edit) for r in discord_fake.requests), timeout=10
    )
    await asyncio.sleep(0.3)
    assert "secretword" in json.dumps(discord_fake.messages[mine.id].embeds)  # waiting out its minute

    shown = await privacy_answer(discord_fake, user_id=discord_fake.other_member_id)
    pressed = await discord_fake.click(
        shown.id, button(discord_fake, shown.id, "Erase my words here"), user_id=discord_fake.other_member_id
    )
    await answer_given(discord_fake, pressed)
    await discord_fake.wait_for(
        lambda: stored(settings, "SELECT COUNT(*) FROM jobs WHERE erasure_shown_at IS NULL") == [(0,)], timeout=10
    )
    for message in (mine, theirs):
        assert "secretword" not in json.dumps(discord_fake.messages[message.id].embeds), message.id


async def test_a_star_waiting_for_its_image_is_not_made_after_its_member_erased_their_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """/privacy's erasure takes a member's stars away; one of theirs waiting for an image was made after it."""
    mine = await imagine(discord_fake, {"prompt": "a first lantern"})  # a request of theirs, for /privacy to erase
    assert mine.files
    seaart.hold(True)
    asked = await discord_fake.slash_command(
        "imagine", {"prompt": "a slow lantern"}, user_id=discord_fake.other_member_id
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "running"], timeout=10)
    assert await discord_fake.react(asked.original_message_id or 0, "⭐")
    await erase_mine(discord_fake)
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=10)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)  # a star, were one coming
    assert stars(settings) == []
