"""A JPEG of endlessly repeated scans, as a provider's result or as a member's reference, against the real
bot, the fake Discord and the fake SeaArt: refused from its structure at once, the job failed with a clear
message and refunded, and no re-encode worker ever decodes it.

Before, the structure check stopped at the first scan: the reviewer's 1.5 MB result (100,000 copies of
one 14-byte scan) held a re-encode worker for 22 s before it was posted, with [imagine] reencode_workers
= 2 of them for every member's re-encodes, and the worker thread outlived the bot's close.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, final_message, make_settings, start_bot
from tests.e2e.test_hostile_results import job_row, ledger_net
from tests.test_jpeg_scans import scan_bomb

TERMINAL = {"delivered", "failed", "blocked", "cancelled", "expired"}
# Over the 1.5 MB bomb, so the old code re-encoded it; a real result of this size would be.
UPLOAD_LIMIT = 1_000_000


@functools.cache
def result_bomb() -> bytes:
    return scan_bomb(100_000)


class BombSeaArt(FakeSeaArt):
    """Every result it serves is the scan bomb."""

    def image_bytes(self, name: str) -> bytes:
        return result_bomb()


def what_happened(discord_fake: FakeDiscord, interaction_id: int) -> str:
    message = final_message(discord_fake, interaction_id)
    if message is None or not message.embeds:
        return ""
    fields = {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}
    return str(fields.get("What happened", ""))


def reencode_threads(excluding: set[int | None]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("reencode") and t.ident not in excluding]


async def test_a_scan_bomb_result_fails_at_once_refunded_and_holds_no_worker(tmp_path: Path) -> None:
    result_bomb()  # made before the clock starts
    earlier = {t.ident for t in threading.enumerate()}
    async with (
        BombSeaArt(api_key=SEAART_KEY) as seaart,
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=UPLOAD_LIMIT) as discord_fake,
    ):
        settings = make_settings(tmp_path, discord_fake, seaart)
        db = settings.database.path
        running = await start_bot(settings, discord_fake, Clock())
        try:
            interaction = await discord_fake.slash_command("imagine", {"prompt": "a lilac square"})
            await discord_fake.wait_for(lambda: any(r.path.startswith("/files/") for r in seaart.requests), timeout=20)
            # The old code was still decoding here (22 s), then posted it.
            await discord_fake.wait_for(lambda: job_row(db).get("state") in TERMINAL, timeout=10)
            await discord_fake.wait_for(lambda: bool(what_happened(discord_fake, interaction.id)), timeout=10)
        finally:
            await running.close()
        downloads = [r for r in seaart.requests if r.path.startswith("/files/")]
    row = job_row(db)
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert row["charge_state"] == "refunded" and ledger_net(db) == 0, "the member is not charged"
    shown = what_happened(discord_fake, interaction.id)
    assert "built to take far longer to open than any real one" in shown and "not charged" in shown, shown
    message = final_message(discord_fake, interaction.id)
    assert message is not None and not message.files, "nothing is posted as the image"
    assert len(downloads) == 1, "refused for good: the same link gives the same file"
    # Never handed to the re-encode pool, so no worker thread was even started (the old one was still
    # decoding after the bot had closed).
    assert reencode_threads(earlier) == []


async def test_a_scan_bomb_reference_is_refused_before_the_provider(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    db = settings.database.path
    running = await start_bot(settings, discord_fake, Clock())
    try:
        attachment = discord_fake.add_attachment(scan_bomb(1_000), "holiday.jpg", "image/jpeg")
        interaction = await discord_fake.slash_command("imagine", {"prompt": "use my photo", "image1": attachment})
        # The old code took the file and the provider made an image from it ("delivered").
        await discord_fake.wait_for(lambda: job_row(db).get("state") in TERMINAL, timeout=20)
        await discord_fake.wait_for(lambda: bool(what_happened(discord_fake, interaction.id)), timeout=10)
    finally:
        await running.close()
    assert seaart.creates == [], "nothing was sent to the provider"
    row = job_row(db)
    assert (row["state"], row["error_category"], row["charge_state"]) == ("failed", "bad_input", "refunded")
    assert ledger_net(db) == 0
    words = "`holiday.jpg` is a JPEG of more than 100 scans, far more than any camera or editor writes"
    assert words in row["error_message"] and "Save it again" in row["error_message"]
    assert words in what_happened(discord_fake, interaction.id)
