"""Results from download to upload as files (issue 10), through the real bot and the fakes: a result
that fits is uploaded byte for byte, never decoded; one over the limit is re-encoded to fit; inline
results go through a file as well; and no temporary file is left open afterwards."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.images import probe
from bot.imagework import SPOOL_IN_MEMORY
from bot.testing.discord import FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, final_message, make_settings, start_bot
from tests.e2e.test_failover import Fakes, boot, done, rows


def open_temporary_files() -> int:
    """Unnamed temporary files this process holds open (what a spool on disk is)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between listing and reading
            continue
        count += target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)")
    return count


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def run_one(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, resolution: str) -> FakeMessage:
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a poster", "resolution": resolution})

        def delivered() -> bool:
            message = final_message(discord_fake, interaction.id)
            return message is not None and bool(message.files)

        await discord_fake.wait_for(delivered, timeout=30)
    finally:
        await running.close()
    message = final_message(discord_fake, interaction.id)
    assert message is not None
    return message


@pytest.mark.parametrize(("resolution", "on_disk"), [("1K", False), ("2K", True)])
async def test_a_result_within_the_limit_is_uploaded_byte_for_byte(
    tmp_path: Path, resolution: str, on_disk: bool
) -> None:
    before = open_temporary_files()
    # Noise results weigh what real ones do: 3.1 MB at 1K stays in a spool's memory; 12.6 MB at 2K goes
    # to disk on the way. A server with a 25 MiB upload limit takes both as they are.
    async with (
        FakeSeaArt(api_key=SEAART_KEY, images="noise") as seaart,
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=25 * 1024 * 1024) as discord_fake,
    ):
        message = await run_one(tmp_path, discord_fake, seaart, resolution)
        served = seaart.image_bytes(next(iter(seaart.jobs.values())).image_names[0])
    assert (len(served) > SPOOL_IN_MEMORY) == on_disk
    (file,) = message.files
    assert file.data == served, "uploaded exactly as the provider served it: not decoded, not re-encoded"
    assert file.filename.endswith(".png") and "Note" not in fields(message)
    assert open_temporary_files() == before


async def test_a_4k_result_over_the_limit_is_re_encoded_to_fit(tmp_path: Path, seaart: FakeSeaArt) -> None:
    limit = 1024 * 1024
    before = open_temporary_files()
    async with FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=limit) as discord_fake:
        message = await run_one(tmp_path, discord_fake, seaart, "4K")
    served = seaart.image_bytes(next(iter(seaart.jobs.values())).image_names[0])
    assert len(served) > limit
    (file,) = message.files
    assert len(file.data) <= limit and file.filename.endswith(".jpg")
    with Image.open(io.BytesIO(file.data)) as img:
        img.load()
        assert img.format == "JPEG" and img.size == (4096, 4096)
    assert "compressed copy" in fields(message)["Note"]
    assert open_temporary_files() == before


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    async with f.seaart, f.kie, f.segmind, f.gemini:
        yield f


async def test_an_inline_4k_result_is_delivered_through_a_file(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
    before = open_temporary_files()
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "inline and large", "model": "nano_banana_pro", "resolution": "4K"}
        )
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert job["state"] == "delivered", job["error_message"]
    message = final_message(discord_fake, interaction.id)
    assert message is not None
    (file,) = message.files
    assert file.filename.endswith(".png")
    info = probe(file.data)
    assert (info.format, info.width, info.height) == ("PNG", 4096, 4096)
    assert "Note" not in fields(message)
    assert open_temporary_files() == before
