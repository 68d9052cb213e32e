"""Change prompt's model choice (cogs/prompt_form.py ``model_box``), through the fake Discord and the fake SeaArt: the
same request with the same or other words on the other model, side by side; not offered for a step made from an
image (its conversation is the model's own); a model the form did not offer (a modified client) is refused."""

from __future__ import annotations

import sqlite3

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot
from tests.e2e.edits import states
from tests.e2e.test_batches import refusal
from tests.e2e.test_rework import delivered, imagine, press
from tests.e2e.test_typed_back import refusal_of


def models(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [row[0] for row in conn.execute("SELECT model FROM jobs ORDER BY created_at")]


async def with_model_not_offered(discord_fake: FakeDiscord, message: FakeMessage, label: str) -> str:
    """The form ``label`` opens on ``message``, submitted by a modified client with a model it did not offer: the
    refusal."""
    opened = await press(discord_fake, message, label)
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    values = {"prompt": "a lighthouse", "model": "nano_banana_9"}
    refused = await discord_fake.submit_modal(opened, values, modified_client=True)
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    return refusal_of(refusal(discord_fake, refused.id))


async def test_change_prompt_makes_the_request_again_on_the_model_picked(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a lighthouse at dawn", "model": "nano_banana_2"})
    opened = await press(discord_fake, original, "Change prompt")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    (model,) = [c for c in opened.callbacks[0]["data"]["components"] if c["component"]["custom_id"] == "model"]
    offered = [(o["value"], o.get("default", False)) for o in model["component"]["options"]]
    assert offered == [("nano_banana_2", True), ("nano_banana_pro", False)]
    # The words unchanged, the other model: Nano Banana 2 and Pro side by side.
    submitted = await discord_fake.submit_modal(opened, {"prompt": "a lighthouse at dawn", "model": "nano_banana_pro"})
    await delivered(discord_fake, submitted)
    assert seaart.creates[-1].path.endswith("/nano_banana_pro")
    assert seaart.creates[-1].json["prompt"] == "a lighthouse at dawn"
    assert models(settings) == ["nano_banana_2", "nano_banana_pro"]

    # A Vary's Change prompt keeps its model: no choice there.
    varied = await delivered(discord_fake, await press(discord_fake, original, "Vary (Subtle)"))
    opened = await press(discord_fake, varied, "Change prompt")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    assert [c["component"]["custom_id"] for c in opened.callbacks[0]["data"]["components"]] == ["prompt"]

    # A modified client's model, not offered: refused, nothing made.
    refused = await with_model_not_offered(discord_fake, original, "Change prompt")
    assert "That model cannot make this image again here" in refused
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)


async def test_use_as_reference_offers_the_member_s_default_model_or_another(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The Use as reference form's Model list: the presser's default first (as /imagine would choose it), then each
    model served; the pick makes the new request, a model not offered is refused."""
    original = await imagine(discord_fake, {"prompt": "a lighthouse at dawn", "model": "nano_banana_2"})
    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    (model,) = [c for c in opened.callbacks[0]["data"]["components"] if c["component"]["custom_id"] == "model"]
    offered = [(o["value"], o["label"], o.get("default", False)) for o in model["component"]["options"]]
    assert offered[0] == ("-", "Your default (Nano Banana 2)", True)
    assert [value for value, _, _ in offered[1:]] == ["nano_banana_2", "nano_banana_pro"]
    await delivered(discord_fake, await discord_fake.submit_modal(opened, {"prompt": "the lighthouse at night"}))
    assert seaart.creates[-1].path.endswith("/nano_banana_2")  # the default, left as it was

    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    picked = await discord_fake.submit_modal(opened, {"prompt": "the lighthouse in fog", "model": "nano_banana_pro"})
    await delivered(discord_fake, picked)
    assert seaart.creates[-1].path.endswith("/nano_banana_pro")
    assert models(settings) == ["nano_banana_2", "nano_banana_2", "nano_banana_pro"]

    assert "That model is not served here now" in await with_model_not_offered(
        discord_fake, original, "Use as reference"
    )
    assert len(seaart.creates) == 3
