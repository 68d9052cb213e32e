"""Regressions of the buttons, replies and forms over saved preferences and out-of-order providers: the real
bot, the fake Discord and fake providers (SeaArt, Kie, Gemini).

- An Edit pressed, or a reply naming a batch's image, while the image shows but before its row says
  delivered carries the image's conversation on, or edits that image (bot/derive.py ``results_in_hand``).
- A button over a saved option only a provider out of order offers goes to a working one without it
  (cogs/policy.py ``admitted``); so do a reply and the Edit with Nano Banana form over a saved option the
  channel's level rules out.
- A Re-roll of a batch the quota has room for only part of starts that part, and says so.
- A restored out-of-credit mark stamped ahead of the clock lasts ten minutes from the start at most; a
  rejected key's mark does not hold the provider back after a restart (bot/app.py).
- A slash shape or a size written apart is an edit, not chat (cogs/replies.py ``is_chatter``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from bot.catalogue import UNHEALTHY_RETRY_SECONDS
from bot.config import Settings
from bot.result_images import result_stem
from bot.testing.discord import FakeDiscord
from bot.testing.discord.records import RecordedRequest
from bot.testing.providers import FakeGemini, FakeSeaArt
from tests.conftest import Clock, RunningBot, answered, make_settings, start_bot
from tests.e2e.edits import bot_image, bot_replies_to, followups, jobs, states
from tests.e2e.test_failover import Fakes, boot, done, fakes, rows  # noqa: F401 (the fixture)
from tests.e2e.test_imagine_pref_fixes import click_answer
from tests.e2e.test_remix import INSTRUCTION, MENU, form_of
from tests.e2e.test_replies import GEMINI_KEY, answer_to, gemini_settings
from tests.e2e.test_rework import delivered, press


def _uploads(record: RecordedRequest) -> bool:
    return bool(record.files)


def _stems(discord_fake: FakeDiscord, message_id: int) -> list[str]:
    return [str(a["filename"]).rsplit(".", 1)[0] for a in discord_fake.messages[message_id].attachments]


def health(settings: Settings) -> list[tuple[str, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT provider, healthy FROM provider_health ORDER BY provider").fetchall()


def mark(settings: Settings, provider: str, category: str, at: float) -> None:
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute(
            "INSERT INTO provider_health (provider, healthy, category, detail, updated_at) VALUES (?, 0, ?, ?, ?)",
            (provider, category, category.replace("_", " "), at),
        )


async def test_an_edit_pressed_before_the_images_row_says_delivered_carries_the_conversation(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """The image and its buttons are on the message, and Discord's answer to that upload has not come back
    (lost once: discord.py sends it again a second later, held here), so the job is still "succeeded". The
    Edit pressed then sends Gemini the image's conversation; before, it went without it, as the image's
    job was not "delivered" (tests/e2e/test_imagine_pref_fixes.py's Edit test failed most runs so)."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            discord_fake.fail_next("PATCH", r"/messages/", status=500, after=True, match=_uploads)
            first = await discord_fake.slash_command("imagine", {"prompt": "a cat"})
            await discord_fake.wait_for(lambda: bool(first.original_message_id), timeout=10)
            message_id = first.original_message_id or 0
            await discord_fake.wait_for(lambda: bool(discord_fake.messages[message_id].files), timeout=20)
            discord_fake.hold_edits()  # discord.py's second send of the upload waits
            assert states(settings) == ["succeeded"]
            edit = await press(discord_fake, discord_fake.messages[message_id], "Edit")
            await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
            await discord_fake.submit_modal(edit, {"instruction": "at night"})
            await discord_fake.wait_for(lambda: len(gemini.creates) == 2, timeout=20)
            discord_fake.hold_edits(False)
            await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=30)
        finally:
            discord_fake.hold_edits(False)
            await running.close()
    body = gemini.creates[1].json
    assert body is not None
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"], body["contents"]
    texts = [p["text"] for c in body["contents"] for p in c["parts"] if "text" in p]
    assert texts[0] == "a cat" and texts[-1] == "at night", texts


async def test_a_reply_naming_a_batch_image_that_has_just_shown_edits_that_image(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """#1 delivered; #2 on the message, its row still "succeeded" (Discord's answer to the upload held). A
    reply "#2 make it night" edits #2; before, it was refused "That message has no image #2"."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold()
        batch = await discord_fake.slash_command("imagine", {"prompt": "a fox", "count": 2})
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 2, timeout=20)
        seaart.release(next(iter(seaart.jobs)))
        await discord_fake.wait_for(lambda: "delivered" in states(settings), timeout=20)
        (later,) = [row for row in jobs(settings) if row["state"] != "delivered"]
        discord_fake.fail_next("PATCH", r"/messages/", status=500, after=True, match=_uploads)
        seaart.hold(False)
        message_id = batch.original_message_id or 0
        await discord_fake.wait_for(lambda: result_stem(later["id"], 1) in _stems(discord_fake, message_id), 20)
        discord_fake.hold_edits()
        assert dict((row["id"], row["state"]) for row in jobs(settings))[later["id"]] == "succeeded"
        reply = await discord_fake.post_message(f"#{later['batch_index']} make it night", reply_to=message_id)
        await discord_fake.wait_for(lambda: len(jobs(settings)) == 3, timeout=20)
        discord_fake.hold_edits(False)
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=30)
    finally:
        discord_fake.hold_edits(False)
        await running.close()
    edit = jobs(settings)[2]
    request = json.loads(edit["request_json"])
    assert request["prompt"] == "make it night" and edit["reply_to_message_id"] == reply.id
    assert request["reference_images"][0]["filename"].rsplit(".", 1)[0] == result_stem(later["id"], 1)
    assert discord_fake.dms_to(discord_fake.member_id) == [], "no refusal"


async def test_a_button_over_a_saved_png_while_kie_is_out_of_credit_goes_to_a_working_provider_without_it(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """A saved png (Kie's alone) made the first image on Kie; Kie then runs out of credit (marked by the next
    /imagine, which fails over to SeaArt). A Vary of the first image goes to SeaArt without the png, as a fresh
    /imagine does; before, it went to Kie, the only provider offering png (tried last, not left out), and
    failed there: a request made from an image keeps its options in a failover."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    running = await boot(settings, discord_fake)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
        first = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a harbour"}))
        fakes.kie.script("out_of_credit", "out_of_credit")
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at noon"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 0)], timeout=10)
        await press(discord_fake, first, "Vary (Strong)")
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
    finally:
        await running.close()
    made = [(r["state"], r["provider"], json.loads(r["request_json"])) for r in rows(settings)]
    assert [(state, provider, q["output_format"]) for state, provider, q in made] == [
        ("delivered", "kie", "png"),
        ("delivered", "seaart", None),
        ("delivered", "seaart", None),
    ]
    assert made[2][2]["defaulted"] == [] and made[2][2]["derived_from"]["action"] == "vary"
    assert len(fakes.kie.creates) == 2, "the Vary was not sent to Kie"


async def test_a_reply_and_the_edit_form_over_a_saved_png_the_channels_level_rules_out_go_without_it(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """Made on Kie with a saved png at level 4; the channel then goes to level 6, which Kie cannot honour and
    Gemini (no formats) can. A reply and Edit with Nano Banana each start an edit at Gemini without the png,
    as the Edit button does; before, each was refused for a png the member never typed in them."""
    settings = fakes.settings(tmp_path, discord_fake, ["kie", "gemini"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    mod = {"user_id": discord_fake.moderator_id}
    try:
        await answered(discord_fake, "mod safety set", {"level": 4, "channel": adult}, **mod)
        await answered(discord_fake, "preferences", {"output_format": "png"})
        image = await delivered(
            discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a harbour"}, channel_id=adult)
        )
        await answered(discord_fake, "mod safety set", {"level": 6, "channel": adult}, **mod)
        reply = await discord_fake.post_message("make it night", reply_to=image.id)
        await answer_to(discord_fake, settings, reply)
        used = await discord_fake.message_command(MENU, image.id)
        await form_of(discord_fake, used)
        submit = await discord_fake.submit_modal(used, {INSTRUCTION: "add fog"})
        answer = await click_answer(discord_fake, submit)
        assert not answer.get("flags", 0) & 64, answer.get("content")  # the job's message, not a refusal
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
    finally:
        await running.close()
    edits = rows(settings)[1:]
    assert [(r["state"], r["provider"], r["safety_level"]) for r in edits] == [("delivered", "gemini", 6)] * 2
    requests = [json.loads(r["request_json"]) for r in edits]
    assert [(q["prompt"], q["output_format"], q["defaulted"]) for q in requests] == [
        ("make it night", None, []),
        ("add fog", None, []),
    ]
    assert len(fakes.kie.creates) == 1


async def test_rerolling_a_batch_the_quota_has_room_for_only_part_of_starts_that_part_and_says_so(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A saved count:2 made a batch of two; with one unit left today its Re-roll starts one image and tells the
    member privately; before, it was refused "...ask for count:1", an option a button does not have."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 3})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "preferences", {"count": 2})
        batch = await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a fox"}))
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        click = await press(discord_fake, batch, "Re-roll")
        answer = await click_answer(discord_fake, click)
        assert not answer.get("flags", 0) & 64, answer.get("content")  # the job's message, not a refusal
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
        await discord_fake.wait_for(lambda: bool(click.followup_ids), timeout=10)
    finally:
        await running.close()
    assert [r["state"] for r in rows(settings)] == ["delivered"] * 3
    assert rows(settings)[2]["batch_id"] is None, "one image"
    ((note, flags),) = followups(discord_fake, click)
    assert (
        flags & 64 and "Started 1 image, not the 2 of the batch you re-rolled: your daily quota has 1 unit left" in note
    ), note


async def test_a_restored_out_of_credit_mark_stamped_ahead_of_the_clock_lasts_ten_minutes_at_most(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """Kie recorded out of credit a day "ahead" (the clock was set back since). Eleven minutes after the start
    Kie is tried in turn again and takes a saved png; before, it stayed tried last for a day and ten minutes,
    and the png was left out."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
    finally:
        await running.close()
    mark(settings, "kie", "out_of_credit", clock() + 86_400)
    running = await start_bot(settings, discord_fake, clock)
    try:
        clock.offset += UNHEALTHY_RETRY_SECONDS + 60
        await discord_fake.slash_command("imagine", {"prompt": "a harbour"})
        await discord_fake.wait_for(lambda: done(settings, 1), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 1)], timeout=10)
    finally:
        await running.close()
    assert [(r["provider"], json.loads(r["request_json"])["output_format"]) for r in rows(settings)] == [("kie", "png")]


async def test_a_rejected_key_mark_does_not_hold_the_provider_back_after_a_restart(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """Kie's key was rejected a moment ago; the operator restarts the bot with a new one. At once a saved png
    goes to Kie, and Kie is recorded working again; before, Kie was tried last for ten minutes (the png left
    out, the job sent to SeaArt). An out-of-credit mark recorded as recently still holds Kie back."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
    finally:
        await running.close()
    mark(settings, "kie", "auth", clock() - 5)
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a harbour"})
        await discord_fake.wait_for(lambda: done(settings, 1), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 1)], timeout=10)
    finally:
        await running.close()
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute("UPDATE provider_health SET healthy = 0, category = 'out_of_credit', updated_at = ?", (clock(),))
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at noon"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
    finally:
        await running.close()
    made = [(r["provider"], json.loads(r["request_json"])["output_format"]) for r in rows(settings)]
    assert made == [("kie", "png"), ("seaart", None)], made


async def test_a_slash_shape_or_a_size_written_apart_is_an_edit_like_its_colon_form(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "16/9", "9/16" and "4 K" replied to an image each start an edit, as "16:9" does; before, the first two
    were read as ratings and "4 K" as a number and "k" (chat's "ok"), and each was left unanswered as chat.
    "10/10" is still chat."""
    image = await bot_image(discord_fake, settings)
    for text in ("16/9", "9/16", "4 K", "2 k"):  # one at a time: the member's limit on jobs at once
        await answer_to(discord_fake, settings, await discord_fake.post_message(text, reply_to=image.id))
    rating = await discord_fake.post_message("10/10", reply_to=image.id)
    await asyncio.sleep(0.5)
    assert [c.json["prompt"] for c in seaart.creates] == ["a cat on a sofa", "16/9", "9/16", "4 K", "2 k"]
    assert bot_replies_to(discord_fake, rating.id) == []
