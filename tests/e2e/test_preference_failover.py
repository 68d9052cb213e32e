"""A saved /preferences option is a default, never a refusal: it never keeps a job from a provider that would
make it. The real bot, the fake Discord, fake SeaArt (no output format) and fake Kie (png/jpg), Kie out of
credit."""

from __future__ import annotations

import json
from pathlib import Path

from bot.testing.discord import FakeDiscord
from tests.conftest import answered, final_message
from tests.e2e.test_failover import Fakes, boot, done, fakes, rows  # noqa: F401


def options_shown(discord_fake: FakeDiscord, interaction_id: int) -> str:
    """The final embed's fields, as one text (the format shows as "PNG" when the request has one)."""
    message = final_message(discord_fake, interaction_id)
    assert message is not None and message.embeds
    return json.dumps(message.embeds[0].get("fields", []))


async def test_a_preference_only_a_provider_out_of_credit_takes_is_left_out_and_a_typed_one_still_binds(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """Kie ran out of credit on a job (now tried last). The member's saved png, which only Kie offers here, is
    left out of the next /imagine, which SeaArt makes; before, it went to Kie again and failed "out of credit".
    A png the member types still binds: that job goes to Kie and fails there, never to SeaArt without it."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.kie.script("out_of_credit", "out_of_credit", "out_of_credit")
    running = await boot(settings, discord_fake)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        second = await discord_fake.slash_command("imagine", {"prompt": "a harbour at noon"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        typed = await discord_fake.slash_command("imagine", {"prompt": "a harbour at dusk", "output_format": "png"})
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
    finally:
        await running.close()
    noon, dusk = rows(settings)[1:]
    assert (noon["state"], noon["provider"], noon["charge_state"]) == ("delivered", "seaart", "committed"), (
        noon["state"],
        noon["provider"],
        noon["error_message"],
    )
    assert json.loads(noon["request_json"]).get("output_format") is None
    assert "PNG" not in options_shown(discord_fake, second.id), "the embed shows the options used"
    # The typed png: Kie alone offers it, so Kie it is, out of credit as it is; nothing went to SeaArt for it.
    assert (dusk["state"], dusk["provider"], dusk["charge_state"]) == ("failed", "kie", "refunded")
    assert json.loads(dusk["request_json"])["output_format"] == "png"
    assert "credit" in (dusk["error_message"] or "")
    assert "a harbour at dusk" not in json.dumps([c.json for c in fakes.seaart.creates])
    assert "PNG" in options_shown(discord_fake, typed.id)


async def test_a_job_sent_to_the_one_provider_with_a_preferred_option_fails_over_without_it(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """The member saved png and 2K; only Kie has formats, so the job goes to Kie, which is out of credit. The job
    fails over to SeaArt without the png (SeaArt has no format) and with the 2K (SeaArt has it), and is made
    there; before, SeaArt was refused it for the png, and the job failed "out of credit" (refunded)."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.kie.script("out_of_credit")
    running = await boot(settings, discord_fake)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png", "resolution": "2K"})
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["provider"], job["charge_state"]) == ("delivered", "seaart", "committed"), (
        job["state"],
        job["provider"],
        job["error_message"],
    )
    assert [t["provider"] for t in json.loads(job["tried_providers"])] == ["kie"]
    assert len(fakes.kie.creates) == 1
    (create,) = fakes.seaart.creates
    assert create.json is not None and create.json["resolution"] == "2K" and "output_format" not in create.json
    request = json.loads(job["request_json"])
    assert (request["output_format"], request["resolution"]) == (None, "2K")
    shown = options_shown(discord_fake, interaction.id)
    assert "PNG" not in shown and "2K" in shown and "seaart (after kie: out of credit)" in shown
