"""The bot's own results over the members' 10 MiB upload limit (a 2K noise image, delivered where the
channel allows 50 MiB) are worked on again up to what a provider takes, and refused before any form where
no provider here takes them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeGemini, FakeKie, FakeSeaArt
from tests.conftest import BOT_TOKEN, Clock, RunningBot, start_bot
from tests.e2e.edits import bot_replies_to, jobs, states
from tests.e2e.test_batches import custom_id

KEY = "e2e-provider-key"
MIB = 1024 * 1024


@dataclass
class World:
    discord: FakeDiscord
    seaart: FakeSeaArt
    kie: FakeKie
    gemini: FakeGemini


@pytest.fixture
async def world() -> AsyncIterator[World]:
    # A boosted server's channel: results up to 50 MiB are delivered; SeaArt's noise at 2K is ~12 MiB.
    async with (
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=50 * MIB) as discord_fake,
        FakeSeaArt(api_key=KEY, images="noise") as seaart,
        FakeKie(flavour="kie", api_key=KEY) as kie,
        FakeGemini(api_key=KEY) as gemini,
    ):
        yield World(discord_fake, seaart, kie, gemini)


def settings_for(tmp_path: Path, w: World, *, kie: bool, gemini: bool = False) -> Settings:
    # SeaArt (10 MiB references) makes the first image; Kie (28 MiB) or Gemini (sent the bytes, up to 70 MiB)
    # is the one that can work on it.
    route = ["seaart"] + (["kie"] if kie else []) + (["gemini"] if gemini else [])
    return load_settings(
        None,
        environment=False,
        discord_token=BOT_TOKEN,
        seaart_api_key=KEY,
        kie_api_key=KEY,
        gemini_api_key=KEY,
        discord={"api_base_url": w.discord.api_base_url, "gateway_url": w.discord.gateway_url},
        database={"path": str(tmp_path / "bot.sqlite3")},
        providers={
            "seaart": {"enabled": True, "base_url": w.seaart.base_url, "request_timeout": 3.0},
            "kie": {"enabled": kie, "base_url": w.kie.base_url, "request_timeout": 3.0},
            "gemini": {"enabled": gemini, "base_url": w.gemini.base_url, "request_timeout": 10.0},
        },
        models={"routes": {"nano_banana_2": route}},
        jobs={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2, "progress_interval_seconds": 0},
    )


async def big_result(w: World, settings: Settings) -> FakeMessage:
    """A delivered /imagine result over 10 MiB, its buttons drawn."""
    asked = await w.discord.slash_command("imagine", {"prompt": "a fox", "resolution": "2K"})
    await w.discord.wait_for(lambda: states(settings) == ["delivered"], timeout=60)
    message = w.discord.messages[asked.original_message_id]
    await w.discord.wait_for(lambda: bool(message.components), timeout=10)
    [image] = message.attachments
    assert image["size"] > 10 * MIB, "the test needs a result over the members' limit"
    return message


def link(w: World, message: FakeMessage) -> str:
    return f"https://discord.com/channels/{w.discord.guild_id}/{message.channel_id}/{message.id}"


def answer(interaction: FakeInteraction) -> str:
    return str(interaction.callbacks[0]["data"].get("content") or "")


async def clicked(w: World, message: FakeMessage, label: str) -> FakeInteraction:
    interaction = await w.discord.click(message.id, custom_id(message, label))
    await w.discord.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    return interaction


async def test_a_result_over_10_mib_is_varied_edited_and_replied_to_where_a_provider_takes_it(
    tmp_path: Path, world: World
) -> None:
    settings = settings_for(tmp_path, world, kie=True)
    running: RunningBot = await start_bot(settings, world.discord, Clock())
    try:
        message = await big_result(world, settings)
        filename = message.attachments[0]["filename"]

        vary = await clicked(world, message, "Vary (Strong)")
        assert "MiB" not in answer(vary), answer(vary)
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=60)

        edit = await clicked(world, message, "Edit")
        assert edit.callbacks[0]["type"] == 9, f"the Edit form opens: {edit.callbacks[0]}"
        await world.discord.submit_modal(edit, {"instruction": "make it night"})
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=60)

        reply = await world.discord.post_message("make it snow", reply_to=message.id)
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=60)
        assert world.discord.dms_to(world.discord.member_id) == []
        assert bot_replies_to(world.discord, reply.id)

        # SeaArt made the first; the three works on it went to Kie, which was sent the 12 MiB result itself.
        # Linked in /imagine's `references`, as a member links any posted image.
        linked = await world.discord.slash_command(
            "imagine", {"prompt": "as a poster", "references": link(world, message)}
        )
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 5, timeout=60)
        assert "MiB" not in answer(linked), answer(linked)

        assert [row["provider"] for row in jobs(settings)] == ["seaart", "kie", "kie", "kie", "kie"]
        sent = [create.json["input"]["image_input"][0] for create in world.kie.creates]
        assert len(sent) == 4 and all(filename in url for url in sent), sent
    finally:
        await running.close()


async def test_gemini_is_sent_a_result_over_10_mib_itself(tmp_path: Path, world: World) -> None:
    # Gemini is sent references as bytes, and documents no limit per image beside the request's 100 MB: a 2K
    # (or 4K) PNG of the bot's own that a boosted server shows as it came is worked on there, not refused.
    settings = settings_for(tmp_path, world, kie=False, gemini=True)
    running: RunningBot = await start_bot(settings, world.discord, Clock())
    try:
        message = await big_result(world, settings)
        shown = world.discord.cdn.blobs[int(message.attachments[0]["id"])].data

        vary = await clicked(world, message, "Vary (Strong)")
        assert "MiB" not in answer(vary), answer(vary)
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=60)

        reply = await world.discord.post_message("make it snow", reply_to=message.id)
        await world.discord.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=60)
        assert bot_replies_to(world.discord, reply.id)

        assert [row["provider"] for row in jobs(settings)] == ["seaart", "gemini", "gemini"]
        for create in world.gemini.creates:
            assert create.json is not None
            [sent] = [p["inlineData"] for p in create.json["contents"][0]["parts"] if "inlineData" in p]
            assert base64.b64decode(sent["data"]) == shown, "the image as shown, all of its bytes"
    finally:
        await running.close()


async def test_a_result_no_provider_here_takes_is_refused_before_the_edit_form(tmp_path: Path, world: World) -> None:
    settings = settings_for(tmp_path, world, kie=False)
    running: RunningBot = await start_bot(settings, world.discord, Clock())
    try:
        message = await big_result(world, settings)
        refusal = "Nano Banana 2 on this bot takes reference images of at most 10 MiB, so it cannot be worked on here"

        edit = await clicked(world, message, "Edit")
        assert [c["type"] for c in edit.callbacks] == [4], "refused at once: no form to type in"
        assert refusal in answer(edit), answer(edit)
        assert edit.callbacks[0]["data"]["flags"] & 64, "privately"

        remix = await world.discord.message_command("Edit with Nano Banana", message.id)
        await world.discord.wait_for(lambda: bool(remix.callbacks), timeout=10)
        assert [c["type"] for c in remix.callbacks] == [4] and refusal in answer(remix), remix.callbacks

        vary = await clicked(world, message, "Vary (Strong)")
        assert refusal in answer(vary), answer(vary)

        linked = await world.discord.slash_command(
            "imagine", {"prompt": "as a poster", "references": link(world, message)}
        )
        await world.discord.wait_for(lambda: bool(linked.callbacks), timeout=10)
        assert refusal in answer(linked) and linked.callbacks[0]["data"]["flags"] & 64, linked.callbacks
        assert states(settings) == ["delivered"], "nothing started"
        assert len(world.seaart.creates) == 1
    finally:
        await running.close()
