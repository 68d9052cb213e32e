"""Blocked terms judge the member's words, not the bot's instruction around them (GenerationRequest.member_words).

A Vary, a zoom out with no words and /blend send a prompt the bot wrote ("...let the composition, viewpoint, pose
and details change freely...", "...more of the scene around it...", "...their subjects, styles and colours"). A
moderator who blocked "pose" had every Vary (Strong) refused with "Your prompt contains something this server does
not allow... Please rephrase it", a member who typed nothing to rephrase. The member's words in those prompts are
still judged: the prompt a Vary words the image from, a zoom's or a blend's own words."""

from __future__ import annotations

from pathlib import Path

from bot import derive
from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeGemini, FakeSeaArt
from tests.conftest import Clock, RunningBot, answer_data, answer_given, png_bytes, start_bot
from tests.e2e.edits import bot_image, states
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_moderation import command, query
from tests.e2e.test_replies import GEMINI_KEY, answer_to, gemini_settings
from tests.e2e.test_rework import delivered, imagine, press

BLOCKED = ("pose", "scene", "colours")


async def test_a_term_in_the_bot_s_instruction_refuses_nothing_and_the_member_s_words_are_still_judged(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a dancer on a stage"})
    mod = discord_fake.moderator_id
    for term in BLOCKED:
        added = await command(discord_fake, "mod blockterm add", {"term": term}, user_id=mod)
        assert added["content"].startswith("Blocked"), added

    # Each of these sends a blocked word, the bot's own: none is refused.
    await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)"))
    assert " pose " in seaart.creates[1].json["prompt"]
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(edit, {"shape": "zoom-out"}))
    assert "scene" in seaart.creates[2].json["prompt"]
    one = discord_fake.add_attachment(png_bytes(colour=(200, 30, 30)), "cat.png", "image/png")
    two = discord_fake.add_attachment(png_bytes(colour=(30, 30, 200)), "sea.png", "image/png")
    await discord_fake.slash_command("blend", {"image1": one, "image2": two, "prompt": "at dawn"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    assert "colours: at dawn" in seaart.creates[3].json["prompt"]

    # The member's own words with a blocked term are refused as ever, privately, nothing sent.
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    submit = await discord_fake.submit_modal(edit, {"instruction": "in a graceful pose", "shape": "zoom-out"})
    assert "rephrase" in await ephemeral_reply(discord_fake, submit)
    refused = await discord_fake.slash_command("blend", {"image1": one, "image2": two, "prompt": "warm colours"})
    await answer_given(discord_fake, refused)
    answer = answer_data(discord_fake, refused)
    assert answer.get("flags", 0) & 64 and "rephrase" in str(answer.get("content"))
    assert len(seaart.creates) == 4
    # The log quotes what the member wrote, not the bot's instruction around it.
    blocked = query(settings, "SELECT target_id, prompt FROM audit_log WHERE action = 'blocked_prompt' ORDER BY id")
    assert blocked == [(discord_fake.member_id, "in a graceful pose"), (discord_fake.member_id, "warm colours")]


async def test_a_vary_of_an_image_whose_prompt_holds_a_term_blocked_since_is_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The words a Vary draws the image from are the member's: judged as a new /imagine of them would be."""
    original = await imagine(discord_fake, {"prompt": "a cat on a sofa"})
    await command(discord_fake, "mod blockterm add", {"term": "sofa"}, user_id=discord_fake.moderator_id)
    for label in ("Vary (Subtle)", "Vary (Strong)"):
        refused = await press(discord_fake, original, label, user_id=discord_fake.other_member_id)
        assert "does not allow" in await ephemeral_reply(discord_fake, refused), label
    assert len(seaart.creates) == 1
    blocked = query(settings, "SELECT target_id, prompt FROM audit_log WHERE action = 'blocked_prompt'")
    assert blocked == [(discord_fake.other_member_id, "a cat on a sofa")] * 2


async def test_a_reply_continuing_a_vary_s_conversation_is_not_refused_for_the_bot_s_instruction(
    tmp_path: Path, discord_fake: FakeDiscord, clock: Clock
) -> None:
    """On Gemini a reply carries the conversation on, the Vary's turn among it: its prompt is the bot's instruction
    around the member's words, and the earlier prompts are judged by those words too."""
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, clock)
        try:
            image = await bot_image(discord_fake, settings)  # "a cat on a sofa"
            varied = await delivered(discord_fake, await press(discord_fake, image, "Vary (Strong)"))
            await command(discord_fake, "mod blockterm add", {"term": "pose"}, user_id=discord_fake.moderator_id)
            reply = await discord_fake.post_message("make it night", reply_to=varied.id)
            await answer_to(discord_fake, settings, reply)
        finally:
            await running.close()
    contents = gemini.creates[2].json["contents"]
    said = [c["parts"][0]["text"] for c in contents[::2]]
    assert said == [derive.varied("a cat on a sofa", "vary"), "make it night"] and " pose " in said[0]
    assert query(settings, "SELECT COUNT(*) FROM audit_log WHERE action = 'blocked_prompt'") == [(0,)]
