"""A ✉️ reaction on one of the bot's images sends the member who reacted a copy by DM, as Midjourney's bot does:
the images (downloaded again from Discord, uploaded as they were), the words and a link back; a batch's in one
message; an image still generating says so; closed DMs and other emoji change nothing (cogs/dm_reaction.py)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt, FakeSegmind
from cogs.dm_reaction import CLOSED_DMS, DM_BYTES, NOT_ALL_READY, NOT_READY, TOO_MANY, WAITING_PER_MEMBER
from tests.conftest import Clock, RunningBot, answer_given, start_bot
from tests.e2e.edits import jobs
from tests.e2e.test_batches import batch_message
from tests.e2e.test_buttons import start_running_job, states
from tests.e2e.test_moderation import query
from tests.e2e.test_rework import KEY, STRANGER, charges, imagine, routed


def link(discord_fake: FakeDiscord, message: FakeMessage) -> str:
    return f"https://discord.com/channels/{discord_fake.guild_id}/{message.channel_id}/{message.id}"


async def test_an_envelope_sends_the_member_who_reacted_a_copy_of_the_image_by_dm(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await imagine(discord_fake, {"prompt": "a paper lantern @everyone"})
    stranger = discord_fake.other_member_id
    # Other emoji are only reactions.
    assert await discord_fake.react(image.id, "👍", user_id=stranger)
    assert await discord_fake.react(image.id, "✉️", user_id=stranger)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(stranger)), timeout=10)
    (copy,) = discord_fake.dms_to(stranger)
    assert [f.data for f in copy.files] == [f.data for f in image.files] and len(copy.files) == 1
    assert [f.filename for f in copy.files] == [f.filename for f in image.files]
    card = copy.embeds[0]
    assert card["title"] == "🍌 Your copy" and card["description"] == image.embeds[0]["description"]
    came = {f["name"]: f["value"] for f in card["fields"]}["From"]
    assert came == f"[the message]({link(discord_fake, image)}), asked for by <@{discord_fake.member_id}>"
    # What it was made with, as its message says it, and the job to quote.
    shown = {f["name"]: f["value"] for f in image.embeds[0]["fields"]}
    assert {f["name"]: f["value"] for f in card["fields"]}["Model"] == shown["Model"]
    assert card["footer"]["text"] == f"Job {jobs(settings)[0]['id']}"
    assert discord_fake.dms_to(discord_fake.member_id) == []
    # A copy costs nobody anything: the one image, charged once to the member who asked for it.
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)]
    assert charges(settings, stranger) == []

    # Without the emoji presentation selector too (some clients send it so), once per reaction.
    assert await discord_fake.react(image.id, "✉", user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 1, timeout=10)


@pytest.fixture
async def segmind() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(api_key=KEY) as fake:
        yield fake


async def test_a_copy_names_the_seed_a_member_reacts_for_as_on_midjourney(
    tmp_path: Path, discord_fake: FakeDiscord, segmind: FakeSegmind
) -> None:
    """Midjourney's members react ✉️ to learn an image's seed: the copy says it, with the model, shape and size
    (Segmind takes a seed; SeaArt does not)."""
    settings = routed(tmp_path, discord_fake, ("segmind", {"base_url": segmind.base_url}))
    running = await start_bot(settings, discord_fake, Clock())
    try:
        image = await imagine(discord_fake, {"prompt": "a paper lantern", "seed": 424242, "aspect_ratio": "16:9"})
        assert await discord_fake.react(image.id, "✉️", user_id=discord_fake.member_id)
        await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    finally:
        await running.close()
    (copy,) = discord_fake.dms_to(discord_fake.member_id)
    fields = {f["name"]: f["value"] for f in copy.embeds[0]["fields"]}
    assert fields["Options"] == "seed 424242" and "16:9" in fields["Model"]
    assert copy.embeds[0]["footer"]["text"] == f"Job {jobs(settings)[0]['id']}"


async def copied_batch(
    discord_fake: FakeDiscord, settings: Settings, prompt: str, count: int
) -> tuple[FakeMessage, FakeMessage]:
    """A batch of ``count`` images of ``prompt``, delivered, and the DM its member's ✉️ on it brought."""
    message = await batch_message(discord_fake, {"prompt": prompt})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * count, timeout=20)
    await discord_fake.wait_for(lambda: len(message.attachments) == count, timeout=10)
    assert await discord_fake.react(message.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    (copy,) = discord_fake.dms_to(discord_fake.member_id)
    return message, copy


async def test_a_batch_comes_in_one_dm(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message, copy = await copied_batch(discord_fake, settings, "a {red, green, blue} kite", 3)
    assert [f.data for f in copy.files] == [f.data for f in message.files] and len(copy.files) == 3
    assert copy.embeds[0]["description"] == "a {red, green, blue} kite"  # the words as typed


async def test_a_batch_of_shapes_in_braces_names_each_shape_in_its_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """``--ar {1:1, 16:9}`` makes one image of each shape: the copy's Model line names both, as the batch's
    message does; before, it named the first image's alone."""
    message, copy = await copied_batch(discord_fake, settings, "a kite --ar {1:1, 16:9}", 2)
    model = next(f["value"] for f in copy.embeds[0]["fields"] if f["name"] == "Model")
    shown = next(f["value"] for f in message.embeds[0]["fields"] if f["name"] == "Model")
    assert "1:1 / 16:9" in model and model == shown, (model, shown)


async def test_an_envelope_on_an_image_still_generating_brings_the_copy_once_it_shows(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Before, the member was told to react again once the image showed, and most never did."""
    stranger = discord_fake.other_member_id
    running = await start_running_job(discord_fake, seaart, settings)
    assert await discord_fake.react(running, "✉️", user_id=stranger)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(stranger)), timeout=10)
    assert [m.content for m in discord_fake.dms_to(stranger)] == [NOT_READY]
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(stranger)) == 2, timeout=10)
    copy = discord_fake.dms_to(stranger)[1]
    image = discord_fake.messages[running]
    assert [f.data for f in copy.files] == [f.data for f in image.files] and len(copy.files) == 1
    assert copy.embeds[0]["title"] == "🍌 Your copy"


async def test_an_envelope_taken_back_before_the_image_shows_brings_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    stranger, member = discord_fake.other_member_id, discord_fake.member_id
    running = await start_running_job(discord_fake, seaart, settings)
    assert await discord_fake.react(running, "✉️", user_id=stranger)
    assert await discord_fake.react(running, "✉️", user_id=member)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(stranger) and discord_fake.dms_to(member)), timeout=10)
    assert await discord_fake.unreact(running, "✉️", user_id=stranger)
    await imagine_later(discord_fake)  # the bot has handled the removal by now
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 2, timeout=20)
    assert discord_fake.dms_to(member)[1].files, "the member whose ✉️ stayed has their copy"
    assert [m.content for m in discord_fake.dms_to(stranger)] == [NOT_READY], "nothing for the one taken back"


async def test_an_envelope_given_again_and_again_on_an_image_still_generating_is_one_dm_and_one_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Each ✉️ sent its own "not ready" DM: a member toggling it filled their DMs (and spent the bot's requests)."""
    member = discord_fake.member_id
    running = await start_running_job(discord_fake, seaart, settings)
    for _ in range(3):
        assert await discord_fake.react(running, "✉️")
        assert await discord_fake.unreact(running, "✉️")
    assert await discord_fake.react(running, "✉️")
    await imagine_later(discord_fake)
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 2, timeout=20)
    await imagine_later(discord_fake)  # a second copy, were one coming
    not_ready, copy = discord_fake.dms_to(member)
    assert not_ready.content == NOT_READY and len(copy.files) == 1


async def imagine_later(discord_fake: FakeDiscord) -> None:
    """A command answered: events the fake sent before it have been handled by the bot."""
    later = await discord_fake.slash_command("help", {})
    await discord_fake.wait_for(lambda: bool(later.callbacks), timeout=10)


async def test_an_envelope_on_a_batch_still_generating_brings_all_of_it_in_one_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "a {red, green, blue} kite"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    assert await discord_fake.react(message.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 2, timeout=10)
    not_ready, copy = discord_fake.dms_to(discord_fake.member_id)
    assert not_ready.content == NOT_READY
    assert sorted(f.data for f in copy.files) == sorted(f.data for f in message.files) and len(copy.files) == 3


async def test_an_envelope_on_a_batch_partly_shown_brings_every_image_in_one_copy_once_the_rest_show(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Before, a ✉️ given once the first image of a batch showed brought that one alone, and the rest never."""
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "a {red, blue} kite"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 2, timeout=10)
    seaart.release(next(iter(seaart.jobs)))  # the first made; the second still being made
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["delivered", "running"], timeout=10)
    await discord_fake.wait_for(lambda: len(message.files) == 1, timeout=10)
    assert await discord_fake.react(message.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    assert [m.content for m in discord_fake.dms_to(discord_fake.member_id)] == [NOT_ALL_READY]
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 2, timeout=10)
    copy = discord_fake.dms_to(discord_fake.member_id)[1]
    assert sorted(f.data for f in copy.files) == sorted(f.data for f in message.files) and len(copy.files) == 2


async def test_an_envelope_on_an_image_that_never_came_sends_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.script("content_blocked")
    blocked = await discord_fake.slash_command("imagine", {"prompt": "a blocked thing"})
    await discord_fake.wait_for(lambda: states(settings) == ["blocked"], timeout=10)
    assert await discord_fake.react(blocked.original_message_id or 0, "✉️", user_id=discord_fake.other_member_id)
    await imagine(discord_fake, {"prompt": "a later thing"})  # the bot has handled the reaction by now
    assert discord_fake.dms_to(discord_fake.other_member_id) == []  # nothing to copy: no DM


async def test_closed_dms_send_nothing_and_the_next_envelope_still_works(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await imagine(discord_fake, {"prompt": "a lighthouse"})
    discord_fake.close_dms(discord_fake.member_id)
    assert await discord_fake.react(image.id, "✉️")
    other = await imagine(discord_fake, {"prompt": "a harbour"})  # the bot has handled the reaction by now
    assert discord_fake.dms_to(discord_fake.member_id) == []
    discord_fake.close_dms(discord_fake.member_id, closed=False)
    assert await discord_fake.react(other.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    assert [f.data for f in discord_fake.dms_to(discord_fake.member_id)[0].files] == [f.data for f in other.files]


async def test_one_member_s_envelopes_wait_their_turn_and_past_a_few_are_dropped(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member taking the ✉️ off and on again and again, while Discord is slow to serve the image, has one copy on
    its way and five waiting; the rest are dropped rather than held, one after another, and the member told so once
    (a dropped ✉️ said nothing: they waited for a copy that never came)."""
    image = await imagine(discord_fake, {"prompt": "a windmill"})
    discord_fake.hold_downloads()
    for _ in range(9):
        assert await discord_fake.react(image.id, "✉️")
    await discord_fake.wait_for(lambda: discord_fake.downloads_waiting == 1, timeout=10)
    await imagine(discord_fake, {"prompt": "a mill pond"})  # the bot has handled the reactions by now
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    assert [dm.content for dm in discord_fake.dms_to(discord_fake.member_id)] == [TOO_MANY]  # once, for three
    discord_fake.hold_downloads(False)
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 2 + WAITING_PER_MEMBER)
    await imagine(discord_fake, {"prompt": "a third mill"})
    copies = discord_fake.dms_to(discord_fake.member_id)[1:]
    assert len(copies) == 1 + WAITING_PER_MEMBER
    # Each a whole copy, sent one after another.
    assert all([f.data for f in dm.files] == [f.data for f in image.files] for dm in copies)

    # Once they have all come, a ✉️ within the limit brings its copy, and no word of too many.
    assert await discord_fake.react(image.id, "✉️")
    await discord_fake.wait_for(lambda: len(discord_fake.dms_to(discord_fake.member_id)) == 3 + WAITING_PER_MEMBER)
    assert discord_fake.dms_to(discord_fake.member_id)[-1].content != TOO_MANY


async def test_a_member_banned_from_the_bot_gets_no_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await imagine(discord_fake, {"prompt": "a weather vane"})
    stranger = STRANGER
    banned = await discord_fake.slash_command(
        "mod ban", {"member": stranger, "reason": "spam"}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, banned)
    assert await discord_fake.react(image.id, "✉️", user_id=stranger)
    await imagine(discord_fake, {"prompt": "a second vane"})  # the bot has handled the reaction by now
    assert discord_fake.dms_to(stranger) == []


async def test_where_the_bot_may_not_read_the_channel_the_copy_links_the_images(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A slash command is answered in a channel whose messages the bot may not read; its ✉️ cannot read the
    message's attachments again, so the DM says where the images are instead of failing silently."""
    image = await imagine(discord_fake, {"prompt": "a ferry"})
    discord_fake.deny_reading(image.channel_id)
    assert await discord_fake.react(image.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    (copy,) = discord_fake.dms_to(discord_fake.member_id)
    assert copy.files == []
    told = {f["name"]: f["value"] for f in copy.embeds[0]["fields"]}
    assert (
        told["Note"]
        == f"The bot may not read that channel, so the images stay in [the message]({link(discord_fake, image)})."
    )


async def test_an_image_larger_than_a_dm_takes_comes_as_a_compressed_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A boosted server takes uploads past what a DM takes: its 2K result of 12 MB (incompressible noise, uploaded
    as it came) was only named in the copy's note, and the member who reacted ✉️ got no image. Now it comes as a
    JPEG under a DM's limit, its pixels kept, the note saying so and where the full one is."""
    await discord_fake.set_boost_tier(2)
    seaart.images = "noise"
    image = await imagine(discord_fake, {"prompt": "static on a screen", "resolution": "2K"})
    (shown,) = image.attachments
    assert shown["size"] > DM_BYTES, shown["size"]  # uploaded as it came: the server takes 50 MiB
    assert await discord_fake.react(image.id, "✉️")
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=30)
    (copy,) = discord_fake.dms_to(discord_fake.member_id)
    (file,) = copy.files
    assert len(file.data) <= DM_BYTES and file.filename == shown["filename"].replace(".png", ".jpg")
    with Image.open(io.BytesIO(file.data)) as picture:
        picture.load()
        assert picture.format == "JPEG" and picture.size == (shown["width"], shown["height"])
    told = {f["name"]: f["value"] for f in copy.embeds[0]["fields"]}
    where = f"[the message]({link(discord_fake, image)})"
    assert told["Note"] == (
        f"An image is larger than a DM takes, so here is a compressed copy (JPEG); the full one is in {where}."
    )


async def test_a_batch_larger_than_a_dm_takes_comes_in_parts_each_under_the_limit(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Three images of 12 MB in a boosted server: each comes compressed (about 4 MB), in as few DMs as the limit lets
    through (two), each DM under it, the card in the first only, and every part recorded (an erasure of the words
    reaches each)."""
    await discord_fake.set_boost_tier(2)
    seaart.images = "noise"
    image = await imagine(discord_fake, {"prompt": "three screens of static", "resolution": "2K", "count": 3})
    await discord_fake.wait_for(lambda: len(image.attachments) == 3, timeout=30)
    assert all(shown["size"] > DM_BYTES for shown in image.attachments)
    assert await discord_fake.react(image.id, "✉️")

    def copies() -> list[FakeMessage]:
        return discord_fake.dms_to(discord_fake.member_id)

    await discord_fake.wait_for(lambda: sum(len(copy.files) for copy in copies()) == 3, timeout=60)
    parts = copies()
    assert len(parts) == 2, "three copies of about 4 MB: two fit in one DM, the third in another"
    assert all(sum(len(f.data) for f in part.files) <= DM_BYTES for part in parts)
    assert [bool(part.embeds) for part in parts] == [True] + [False] * (len(parts) - 1)
    assert [f.filename for part in parts for f in part.files] == [
        shown["filename"].replace(".png", ".jpg") for shown in image.attachments
    ]
    told = {f["name"]: f["value"] for f in parts[0].embeds[0]["fields"]}
    assert told["Note"].startswith("3 images are larger than a DM takes, so here are compressed copies (JPEG)")

    def recorded() -> list[int]:
        return [int(row[0]) for row in query(settings, "SELECT message_id FROM dm_copies ORDER BY message_id")]

    await discord_fake.wait_for(lambda: recorded() == sorted(part.id for part in parts), timeout=10)


async def test_a_copy_discord_fails_is_sent_again_once(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A 503 (which discord.py does not retry itself) on the copy's send, then a 503 on one Discord carried out
    (its answer lost on the way back): the copy comes once each time, its nonce making the second try of the
    carried-out send the same message. Before, the first was logged and the copy never came."""
    image = await imagine(discord_fake, {"prompt": "a paper lantern"})
    stranger = discord_fake.other_member_id

    def a_copy(request: Any) -> bool:
        return "Your copy" in json.dumps(request.json)

    def sends() -> list[int]:
        return [r.status for r in discord_fake.requests if r.method == "POST" and a_copy(r)]

    for carried_out, copies in ((False, 1), (True, 2)):
        discord_fake.fail_next("POST", r"^/channels/\d+/messages$", status=503, match=a_copy, after=carried_out)
        assert await discord_fake.react(image.id, "✉️", user_id=stranger)
        # Each failed once, then sent again (the fake answers a nonce it has seen with the message it made).
        await discord_fake.wait_for(lambda copies=copies: sends()[2 * copies - 2 :] == [503, 200], timeout=15)
        assert len(discord_fake.dms_to(stranger)) == copies
        copy = discord_fake.dms_to(stranger)[-1]
        assert [f.data for f in copy.files] == [f.data for f in image.files]
    await asyncio.sleep(1.5)  # nothing more comes
    assert len(discord_fake.dms_to(stranger)) == 2 and len(sends()) == 4


async def test_a_member_whose_dms_are_closed_is_told_under_the_image_once_in_a_while(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """A member who takes no DMs from the server's members reacted ✉️ and got nothing, without a word. Now a reply to
    the image says why and how to open them, pinging nobody, and deletes itself after the notes' time; a second ✉️
    soon after says nothing more (a member reacting to a channel's images would fill it)."""
    replies = running_bot.bot.get_cog("Replies")
    assert replies is not None
    replies.note_seconds = 0.5  # type: ignore[attr-defined]
    stranger = discord_fake.other_member_id
    discord_fake.close_dms(stranger)
    first = await imagine(discord_fake, {"prompt": "a paper lantern"})
    second = await imagine(discord_fake, {"prompt": "a paper boat"})
    assert await discord_fake.react(first.id, "✉️", user_id=stranger)
    await discord_fake.wait_for(lambda: len(discord_fake.bot_replies_to(first.id)) == 1, timeout=10)
    (note,) = discord_fake.bot_replies_to(first.id)
    assert note.content == CLOSED_DMS.format(who=stranger) and note.pinged == []
    await discord_fake.wait_for(lambda: note.deleted, timeout=10)
    assert await discord_fake.react(second.id, "✉️", user_id=stranger)
    await answer_given(discord_fake, await discord_fake.slash_command("help", {}))
    await asyncio.sleep(0.5)
    assert discord_fake.bot_replies_to(second.id) == [] and discord_fake.dms_to(stranger) == []
