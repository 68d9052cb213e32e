"""cogs/imagine.py ``words_after``: the member's words in /blend's prompt, after the bot's instruction, are what
moderation judges; the end to end case is tests/e2e/test_moderation_instructions.py."""

from __future__ import annotations

from bot.derive import BLEND, blend_prompt
from cogs.imagine import words_after


def test_the_member_s_words_follow_the_blend_instruction_and_its_mark() -> None:
    assert words_after(blend_prompt("warm colours"), BLEND) == "warm colours"
    assert words_after(blend_prompt(None), BLEND) == ""
    # Midjourney's parameters taken out of "...colours: --ar 16:9" leave the instruction and its mark alone.
    assert words_after(f"{BLEND}:", BLEND) == ""
    # No instruction, or a prompt that does not start with it: the whole prompt is judged.
    assert words_after("a fox", None) is None
    assert words_after("a fox", BLEND) is None
