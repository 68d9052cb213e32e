"""The server's gallery (cogs/gallery.py, `/admin gallery`): an image enough members starred ⭐ is posted to the
admins' channel once, and taken down with its image; through the real bot and the fake Discord."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time

from PIL import Image

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage, overwrite
from bot.testing.discord.protocol import ATTACH_FILES
from bot.testing.providers import FakeSeaArt
from cogs.gallery import STARS_EDIT_SECONDS
from tests.conftest import Clock, RunningBot, answer_data, answered, start_bot
from tests.e2e.edits import bot_image, states


def _posts(discord_fake: FakeDiscord, channel_id: int) -> list[FakeMessage]:
    """The bot's posts of images in the gallery channel."""
    return [m for m in discord_fake.messages_in(channel_id) if m.author_id is None and m.files]


async def _said(discord_fake: FakeDiscord, options: dict[str, object], *, user_id: int | None = None) -> str:
    used = await answered(discord_fake, "admin gallery", options, user_id=user_id or discord_fake.admin_id)
    return str(answer_data(discord_fake, used).get("content"))


def _gallery_field(discord_fake: FakeDiscord, check: FakeInteraction) -> str:
    (embed,) = answer_data(discord_fake, check)["embeds"]
    (field,) = [f for f in embed["fields"] if f["name"] == "Gallery"]
    return str(field["value"])


async def _starred_once(discord_fake: FakeDiscord, settings: Settings) -> tuple[FakeMessage, FakeMessage]:
    """A gallery of one star, an image of the member's starred by another: the image, and its gallery post."""
    gallery = discord_fake.add_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    image = await bot_image(discord_fake, settings)
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)))
    (post,) = _posts(discord_fake, gallery)
    return image, post


def _audit(settings: Settings) -> list[tuple[str, str]]:
    with sqlite3.connect(settings.database.path) as conn:
        rows = conn.execute("SELECT action, summary FROM audit_log WHERE action = 'gallery' ORDER BY id")
        return [(str(a), str(s)) for a, s in rows]


async def test_an_image_starred_by_enough_members_is_posted_once_and_taken_down_with_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Two members' ⭐ (the image's own member's not counted) post it to the gallery: the image itself, who made it
    (pinging nobody), the stars and a link to the original, and not the prompt; a third ⭐ posts nothing more but
    shows three stars, and one taken back two. The member deletes their image: the gallery's post goes with it."""
    gallery = discord_fake.add_channel("showcase")
    said = await _said(discord_fake, {"channel": str(gallery), "stars": 2})
    assert said.startswith(f"Gallery: <#{gallery}>. An image of mine that 2 members star")
    (hello,) = discord_fake.messages_in(gallery)  # the test post
    assert "made this channel the server's gallery" in (hello.content or "")
    image = await bot_image(discord_fake, settings)
    member, other, admin = discord_fake.member_id, discord_fake.other_member_id, discord_fake.admin_id

    await discord_fake.react(image.id, "⭐", user_id=member)  # their own: not counted
    await discord_fake.react(image.id, "⭐", user_id=other)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)  # a ⭐'s lookups take their turn with the command's answer
    assert _posts(discord_fake, gallery) == []
    await discord_fake.react(image.id, "⭐", user_id=admin)
    await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)))
    (post,) = _posts(discord_fake, gallery)
    assert post.content == "⭐ **2**"
    discord_fake.nonces.clear()  # past Discord's few minutes for a nonce: only the bot's record keeps it to one post
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: post.content == "⭐ **3**")  # the stars shown anew, the post the same
    await discord_fake.unreact(image.id, "⭐", user_id=other)
    await discord_fake.wait_for(lambda: post.content == "⭐ **2**")
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)

    assert _posts(discord_fake, gallery) == [post]
    assert [f.data for f in post.files] == [f.data for f in image.files], "the image itself, uploaded again"
    (embed,) = post.embeds
    assert f"By <@{member}>" in embed["description"] and f"/{image.id})" in embed["description"]
    words = str(post.embeds) + str(post.attachments) + (post.content or "")
    assert "a cat on a sofa" not in words, "the prompt stays on the original (its alt text is the prompt too)"
    assert post.attachments[0]["description"] == "An image starred by 2 members; its prompt is on the original message."
    assert post.allowed_mentions == {"parse": []}

    await discord_fake.delete_messages(image.id)
    await discord_fake.wait_for(lambda: post.deleted)


async def test_the_gallery_is_set_shown_refused_where_the_bot_cannot_post_and_turned_off(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """No gallery at first; a channel the bot may not post in refused, nothing kept; set, shown, its stars changed,
    off (each in the audit log); a member who is no admin refused; stars with the gallery off post nothing."""
    admin = discord_fake.admin_id
    assert (await _said(discord_fake, {})).startswith("This server has no gallery.")
    closed = discord_fake.add_channel("closed")
    # As Discord answers a bot a channel's overwrites refuse Send Messages (the fake does not judge posts by them).
    refusal = {"code": 50013, "message": "Missing Permissions"}
    discord_fake.fail_next("POST", rf"^/channels/{closed}/messages$", status=403, body=refusal)
    refused = await _said(discord_fake, {"channel": str(closed)})
    assert refused.startswith(f"The bot cannot post in <#{closed}>, so nothing changed.")
    assert (await _said(discord_fake, {})).startswith("This server has no gallery.")
    no_files = await discord_fake.create_channel(
        "no-files", overwrites=[overwrite(discord_fake.bot_role_id, deny=ATTACH_FILES)]
    )
    lacks = await _said(discord_fake, {"channel": str(no_files)})
    assert lacks.startswith(f"The bot lacks Attach Files in <#{no_files}>, so nothing changed")
    assert discord_fake.messages_in(no_files) == [], "not even the first post: its words alone would pass"
    gallery = await discord_fake.create_channel("showcase")
    assert (await _said(discord_fake, {"stars": 2})).startswith("Name the gallery's channel too")
    await _said(discord_fake, {"channel": str(gallery)})
    assert (await _said(discord_fake, {"stars": 1})).startswith(f"Gallery: <#{gallery}>. An image of mine that one")
    assert len(discord_fake.messages_in(gallery)) == 1, "the same channel is not greeted again"
    # /admin check names the gallery, and what it lacks once a moderator takes Attach Files away there.
    assert _gallery_field(discord_fake, await answered(discord_fake, "admin check", {}, user_id=admin)) == (
        f"✅ <#{gallery}>: its posts reach it."
    )
    await discord_fake.set_overwrites(gallery, [overwrite(discord_fake.bot_role_id, deny=ATTACH_FILES)])
    assert _gallery_field(discord_fake, await answered(discord_fake, "admin check", {}, user_id=admin)) == (
        f"⚠️ <#{gallery}>: the bot lacks Attach Files there, so nothing it posts reaches it."
    )
    member_said = await _said(discord_fake, {"off": True}, user_id=discord_fake.member_id)
    assert "Manage Server" in member_said
    assert (await _said(discord_fake, {"off": True})).startswith("The gallery is off")
    assert (await _said(discord_fake, {"off": True})) == "This server has no gallery."
    image = await bot_image(discord_fake, settings)
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.other_member_id)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)
    assert _posts(discord_fake, gallery) == []
    audit = _audit(settings)
    assert [summary.split("> ", 1)[1] for _, summary in audit] == [
        f"set the gallery to <#{gallery}>, for images 3 members starred.",
        f"set the gallery to <#{gallery}>, for images one member starred.",
        "turned the gallery off.",
    ]


async def test_stars_given_while_the_bot_was_away_post_the_image_once_it_is_back(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord tells a bot nothing of the ⭐ given while it was away: read back from its latest images at its return
    (cogs/missed_reactions.py), they count for the gallery as live ones do."""
    gallery = discord_fake.add_channel("showcase")
    first = await start_bot(settings, discord_fake, clock)
    try:
        await _said(discord_fake, {"channel": str(gallery), "stars": 2})
        image = await bot_image(discord_fake, settings)
    finally:
        await first.close()
    for who in (discord_fake.other_member_id, discord_fake.admin_id):
        await discord_fake.react(image.id, "⭐", user_id=who, seen=False)
    second = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)), timeout=15)
    finally:
        await second.close()
    (post,) = _posts(discord_fake, gallery)
    assert post.content == "⭐ **2**"


async def test_the_gallery_channel_deleted_ends_the_gallery_and_says_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A moderator deletes the gallery's channel: no gallery any more (each ⭐ would have tried a channel that is
    gone), the audit log says why, and `/admin gallery` offers to set a new one."""
    gallery = await discord_fake.create_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    await discord_fake.delete_channel(gallery)
    await discord_fake.wait_for(lambda: len(_audit(settings)) == 2)
    assert (await _said(discord_fake, {})).startswith("This server has no gallery.")
    assert _audit(settings)[-1][1].startswith(f"The gallery channel <#{gallery}> was deleted")


async def test_its_member_takes_the_gallery_post_down_with_a_cross_and_it_stays_down(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member may not want their image shown off: their ❌ on its gallery post takes the post down (another
    member's ❌ is only a reaction), the image stays, and later ⭐ do not post it again."""
    image, post = await _starred_once(discord_fake, settings)
    await discord_fake.react(post.id, "❌", user_id=discord_fake.other_member_id)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.5)  # the ❌'s lookups take their turn with the command's answer
    assert not post.deleted, "another member's ❌"
    await discord_fake.react(post.id, "❌", user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: post.deleted)
    discord_fake.nonces.clear()  # past Discord's window: only the bot's record keeps it down
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.admin_id)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)
    assert _posts(discord_fake, post.channel_id) == [] and not image.deleted


async def test_an_image_made_looser_than_the_gallery_allows_is_not_posted_there(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The moderators keep the gallery's channel at safety level 1; an image made at the server's level 3 is not
    posted there however it is starred (members there did not choose to see what level 3 lets through), until the
    channel allows level 3 or looser: the next ⭐ posts it."""
    gallery = await discord_fake.create_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    moderator = discord_fake.moderator_id
    await answered(discord_fake, "mod safety set", {"level": 1, "channel": gallery}, user_id=moderator)
    image = await bot_image(discord_fake, settings)
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.other_member_id)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.5)
    assert _posts(discord_fake, gallery) == []
    await answered(discord_fake, "mod safety set", {"level": 4, "channel": gallery}, user_id=moderator)
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.admin_id)
    await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)))


async def test_a_batch_starred_is_one_gallery_post_of_its_images(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A ⭐ on a batch's message stars each of its images: the gallery gets one post of them all, not one each."""
    gallery = discord_fake.add_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    asked = await discord_fake.slash_command("imagine", {"prompt": "two foxes", "count": 2})
    await discord_fake.wait_for(lambda: states(settings).count("delivered") == 2, timeout=20)
    message = discord_fake.messages[asked.original_message_id or -1]
    await discord_fake.wait_for(lambda: len(message.files) == 2, timeout=10)
    await discord_fake.react(message.id, "⭐", user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)))
    await answered(discord_fake, "help", {})
    await asyncio.sleep(0.3)
    (post,) = _posts(discord_fake, gallery)
    assert sorted(f.data for f in post.files) == sorted(f.data for f in message.files)


async def test_a_post_an_earlier_run_claimed_and_never_made_is_made_at_the_next_start(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The bot stops between claiming an image for the gallery and posting it (as its row is left here): no later ⭐
    may come, so the next start posts it, once; a claim whose image has lost its stars since is let go."""
    gallery = discord_fake.add_channel("showcase")
    first = await start_bot(settings, discord_fake, clock)
    try:
        await _said(discord_fake, {"channel": str(gallery), "stars": 1})
        image = await bot_image(discord_fake, settings)
        other = await bot_image(discord_fake, settings)
    finally:
        await first.close()
    with sqlite3.connect(settings.database.path) as conn:
        for message, starred in ((image, True), (other, False)):
            (job_id,) = conn.execute("SELECT id FROM jobs WHERE message_id = ?", (message.id,)).fetchone()
            if starred:
                conn.execute(
                    "INSERT INTO starred (guild_id, user_id, job_id, starred_at) VALUES (?, ?, ?, 0)",
                    (discord_fake.guild_id, discord_fake.other_member_id, job_id),
                )
            conn.execute(
                "INSERT INTO gallery_posts (job_id, guild_id, original_message_id, channel_id, claimed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (job_id, discord_fake.guild_id, message.id, gallery, time.time()),
            )
    second = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)), timeout=15)
        await discord_fake.wait_for(lambda: _unposted(settings) == [], timeout=10)
    finally:
        await second.close()
    (post,) = _posts(discord_fake, gallery)
    assert [f.data for f in post.files] == [f.data for f in image.files]


def _unposted(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [str(r[0]) for r in conn.execute("SELECT job_id FROM gallery_posts WHERE message_id IS NULL")]


async def test_a_flurry_of_stars_is_a_few_edits_ending_at_the_latest_count(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Ten members star a posted image within a moment (a popular image, a raid): its post shows the ten, by a few
    edits rather than one per ⭐ queued behind Discord's limit on a channel's edits; one ⭐ taken back: nine."""
    image, post = await _starred_once(discord_fake, settings)
    members = [discord_fake.snowflakes.next() for _ in range(9)]
    for member in members:
        await discord_fake.react(image.id, "⭐", user_id=member)
    await discord_fake.wait_for(lambda: post.content == "⭐ **10**", timeout=15)
    await answered(discord_fake, "help", {})
    await asyncio.sleep(STARS_EDIT_SECONDS + 0.5)  # any edit still to come
    edits = [r for r in discord_fake.requests if r.method == "PATCH" and r.path.endswith(f"/messages/{post.id}")]
    assert 1 <= len(edits) <= 3, f"{len(edits)} edits for nine ⭐"
    assert post.content == "⭐ **10**"
    await discord_fake.unreact(image.id, "⭐", user_id=members[0])
    await discord_fake.wait_for(lambda: post.content == "⭐ **9**", timeout=15)


async def test_a_cross_on_a_gallery_post_or_a_deleted_image_while_the_bot_was_away_takes_the_post_down(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """Discord tells a bot nothing of what happened while it was away: read back at its return
    (cogs/missed_reactions.py), its member's ❌ on one post takes that post down, an image deleted meanwhile takes its
    post with it, and another member's ❌ on a third post is only a reaction."""
    gallery = discord_fake.add_channel("showcase")
    first = await start_bot(settings, discord_fake, clock)
    try:
        await _said(discord_fake, {"channel": str(gallery), "stars": 1})
        images = [await bot_image(discord_fake, settings) for _ in range(3)]
        for image in images:
            await discord_fake.react(image.id, "⭐", user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: len(_posts(discord_fake, gallery)) == 3, timeout=15)
    finally:
        await first.close()
    crossed, gone, kept = _posts(discord_fake, gallery)
    originals = {m.id: m for m in images}
    by_post = {p.id: originals[int(p.embeds[0]["description"].rsplit("/", 1)[1].rstrip(")"))] for p in (crossed, gone)}
    await discord_fake.react(crossed.id, "❌", user_id=discord_fake.member_id, seen=False)
    discord_fake.remove_message(by_post[gone.id])  # deleted by its member while the bot is away
    await discord_fake.react(kept.id, "❌", user_id=discord_fake.other_member_id, seen=False)
    second = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(lambda: crossed.deleted and gone.deleted, timeout=15)
        await answered(discord_fake, "help", {})
        await asyncio.sleep(0.5)
    finally:
        await second.close()
    assert not kept.deleted and not by_post[crossed.id].deleted


async def test_an_image_larger_than_the_server_takes_now_is_posted_as_a_compressed_copy(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """An image shown while the server had its boosts (12 MB, uploaded as it came), starred after they lapsed: its
    upload to the gallery was refused (413) at every ⭐, and it never reached the gallery. It is posted as a JPEG the
    server takes now, its pixels kept."""
    await discord_fake.set_boost_tier(2)
    seaart.images = "noise"
    gallery = discord_fake.add_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    image = await bot_image(discord_fake, settings, resolution="2K")
    (shown,) = image.attachments
    limit = 10 * 1024 * 1024
    assert shown["size"] > limit, shown["size"]
    await discord_fake.set_boost_tier(0)
    await discord_fake.react(image.id, "⭐", user_id=discord_fake.other_member_id)
    await discord_fake.wait_for(lambda: bool(_posts(discord_fake, gallery)), timeout=30)
    (post,) = _posts(discord_fake, gallery)
    (file,) = post.files
    assert len(file.data) <= limit and file.filename == shown["filename"].replace(".png", ".jpg")
    with Image.open(io.BytesIO(file.data)) as picture:
        picture.load()
        assert picture.format == "JPEG" and picture.size == (shown["width"], shown["height"])
    (embed,) = post.embeds
    assert file.filename in embed["image"]["url"]  # the card shows the copy
    assert not [r for r in discord_fake.requests if r.files and r.status == 413]


async def test_an_image_starred_while_it_was_being_made_is_posted_once_it_shows(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    gallery = discord_fake.add_channel("showcase")
    await _said(discord_fake, {"channel": str(gallery), "stars": 1})
    seaart.hold(True)
    asked = await discord_fake.slash_command("imagine", {"prompt": "a slow comet"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    assert await discord_fake.react(asked.original_message_id or 0, "⭐", user_id=discord_fake.other_member_id)
    await asyncio.sleep(0.3)
    assert _posts(discord_fake, gallery) == []
    seaart.release()
    seaart.hold(False)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=10)
    await discord_fake.wait_for(lambda: len(_posts(discord_fake, gallery)) == 1, timeout=10)
    (post,) = _posts(discord_fake, gallery)
    assert [f.data for f in post.files] == [f.data for f in discord_fake.messages[asked.original_message_id or 0].files]
