"""Right-click remix through the fake Discord: "Edit with Nano Banana" on a message opens a form, and
the message's images are the edit's references."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answer_given, first_answer, png_bytes, start_bot
from tests.e2e.edits import bot_image, jobs, ledger, states, told_privately

MENU = "Edit with Nano Banana"
INSTRUCTION = "bananacord:remix:instruction"
SHAPE = "bananacord:remix:shape"


def gif_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(out, "GIF")
    return out.getvalue()


async def form_of(discord_fake: FakeDiscord, used: FakeInteraction) -> dict[str, object]:
    await discord_fake.wait_for(lambda: bool(used.callbacks), timeout=10)
    callback = used.callbacks[0]
    assert callback["type"] == 9, callback  # a modal
    return dict(callback["data"])


async def submitted(discord_fake: FakeDiscord, settings: Settings, used: FakeInteraction, text: str) -> FakeInteraction:
    count = len(jobs(settings))
    submit = await discord_fake.submit_modal(used, {INSTRUCTION: text})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == count + 1, timeout=10)
    await discord_fake.wait_for(lambda: jobs(settings)[-1]["state"] == "delivered", timeout=20)
    return submit


async def test_edit_with_nano_banana_uses_the_messages_images(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    assert any(c["type"] == 3 and c["name"] == MENU for c in discord_fake.commands)
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    notes = discord_fake.add_attachment(b"shopping list", "notes.txt", "text/plain")
    # An image no provider takes: counted, it opened the form, then the edit was refused for it after typing.
    reaction = discord_fake.add_attachment(gif_bytes(), "reaction.gif", "image/gif")
    linked = discord_fake.add_attachment(png_bytes(colour=(0, 0, 0)), "sky.png", "image/png")
    # A member's message (the bot, without the message-content intent, never saw its content).
    post = await discord_fake.post_message(
        "my cat", attachments=[reaction, photo, notes], image_links=[linked["url"]], user_id=discord_fake.admin_id
    )

    used = await discord_fake.message_command(MENU, post.id)
    form = await form_of(discord_fake, used)
    assert form["title"] == MENU
    submit = await submitted(discord_fake, settings, used, "make it a watercolour")

    # The photo and the linked image, not the text file; charged to who used the menu.
    create = seaart.creates[0].json
    assert create["prompt"] == "make it a watercolour" and create["image_urls"] == [photo["url"], linked["url"]]
    (job,) = jobs(settings)
    assert job["user_id"] == discord_fake.member_id and job["interaction_id"] == submit.id
    assert ledger(settings, job["id"]) == [("reserve", discord_fake.member_id), ("commit", discord_fake.member_id)]
    # The member sees the result in the form's answer, as for /imagine.
    assert submit.original_message_id is not None
    message = discord_fake.messages[submit.original_message_id]
    assert message.files and "Done" in message.embeds[0]["title"] and not message.ephemeral
    assert message.embeds[0]["description"] == "make it a watercolour"


async def test_on_the_bots_image_the_edit_keeps_its_options(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    image = await bot_image(discord_fake, settings, aspect_ratio="4:5", resolution="2K")
    used = await discord_fake.message_command(MENU, image.id, user_id=discord_fake.admin_id)
    await form_of(discord_fake, used)
    submit = await submitted(discord_fake, settings, used, "add a tiny hat")
    create = seaart.creates[1].json
    assert create["image_urls"] == [image.attachments[0]["url"]]
    assert (create["aspect_ratio"], create["resolution"]) == ("4:5", "2K")
    assert jobs(settings)[1]["user_id"] == discord_fake.admin_id
    # Its message says what it was made from, as the Edit button's does (it is no reply in a thread).
    result = discord_fake.messages[submit.original_message_id or 0]
    fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
    assert f"An edit of the image of [job {jobs(settings)[0]['id']}]" in fields["Made from"]
    assert f"/{image.channel_id}/{image.id})" in fields["Made from"]

    # A pan of it says so the same way.
    used = await discord_fake.message_command(MENU, image.id)
    await form_of(discord_fake, used)
    await discord_fake.submit_modal(used, {INSTRUCTION: "", "bananacord:remix:shape": "pan-up"})
    await discord_fake.wait_for(
        lambda: len(jobs(settings)) == 3 and jobs(settings)[2]["state"] == "delivered", timeout=20
    )
    panned = discord_fake.messages[jobs(settings)[2]["message_id"]]
    assert "⬆️ The image of" in str(panned.embeds[0]["fields"]) and "extended upwards into a" in str(
        panned.embeds[0]["fields"]
    )

    # Midjourney's parameters an edit has no use for: taken out of the words, and named privately.
    used = await discord_fake.message_command(MENU, image.id)
    await form_of(discord_fake, used)
    submit = await submitted(discord_fake, settings, used, "add a scarf --v 6.1 --no snow")
    assert seaart.creates[3].json["prompt"] == "add a scarf, without snow"
    assert await told_privately(discord_fake, submit) == [
        ("Left out `--v 6.1`: Midjourney's parameters, which mean nothing to Nano Banana.", 64)
    ]


async def test_more_images_than_the_model_takes_uses_the_first_and_says_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    photos = [discord_fake.add_attachment(png_bytes(), f"p{i}.png", "image/png") for i in range(5)]
    post = await discord_fake.post_message("five cats", attachments=photos, user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    # Nano Banana 2 on SeaArt takes 3 references.
    assert (await form_of(discord_fake, used))["title"] == "Edit: first 3 of 5 images"
    await submitted(discord_fake, settings, used, "one big cat")
    assert seaart.creates[0].json["image_urls"] == [p["url"] for p in photos[:3]]


async def test_refusals_are_private_and_charge_nothing(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    text_only = await discord_fake.post_message("no pictures here", user_id=discord_fake.admin_id)
    gif = discord_fake.add_attachment(gif_bytes(), "reaction.gif", "image/gif")
    gif_only = await discord_fake.post_message("lol", attachments=[gif], user_id=discord_fake.admin_id)
    for message in (text_only, gif_only):  # refused before the member types anything
        callback = await first_answer(discord_fake, await discord_fake.message_command(MENU, message.id))
        assert callback["type"] == 4 and callback["data"]["flags"] & 64
        assert "no image to edit" in callback["data"]["content"]

    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    post = await discord_fake.post_message("a cat", attachments=[photo], user_id=discord_fake.admin_id)
    ban = await discord_fake.slash_command(
        "mod ban", {"member": discord_fake.member_id}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, ban)
    used = await discord_fake.message_command(MENU, post.id)
    await form_of(discord_fake, used)
    submit = await discord_fake.submit_modal(used, {INSTRUCTION: "make it night"})
    await discord_fake.wait_for(lambda: bool(submit.callbacks), timeout=10)
    refusal = submit.callbacks[0]
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    assert "banned from using this bot" in refusal["data"]["content"]
    assert jobs(settings) == [] and seaart.creates == []


async def test_a_remix_in_flight_survives_a_restart(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    first = await start_bot(settings, discord_fake, clock)
    try:
        post = await discord_fake.post_message("a cat", attachments=[photo], user_id=discord_fake.admin_id)
        seaart.hold(True)
        used = await discord_fake.message_command(MENU, post.id)
        await form_of(discord_fake, used)
        submit = await discord_fake.submit_modal(used, {INSTRUCTION: "make it night"})
        await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    finally:
        await first.close()

    second = await start_bot(settings, discord_fake, clock)
    try:
        seaart.release()
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
        assert submit.original_message_id is not None
        message = discord_fake.messages[submit.original_message_id]
        await discord_fake.wait_for(lambda: bool(message.files), timeout=10)
        assert len(seaart.creates) == 1 and seaart.creates[0].json["image_urls"] == [photo["url"]]
    finally:
        await second.close()


async def test_a_form_opened_before_a_restart_is_answered_after_it(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    """The member opens the form, the bot restarts, the member sends it: the edit runs on the images the
    form was opened on (a member's message read again would come back without them), and the form works
    once."""
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    first = await start_bot(settings, discord_fake, clock)
    try:
        post = await discord_fake.post_message("a cat", attachments=[photo], user_id=discord_fake.admin_id)
        used = await discord_fake.message_command(MENU, post.id)
        await form_of(discord_fake, used)
    finally:
        await first.close()

    second = await start_bot(settings, discord_fake, clock)
    try:
        submit = await submitted(discord_fake, settings, used, "make it night")
        assert len(seaart.creates) == 1 and seaart.creates[0].json["image_urls"] == [photo["url"]]
        assert seaart.creates[0].json["prompt"].startswith("make it night")
        assert states(settings) == ["delivered"] and submit.original_message_id is not None
        # Sent again (a replayed submit): the form is used up, nothing more is started or charged.
        again = await discord_fake.submit_modal(used, {INSTRUCTION: "make it night"})
        await discord_fake.wait_for(lambda: bool(again.callbacks), timeout=10)
        assert "expired" in str(again.callbacks[0]["data"].get("content")) and len(seaart.creates) == 1
    finally:
        await second.close()


async def test_edit_with_nano_banana_can_only_reframe_a_members_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    post = await discord_fake.post_message("my cat", attachments=[photo], user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    form = await form_of(discord_fake, used)
    components: Any = form["components"]
    (select,) = [c["component"] for c in components if c["component"]["custom_id"] == SHAPE]
    options = select["options"]
    # Nothing says what shape a member's image was asked in: its size on Discord does (a square).
    assert options[0] == {"label": "Keep it as it is (1:1)", "value": "keep", "default": True}
    assert "➡️ Pan right: extend the scene, 3:2 (landscape)" in [option["label"] for option in options]
    assert "New shape: 4:3 (landscape)" in [option["label"] for option in options]

    submit = await discord_fake.submit_modal(used, {INSTRUCTION: "", "bananacord:remix:shape": "4:3"})
    await discord_fake.wait_for(lambda: bool(jobs(settings)) and jobs(settings)[-1]["state"] == "delivered", timeout=20)
    create = seaart.creates[0].json
    assert create["aspect_ratio"] == "4:3" and create["image_urls"] == [photo["url"]]
    assert "4:3 (landscape) frame" in create["prompt"]
    message = discord_fake.messages[submit.original_message_id or 0]
    assert (message.attachments[0]["width"], message.attachments[0]["height"]) == (1024, 768)
    (job,) = jobs(settings)
    assert ledger(settings, job["id"]) == [("reserve", discord_fake.member_id), ("commit", discord_fake.member_id)]


async def test_the_form_measures_the_image_it_edits_not_another_embed(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    tall = discord_fake.add_attachment(png_bytes(size=(36, 64)), "tall.png", "image/png")
    # A link's preview comes first (a wide picture that is not one of the message's images), then the image.
    preview = {
        "type": "article",
        "url": "https://news.example/story",
        "thumbnail": {"url": "https://news.example/wide.jpg", "width": 1600, "height": 900},
    }
    post = await discord_fake.post_message(
        "look", image_links=[tall["url"]], embeds=[preview], user_id=discord_fake.admin_id
    )
    used = await discord_fake.message_command(MENU, post.id)
    form: Any = await form_of(discord_fake, used)
    (select,) = [c["component"] for c in form["components"] if c["component"]["custom_id"] == SHAPE]
    labels = [option["label"] for option in select["options"]]
    assert labels[0] == "Keep it as it is (9:16)"
    assert "➡️ Pan right: extend the scene, 4:5 (portrait)" in labels and "New shape: 9:16 (portrait)" not in labels

    await discord_fake.submit_modal(used, {INSTRUCTION: "", "bananacord:remix:shape": "pan-right"})
    await discord_fake.wait_for(lambda: bool(jobs(settings)) and jobs(settings)[-1]["state"] == "delivered", timeout=20)
    create = seaart.creates[0].json
    assert create["image_urls"] == [tall["url"]] and create["aspect_ratio"] == "4:5"


async def test_an_image_linked_in_the_form_is_a_reference_after_the_message_s(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    hat = discord_fake.add_attachment(png_bytes(colour=(10, 90, 200)), "hat.png", "image/png")
    post = await discord_fake.post_message("my cat", attachments=[photo], user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    await form_of(discord_fake, used)
    # The same image linked twice, and the message's own photo linked too: each one reference.
    await submitted(discord_fake, settings, used, f"put <{hat['url']}> on the cat, {hat['url']} {photo['url']}")
    create = seaart.creates[0].json
    assert create["prompt"] == "put on the cat" and create["image_urls"] == [photo["url"], hat["url"]]


async def test_an_image_from_another_site_is_taken_from_discord_s_copy_never_the_site(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A member posts a link to an image on another site; Discord fetches it and shows its copy in an embed
    (``proxy_url``, images-ext). The bot fetched the site itself (and sent a provider there): a site a member
    names, serving now whatever it likes. Now the bot and the provider get Discord's copy, the image shown."""
    outside = "https://pictures.example/cat.png"  # never reachable in a test: fetching it would fail the job
    copy = discord_fake.add_external_image(outside, png_bytes(size=(40, 30)))
    post = await discord_fake.post_message(f"look {outside}", image_links=[outside], user_id=discord_fake.admin_id)
    used = await discord_fake.message_command(MENU, post.id)
    form: Any = await form_of(discord_fake, used)
    (select,) = [c["component"] for c in form["components"] if c["component"]["custom_id"] == SHAPE]
    assert select["options"][0]["label"] == "Keep it as it is (4:3)"  # measured by Discord, found by its copy
    await submitted(discord_fake, settings, used, "make it a watercolour")
    assert seaart.creates[0].json["image_urls"] == [copy]
