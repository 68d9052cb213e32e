"""``[metrics]``: the bot serves Prometheus' ``GET /metrics`` (bot/metrics.py): the jobs that ended and how, how long a
delivered one took, the units and dollars charged, the requests generating and waiting now. Through the real bot,
the fake Discord and the fake SeaArt, read with httpx and prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Bananacord, point_discord_at
from bot.errors import ConfigError
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.serving import free_port
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, make_settings, start_bot
from tests.e2e.test_quotas import query
from tests.e2e.test_rework import delivered
from tests.e2e.test_waiting_turns import embed_of, field, prompts_sent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(body: str) -> Samples:
    """Every sample by its name and labels (sorted), as Prometheus reads them."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(read: Samples, name: str, **labels: str) -> float:
    return read.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int, path: str = "/metrics", method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"http://127.0.0.1:{port}{path}")


async def test_the_bot_counts_jobs_as_they_end_and_reads_what_is_unfinished_at_each_scrape(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        quotas={"daily": 20, "in_flight_per_user": 1},
        metrics={"enabled": True, "listen_port": port},
    )
    seaart.script("error:CONTENT_BLOCKED")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        blocked = await discord_fake.slash_command("imagine", {"prompt": "a secret lighthouse"})
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("blocked",)], timeout=10)
        made = await discord_fake.slash_command("imagine", {"prompt": "a secret lighthouse again"})
        await delivered(discord_fake, made)
        seaart.hold(True)
        await discord_fake.slash_command("imagine", {"prompt": "a third, generating"})
        await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == 3, timeout=10)
        waiting = await discord_fake.slash_command("imagine", {"prompt": "a fourth, waiting"})
        await discord_fake.wait_for(lambda: bool(waiting.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, waiting), "Your turn") is not None, 10)
        answer = await scrape(port)
        elsewhere, posted = await scrape(port, "/"), await scrape(port, method="POST")
    finally:
        seaart.hold(False)
        await running.close()
    assert blocked.callbacks
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    read = samples(answer.text)
    model = {"provider": "seaart", "model": "nano_banana_2"}
    ended = "bananacord_jobs_ended_total"
    assert value(read, ended, state="blocked", category="content_blocked", **model) == 1
    assert value(read, ended, state="delivered", category="none", **model) == 1
    assert value(read, "bananacord_job_seconds_count", **model) == 1
    assert value(read, "bananacord_charged_units_total", model="nano_banana_2") == 1
    ((cost,),) = query(settings, "SELECT cost_micro_usd FROM jobs WHERE state = 'delivered'")
    assert value(read, "bananacord_charged_usd_total", provider="seaart") == pytest.approx(int(cost) / 1_000_000)
    assert value(read, "bananacord_requests_unfinished", kind="generating") == 1
    assert value(read, "bananacord_requests_unfinished", kind="waiting") == 1
    assert value(read, "bananacord_provider_tried_last", provider="seaart") == 0
    # Every answer SeaArt gave the bot (creates, polls; its result links are on its own host too), by status.
    assert value(read, "bananacord_provider_answers_total", provider="seaart", status="200") >= 4, read
    assert len(seaart.requests) >= value(read, "bananacord_provider_answers_total", provider="seaart", status="200")
    # Nothing of a member's or a secret: labels are states, providers and models.
    for private in ("lighthouse", BOT_TOKEN, SEAART_KEY, str(discord_fake.member_id)):
        assert private not in answer.text
    assert elsewhere.status_code == 404 and posted.status_code == 405


async def test_no_metrics_are_served_unless_enabled_and_a_port_taken_is_a_setting_to_fix(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Off by default: nothing listens. On, with its port taken by another program: one line naming the setting,
    before any command is synced or job stepped, as the callbacks' port."""
    port = free_port()
    settings = make_settings(tmp_path, discord_fake, seaart, metrics={"listen_port": port})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        with pytest.raises(httpx.ConnectError):
            await scrape(port)
    finally:
        await running.close()
    syncs = sum(r.path.endswith("/commands") for r in discord_fake.requests)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(
            tmp_path / "second", discord_fake, seaart, metrics={"enabled": True, "listen_port": port}
        )
        point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
        bot = Bananacord(settings, guild_ready_timeout=0.1)
        try:
            with pytest.raises(
                ConfigError, match=rf"\[metrics\] listen_host / listen_port: cannot listen on .*:{port}"
            ):
                await bot.login(BOT_TOKEN)
        finally:
            await bot.close()
    assert sum(r.path.endswith("/commands") for r in discord_fake.requests) == syncs


async def test_sockets_held_open_or_garbage_sent_cannot_keep_the_scraper_out_nor_fill_the_log(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """Reachable by others (in Docker it listens on 0.0.0.0), the port is opened 60 times and left silent, or sent
    half a request, or bytes that are no HTTP: the scrape after still answers (the oldest idle connections are
    closed past 16), and the bot's log holds no traceback for any of it."""
    port = free_port()
    settings = make_settings(tmp_path, discord_fake, seaart, metrics={"enabled": True, "listen_port": port})
    running = await start_bot(settings, discord_fake, Clock())
    caplog.set_level(logging.DEBUG)
    held: list[socket.socket] = []
    try:
        for n in range(60):
            sock = socket.create_connection(("127.0.0.1", port))
            if n % 3 == 1:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            elif n % 3 == 2:
                sock.sendall(b"\x16\x03\x01\x00\xa5garbage that is no HTTP\r\n\r\n")
            held.append(sock)
        answer = await scrape(port)
        await asyncio.sleep(0.2)  # the garbage's answers and their log lines, if any
        # The first silent one was closed by the bot when the 17th came (it holds 16 at most).
        held[0].settimeout(2)
        first_closed = await asyncio.to_thread(held[0].recv, 1) == b""
    finally:
        for sock in held:
            sock.close()
        await running.close()
    assert answer.status_code == 200 and "bananacord_jobs_ended" in answer.text
    assert first_closed
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]


async def test_a_provider_request_that_got_no_answer_is_counted_by_why(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A status poll SeaArt never answered (the bot gives up after the provider's 2 s): no HTTP status to count it
    by, so it is counted apart, as a timeout; the job goes on at its next poll and is delivered."""
    port = free_port()
    settings = make_settings(tmp_path, discord_fake, seaart, metrics={"enabled": True, "listen_port": port})
    seaart.script("status_hang")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        made = await discord_fake.slash_command("imagine", {"prompt": "a lighthouse, slowly"})
        await delivered(discord_fake, made)
        read = samples((await scrape(port)).text)
    finally:
        await running.close()
    (job,) = seaart.jobs.values()
    assert job.polls >= 2  # the one that hung, then the one that found it done
    unanswered = "bananacord_provider_unanswered_total"
    assert value(read, unanswered, provider="seaart", reason="timeout") == 1, read
    assert sum(v for (name, _), v in read.items() if name == unanswered) == 1
    assert (
        value(
            read,
            "bananacord_jobs_ended_total",
            state="delivered",
            category="none",
            provider="seaart",
            model="nano_banana_2",
        )
        == 1
    )
