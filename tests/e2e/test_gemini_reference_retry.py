"""Gemini takes the references inline. The bot downloads a job's references to check them before its first
create (bot/references.py ``check_references``) and keeps those files for the create, so Gemini's adapter sends
them without downloading them again (it did, before: every reference crossed the network twice).

The adapter still downloads a link the bot has no file of: the member's images of a job moved to Gemini from
another provider (checked at the job's first create, and not kept), and an earlier turn's images. A Discord CDN
hiccup on that download (a 503, a timeout) ended the job at once, "A reference image could not be fetched",
where the same hiccup on the bot's check is tried again later; nothing had gone to Google, so it may go again."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction, RecordedRequest
from bot.testing.providers import FakeGemini
from tests.conftest import Clock, final_message, png_bytes, start_bot
from tests.e2e.test_failover import Fakes
from tests.e2e.test_replies import GEMINI_KEY, gemini_settings
from tests.test_checked_references import open_temporary_files

ENDED = {"delivered", "failed", "blocked", "cancelled", "expired"}


def rows(settings: Settings) -> list[dict[str, Any]]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs")]


def ledger(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.database.path) as conn:
        return [kind for (kind,) in conn.execute("SELECT kind FROM ledger ORDER BY id")]


async def imagine_with_a_reference(
    settings: Settings, discord_fake: FakeDiscord, reference: bytes, failing: Callable[[int], bool]
) -> FakeInteraction:
    """An /imagine with ``reference`` attached, the reference's ``n``th download from the CDN (counted from 1)
    answered 503 where ``failing(n)``; returns once the job has ended."""
    running = await start_bot(settings, discord_fake, Clock())
    try:
        attachment = discord_fake.add_attachment(reference, "sketch.png", "image/png")
        seen = [0]

        def fails(_request: RecordedRequest) -> bool:
            seen[0] += 1
            return failing(seen[0])

        discord_fake.fail_next("GET", r"/attachments/", status=503, times=100, match=fails)
        command = await discord_fake.slash_command("imagine", {"prompt": "ink it", "image1": attachment})
        await discord_fake.wait_for(lambda: [r["state"] in ENDED for r in rows(settings)] == [True], timeout=60)
    finally:
        await running.close()
    return command


def cdn_statuses(discord_fake: FakeDiscord) -> list[int]:
    return [r.status for r in discord_fake.requests if r.method == "GET" and "/attachments/" in r.path]


async def test_gemini_sends_the_reference_the_bot_checked_without_downloading_it_again(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    reference = png_bytes((64, 48))
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        command = await imagine_with_a_reference(settings, discord_fake, reference, lambda n: False)
    (job,) = rows(settings)
    assert (job["state"], job["error_category"]) == ("delivered", None), job["error_message"]
    assert cdn_statuses(discord_fake) == [200], "the bot's check is the only download"
    (create,) = gemini.creates
    assert create.json is not None
    (sent,) = [part["inlineData"] for part in create.json["contents"][0]["parts"] if "inlineData" in part]
    assert (sent["mimeType"], base64.b64decode(sent["data"])) == ("image/png", reference)
    assert ledger(settings) == ["reserve", "commit"]
    message = final_message(discord_fake, command.id)
    assert message is not None and len(message.files) == 1


async def moved_to_gemini(
    tmp_path: Path, discord_fake: FakeDiscord, failing: Callable[[int], bool]
) -> tuple[Fakes, Settings, FakeInteraction]:
    """``imagine_with_a_reference`` where SeaArt, first in line, has no credit: the job moves to Gemini, whose
    adapter downloads the reference itself (the bot kept no file of it for SeaArt, which fetches links)."""
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        fakes.seaart.script("out_of_credit")
        settings = fakes.settings(tmp_path, discord_fake, ["seaart", "gemini"])
        command = await imagine_with_a_reference(settings, discord_fake, png_bytes(), failing)
    return fakes, settings, command


async def test_a_cdn_hiccup_on_gemini_s_own_download_of_a_reference_is_tried_again(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    fakes, settings, command = await moved_to_gemini(tmp_path, discord_fake, lambda n: n == 2)
    (job,) = rows(settings)
    assert (job["state"], job["provider"], job["error_category"]) == ("delivered", "gemini", None)
    # The bot's check, the adapter's download (the 503), then the adapter's again a moment later.
    assert cdn_statuses(discord_fake) == [200, 503, 200]
    assert len(fakes.gemini.creates) == 1
    assert ledger(settings) == ["reserve", "commit"]
    message = final_message(discord_fake, command.id)
    assert message is not None and len(message.files) == 1


async def test_a_reference_gemini_s_download_never_gets_ends_the_job_uncharged_after_a_few_tries(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    # The bot's check passes; every download of the adapter's fails.
    fakes, settings, command = await moved_to_gemini(tmp_path, discord_fake, lambda n: n >= 2)
    (job,) = rows(settings)
    assert (job["state"], job["error_category"]) == ("failed", "reference")
    assert job["error_message"] == "Could not download `sketch.png` just now (error 503). Try again in a moment."
    assert cdn_statuses(discord_fake) == [200, 503, 503, 503]  # MAX_REFERENCE_TRIES
    assert fakes.gemini.creates == []
    assert ledger(settings) == ["reserve", "refund"]
    message = final_message(discord_fake, command.id)
    assert message is not None and "just now" in str(message.embeds)


async def test_a_gemini_batch_downloads_each_reference_once_and_sends_both_with_every_image(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """`/imagine count:4` with two references, on Gemini: each candidate kept files of its references for its
    create, and each downloaded them itself, eight downloads of the same two files. Now the candidates checking
    a link at once wait for one check and get copies of its file (bot/references.py ReferencePasses): two
    downloads, and each create still carries both images, byte for byte."""
    first, second = png_bytes((64, 48)), png_bytes((48, 64))
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, Clock())
        try:
            one = discord_fake.add_attachment(first, "first.png", "image/png")
            two = discord_fake.add_attachment(second, "second.png", "image/png")
            # The CDN slow to serve them, so the four candidates come while the first checks are under way, as
            # they do when a batch starts together: on a loaded machine (a full run of the suite) a candidate
            # started after those checks had ended, and downloaded the file again (it needs the bytes).
            discord_fake.hold_downloads()
            await discord_fake.slash_command(
                "imagine", {"prompt": "two refs", "count": 4, "image1": one, "image2": two}
            )
            await discord_fake.wait_for(lambda: discord_fake.downloads_waiting == 2 and len(rows(settings)) == 4)
            await asyncio.sleep(1.0)  # the other candidates' steps begin, and wait on those checks
            discord_fake.hold_downloads(False)
            await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"] * 4, timeout=30)
        finally:
            await running.close()
    assert cdn_statuses(discord_fake) == [200, 200], "each reference downloaded once for the batch"
    assert len(gemini.creates) == 4
    for create in gemini.creates:
        assert create.json is not None
        sent = [part["inlineData"] for part in create.json["contents"][0]["parts"] if "inlineData" in part]
        assert [base64.b64decode(image["data"]) for image in sent] == [first, second]
    assert ledger(settings).count("commit") == 4


async def test_a_stop_while_a_gemini_batch_shares_one_download_leaves_no_file_and_the_restart_delivers_all(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Attack on the shared download: the bot stops (as at a SIGTERM) while three candidates wait on one
    check of their reference, its download held by a slow CDN. No spool is left open in the process, and the
    next start checks the reference again and delivers all three, each charged once."""
    reference = png_bytes((64, 48))
    before = open_temporary_files()
    async with FakeGemini(api_key=GEMINI_KEY) as gemini:
        settings = gemini_settings(tmp_path, discord_fake, gemini)
        running = await start_bot(settings, discord_fake, Clock())
        try:
            discord_fake.hold_downloads()
            one = discord_fake.add_attachment(reference, "sketch.png", "image/png")
            await discord_fake.slash_command("imagine", {"prompt": "ink it", "count": 3, "image1": one})
            await discord_fake.wait_for(lambda: discord_fake.downloads_waiting == 1 and len(rows(settings)) == 3)
            assert len(cdn_statuses(discord_fake)) == 1, "the others wait on the first one's check"
        finally:
            await running.close()
        assert open_temporary_files() == before, "no spool of the stopped checks is left open"
        discord_fake.hold_downloads(False)
        running = await start_bot(settings, discord_fake, Clock())
        try:
            await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"] * 3, timeout=30)
        finally:
            await running.close()
    assert len(gemini.creates) == 3
    assert sorted(ledger(settings)) == ["commit"] * 3 + ["reserve"] * 3
    assert open_temporary_files() == before
