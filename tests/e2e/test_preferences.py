"""/preferences through the fake Discord and the fake SeaArt: a member's own defaults fill the /imagine
options they leave out (what SeaArt receives), typed options win, other members are untouched, and a
preference the model cannot take is refused when set and left out when another model is picked."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, answer_data, answered, png_bytes
from tests.e2e.edits import jobs


def shown(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, str]:
    """The private /preferences answer, as {label: value}."""
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    return {field["name"]: field["value"] for field in data["embeds"][0]["fields"]}


async def imagine(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, options: dict[str, Any], **kwargs: Any
) -> list[dict[str, Any]]:
    """Run /imagine to the end; the create bodies SeaArt received for it."""
    before, made = len(seaart.creates), len(jobs(settings))
    interaction = await answered(discord_fake, "imagine", options, **kwargs)
    assert interaction.callbacks[0]["type"] == 4 and not answer_data(discord_fake, interaction).get("flags", 0) & 64
    await discord_fake.wait_for(
        lambda: len(jobs(settings)) > made and all(row["state"] == "delivered" for row in jobs(settings)), timeout=20
    )
    return [create.json for create in seaart.creates[before:]]


async def test_a_members_preferences_fill_what_they_leave_out(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    member, other = discord_fake.member_id, discord_fake.admin_id
    saved = await answered(discord_fake, "preferences", {"aspect_ratio": "16:9", "resolution": "2K", "count": 2})
    assert shown(discord_fake, saved) | {"Model": ""} == {
        "Model": "",
        "Aspect ratio": "16:9",
        "Resolution": "2K",
        "Format": "model's default",
        "Thinking": "model's default",
        "Web search": "model's default",
        "Images per prompt": "2",
        "Ping when done": "on (requests that take 45 s or more; the default)",
        "Suffix": "none",
        "Remix (Vary asks for words)": "off",
        "Option sets": "none (`option_set:wide --ar 21:9` makes `--wide` stand for `--ar 21:9`)",
    }
    assert "(server default)" in shown(discord_fake, saved)["Model"]

    # Left out: the preferences; two images, as preferred.
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "a harbour"})
    assert [(c["aspect_ratio"], c["resolution"]) for c in creates] == [("16:9", "2K")] * 2
    # Typed: the options win, the rest still preferred.
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "a square", "aspect_ratio": "1:1", "count": 1})
    assert [(c["aspect_ratio"], c["resolution"]) for c in creates] == [("1:1", "2K")]
    # Another member has none.
    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "theirs"}, user_id=other)
    assert "aspect_ratio" not in create and create["resolution"] == "1K"

    forgot = await answered(discord_fake, "preferences", {"forget": "resolution"})
    assert (
        shown(discord_fake, forgot)["Resolution"] == "model's default"
        and shown(discord_fake, forgot)["Aspect ratio"] == "16:9"
    )
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "no size"})
    assert [(c["aspect_ratio"], c["resolution"]) for c in creates] == [("16:9", "1K")] * 2

    cleared = await answered(discord_fake, "preferences", {"reset": True})
    assert (
        shown(discord_fake, cleared)["Aspect ratio"] == "model's default"
        and shown(discord_fake, cleared)["Images per prompt"] == "1"
    )
    (create,) = await imagine(discord_fake, seaart, settings, {"prompt": "plain again"})
    assert "aspect_ratio" not in create and create["resolution"] == "1K"
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM member_preferences").fetchone() == (0,)
    assert {row["user_id"] for row in jobs(settings)} == {member, other}


async def test_a_preference_the_model_cannot_take_is_refused_when_set_and_left_out_when_used(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    refused = await answered(discord_fake, "preferences", {"aspect_ratio": "8:1", "model": "nano_banana_pro"})
    data = answer_data(discord_fake, refused)
    assert data["flags"] & 64 and "Not saved: Nano Banana Pro does not offer aspect ratio 8:1" in data["content"]
    both = await answered(discord_fake, "preferences", {"resolution": "2K", "forget": "resolution"})
    assert "not both" in answer_data(discord_fake, both)["content"]
    nothing = await answered(discord_fake, "preferences", {})
    assert shown(discord_fake, nothing)["Aspect ratio"] == "model's default"  # nothing was saved

    await answered(discord_fake, "preferences", {"aspect_ratio": "8:1", "count": 4})  # fine on Nano Banana 2
    await answered(
        discord_fake, "admin defaults", {"max_count": 2}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    assert (
        shown(discord_fake, await answered(discord_fake, "preferences", {}))["Images per prompt"]
        == "4 (this server allows 2)"
    )

    # Picking Pro, which has no 8:1: the preference is left out (Pro's own default shape), not a refusal;
    # the preferred four images are held to the server's two.
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "tall", "model": "nano_banana_pro"})
    assert len(creates) == 2 and all("aspect_ratio" not in c for c in creates)
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "wide"})
    assert [c["aspect_ratio"] for c in creates] == ["8:1", "8:1"]
    assert [row["model"] for row in jobs(settings)] == ["nano_banana_pro"] * 2 + ["nano_banana_2"] * 2


async def test_edit_with_nano_banana_on_a_members_image_uses_the_preferred_model(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await answered(discord_fake, "preferences", {"model": "nano_banana_pro", "aspect_ratio": "21:9"})
    photo = discord_fake.add_attachment(png_bytes(), "photo.png", "image/png")
    post = await discord_fake.post_message("my cat", attachments=[photo], user_id=discord_fake.admin_id)
    used = await discord_fake.message_command("Edit with Nano Banana", post.id)
    await discord_fake.wait_for(lambda: bool(used.callbacks), timeout=10)
    await discord_fake.submit_modal(used, {"bananacord:remix:instruction": "make it a watercolour"})
    await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=20)
    (job,) = jobs(settings)
    assert job["model"] == "nano_banana_pro"
    # Only the model: an edit keeps its image's shape, so the preferred 21:9 is not sent.
    assert "aspect_ratio" not in seaart.creates[0].json


async def test_preferences_sent_past_discords_checks_are_refused_clearly(
    running_bot: RunningBot, discord_fake: FakeDiscord, settings: Settings
) -> None:
    for options, words in [
        ({"resolution": "16K"}, "does not offer resolution 16K"),
        ({"aspect_ratio": "99:1"}, "does not offer aspect ratio 99:1"),
        ({"count": 99}, "`count` must be from 1 to 4"),
        ({"model": "nano_banana_9"}, "is not served by any enabled provider"),
        ({"forget": "prompt"}, "is not a preference"),
    ]:
        interaction = await answered(discord_fake, "preferences", options, unchecked=True)
        data = answer_data(discord_fake, interaction)
        assert data["flags"] & 64 and words in data["content"] and "went wrong" not in data["content"], options
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM member_preferences").fetchone() == (0,)


async def test_a_reply_to_a_bot_image_no_job_made_uses_the_preferred_model(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await answered(discord_fake, "preferences", {"model": "nano_banana_pro"})
    # An image the bot posted that no job row names (say, from before its database was replaced).
    picture = discord_fake.add_attachment(png_bytes(), "old.png", "image/png")
    old = await discord_fake.post_message("", attachments=[picture], user_id=discord_fake.bot_user_id)
    await discord_fake.post_message("make it night", reply_to=old.id)
    await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"], timeout=20)
    (job,) = jobs(settings)
    assert job["model"] == "nano_banana_pro" and seaart.creates[0].json["image_urls"] == [picture["url"]]
