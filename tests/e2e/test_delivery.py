"""Delivery edge cases: a result over the upload limit, a crash mid-create, the generate CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from PIL import Image

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, make_settings, png_bytes, start_bot
from tests.e2e.bot_process import BotProcess, start_process, write_config
from tests.e2e.test_restart import job_state


async def test_oversized_result_is_reencoded_to_fit(tmp_path: Path, seaart: FakeSeaArt, clock: Clock) -> None:
    limit = 400_000
    async with FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=limit) as discord_fake:
        settings = make_settings(tmp_path, discord_fake, seaart)
        running = await start_bot(settings, discord_fake, clock)
        try:
            interaction = await discord_fake.slash_command("imagine", {"prompt": "huge", "resolution": "4K"})

            def delivered() -> bool:
                mid = interaction.original_message_id
                return mid is not None and bool(discord_fake.messages[mid].files)

            await discord_fake.wait_for(delivered, timeout=30)
        finally:
            await running.close()
    assert interaction.original_message_id is not None
    message = discord_fake.messages[interaction.original_message_id]
    (file,) = message.files
    original = seaart.image_bytes(next(iter(seaart.jobs.values())).image_names[0])
    assert len(original) > limit, "the fake must produce an image over the limit for this test to mean anything"
    assert len(file.data) <= limit
    assert file.filename.endswith(".jpg")
    with Image.open(io.BytesIO(file.data)) as img:
        img.load()
        assert img.format == "JPEG" and max(img.size) >= 1024
    note = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}["Note"]
    assert "compressed copy" in note and "Original" in note


def state(settings: Settings) -> str | None:
    found = job_state(settings.database.path)
    return found[0] if found else None


async def test_a_boost_lost_while_the_image_is_made_re_encodes_it_for_the_new_limit(
    tmp_path: Path, clock: Clock
) -> None:
    """The server loses its boost (upload limit 50 MiB -> 10 MiB) while a job runs: its image, prepared for the
    limit the command came with, was refused (413) and thrown away though made and paid for. It is prepared
    again for the limit the server has now."""
    async with (
        FakeDiscord(bot_token=BOT_TOKEN) as discord_fake,
        FakeSeaArt(api_key=SEAART_KEY, images="noise") as seaart,
    ):
        await discord_fake.set_boost_tier(2)
        settings = make_settings(tmp_path, discord_fake, seaart)
        running = await start_bot(settings, discord_fake, clock)
        try:
            seaart.hold(True)
            interaction = await discord_fake.slash_command("imagine", {"prompt": "noise", "resolution": "2K"})
            await discord_fake.wait_for(lambda: state(settings) == "running", timeout=10)
            await discord_fake.set_boost_tier(0)
            seaart.release()
            await discord_fake.wait_for(lambda: state(settings) in {"delivered", "failed"}, timeout=60)
        finally:
            await running.close()
        original = seaart.image_bytes(next(iter(seaart.jobs.values())).image_names[0])
    assert 10 * 1024 * 1024 < len(original) < 50 * 1024 * 1024, len(original)
    assert state(settings) == "delivered"
    assert interaction.original_message_id is not None
    (file,) = discord_fake.messages[interaction.original_message_id].files
    assert len(file.data) <= 10 * 1024 * 1024 and file.filename.endswith(".jpg")
    refused = [r for r in discord_fake.requests if r.files and r.status == 413]
    assert len(refused) == 1  # the upload prepared for 50 MiB, once


async def test_an_upload_the_channel_s_permissions_refuse_says_why(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """Attach Files taken from the bot while the image was made: the upload is refused (403, code 50013), and
    the member read only "could not be delivered"; they read what to fix, and are not charged."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    missing = {"code": 50013, "message": "Missing Permissions"}
    discord_fake.fail_next("PATCH", r"/messages/", status=403, body=missing, match=lambda r: bool(r.files))
    running = await start_bot(settings, discord_fake, clock)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana"})
        await discord_fake.wait_for(lambda: state(settings) == "failed", timeout=20)

        def says_why() -> bool:
            message = discord_fake.messages[interaction.original_message_id or 0]
            return "Attach Files permission" in json.dumps(message.embeds)

        await discord_fake.wait_for(says_why, timeout=10)
    finally:
        await running.close()
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT charge_state FROM jobs").fetchall() == [("refunded",)]


async def test_crash_during_create_is_never_resent(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Killed while the create request was in flight: the new process must not send it again."""
    config = write_config(tmp_path, discord_fake, seaart)
    db = tmp_path / "bot.sqlite3"
    seaart.script("create_hang")
    first = start_process(config, tmp_path / "bot.log")
    second: BotProcess | None = None
    try:
        await discord_fake.wait_until_ready(timeout=30)
        interaction = await discord_fake.slash_command("imagine", {"prompt": "lost answer"})
        await discord_fake.wait_for(lambda: len(seaart.creates) == 1, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_process(config, tmp_path / "bot.log")
        await discord_fake.wait_for(lambda: (job_state(db) or ("",))[0] == "failed", timeout=30)
        assert len(seaart.creates) == 1
        with sqlite3.connect(db) as conn:
            category, message = conn.execute("SELECT error_category, error_message FROM jobs").fetchone()
        assert category == "uncertain" and "not sent again" in message
        assert interaction.original_message_id is not None
        await discord_fake.wait_for(
            lambda: "did not confirm" in discord_fake.messages[interaction.original_message_id or 0].embeds[0]["title"],
            timeout=10,
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


async def test_generate_cli_writes_image_and_summary(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    reference = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")  # any HTTP host will do
    out = tmp_path / "out"
    env = {**os.environ, "SEAART_API_KEY": SEAART_KEY}
    args = [
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        "generate",
        "--provider",
        "seaart",
        "--model",
        "nano_banana_2",
        "--aspect-ratio",
        "16:9",
        "--resolution",
        "2K",
        "--image",
        reference["url"],
        "--out",
        str(out),
        "a banana on the moon",
    ]
    proc = await _run(args, env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["state"] == "delivered" and summary["provider"] == "seaart"
    assert summary["provider_job_id"] in seaart.jobs
    assert summary["duration_seconds"] > 0 and summary["error"] is None
    (path,) = summary["files"]
    with Image.open(path) as img:
        img.load()
        assert img.size == (2048, 1152)
    assert seaart.creates[0].json == {
        "prompt": "a banana on the moon",
        "image_urls": [reference["url"]],
        "aspect_ratio": "16:9",
        "resolution": "2K",
    }
    assert SEAART_KEY not in proc.stdout + proc.stderr


async def test_generate_cli_reports_bad_input_without_a_request(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    env = {**os.environ, "SEAART_API_KEY": SEAART_KEY}
    proc = await _run(
        [
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            "generate",
            "--model",
            "nano_banana_pro",
            "--resolution",
            "512",
            "x",
        ],
        env,
    )
    assert proc.returncode == 1
    assert "does not offer resolution 512" in proc.stderr and "Traceback" not in proc.stderr
    assert seaart.requests == []


async def test_generate_cli_judges_an_image_argument_by_its_bytes(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    config = write_config(tmp_path, discord_fake, seaart)
    page = discord_fake.add_attachment(b"<!doctype html><html>sign in</html>", "photo.png", "image/png")
    env = {**os.environ, "SEAART_API_KEY": SEAART_KEY}
    proc = await _run(
        [sys.executable, "-m", "bot", "generate", "--config", str(config), "--image", page["url"], "a fox"], env
    )
    assert proc.returncode == 1
    assert "`photo.png` is a web page, not a PNG, JPEG or WebP image" in proc.stderr
    assert "Traceback" not in proc.stderr and seaart.creates == []


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


async def _run(args: list[str], env: dict[str, str]) -> _Result:
    """Run a CLI subprocess without blocking the event loop that serves the fakes."""
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return _Result(proc.returncode or 0, out.decode(), err.decode())
