"""Every reference the model takes, from /imagine: ten attachment slots and links to messages with images,
through the fake Discord (the bot reads the linked messages with its token) and the fake SeaArt."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, final_message, png_bytes


def states(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM jobs ORDER BY created_at")]


def ledger_rows(settings: Settings) -> int:
    with sqlite3.connect(settings.database.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])


async def post_images(
    discord_fake: FakeDiscord, count: int, channel_id: int | None = None, *, mention: bool = True
) -> FakeMessage:
    """A member's message with ``count`` PNGs; mentioning the bot, so Discord shows it the attachments
    (the bot has no message-content intent)."""
    images = [
        discord_fake.add_attachment(png_bytes(colour=(i * 20, 100, 50)), f"p{i}.png", "image/png") for i in range(count)
    ]
    content = f"<@{discord_fake.bot_user_id}> some pictures" if mention else "some pictures"
    return await discord_fake.post_message(content, channel_id=channel_id, attachments=images)


def link(discord_fake: FakeDiscord, message: FakeMessage, *, guild_id: int | None = None) -> str:
    return f"https://discord.com/channels/{guild_id or discord_fake.guild_id}/{message.channel_id}/{message.id}"


async def refused(discord_fake: FakeDiscord, options: dict[str, Any], **kwargs: Any) -> str:
    interaction = await discord_fake.slash_command("imagine", options, **kwargs)
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    callback = interaction.callbacks[0]
    assert callback["type"] == 4 and callback["data"]["flags"] & 64, callback
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    return str(callback["data"]["content"])


def attachments(discord_fake: FakeDiscord, count: int) -> dict[str, Any]:
    return {
        f"image{n}": discord_fake.add_attachment(png_bytes(colour=(n * 10, 0, 0)), f"a{n}.png", "image/png")
        for n in range(1, count + 1)
    }


async def ten_attached_and_linked(
    discord_fake: FakeDiscord, prompt: str, linked: int
) -> tuple[dict[str, Any], FakeMessage]:
    """/imagine options for Nano Banana Pro with all ten attachment slots used and a link to a member's
    message with ``linked`` more images; and that message."""
    posted = await post_images(discord_fake, linked)
    options = {"prompt": prompt, "model": "nano_banana_pro", **attachments(discord_fake, 10)}
    options["references"] = link(discord_fake, posted)
    return options, posted


async def test_fourteen_references_on_pro_from_ten_slots_and_a_link(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    options, posted = await ten_attached_and_linked(discord_fake, "a collage", 4)
    await discord_fake.slash_command("imagine", options, user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    expected = [options[f"image{n}"]["url"] for n in range(1, 11)] + [a["url"] for a in posted.attachments]
    assert create.json["image_urls"] == expected


async def test_a_link_to_an_earlier_result_makes_it_a_reference(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    first = await discord_fake.slash_command("imagine", {"prompt": "a banana"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert first.original_message_id is not None
    result = discord_fake.messages[first.original_message_id]
    # Links may come as Discord's clients copy them, in angle brackets, with commas, repeated.
    text = f"<{link(discord_fake, result)}>, {link(discord_fake, result)}"
    await discord_fake.slash_command("imagine", {"prompt": "the same banana at night", "references": text})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    assert seaart.creates[1].json["image_urls"] == [result.attachments[0]["url"]]


async def test_more_references_than_the_model_takes_are_refused_before_anything_is_charged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    options, posted = await ten_attached_and_linked(discord_fake, "too many", 5)
    text = await refused(discord_fake, options)
    assert "Nano Banana Pro takes at most 14 reference image(s); you gave 15." in text
    assert "ask for" not in text  # no model here takes more
    # Nano Banana 2 on SeaArt takes 3: the same refusal, naming that limit, and the model that takes them all.
    text = await refused(discord_fake, {"prompt": "nb2", "references": link(discord_fake, posted)})
    assert "at most 3 reference image(s); you gave 5. Nano Banana Pro takes up to 14: ask for" in text
    assert "`model:Nano Banana Pro`" in text
    assert states(settings) == [] and ledger_rows(settings) == 0 and seaart.requests == []


@pytest.mark.parametrize(
    ("make_text", "expected"),
    [
        (lambda fake, msg: "my favourite picture", "`my favourite picture` is not one"),
        (lambda fake, msg: link(fake, msg, guild_id=123456789), "is not a message in this server"),
        (lambda fake, msg: f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/42", "no longer exists"),
        (lambda fake, msg: f"https://discord.com/channels/{fake.guild_id}/987654321/42", "cannot see the channel"),
        (lambda fake, msg: link(fake, msg), "has no PNG, JPEG or WebP image"),
        (lambda fake, msg: " ".join(f"https://discord.com/channels/1/2/{n}" for n in range(15)), "at most 14 message"),
    ],
    ids=["not-a-link", "other-server", "gone", "unknown-channel", "no-images", "too-many-links"],
)
async def test_links_the_bot_cannot_use_are_refused_privately(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    make_text: Any,
    expected: str,
) -> None:
    message = await _text_message(discord_fake)
    text = await refused(discord_fake, {"prompt": "from a link", "references": make_text(discord_fake, message)})
    assert expected in text
    assert states(settings) == [] and ledger_rows(settings) == 0 and seaart.requests == []


async def _text_message(discord_fake: FakeDiscord) -> FakeMessage:
    return await discord_fake.post_message(f"<@{discord_fake.bot_user_id}> just words")


async def test_a_member_message_discord_withholds_from_the_bot_is_explained(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Without the message-content intent Discord sends the bot other members' messages empty unless
    they mention it: the member learns why and what to do instead of "no image"."""
    posted = await post_images(discord_fake, 2, mention=False)
    text = await refused(discord_fake, {"prompt": "from a link", "references": link(discord_fake, posted)})
    assert "cannot see the images of link 1" in text and "mention" in text and "Edit with Nano Banana" in text
    assert states(settings) == [] and seaart.requests == []


async def test_images_from_an_age_restricted_channel_stay_there(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    posted = await post_images(discord_fake, 1, channel_id=discord_fake.nsfw_channel_id)
    text = await refused(discord_fake, {"prompt": "here", "references": link(discord_fake, posted)})
    assert "age-restricted channel" in text
    await discord_fake.slash_command(
        "imagine", {"prompt": "there", "references": link(discord_fake, posted)}, channel_id=posted.channel_id
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)


async def test_a_member_cannot_read_a_private_channel_through_the_bot(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    # A staff channel @everyone may not view (the admins may), made after the bot connected.
    staff = discord_fake.add_channel("staff", hidden=True)
    posted = await post_images(discord_fake, 1, channel_id=staff)
    text = await refused(discord_fake, {"prompt": "peek", "references": link(discord_fake, posted)})
    assert "You cannot read the channel of link 1" in text
    await discord_fake.slash_command(
        "imagine", {"prompt": "allowed", "references": link(discord_fake, posted)}, user_id=discord_fake.admin_id
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert seaart.creates[0].json["image_urls"] == [posted.attachments[0]["url"]]


async def test_a_private_thread_s_images_are_for_its_members_only(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """discord.py reads a thread's permissions from its parent channel alone, and the bot reads linked
    messages with its own access: a private thread's images went to anyone who could see the channel."""
    # Started by a moderator (its one member), who may not manage threads.
    thread = discord_fake.add_thread(
        discord_fake.channel_id, "staff only", private=True, started_by=discord_fake.moderator_id
    )
    posted = await post_images(discord_fake, 1, channel_id=thread)
    text = await refused(discord_fake, {"prompt": "peek", "references": link(discord_fake, posted)})
    assert "You cannot read the channel of link 1" in text
    assert states(settings) == [] and ledger_rows(settings) == 0 and seaart.requests == []
    # Its members may, and so may whoever can manage threads (an admin).
    for user in (discord_fake.moderator_id, discord_fake.admin_id):
        await discord_fake.slash_command(
            "imagine", {"prompt": "ours", "references": link(discord_fake, posted)}, user_id=user
        )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered", "delivered"], timeout=20)
    assert [c.json["image_urls"] for c in seaart.creates] == [[posted.attachments[0]["url"]]] * 2
    # Discord failing to say who is in the thread is no reason to let the member in.
    discord_fake.fail_next("GET", r"/thread-members/", status=503, times=20)
    text = await refused(discord_fake, {"prompt": "peek again", "references": link(discord_fake, posted)})
    assert "Discord would not say who may read the thread" in text and len(seaart.creates) == 2


async def test_a_link_into_a_dm_is_refused_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A link naming this server but a DM's channel: discord.py will not make a server channel of it
    (InvalidData), which was an unhandled error and a generic apology."""
    dm = int(discord_fake.open_dm(discord_fake.member_id)["id"])
    bogus = f"https://discord.com/channels/{discord_fake.guild_id}/{dm}/123456789012345678"
    text = await refused(discord_fake, {"prompt": "from a dm", "references": bogus})
    assert "The bot cannot see the channel of link 1" in text
    assert states(settings) == [] and seaart.requests == []


async def test_a_thread_of_an_age_restricted_channel_is_age_restricted_too(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    thread = discord_fake.add_thread(discord_fake.nsfw_channel_id, "in there")
    posted = await post_images(discord_fake, 1, channel_id=discord_fake.nsfw_channel_id)
    await discord_fake.slash_command(
        "imagine", {"prompt": "here", "references": link(discord_fake, posted)}, channel_id=thread
    )
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    # And a thread of an ordinary channel is not.
    ordinary = discord_fake.add_thread(discord_fake.channel_id, "out here")
    text = await refused(
        discord_fake, {"prompt": "there", "references": link(discord_fake, posted)}, channel_id=ordinary
    )
    assert "age-restricted channel" in text


# ---- links pasted into the prompt (bot/prompt_links.py) ----------------------------------------------------------


def with_expiry(url: str, expires: float) -> str:
    """``url`` claiming another ``ex`` (its signature no longer matches: the fake CDN would refuse it)."""
    return re.sub(r"ex=[0-9a-f]+", f"ex={int(expires):x}", url)


async def test_an_image_link_and_a_message_link_pasted_in_the_prompt_are_references(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """As Midjourney's members do: an image's link (Copy Link) at the start of the prompt. The model cannot open
    a link, so it went to SeaArt as words and the image ignored the picture; now it is the first reference,
    the linked message's image the second, and the words are what is left."""
    cat = discord_fake.add_attachment(png_bytes(colour=(200, 10, 10)), "cat.png", "image/png")
    posted = await post_images(discord_fake, 1)
    prompt = f"{cat['url']} <{link(discord_fake, posted)}>, the two of them as knights --ar 16:9"
    interaction = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None
    assert create.json["image_urls"] == [cat["url"], posted.attachments[0]["url"]]
    assert (create.json["prompt"], create.json["aspect_ratio"]) == ("the two of them as knights", "16:9")
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.embeds[0]["description"] == "the two of them as knights"


async def test_an_image_link_about_to_expire_is_renewed_before_the_job_starts(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A link with minutes left would be dead by the time a queued job's provider fetched it."""
    cat = discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")
    soon = with_expiry(cat["url"], time.time() + 600)
    await discord_fake.slash_command("imagine", {"prompt": f"{soon} in the snow"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert [r.json["attachment_urls"] for r in discord_fake.requests if r.path == "/attachments/refresh-urls"] == [
        [soon]
    ]
    assert seaart.creates[0].json["image_urls"] == [cat["url"]]  # signed anew (the same period's signature)


async def test_a_linked_image_deleted_before_the_bot_fetched_it_ends_uncharged_and_says_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    cat = discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")
    discord_fake.delete_attachment(cat)
    interaction = await discord_fake.slash_command("imagine", {"prompt": f"{cat['url']} in the snow"})
    await discord_fake.wait_for(lambda: states(settings) == ["failed"], timeout=20)

    def told() -> str:
        message = final_message(discord_fake, interaction.id)
        return str(message.embeds) if message is not None else ""

    await discord_fake.wait_for(lambda: "could not be fetched" in told(), timeout=10)
    assert "HTTP 404" in told()
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT charge_state FROM jobs").fetchall() == [("refunded",)]
    assert seaart.creates == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Its size is not known until fetched (an attachment's is declared): the download stops at the limit.
        (png_bytes() + b"\0" * (10 * 1024 * 1024), "larger than this bot accepts (10 MiB)"),
        (b"<html><body>not a picture</body></html>", "not a PNG, JPEG or WebP"),
    ],
    ids=["over-the-members-limit", "html-named-png"],
)
async def test_a_linked_file_that_is_too_large_or_no_image_ends_uncharged_and_says_so(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    data: bytes,
    expected: str,
) -> None:
    cat = discord_fake.add_attachment(data, "cat.png", "image/png")
    interaction = await discord_fake.slash_command("imagine", {"prompt": f"{cat['url']} in the snow"})
    await discord_fake.wait_for(lambda: states(settings) == ["failed"], timeout=20)
    message_id = discord_fake.interactions[interaction.id].original_message_id
    assert message_id is not None

    def told() -> str:
        return str(discord_fake.messages[message_id].embeds)

    await discord_fake.wait_for(lambda: "What happened" in told(), timeout=10)
    assert expected in told(), told()
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT charge_state FROM jobs").fetchall() == [("refunded",)]
    assert seaart.requests == []


@pytest.mark.parametrize(
    ("make_prompt", "expected"),
    [
        (lambda url, fake: "https://example.com/cat.png a cat", "from Discord only"),
        (lambda url, fake: f"{url.split('?')[0]} a cat", "is cut short"),
        (lambda url, fake: f"{with_expiry(url, time.time() - 60)} a cat", "has expired"),
        (lambda url, fake: url, "has a link and no words"),
        (lambda url, fake: f"{url} --ar 16:9", "has a link and no words"),
        # Another port of the same host is no CDN of Discord's: an internal address is never fetched.
        (lambda url, fake: re.sub(r":(\d+)/", ":1/", url, count=1) + " a cat", "from Discord only"),
        (
            lambda url, fake: f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/42 a cat",
            "link 1 in the prompt no longer exists",
        ),
    ],
    ids=["other-site", "unsigned", "expired", "link-alone", "link-and-parameters", "internal-port", "message-gone"],
)
async def test_links_in_the_prompt_the_bot_cannot_use_are_refused_privately(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    make_prompt: Any,
    expected: str,
) -> None:
    cat = discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")
    text = await refused(discord_fake, {"prompt": make_prompt(cat["url"], discord_fake)})
    assert expected in text
    assert cat["url"].split("hm=")[1][:16] not in text  # no signature read back
    assert states(settings) == [] and ledger_rows(settings) == 0 and seaart.requests == []


async def test_a_message_link_in_the_prompt_is_held_to_what_the_member_may_read(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    staff = discord_fake.add_channel("staff", hidden=True)
    posted = await post_images(discord_fake, 1, channel_id=staff)
    text = await refused(discord_fake, {"prompt": f"{link(discord_fake, posted)} peek"})
    assert "You cannot read the channel of link 1 in the prompt" in text
    assert states(settings) == [] and seaart.requests == []


async def test_an_image_linked_from_an_age_restricted_channel_stays_there(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord's file links name their channel (``/attachments/<channel>/<file>/<name>``): one of this server's
    age-restricted channels is held to the rule a message link is held to. (The fake CDN names no channel in
    its own links, so this one is written as Discord writes them; it is refused before anything is fetched.)"""
    cat = discord_fake.add_attachment(png_bytes(), "cat.png", "image/png")
    there = cat["url"].replace("/attachments/", f"/attachments/{discord_fake.nsfw_channel_id}/", 1)
    text = await refused(discord_fake, {"prompt": f"{there} at night"})
    assert "`cat.png` is from an age-restricted channel" in text
    assert states(settings) == [] and seaart.requests == []
    # In an age-restricted channel it is taken (and then fetched, where this fake serves no such path).
    await discord_fake.slash_command(
        "imagine", {"prompt": f"{there} at night"}, channel_id=discord_fake.nsfw_channel_id
    )
    await discord_fake.wait_for(lambda: states(settings) == ["failed"], timeout=20)
    # A link naming an ordinary channel of this server is taken anywhere.
    ordinary = cat["url"].replace("/attachments/", f"/attachments/{discord_fake.channel_id}/", 1)
    await discord_fake.slash_command("imagine", {"prompt": f"{ordinary} at night"})
    await discord_fake.wait_for(lambda: states(settings) == ["failed", "failed"], timeout=20)


async def test_an_emoji_s_or_an_avatar_s_link_is_a_reference_as_discord_s_cdn_serves_it_to_anyone(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "My avatar as a knight": Discord's public images (emojis, avatars) are unsigned; an animated one is
    asked for as its still PNG, and every one at the largest size the CDN gives."""
    emoji = discord_fake.add_cdn_image("/emojis/42.png", png_bytes(colour=(250, 200, 0)))
    avatar = discord_fake.add_cdn_image(f"/avatars/{discord_fake.member_id}/a_f00d.png", png_bytes())
    animated = avatar.replace(".png", ".gif")  # as the client links an animated avatar
    await discord_fake.slash_command("imagine", {"prompt": f"{animated} as a knight holding {emoji}"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None and create.json["prompt"] == "as a knight holding"
    base = discord_fake.api_base_url.removesuffix("/api/v10")
    assert create.json["image_urls"] == [
        f"{base}/avatars/{discord_fake.member_id}/a_f00d.png?size=1024",
        f"{base}/emojis/42.png?size=1024",
    ]


async def test_a_custom_emoji_in_the_prompt_is_its_image_and_its_name(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord's client sends a custom emoji as ``<:banana_cat:77>``, which went to the model as words: the model
    never saw the emoji. Now its image is a reference and its name stays in the words."""
    discord_fake.add_cdn_image("/emojis/77.png", png_bytes(colour=(250, 220, 0)))
    await discord_fake.slash_command("imagine", {"prompt": "a <a:banana_cat:77> in space"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None and create.json["prompt"] == "a banana cat in space"
    base = discord_fake.api_base_url.removesuffix("/api/v10")
    assert create.json["image_urls"] == [f"{base}/emojis/77.png?size=1024"]


async def test_more_images_than_the_model_takes_counts_the_prompt_s_emojis_and_says_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Nano Banana 2 on SeaArt takes 3: a member whose four custom emojis became references is told why."""
    prompt = "a party with <:a1:1> <:b2:2> <:c3:3> and <:d4:4>"
    text = await refused(discord_fake, {"prompt": prompt})
    assert "takes at most 3 reference image(s); you gave 4, 4 of them by links or custom emojis" in text
    assert states(settings) == [] and ledger_rows(settings) == 0 and seaart.requests == []


async def test_the_references_option_takes_images_links_too(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """An image's Copy Link pasted into `references` (made for message links) was refused as no message link."""
    cat = discord_fake.add_attachment(png_bytes(colour=(200, 10, 10)), "cat.png", "image/png")
    posted = await post_images(discord_fake, 1)
    text = f"{link(discord_fake, posted)}, <{cat['url']}>"
    await discord_fake.slash_command("imagine", {"prompt": "the two of them", "references": text})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert seaart.creates[0].json["image_urls"] == [posted.attachments[0]["url"], cat["url"]]
    # Words beside them are still refused, quoted; an image elsewhere is refused as in the prompt.
    words = await refused(discord_fake, {"prompt": "x", "references": f"{cat['url']} and this"})
    assert "`and this` is not one" in words
    elsewhere = await refused(discord_fake, {"prompt": "x", "references": "https://example.com/a.png"})
    assert "from Discord only" in elsewhere
    assert len(seaart.creates) == 1


async def test_an_address_urllib_cannot_read_stays_in_the_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "http://[1::1" made urllib raise ValueError("Invalid IPv6 URL") out of /imagine: an error, not an image."""
    await discord_fake.slash_command("imagine", {"prompt": "a poster reading http://[1::1 in neon"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert seaart.creates[0].json["prompt"] == "a poster reading http://[1::1 in neon"
