"""Saved defaults that a command, a button or a form sends are defaults, never refusals, and the member is told
when one was not used: the real bot, the fake Discord and fake providers (SeaArt, Kie, Segmind, Gemini).

- A Re-roll, Vary or re-render of an image made with a saved png (Kie's alone) in a channel whose safety level
  was since raised past Kie's goes to Gemini without the png, as a fresh /imagine does; it was refused "leave it
  unset" (cogs/policy.py ``admitted``, bot/preferences.py ``defaults_left_out``).
- A saved model (the member's, or the server's default) no provider honouring the channel's level serves is
  passed over, and the member reads which model was used and why; a typed one binds (``model_at``).
- A saved count is held to what the quotas have room for, and said; a typed one is refused as before.
- The Edit form renews the expired links of the conversation's earlier images, as Vary and replies do.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeGemini, FakeSeaArt
from tests.conftest import (
    Clock,
    RunningBot,
    answer_data,
    answered,
    final_message,
    first_answer,
    make_settings,
    png_bytes,
    start_bot,
)
from tests.e2e.edits import followups
from tests.e2e.test_buttons import button
from tests.e2e.test_failover import Fakes, boot, done, fakes, rows  # noqa: F401 (the fixture)
from tests.e2e.test_remix import INSTRUCTION as REMIX_INSTRUCTION
from tests.e2e.test_remix import MENU as REMIX_MENU
from tests.e2e.test_replies import GEMINI_KEY, gemini_settings
from tests.e2e.test_rework import delivered, press


def reservation(settings: Settings, job_id: str) -> tuple[Any, ...]:
    with sqlite3.connect(settings.database.path) as conn:
        row = conn.execute(
            "SELECT provider, cost_micro_usd, size FROM ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,)
        ).fetchone()
    assert row is not None, f"job {job_id} holds no reservation"
    return tuple(row)


async def level_6_with_a_saved_pro(discord_fake: FakeDiscord) -> None:
    """The age-restricted channel set to safety level 6 by a moderator, and Nano Banana Pro saved by the member:
    with SeaArt and Segmind, only Segmind's Nano Banana 2 runs there (its Pro has no safety knob)."""
    adult = discord_fake.nsfw_channel_id
    await answered(discord_fake, "mod safety set", {"level": 6, "channel": adult}, user_id=discord_fake.moderator_id)
    await answered(discord_fake, "preferences", {"model": "nano_banana_pro"})


async def click_answer(discord_fake: FakeDiscord, click: FakeInteraction) -> dict[str, Any]:
    await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=10)
    return dict(click.callbacks[0].get("data") or {})


async def test_buttons_over_a_saved_png_the_channels_new_level_rules_out_go_without_it(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """Made on Kie with the member's saved png at level 4; the channel then goes to level 6, which Kie cannot
    honour and Gemini (no formats) can. Re-roll, Vary and Re-render 2K each start a job at Gemini without the
    png, reserved at Gemini's price; before, each was refused "does not support output format png; leave it
    unset", an option a button cannot leave out. A png typed in /imagine there is still refused."""
    settings = fakes.settings(tmp_path, discord_fake, ["kie", "gemini"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    mod = {"user_id": discord_fake.moderator_id}
    try:
        await answered(discord_fake, "mod safety set", {"level": 4, "channel": adult}, **mod)
        await answered(discord_fake, "preferences", {"output_format": "png"})
        first = await discord_fake.slash_command("imagine", {"prompt": "a harbour"}, channel_id=adult)
        image = await delivered(discord_fake, first)
        (made,) = rows(settings)
        assert (made["provider"], json.loads(made["request_json"])["output_format"]) == ("kie", "png")
        await answered(discord_fake, "mod safety set", {"level": 6, "channel": adult}, **mod)

        for n, label in enumerate(("Re-roll", "Vary (Strong)", "Re-render 2K"), start=2):
            click = await discord_fake.click(image.id, button(discord_fake, image.id, label))
            answer = await click_answer(discord_fake, click)
            assert not answer.get("flags", 0) & 64, (label, answer.get("content"))  # a job, not a refusal
            await discord_fake.wait_for(lambda n=n: done(settings, n), timeout=30)

        typed = await discord_fake.slash_command(
            "imagine", {"prompt": "a harbour", "output_format": "png"}, channel_id=adult
        )
        refusal = (await first_answer(discord_fake, typed))["data"]
    finally:
        await running.close()
    again = rows(settings)[1:]
    assert [(r["state"], r["provider"], r["safety_level"]) for r in again] == [("delivered", "gemini", 6)] * 3
    requests = [json.loads(r["request_json"]) for r in again]
    assert [(q["output_format"], q["defaulted"]) for q in requests] == [(None, [])] * 3
    assert [q["resolution"] for q in requests] == [None, None, "2K"], "the re-render keeps the size it was asked"
    for job in again:
        assert reservation(settings, job["id"]) == (
            "gemini",
            job["cost_micro_usd"],
            json.loads(job["request_json"])["resolution"] or "1K",
        )
    assert len(fakes.kie.creates) == 1 and len(fakes.gemini.creates) == 3
    assert refusal["flags"] & 64 and "png" in str(refusal["content"]), refusal
    assert len(rows(settings)) == 4, "the typed png binds: refused, nothing started"


async def test_a_saved_model_the_channels_level_rules_out_is_passed_over_and_the_member_told(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """SeaArt and Segmind: at level 6 only Segmind's Nano Banana 2 runs (its Pro has no safety knob, SeaArt
    none at all). A member's saved Pro, and the server's default Pro for a member with none, are passed over
    there for Nano Banana 2, and each member reads privately which model made it and why; before, every
    /imagine without `model:` in that channel was refused. Elsewhere the saved Pro is used; a typed Pro binds."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    other = discord_fake.other_member_id
    try:
        await level_6_with_a_saved_pro(discord_fake)
        mine = await discord_fake.slash_command("imagine", {"prompt": "a harbour"}, channel_id=adult)
        answer = (await first_answer(discord_fake, mine))["data"]
        assert not answer.get("flags", 0) & 64, answer  # the job's public message, not a refusal
        await discord_fake.wait_for(lambda: done(settings, 1), timeout=30)
        await discord_fake.wait_for(lambda: bool(mine.followup_ids), timeout=10)

        await answered(
            discord_fake,
            "admin defaults",
            {"model": "nano_banana_pro"},
            user_id=discord_fake.admin_id,
            permissions=ADMIN_PERMISSIONS,
        )
        theirs = await discord_fake.slash_command("imagine", {"prompt": "a lake"}, channel_id=adult, user_id=other)
        assert not (await first_answer(discord_fake, theirs))["data"].get("flags", 0) & 64
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        await discord_fake.wait_for(lambda: bool(theirs.followup_ids), timeout=10)

        plain = await discord_fake.slash_command("imagine", {"prompt": "a field"})
        await first_answer(discord_fake, plain)
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)

        typed = await discord_fake.slash_command(
            "imagine", {"prompt": "a harbour", "model": "nano_banana_pro"}, channel_id=adult
        )
        refusal = (await first_answer(discord_fake, typed))["data"]
    finally:
        await running.close()
    made = rows(settings)
    assert [(r["state"], r["model"], r["provider"]) for r in made] == [
        ("delivered", "nano_banana_2", "segmind"),
        ("delivered", "nano_banana_2", "segmind"),
        ("delivered", "nano_banana_pro", "seaart"),
    ]
    ((note, flags),) = followups(discord_fake, mine)
    assert flags & 64, "told privately"
    assert "Nano Banana 2" in note and "your /preferences model, Nano Banana Pro" in note and "(6)" in note, note
    ((note, flags),) = followups(discord_fake, theirs)
    assert flags & 64 and "this server's default model, Nano Banana Pro" in note, note
    assert followups(discord_fake, plain) == [], "nothing passed over, nothing to say"
    assert refusal["flags"] & 64 and "safety level is 6" in str(refusal["content"]), refusal
    assert len(made) == 3, "a typed model binds: refused, nothing started"


async def test_a_preferred_count_is_held_to_the_quotas_room_and_the_member_told(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A daily quota of 2 units and a saved count of 4: /imagine without `count:` starts two images and says
    so privately; before, it was refused "ask for count:2", an option the member never typed. A typed count:4
    is still refused with the quota's own words, and once the day's units are used a preferred count is
    refused as one image would be."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 2})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "preferences", {"count": 4})
        typed = await answered(discord_fake, "imagine", {"prompt": "a fox", "count": 4})
        preferred = await answered(discord_fake, "imagine", {"prompt": "a fox"})
        started = answer_data(discord_fake, preferred)
        assert not started.get("flags", 0) & 64, started  # the job's public message, not a refusal
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        await discord_fake.wait_for(lambda: bool(preferred.followup_ids), timeout=10)
        spent = await answered(discord_fake, "imagine", {"prompt": "a fox"})
    finally:
        await running.close()
    refused = answer_data(discord_fake, typed)
    assert refused["flags"] & 64 and "ask for count:2" in refused["content"], refused
    assert [(r["state"], r["batch_index"]) for r in rows(settings)] == [("delivered", 1), ("delivered", 2)]
    assert len(seaart.creates) == 2
    ((note, flags),) = followups(discord_fake, preferred)
    assert (
        flags & 64
        and "Started 2 images, not the 4 your /preferences ask for: your daily quota has 2 units left" in note
    ), note
    message = final_message(discord_fake, preferred.id)
    assert message is not None and len(message.files) == 2
    told = answer_data(discord_fake, spent)
    assert told["flags"] & 64 and "This image costs 1 unit(s); you have used 2" in told["content"], told
    assert len(rows(settings)) == 2


async def test_a_preferred_count_the_servers_images_at_once_limit_lowers_is_told_by_that_limit(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows 3 images generating at once and one is: a saved count of 4 starts two, and the note
    names that limit; before, it said "the quota had room for only 2 images", the member's own quota, which
    had room for all four. (With no request allowed to wait its turn: the next test has that.)"""
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_guild": 3, "waiting_per_user": 0}
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold(True)
        await answered(discord_fake, "imagine", {"prompt": "already running"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=10)
        await answered(discord_fake, "preferences", {"count": 4})
        preferred = await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: bool(preferred.followup_ids), timeout=10)
        seaart.release()
    finally:
        await running.close()
    assert len(rows(settings)) == 3
    ((note, flags),) = followups(discord_fake, preferred)
    assert flags & 64 and note.startswith("Started 2 images, not the 4 your /preferences ask for: "), note
    assert "this server has room for 2 more image(s) generating at once" in note, note


async def test_a_preferred_count_past_the_servers_images_at_once_waits_for_room_for_as_many_as_it_allows(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows 3 images generating at once and another member's one is: a saved count of 4 can never
    start together, so 3 are taken, waiting for the server's room (bot/waiting_requests.py), and start as the
    other image ends; the note says so, naming the server's limit."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_guild": 3})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold(True)
        await answered(discord_fake, "imagine", {"prompt": "already running"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=10)
        await answered(discord_fake, "preferences", {"count": 4})
        preferred = await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: bool(preferred.followup_ids), timeout=10)
        message = discord_fake.messages[preferred.original_message_id or 0]
        title = message.embeds[0]["title"]
        await asyncio.sleep(0.3)  # time enough for a create, were one to go
        sent_while_waiting = len(seaart.creates)
        seaart.hold(False)
        await discord_fake.wait_for(lambda: len(seaart.creates) == 4, timeout=20)
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"] * 4, timeout=20)
    finally:
        await running.close()
    assert title == "🍌 Waiting for your turn · 3 images…", title
    assert sent_while_waiting == 1
    ((note, flags),) = followups(discord_fake, preferred)
    assert flags & 64 and note.startswith("Took 3 images, waiting their turn, not the 4 your /preferences ask for: "), (
        note
    )
    assert "this server allows 3 image(s) generating at once" in note, note


async def test_the_edit_form_renews_the_conversations_expired_links(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """An image, an Edit of it, and a day later (every Discord link expired) an Edit of that edit: Gemini gets
    the whole conversation, the first image included, as a reply a day later does. Before, the form sent the
    earlier image's expired link, Gemini could not fetch it, and the conversation went without that turn."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            first = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a cat"}))
            edit = await press(discord_fake, first, "Edit")
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
            night = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "at night"}))
            clock.now += discord_fake.expire_attachment_urls()
            edit = await press(discord_fake, discord_fake.messages[night.id], "Edit")
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
            await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "add a hat"}))
        finally:
            await running.close()
    last = gemini.creates[2].json
    assert last is not None
    assert [c["role"] for c in last["contents"]] == ["user", "model", "user", "model", "user"], last["contents"]
    texts = [p["text"] for c in last["contents"] for p in c["parts"] if "text" in p]
    assert texts[0] == "a cat" and texts[-1] == "add a hat", texts


async def test_the_model_options_description_names_the_members_saved_model(
    running_bot: RunningBot, discord_fake: FakeDiscord
) -> None:
    """It said "(the server's default if unset)", untrue for a member with a saved model (/preferences)."""
    command = next(c for c in discord_fake.commands if c["name"] == "imagine")
    described = next(o["description"] for o in command["options"] if o["name"] == "model")
    assert "/preferences" in described and "server's default" in described, described


async def test_edit_with_nano_banana_passes_over_a_saved_model_the_channels_level_rules_out(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """The message menu on a member's image in a level-6 channel, with Nano Banana Pro saved (SeaArt and
    Segmind: only Segmind's Nano Banana 2 runs at 6): the edit is made with Nano Banana 2 and the member told
    why, as /imagine does. Before, the menu chose the saved model without the channel's level, and the edit was
    refused ("safety level is 6") after the member had typed it."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    try:
        await level_6_with_a_saved_pro(discord_fake)
        photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
        post = await discord_fake.post_message("my cat", attachments=[photo], channel_id=adult)
        used = await discord_fake.message_command(REMIX_MENU, post.id)
        await discord_fake.wait_for(lambda: bool(used.callbacks), timeout=10)
        assert used.callbacks[0]["type"] == 9, used.callbacks[0]  # the form, not a refusal
        submit = await discord_fake.submit_modal(used, {REMIX_INSTRUCTION: "make it a watercolour"})
        await discord_fake.wait_for(lambda: done(settings, 1), timeout=30)
        await discord_fake.wait_for(lambda: bool(submit.followup_ids), timeout=10)
    finally:
        await running.close()
    assert [(r["state"], r["model"], r["provider"], r["safety_level"]) for r in rows(settings)] == [
        ("delivered", "nano_banana_2", "segmind", 6)
    ]
    ((note, flags),) = followups(discord_fake, submit)
    assert flags & 64, "told privately"
    assert "Nano Banana 2" in note and "your /preferences model, Nano Banana Pro" in note and "(6)" in note, note


async def test_a_reply_to_a_bot_image_no_job_made_passes_over_a_saved_model_the_level_rules_out(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """A reply to an image the bot posted that no job row names takes the member's saved model, chosen as
    /imagine chooses it in that channel: at level 6 their saved Pro is passed over for Nano Banana 2. Before,
    the reply was refused for the saved model, which the member never typed in it. The member is told why, as
    /imagine tells it, in a private note (a DM here); before, a reply said nothing of it."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    try:
        await level_6_with_a_saved_pro(discord_fake)
        # An image the bot posted that no job row names (say, from before its database was replaced).
        picture = discord_fake.add_attachment(png_bytes(), "old.png", "image/png")
        old = await discord_fake.post_message(
            "", attachments=[picture], user_id=discord_fake.bot_user_id, channel_id=adult
        )
        reply = await discord_fake.post_message("make it night", reply_to=old.id, channel_id=adult)
        await discord_fake.wait_for(lambda: done(settings, 1), timeout=30)
        await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    finally:
        await running.close()
    assert [(r["state"], r["model"], r["provider"], r["safety_level"]) for r in rows(settings)] == [
        ("delivered", "nano_banana_2", "segmind", 6)
    ]
    [note] = [m.content or "" for m in discord_fake.dms_to(discord_fake.member_id)]
    assert note.startswith(
        "Made with Nano Banana 2: your /preferences model, Nano Banana Pro, has no provider here that honours "
        "this channel's safety level (6)."
    ), note
    assert str(reply.id) in note, "the note links the reply it is about"
