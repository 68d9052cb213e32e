"""/preferences as a panel (cogs/preference_panel.py), through the fake Discord: lists for the model, the aspect ratio,
the resolution and the images per prompt, offering what the model in use takes with the current choice marked, a
pings switch and Reset; a choice is saved as the option typed would be (what /imagine then sends SeaArt), the answer
redrawn in place, the same word said on a new model's preferences it cannot take; a panel opened before a restart
still works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeMessage
from bot.testing.discord.validation import walk_components
from bot.testing.providers import FakeSeaArt, FakeSegmind
from tests.conftest import Clock, RunningBot, answered, make_settings, start_bot
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_preferences import imagine
from tests.e2e.test_rework import KEY, routed


async def panel(discord_fake: FakeDiscord) -> FakeMessage:
    """/preferences by the member: its private answer, with the panel under it."""
    interaction = await answered(discord_fake, "preferences", {})
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    assert message.ephemeral
    return message


def items(message: FakeMessage) -> dict[str, dict[str, Any]]:
    """The panel's lists and buttons, by custom_id."""
    return {str(c["custom_id"]): c for c in walk_components(message.components) if c.get("custom_id")}


def offered(message: FakeMessage, name: str) -> list[str]:
    return [str(option["value"]) for option in items(message)[f"bananacord:prefs:{name}"]["options"]]


def marked(message: FakeMessage, name: str) -> list[str]:
    return [str(o["value"]) for o in items(message)[f"bananacord:prefs:{name}"]["options"] if o.get("default")]


def fields(message: FakeMessage) -> dict[str, str]:
    return {field["name"]: field["value"] for field in message.embeds[0]["fields"]}


async def choose(discord_fake: FakeDiscord, message: FakeMessage, name: str, value: str) -> None:
    before = (message.content, str(message.embeds), str(message.components))
    click = await discord_fake.click(message.id, f"bananacord:prefs:{name}", values=[value])
    await discord_fake.wait_for(lambda: bool(click.callbacks), timeout=10)
    assert click.callbacks[0]["type"] == 7, click.callbacks  # the answer redrawn in place
    await discord_fake.wait_for(lambda: (message.content, str(message.embeds), str(message.components)) != before)


async def test_the_panel_sets_what_imagine_then_uses(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await panel(discord_fake)
    assert list(items(message)) == [
        "bananacord:prefs:model",
        "bananacord:prefs:aspect_ratio",
        "bananacord:prefs:resolution",
        "bananacord:prefs:count",
        "bananacord:prefs:ping:off",
        "bananacord:prefs:remix:on",
        "bananacord:prefs:suffix",
        "bananacord:prefs:reset",
        "bananacord:prefs:page:more",
    ]
    # Nano Banana 2 at SeaArt (the test's one provider): its shapes, 8:1 among them, and its sizes.
    assert offered(message, "model") == ["-", "nano_banana_2", "nano_banana_pro"]
    assert "8:1" in offered(message, "aspect_ratio") and offered(message, "resolution") == [
        "-",
        "512",
        "1K",
        "2K",
        "4K",
    ]
    assert offered(message, "count") == ["1", "2", "3", "4"]
    assert [marked(message, name) for name in ("model", "aspect_ratio", "resolution", "count")] == [
        ["-"],
        ["-"],
        ["-"],
        ["1"],
    ]

    await choose(discord_fake, message, "aspect_ratio", "16:9")
    await choose(discord_fake, message, "resolution", "2K")
    await choose(discord_fake, message, "count", "2")
    assert (fields(message)["Aspect ratio"], fields(message)["Resolution"], fields(message)["Images per prompt"]) == (
        "16:9",
        "2K",
        "2",
    )
    assert marked(message, "aspect_ratio") == ["16:9"] and marked(message, "count") == ["2"]
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "a harbour"})
    assert [(c["aspect_ratio"], c["resolution"]) for c in creates] == [("16:9", "2K")] * 2

    # "Model's default" drops one, as forget does.
    await choose(discord_fake, message, "resolution", "-")
    assert fields(message)["Resolution"] == "model's default" and marked(message, "resolution") == ["-"]
    creates = await imagine(discord_fake, seaart, settings, {"prompt": "a quay"})
    assert [(c["aspect_ratio"], c["resolution"]) for c in creates] == [("16:9", "1K")] * 2


async def test_a_new_model_says_which_preferences_it_cannot_take_and_offers_its_own(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await panel(discord_fake)
    await choose(discord_fake, message, "aspect_ratio", "8:1")
    await choose(discord_fake, message, "model", "nano_banana_pro")
    assert message.content is not None and message.content.startswith(
        "Saved. Nano Banana Pro does not offer your aspect ratio 8:1, so /imagine leaves it out"
    )
    assert fields(message)["Model"] == "Nano Banana Pro"
    assert "not used" in fields(message)["Aspect ratio"]
    assert "8:1" not in offered(message, "aspect_ratio") and marked(message, "aspect_ratio") == []
    assert marked(message, "model") == ["nano_banana_pro"]
    # Back to the server's model: the word is gone, 8:1 offered and marked again.
    await choose(discord_fake, message, "model", "-")
    assert not message.content and marked(message, "aspect_ratio") == ["8:1"]

    # A value no list offered (a modified client) is refused as the typed option would be, nothing saved.
    click = await discord_fake.click(message.id, "bananacord:prefs:aspect_ratio", values=["7:3"])
    refused = await ephemeral_reply(discord_fake, click)
    assert refused.startswith("Not saved: Nano Banana 2 does not offer aspect ratio 7:3"), refused
    assert fields(message)["Aspect ratio"] == "8:1"


async def test_the_ping_switch_and_reset_and_a_panel_from_before_a_restart(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, clock)
    try:
        message = await panel(discord_fake)
        await choose(discord_fake, message, "count", "3")
        assert fields(message)["Ping when done"].startswith("on")
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)  # the same panel, answered by a new process
    try:
        click = await discord_fake.click(message.id, "bananacord:prefs:ping:off")
        await discord_fake.wait_for(lambda: click.callbacks and fields(message)["Ping when done"] == "off", timeout=10)
        assert "bananacord:prefs:ping:on" in items(message)
        assert items(message)["bananacord:prefs:ping:on"]["label"] == "Pings: off"
        assert fields(message)["Images per prompt"] == "3"
        click = await discord_fake.click(message.id, "bananacord:prefs:reset")
        await discord_fake.wait_for(lambda: fields(message)["Images per prompt"] == "1", timeout=10)
        assert fields(message)["Ping when done"].startswith("on") and marked(message, "count") == ["1"]
    finally:
        await running.close()


@pytest.fixture
async def segmind() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(api_key=KEY) as fake:
        yield fake


async def test_the_second_page_sets_format_thinking_and_web_search_where_the_model_offers_them(
    tmp_path: Path, discord_fake: FakeDiscord, segmind: FakeSegmind, seaart: FakeSeaArt, clock: Clock
) -> None:
    """More turns the panel to the format, thinking and web search lists (Segmind offers all three for Nano Banana
    2), each choice saved and sent; the ping switch there keeps the page; Back returns. Where no provider of the
    model offers one (SeaArt alone), its list is shown disabled, saying so."""
    settings = routed(tmp_path, discord_fake, ("segmind", {"base_url": segmind.base_url}))
    running = await start_bot(settings, discord_fake, clock)
    try:
        message = await panel(discord_fake)
        click = await discord_fake.click(message.id, "bananacord:prefs:page:more")
        await discord_fake.wait_for(lambda: "bananacord:prefs:web_search" in items(message), timeout=10)
        assert click.callbacks[0]["type"] == 7
        assert list(items(message))[:3] == [
            "bananacord:prefs:output_format",
            "bananacord:prefs:thinking_level",
            "bananacord:prefs:web_search",
        ]
        assert offered(message, "output_format") == ["-", "png", "jpg"]
        assert offered(message, "thinking_level") == ["-", "minimal", "high"]
        assert offered(message, "web_search") == ["-", "on", "off"]
        await choose(discord_fake, message, "output_format", "jpg")
        await choose(discord_fake, message, "web_search", "on")
        assert (fields(message)["Format"], fields(message)["Web search"]) == ("jpg", "on")
        assert marked(message, "web_search") == ["on"]
        click = await discord_fake.click(message.id, "bananacord:prefs:ping:off")
        await discord_fake.wait_for(lambda: fields(message)["Ping when done"] == "off", timeout=10)
        assert "bananacord:prefs:web_search" in items(message)  # still the second page
        click = await discord_fake.click(message.id, "bananacord:prefs:page:main")
        await discord_fake.wait_for(lambda: "bananacord:prefs:model" in items(message), timeout=10)
        await answered(discord_fake, "imagine", {"prompt": "a harbour"})
        await discord_fake.wait_for(lambda: bool(segmind.creates), timeout=20)
        body = segmind.creates[-1].json
        assert body is not None and (body.get("output_format"), body.get("web_search")) == ("jpg", True), body
    finally:
        await running.close()


async def test_a_list_no_provider_of_the_model_offers_is_shown_disabled(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    # A server allowing one image per prompt: that one choice is offered, not greyed out as not offered.
    await answered(
        discord_fake, "admin defaults", {"max_count": 1}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    message = await panel(discord_fake)
    assert offered(message, "count") == ["1"] and not items(message)["bananacord:prefs:count"].get("disabled")
    click = await discord_fake.click(message.id, "bananacord:prefs:page:more")
    await discord_fake.wait_for(lambda: "bananacord:prefs:web_search" in items(message), timeout=10)
    assert click.callbacks[0]["type"] == 7
    shown = items(message)["bananacord:prefs:web_search"]
    assert shown["disabled"] and shown["placeholder"] == "Web search: not offered for this model here"
