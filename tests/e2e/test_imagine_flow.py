"""The real bot (setup_hook, cogs, poller) against the fake Discord and the fake SeaArt, over sockets."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from PIL import Image

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import SEAART_KEY, Clock, RunningBot, final_message, png_bytes


def states(settings: Settings) -> list[str]:
    return [row["state"] for row in job_rows(settings)]


def job_rows(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()


async def test_imagine_with_reference_is_delivered(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
    interaction = await discord_fake.slash_command(
        "imagine",
        {"prompt": "a banana astronaut @everyone", "aspect_ratio": "16:9", "resolution": "2K", "image1": ref},
    )

    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)

    # Deferred first (type 5), within Discord's window.
    assert interaction.callbacks[0]["type"] == 5
    # SeaArt received exactly the documented request.
    assert len(seaart.creates) == 1
    create = seaart.creates[0]
    assert create.method == "POST" and create.path == "/model/v1/queue/nano_banana_2"
    assert create.headers["Authorization"] == f"Bearer {SEAART_KEY}"
    assert create.json == {
        "prompt": "a banana astronaut @everyone",
        "image_urls": [ref["url"]],
        "aspect_ratio": "16:9",
        "resolution": "2K",
    }
    # The member's message now holds a decodable image and the embed.
    message = final_message(discord_fake, interaction.id)
    assert message is not None
    assert len(message.files) == 1
    with Image.open(io.BytesIO(message.files[0].data)) as img:
        img.load()
        assert img.size[0] > img.size[1]  # 16:9
    embed = message.embeds[0]
    assert "Done" in embed["title"]
    assert embed["description"] == "a banana astronaut @everyone"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "Nano Banana 2" in fields["Model"] and "16:9" in fields["Model"] and "2K" in fields["Model"]
    assert "Took" in fields
    # The embed shows the uploaded file (Discord rewrites attachment:// to the attachment's URL).
    assert embed["image"]["url"] in {f"attachment://{message.files[0].filename}", message.attachments[0]["url"]}
    # Prompts are user text: nothing may ping.
    assert message.allowed_mentions == {"parse": []}
    labels = [c["label"] for row in message.components for c in row["components"]]
    assert labels == ["Re-roll", "Delete"]
    rows = job_rows(settings)
    assert [r["state"] for r in rows] == ["delivered"]
    assert rows[0]["provider_job_id"] == create_request_id(seaart)


def create_request_id(seaart: FakeSeaArt) -> str:
    (request_id,) = seaart.jobs
    return request_id
