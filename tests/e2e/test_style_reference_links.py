"""Midjourney's ``--sref <link>`` (``--cref``, ``--oref``): Nano Banana has no such parameter, so it is left out with
its link (bot/prompt_links.py: a parameter's values are its own, not references) and the member is told privately,
the link named by its file (a Discord file link's signature is never repeated in a message of the bot's), and how
to give that image instead: attached or linked in the prompt, its role said in words."""

from __future__ import annotations

from bot.config import Settings
from bot.prompt_parameters import REFERENCE_ROLE
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import RunningBot, png_bytes
from tests.e2e.edits import followups, states


async def test_a_style_reference_is_left_out_named_by_its_file_and_the_member_told_how_to_give_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    style = discord_fake.add_attachment(png_bytes(colour=(20, 60, 200)), "style.png", "image/png")
    signature = style["url"].split("hm=")[1][:16]
    for done, name in enumerate(("--sref", "--cref", "--oref"), start=1):
        command = await discord_fake.slash_command("imagine", {"prompt": f"a fox in the snow {name} {style['url']}"})
        await discord_fake.wait_for(lambda done=done: states(settings) == ["delivered"] * done, timeout=20)
        create = seaart.creates[-1]
        assert create.json["prompt"] == "a fox in the snow" and "image_urls" not in create.json
        await discord_fake.wait_for(lambda command=command: bool(command.followup_ids), timeout=10)
        ((note, flags),) = followups(discord_fake, command)
        assert flags & 64 and note.startswith(f"Left out `{name} style.png`: "), note
        assert note.endswith(REFERENCE_ROLE) and signature not in note

    # Given as the note says, the image is a reference and the words say what of it to use.
    command = await discord_fake.slash_command("imagine", {"prompt": f"{style['url']} a fox in the style of the image"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    assert seaart.creates[-1].json["image_urls"] == [style["url"]]
    assert seaart.creates[-1].json["prompt"] == "a fox in the style of the image"
