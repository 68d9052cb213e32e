"""Hostile result links from a provider: every one ends the job settled, refunded and explained.

The fake SeaArt answers with a result link that loops, drips, bombs, points inside the network or is
not a web link at all; the real bot, against the fake Discord, must end each job with a clear message,
give the reservation back, and never fetch (or post) what lies at an internal address.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.job_delivery import MAX_DELIVERY_ATTEMPTS
from bot.netguard import MAX_REDIRECTS
from bot.result_images import MAX_RESULT_IMAGES
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers._base import make_png
from bot.testing.providers.seaart import HOSTILE_TEXT
from tests.conftest import BOT_TOKEN, Clock, final_message, make_settings, start_bot
from tests.discord_markdown import as_read, live_markdown

TERMINAL = {"delivered", "failed", "blocked", "cancelled", "expired"}


class InternalService:
    """Something on 127.0.0.2 the bot must never reach: it counts every request and would serve a PNG."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.2", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(body=make_png(64, 64), content_type="image/png")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.port}/latest/meta-data/secret.png"


@pytest.fixture
async def internal() -> AsyncIterator[InternalService]:
    service = InternalService()
    await service.start()
    yield service
    await service.stop()


def job_row(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM jobs").fetchone()
    return dict(row) if row else {}


def ledger_net(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (net,) = conn.execute(
            "SELECT COALESCE(SUM(units), 0) FROM ledger WHERE kind IN ('reserve','refund')"
        ).fetchone()
    return int(net)


async def run_outcome(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, outcome: str, **imagine: Any
) -> tuple[dict[str, Any], str]:
    """One /imagine whose result is ``outcome``; returns the final job row and what the member reads."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine=imagine)
    seaart.script(outcome)
    running = await start_bot(settings, discord_fake, Clock())
    db = settings.database.path
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": f"hostile {outcome}"})
        await discord_fake.wait_for(lambda: job_row(db).get("state") in TERMINAL, timeout=30)

        def shown() -> bool:
            message = final_message(discord_fake, interaction.id)
            return message is not None and bool(message.embeds) and "What happened" in str(message.embeds[0])

        await discord_fake.wait_for(shown, timeout=10)
    finally:
        await running.close()
    message = final_message(discord_fake, interaction.id)
    assert message is not None and not message.files, "nothing may be posted as the image"
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    row = job_row(db)
    assert row["charge_state"] == "refunded" and ledger_net(db) == 0, "the member is not charged"
    return row, fields["What happened"]


async def test_redirect_loop_ends_the_job_with_a_clear_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:loop")
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "redirects in a loop" in shown
    loops = [r for r in seaart.requests if r.path.startswith("/hostile/loop/")]
    # One attempt, cut at the redirect limit: not retried every few seconds (it used to reach 1,000+).
    assert 1 <= len(loops) <= MAX_REDIRECTS + 1


async def test_slow_drip_is_cut_at_the_total_deadline(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    seaart.drip_interval = 0.3
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:drip", download_timeout_seconds=0.6)
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "longer than 0.6 s to download" in shown
    # A timeout may pass, so it is retried, but a bounded number of times.
    drips = [r for r in seaart.requests if r.path.startswith("/hostile/drip/")]
    assert len(drips) == MAX_DELIVERY_ATTEMPTS


async def test_decompression_bomb_is_refused_from_its_header(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:bomb")
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "far larger than any this model makes" in shown


async def test_a_result_sent_compressed_unasked_is_refused_once_unread(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """httpx would inflate it without a bound (a gzip bomb looks the same): refused, and not retried,
    since the same link gives the same answer."""
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:gzip")
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "compressed" in shown
    assert len([r for r in seaart.requests if r.path.startswith("/hostile/gzip/")]) == 1


async def test_a_result_compressed_behind_a_first_header_saying_identity_is_refused_once_unread(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Two Content-Encoding headers, identity then gzip: httpx decodes both, and only the first was read, so
    the body was inflated unbounded (1 MB of gzip: +250 MB) and this one delivered. Now every header counts."""
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:identity-gzip")
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "compressed" in shown
    assert len([r for r in seaart.requests if r.path.startswith("/hostile/identity-gzip/")]) == 1


@pytest.mark.parametrize("host", ["127.1", "2130706433"])
async def test_an_internal_address_written_as_another_number_is_named_as_one(
    host: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """127.0.0.1 written the ways inet_aton reads: refused (as before) and named for what it is, where the
    member read that an http link had a scheme the bot does not fetch."""
    seaart.redirect_target = f"http://{host}:{seaart.port}/files/anything.png"
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:internal")
    assert (row["state"], row["error_category"], row["delivery_attempts"]) == ("failed", "delivery", 0)
    assert "internal network address" in shown and "only http and https" not in shown
    assert not any(r.path == "/files/anything.png" for r in seaart.requests)


async def test_a_link_that_cannot_be_parsed_is_refused_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """``0177.0.0.1`` (octal) is a link httpx will not parse: its InvalidURL escaped the download and the
    delivery was tried six times over. The same link fails the same way: one attempt, a clear message."""
    seaart.redirect_target = f"http://0177.0.0.1:{seaart.port}/files/anything.png"
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:internal")
    assert (row["state"], row["error_category"], row["delivery_attempts"]) == ("failed", "delivery", 0)
    assert "link the bot cannot read" in shown


async def test_file_url_is_named_not_called_no_image(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:file")
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "file: address" in shown and "only http and https" in shown
    assert "without an image" not in shown


@pytest.mark.parametrize("outcome", ["hostile:internal", "hostile:redirect"])
async def test_internal_addresses_are_never_fetched(
    outcome: str, tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, internal: InternalService
) -> None:
    """127.0.0.2 is loopback too, but only 127.0.0.1 (the configured hosts) is trusted."""
    seaart.redirect_target = internal.url
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, outcome)
    assert (row["state"], row["error_category"]) == ("failed", "delivery")
    assert "internal network address" in shown
    assert internal.hits == [], "the internal service must not have been contacted"
    if outcome == "hostile:redirect":
        assert any(r.path.startswith("/hostile/redirect/") for r in seaart.requests), "the first hop was allowed"


async def test_a_name_resolving_to_loopback_is_not_trusted_by_its_address(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`localhost` reaches the very fake the bot trusts as 127.0.0.1, but trust is for the configured name."""
    seaart.redirect_target = f"http://localhost:{seaart.port}/files/anything.png"
    row, shown = await run_outcome(tmp_path, discord_fake, seaart, "hostile:internal")
    assert row["state"] == "failed" and "internal network address" in shown
    assert not any(r.path == "/files/anything.png" for r in seaart.requests)


async def test_trusted_hosts_setting_allows_a_self_hosted_address(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, internal: InternalService
) -> None:
    """An operator who serves results from an internal host lists it in [imagine] trusted_hosts."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"trusted_hosts": ["127.0.0.2"]})
    seaart.redirect_target = internal.url
    seaart.script("hostile:redirect")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "self-hosted"})
        await discord_fake.wait_for(lambda: job_row(settings.database.path).get("state") in TERMINAL, timeout=30)
    finally:
        await running.close()
    assert job_row(settings.database.path)["state"] == "delivered"
    assert internal.hits == ["/latest/meta-data/secret.png"]
    message = final_message(discord_fake, interaction.id)
    assert message is not None and len(message.files) == 1


async def test_a_flood_of_result_links_is_cut_to_a_few(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Nano Banana makes one image per request; fifty links are fetched at most MAX_RESULT_IMAGES times."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.script("hostile:many")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "one of many"})
        await discord_fake.wait_for(lambda: job_row(settings.database.path).get("state") in TERMINAL, timeout=30)
    finally:
        await running.close()
    assert job_row(settings.database.path)["state"] == "delivered"
    downloads = [r for r in seaart.requests if r.path.startswith("/files/")]
    assert len(downloads) == MAX_RESULT_IMAGES
    message = final_message(discord_fake, interaction.id)
    assert message is not None and len(message.files) == MAX_RESULT_IMAGES


async def delivered_embed(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, outcome: str, options: dict[str, Any]
) -> dict[str, Any]:
    """One /imagine whose result is ``outcome``, run until its image is shown; the message's embed."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.script(outcome)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", options)
        await discord_fake.wait_for(
            lambda: (m := final_message(discord_fake, interaction.id)) is not None and bool(m.files), timeout=30
        )
    finally:
        await running.close()
    message = final_message(discord_fake, interaction.id)
    assert message is not None
    return dict(message.embeds[0])


async def test_prompt_and_provider_text_are_shown_as_written_not_as_markdown(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A masked link from a provider (or a member) is shown as text, not as a link in the bot's message;
    a prompt's ``snake_case`` or ``*`` stays as typed. The provider still gets the prompt unchanged."""
    prompt = "snake_case cat, *not italic*, [win](https://phish.example/x) ~~a~~ C:\\dir\\[no](https://phish.example/y)"
    embed = await delivered_embed(tmp_path, discord_fake, seaart, "hostile:text", {"prompt": prompt})
    said = {f["name"]: f["value"] for f in embed["fields"]}["The model said"]
    assert live_markdown(embed["description"]) == [] and live_markdown(said) == []
    assert as_read(embed["description"]) == prompt
    assert as_read(said) == HOSTILE_TEXT
    assert [c.json["prompt"] for c in seaart.creates if c.json] == [prompt]


async def test_a_result_link_shown_as_the_original_cannot_open_another_link(tmp_path: Path, seaart: FakeSeaArt) -> None:
    """Re-encoded to fit, the result names its original by the provider's link; a link whose query
    closes the masked link and opens one of its own stays one link to the provider."""
    async with FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=400_000) as discord_fake:
        options = {"prompt": "big", "resolution": "4K"}
        embed = await delivered_embed(tmp_path, discord_fake, seaart, "hostile:text", options)
    note = {f["name"]: f["value"] for f in embed["fields"]}["Note"]
    links = re.findall(r"\[([^\]]*)\]\(([^)\s]*)\)", note)
    assert [label for label, _ in links] == ["Original"], note
    (target,) = [url for _, url in links]
    assert target.startswith(seaart.image_base_url) and "phish.example/3%29" in target
