"""A level-6 channel (age-restricted) where Gemini honours the level and Kie offers an output format but runs at
its own default (levels 1-4 only): what a member asks for, saved or typed, is judged with the channel's level.

Before, a saved /preferences format (png, Kie's alone) got every /imagine there refused "level 6, which no
enabled provider can honour", though the same command without it went to Gemini: the saved defaults were
tried before the channel's level was known, and the refusal blamed the level for what the option did."""

from __future__ import annotations

import json
from pathlib import Path

from bot.testing.discord import FakeDiscord
from tests.conftest import first_answer
from tests.e2e.test_failover import Fakes, boot, fakes  # noqa: F401 (the fixture)
from tests.e2e.test_moderation import query


async def test_a_saved_default_the_level_rules_out_is_left_out_and_a_typed_one_is_named(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["kie", "gemini"])
    running = await boot(settings, discord_fake)
    adult = discord_fake.nsfw_channel_id
    try:
        set_level = await discord_fake.slash_command(
            "mod safety set", {"level": 6, "channel": adult}, user_id=discord_fake.moderator_id
        )
        assert "6" in str((await first_answer(discord_fake, set_level))["data"].get("content"))
        saved = await first_answer(
            discord_fake, await discord_fake.slash_command("preferences", {"output_format": "png"})
        )
        assert saved["data"]["flags"] & 64

        # Saved: left out where no provider that honours the level offers it; the job goes to Gemini at 6.
        taken = await discord_fake.slash_command("imagine", {"prompt": "a harbour"}, channel_id=adult)
        answer = await first_answer(discord_fake, taken)
        assert not answer["data"].get("flags", 0) & 64, answer  # the job's public message, not a refusal
        await discord_fake.wait_for(lambda: bool(fakes.gemini.creates), timeout=20)
        assert query(settings, "SELECT provider, safety_level FROM jobs") == [("gemini", 6)]
        assert json.loads(query(settings, "SELECT request_json FROM jobs")[0][0])["output_format"] is None

        # Typed: refused, naming the option as what stands in the way, not the level.
        typed = await discord_fake.slash_command(
            "imagine", {"prompt": "a harbour", "output_format": "png"}, channel_id=adult
        )
        refusal = (await first_answer(discord_fake, typed))["data"]
        assert refusal["flags"] & 64
        said = str(refusal["content"])
        assert "cannot honour this channel's safety level (6)" in said and "which no enabled provider" not in said, said
        assert len(fakes.kie.requests) == 0, "nothing was sent to the provider that would loosen the level"
    finally:
        await running.close()
