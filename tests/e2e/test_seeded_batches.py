"""A seed makes the same image from the same prompt, and a batch's candidates are one request: `count:3` with
a seed made three near-copies at the provider, each delivered and charged. Now refused, privately, before
anything is stored; and a preferred count (/preferences) is left out of a seeded request."""

from __future__ import annotations

from pathlib import Path

from bot.testing.discord import FakeDiscord
from tests.conftest import first_answer
from tests.e2e.test_failover import Fakes, boot, fakes  # noqa: F401 (the fixture)
from tests.e2e.test_moderation import query


async def test_a_seed_with_a_count_is_refused_and_a_preferred_count_left_out(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["segmind"])
    running = await boot(settings, discord_fake)
    try:
        asked = await discord_fake.slash_command("imagine", {"prompt": "seeded", "seed": 42, "count": 3})
        refusal = (await first_answer(discord_fake, asked))["data"]
        assert refusal["flags"] & 64 and "`count:3` with `seed:42`" in refusal["content"], refusal
        assert query(settings, "SELECT id FROM jobs") == [] and fakes.segmind.requests == []

        await first_answer(discord_fake, await discord_fake.slash_command("preferences", {"count": 3}))
        seeded = await discord_fake.slash_command("imagine", {"prompt": "seeded", "seed": 42})
        answer = (await first_answer(discord_fake, seeded))["data"]
        assert not answer.get("flags", 0) & 64, answer
        await discord_fake.wait_for(lambda: len(query(settings, "SELECT id FROM jobs")) == 1, timeout=10)
        assert query(settings, "SELECT batch_id FROM jobs") == [(None,)], "one image, not a batch of three"
    finally:
        await running.close()


async def test_a_seed_typed_at_the_end_of_the_prompt_is_the_request_s_seed(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811 (the fixture imported above)
) -> None:
    """Midjourney's `--seed 42` (bot/prompt_parameters.py): the seed the provider is sent, not words of the
    prompt; with a count it is refused as the option is."""
    settings = fakes.settings(tmp_path, discord_fake, ["segmind"])
    running = await boot(settings, discord_fake)
    try:
        batch = await discord_fake.slash_command("imagine", {"prompt": "seeded --seed 42", "count": 3})
        refusal = (await first_answer(discord_fake, batch))["data"]
        assert refusal["flags"] & 64 and "`count:3` with `seed:42`" in refusal["content"], refusal
        await discord_fake.slash_command("imagine", {"prompt": "a lighthouse at dusk --ar 4:3 --seed 42"})
        await discord_fake.wait_for(lambda: len(fakes.segmind.creates) == 1, timeout=10)
    finally:
        await running.close()
    (create,) = fakes.segmind.creates
    assert create.json is not None
    assert (create.json["prompt"], create.json["seed"], create.json["aspect_ratio"]) == (
        "a lighthouse at dusk",
        42,
        "4:3",
    )
