"""Every scripted SeaArt outcome ends the job in the right state with a clear message; none gets stuck."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, final_message, make_settings, start_bot

# outcome -> (final state, error category or None, how many creates SeaArt sees)
OUTCOMES: dict[str, tuple[str, str | None, int]] = {
    "success": ("delivered", None, 1),
    "success_seed": ("delivered", None, 1),
    "success_text": ("delivered", None, 1),
    "error:INFERENCE_FAILURE": ("failed", "transient", 1),
    "error:INFERENCE_TIMEOUT": ("failed", "transient", 1),
    "error:INTERNAL_SERVER_ERROR": ("failed", "transient", 1),
    "error:REQUEST_INVALID": ("failed", "bad_input", 1),
    "error:CONTENT_BLOCKED": ("blocked", "content_blocked", 1),
    "error:CANCELED": ("cancelled", "cancelled", 1),
    "seed_error:005001095": ("failed", "transient", 1),
    "seed_error:005001096": ("failed", "transient", 1),
    "seed_error:005001097": ("failed", "transient", 1),
    "seed_error:005001098": ("failed", "transient", 1),
    "create_429": ("delivered", None, 2),
    "create_500": ("delivered", None, 2),
    "create_401": ("failed", "auth", 1),
    "create_403_model": ("failed", "auth", 1),
    "create_403_balance": ("failed", "out_of_credit", 1),
    "create_hang": ("failed", "uncertain", 1),
    "status_hang": ("delivered", None, 1),
    "status_500": ("delivered", None, 1),
    "malformed": ("failed", "transient", 1),
    "undecodable_image": ("failed", "delivery", 1),
    "never_finish": ("expired", "expired", 1),
    "result_404": ("failed", "transient", 1),
}


def row(settings: Settings) -> sqlite3.Row | None:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs").fetchone()


@pytest.mark.parametrize("outcome", list(OUTCOMES))
async def test_outcome_reaches_a_final_state(
    outcome: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    expected_state, expected_category, expected_creates = OUTCOMES[outcome]
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"deadline_seconds": 4})
    seaart.script(outcome)
    running = await start_bot(settings, discord_fake, clock)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": f"outcome {outcome}"})

        def final() -> bool:
            current = row(settings)
            return current is not None and current["state"] in {
                "delivered",
                "failed",
                "blocked",
                "cancelled",
                "expired",
            }

        await discord_fake.wait_for(final, timeout=30)
        job = row(settings)
        assert job is not None
        assert (job["state"], job["error_category"]) == (expected_state, expected_category), job["error_message"]
        assert len(seaart.creates) == expected_creates
        # What the member sees: the same message, now in its final state.
        await discord_fake.wait_for(
            lambda: (
                (m := final_message(discord_fake, interaction.id)) is not None
                and bool(m.embeds)
                and "…" not in m.embeds[0]["title"]
            ),
            timeout=10,
        )
        message = final_message(discord_fake, interaction.id)
        assert message is not None
        embed = message.embeds[0]
        text = str(embed)
        if expected_state == "delivered":
            assert len(message.files) == 1 and "Done" in embed["title"]
            if outcome in {"success_seed", "success_text"}:
                assert "The model said" in text
        else:
            assert not message.files
            fields = {f["name"]: f["value"] for f in embed["fields"]}
            assert fields["What happened"] == job["error_message"]
            assert len(job["error_message"]) > 20
            # No internals in what a member sees.
            for secret in (SEAART_KEY, BOT_TOKEN, "http://", "Traceback", seaart.base_url):
                assert secret not in text
            labels = [c["label"] for r in message.components for c in r["components"]]
            assert "Cancel" not in labels
    finally:
        await running.close()
