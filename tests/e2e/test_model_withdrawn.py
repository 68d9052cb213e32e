"""Working on an image whose model the bot no longer serves (the operator turned off the providers that served
it): each way in says so and names the models on offer, before a form opens or anything is counted. The form
opened empty ("first 0 of 1 images") and a reply was told the model "takes at most 0 reference image(s)"."""

from __future__ import annotations

from pathlib import Path

from bot.config import load_settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeKie, FakeSeaArt
from tests.conftest import BOT_TOKEN, Clock, first_answer, make_settings, start_bot
from tests.e2e.edits import bot_image, states
from tests.e2e.test_buttons import button

OTHER_KEY = "test-sinancode-key"
NOT_SERVED = "The model `nano_banana_pro` is not available on this bot. Available: Nano Banana 2."


async def test_an_image_of_a_model_no_longer_served_is_refused_at_each_way_in(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    first = await start_bot(settings, discord_fake, clock)
    try:
        image = await bot_image(discord_fake, settings, model="nano_banana_pro")
    finally:
        await first.close()
    # Restarted with SeaArt turned off and sinancode on, which serves Nano Banana 2 alone.
    async with FakeKie(flavour="sinancode", api_key=OTHER_KEY) as sinancode:
        only_2 = load_settings(
            None,
            environment=False,
            discord_token=BOT_TOKEN,
            sinancode_api_key=OTHER_KEY,
            discord=settings.discord.model_dump(),
            database={"path": str(settings.database.path)},
            providers={"seaart": {"enabled": False}, "sinancode": {"enabled": True, "base_url": sinancode.base_url}},
        )
        running = await start_bot(only_2, discord_fake, clock)
        try:
            menu = await discord_fake.message_command("Edit with Nano Banana", image.id)
            edit = await discord_fake.click(image.id, button(discord_fake, image.id, "Edit"))
            for interaction in (menu, edit):
                answer = await first_answer(discord_fake, interaction)
                assert answer["type"] == 4 and answer["data"]["flags"] & 64  # no form: a private refusal
                assert answer["data"]["content"] == NOT_SERVED
            await discord_fake.post_message("make it night", reply_to=image.id)
            member = discord_fake.member_id
            await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == 1, timeout=10)
            assert NOT_SERVED in (discord_fake.dms_to(member)[0].content or "")
        finally:
            await running.close()
        assert sinancode.creates == []
    assert states(settings) == ["delivered"] and len(seaart.creates) == 1
