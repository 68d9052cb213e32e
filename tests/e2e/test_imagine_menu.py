"""The "Imagine this" message command (cogs/imagine_menu.py): any message's words, and its images, made into the
member's own image from the message's menu, through the real bot and the fake Discord."""

from __future__ import annotations

import json
import sqlite3
import time

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answer_data, answer_given, png_bytes, start_bot
from tests.e2e.edits import jobs, ledger
from tests.e2e.test_references import with_expiry
from tests.e2e.test_remix import form_of
from tests.e2e.test_rework import delivered, fetch, settled

MENU = "Imagine this"


def _expire_kept_links(settings: Settings, expires: float) -> None:
    """The image links the open forms keep claim to expire at ``expires`` (wall clock)."""
    with sqlite3.connect(settings.database.path) as conn:
        for form_id, body_json in conn.execute("SELECT id, body_json FROM open_forms").fetchall():
            body = json.loads(body_json)
            for image in body.get("references", []):
                image["url"] = with_expiry(image["url"], expires)
            conn.execute("UPDATE open_forms SET body_json = ? WHERE id = ?", (json.dumps(body), form_id))


def _words(form: dict[str, object]) -> str:
    (text,) = [c["component"] for c in form["components"] if c["component"]["type"] == 4]  # type: ignore[attr-defined]
    return str(text.get("value") or "")


async def test_a_friends_message_made_into_the_members_image_with_its_picture(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A friend's "a cat riding a dragon" (the bot never saw its words: it does not mention the bot) with a photo: the
    menu's form holds the words, mentions as names; its submit is the presser's /imagine of the words they send,
    the photo a reference, charged to them, pinging nobody."""
    assert any(c["type"] == 3 and c["name"] == MENU for c in discord_fake.commands)
    other, friend = discord_fake.other_member_id, discord_fake.admin_id
    photo = png_bytes((64, 48))
    attachment = discord_fake.add_attachment(photo, "cat.png", "image/png")
    notes = discord_fake.add_attachment(b"shopping list", "notes.txt", "text/plain")
    post = await discord_fake.post_message(
        f"<@{discord_fake.bot_user_id}> a cat riding a dragon over Paris, for <@{other}> @everyone",
        attachments=[attachment, notes],
        user_id=friend,
    )
    used = await discord_fake.message_command(MENU, post.id)
    form = await form_of(discord_fake, used)
    name = discord_fake.users[other]["global_name"]
    words = f"a cat riding a dragon over Paris, for @{name} @everyone"
    # discord.py's clean_content breaks @everyone with a zero-width space, which the prompt's cleaning drops.
    assert form["title"] == MENU and _words(form).replace("\u200b", "") == words
    submit = await discord_fake.submit_modal(used, {"prompt": f"{_words(form)} at night"})
    result = await delivered(discord_fake, submit)
    await settled(discord_fake, settings)

    (create,) = seaart.creates
    assert create.json["prompt"] == f"{words} at night"
    (url,) = create.json["image_urls"]  # the photo, not the text file
    assert await fetch(url) == (200, photo)
    (job,) = jobs(settings)
    assert job["user_id"] == discord_fake.member_id, "the presser's, not the message's author's"
    assert ledger(settings, job["id"]) == [("reserve", discord_fake.member_id), ("commit", discord_fake.member_id)]
    assert result.allowed_mentions == {"parse": []}


async def test_a_message_with_nothing_to_imagine_is_refused_and_a_form_works_once_across_a_restart(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A message of a text file alone: refused privately, no form. A form opened before a restart is sent after it,
    its image's link (expiring meanwhile) renewed; sent again (a replay), it has expired: nothing more made."""
    notes = discord_fake.add_attachment(b"shopping list", "notes.txt", "text/plain")
    photo = discord_fake.add_attachment(png_bytes(), "boat.png", "image/png")
    first = await start_bot(settings, discord_fake, clock)
    try:
        empty = await discord_fake.post_message("", attachments=[notes], user_id=discord_fake.admin_id)
        refused = await discord_fake.message_command(MENU, empty.id)
        await answer_given(discord_fake, refused)
        post = await discord_fake.post_message("a paper boat", attachments=[photo], user_id=discord_fake.admin_id)
        used = await discord_fake.message_command(MENU, post.id)
        await form_of(discord_fake, used)
    finally:
        await first.close()
    answer = answer_data(discord_fake, refused)
    assert answer["flags"] & 64 and "no words or image" in answer["content"]
    # The link the form kept expires in minutes (as after a form left open for most of a day).
    _expire_kept_links(settings, time.time() + 60)

    second = await start_bot(settings, discord_fake, clock)
    try:
        submit = await discord_fake.submit_modal(used, {"prompt": "a paper boat at sea"})
        await delivered(discord_fake, submit)
        again: FakeInteraction = await discord_fake.submit_modal(used, {"prompt": "a paper boat at sea"})
        await answer_given(discord_fake, again)
    finally:
        await second.close()
    (create,) = seaart.creates
    assert create.json["image_urls"] == [photo["url"]], "renewed: signed anew"
    assert [r.path for r in discord_fake.requests if r.path == "/attachments/refresh-urls"]
    assert "expired" in str(answer_data(discord_fake, again)["content"]) and len(jobs(settings)) == 1


async def test_a_forwarded_message_is_imagined_from_what_it_forwards(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member forwards a friend's message into the channel (Discord's Forward: no words of its own, the original in
    its snapshot). Both menus read what it forwards: Imagine this its words (mentions as words) and photo, Edit with
    Nano Banana its photo; before, both found nothing ("no image", "nothing to imagine from")."""
    other = discord_fake.other_member_id
    photo = png_bytes((40, 30))
    attachment = discord_fake.add_attachment(photo, "cat.png", "image/png")
    original = await discord_fake.post_message(
        f"a cat riding a dragon, for <@{other}>", attachments=[attachment], user_id=discord_fake.admin_id
    )
    forwarded = await discord_fake.forward(original.id)
    used = await discord_fake.message_command(MENU, forwarded.id)
    form = await form_of(discord_fake, used)
    # Discord's snapshot names no one discord.py reads, and the bot keeps no members (no members intent).
    assert _words(form) == "a cat riding a dragon, for @someone"
    await delivered(discord_fake, await discord_fake.submit_modal(used, {"prompt": "a cat riding a dragon"}))
    edit = await discord_fake.message_command("Edit with Nano Banana", forwarded.id)
    await form_of(discord_fake, edit)
    await delivered(
        discord_fake, await discord_fake.submit_modal(edit, {"bananacord:remix:instruction": "make it night"})
    )
    assert [c.json["prompt"] for c in seaart.creates] == ["a cat riding a dragon", "make it night"]
    for create in seaart.creates:
        (url,) = create.json["image_urls"]
        assert await fetch(url) == (200, photo), "the forwarded photo"
