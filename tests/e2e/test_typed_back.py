"""A refused form or /imagine gives the member back what they typed, to copy (cogs/errors.py ``with_typed``): a form
closes when it is sent and Discord clears a command's box, so a long prompt refused for one blocked word was lost."""

from __future__ import annotations

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from cogs.errors import TYPED_BACK
from cogs.remix import INSTRUCTION_ID
from tests.conftest import RunningBot, answer_data, answer_given
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_rework import garden_with_a_blocked_term, nothing_but_the_original, press

WORDS = "a long and careful prompt about a forbidden statue in a garden at dusk, @everyone, in oils"


def refusal_of(text: str) -> str:
    """A refusal without the words it gives back."""
    return text.split(f"\n\n{TYPED_BACK}\n", 1)[0]


def given_back(text: str, words: str = WORDS) -> bool:
    return text.endswith(f"\n\n{TYPED_BACK}\n```\n{words}\n```")


async def test_every_form_and_imagine_refused_for_a_blocked_term_gives_the_words_back(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await garden_with_a_blocked_term(discord_fake, settings)
    for label, box in (("Edit", "instruction"), ("Change prompt", "prompt"), ("Use as reference", "prompt")):
        opened = await press(discord_fake, original, label)
        await discord_fake.wait_for(lambda opened=opened: bool(opened.callbacks), timeout=10)
        text = await ephemeral_reply(discord_fake, await discord_fake.submit_modal(opened, {box: WORDS}))
        assert "not allow" in text and given_back(text), (label, text)

    menu = await discord_fake.message_command("Edit with Nano Banana", original.id)
    await discord_fake.wait_for(lambda: bool(menu.callbacks), timeout=10)
    text = await ephemeral_reply(discord_fake, await discord_fake.submit_modal(menu, {INSTRUCTION_ID: WORDS}))
    assert "not allow" in text and given_back(text), text

    refused = await discord_fake.slash_command("imagine", {"prompt": WORDS})
    await answer_given(discord_fake, refused)
    answer = answer_data(discord_fake, refused)
    assert answer.get("flags", 0) & 64 and given_back(str(answer.get("content")))
    assert answer.get("allowed_mentions") == {"parse": []}  # the words' @everyone pings nobody
    await nothing_but_the_original(discord_fake, seaart, settings)
