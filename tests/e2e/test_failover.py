"""Several providers behind the real bot: failover, options routing, server defaults, admin checks."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.failover import LEAVE_PAUSED_PROVIDER_SECONDS
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeGemini, FakeKie, FakeSeaArt, FakeSegmind
from bot.testing.providers._base import Chaos
from tests.conftest import BOT_TOKEN, Clock, RunningBot, answer_data, answer_given, final_message, png_bytes, start_bot

KEY = "e2e-provider-key"


def rows(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()


def final_states(settings: Settings) -> list[str]:
    return [r["state"] for r in rows(settings)]


def done(settings: Settings, count: int = 1) -> bool:
    states = final_states(settings)
    return len(states) == count and all(s in {"delivered", "failed", "blocked", "cancelled", "expired"} for s in states)


class Fakes:
    def __init__(self) -> None:
        self.seaart = FakeSeaArt(api_key=KEY, hang_seconds=5)
        self.kie = FakeKie(flavour="kie", api_key=KEY, hang_seconds=5)
        self.segmind = FakeSegmind(api_key=KEY, hang_seconds=5)
        self.gemini = FakeGemini(api_key=KEY, hang_seconds=5)

    def settings(
        self,
        tmp_path: Path,
        discord_fake: FakeDiscord,
        enabled: list[str],
        *,
        request_timeout: float = 3.0,
        **extra: Any,
    ) -> Settings:
        base = {
            "seaart": self.seaart.base_url,
            "kie": self.kie.base_url,
            "segmind": self.segmind.base_url,
            "gemini": self.gemini.base_url,
        }
        providers: dict[str, Any] = {
            name: {"enabled": name in enabled, "base_url": url, "request_timeout": request_timeout}
            for name, url in base.items()
        }
        providers["sinancode"] = {"enabled": False}
        providers["segmind"]["mode"] = extra.pop("segmind_mode", "v2")
        return load_settings(
            None,
            environment=False,
            discord_token=BOT_TOKEN,
            seaart_api_key=KEY,
            kie_api_key=KEY,
            segmind_api_key=KEY,
            gemini_api_key=KEY,
            discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
            database={"path": str(tmp_path / "bot.sqlite3")},
            providers=providers,
            jobs={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2, "progress_interval_seconds": 0},
            **extra,
        )


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    async with f.seaart, f.kie, f.segmind, f.gemini:
        yield f


async def boot(settings: Settings, discord_fake: FakeDiscord) -> RunningBot:
    return await start_bot(settings, discord_fake, Clock())


async def test_server_errors_fail_over_to_the_next_provider(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.seaart.script(*["server_error"] * 4)  # past the retry budget (4 attempts)
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "failover please"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert job["state"] == "delivered" and job["provider"] == "kie"
    assert json.loads(job["tried_providers"]) == [
        {"provider": "seaart", "category": "transient", "reason": json.loads(job["tried_providers"])[0]["reason"]}
    ]
    assert len(fakes.seaart.creates) == 4 and fakes.seaart.jobs == {}, "seaart created no job"
    assert len(fakes.kie.creates) == 1
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.files
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Provider"] == "kie (after seaart: temporary failure)"


async def test_out_of_credit_fails_over_and_alerts_admins(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(
        tmp_path, discord_fake, ["seaart", "gemini"], admin={"alert_channel_id": discord_fake.channel_id}
    )
    fakes.seaart.script("out_of_credit")
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "no credit here"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(
            lambda: any("seaart" in (m.content or "") for m in discord_fake.messages_in(discord_fake.channel_id)),
            timeout=10,
        )
        # A second job goes straight to the healthy provider.
        await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        admin = await discord_fake.slash_command("admin providers", {}, user_id=discord_fake.admin_id)
        await answer_given(discord_fake, admin)
    finally:
        await running.close()
    first, second = rows(settings)
    assert (first["state"], first["provider"]) == ("delivered", "gemini")
    assert (second["state"], second["provider"]) == ("delivered", "gemini")
    assert len(fakes.seaart.creates) == 1, "the unhealthy provider is tried last, not first"
    alert = next(m for m in discord_fake.messages_in(discord_fake.channel_id) if "seaart" in (m.content or ""))
    assert "out of credit" in alert.content.lower() and KEY not in alert.content
    health = str(answer_data(discord_fake, admin)["embeds"])
    assert "⚠️" in health and "credit" in health


async def test_an_alert_channel_that_refuses_the_bot_is_reported_in_the_log_not_as_a_crash(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    """The admins' alert channel no longer takes the bot's posts (its permission taken away, or the channel
    deleted): the provider's trouble is still recorded (``/admin providers`` shows it) and the job fails
    over; the log says the alert could not be posted, where the listener used to end in an unhandled
    exception ("Ignoring exception in on_provider_problem", a traceback at ERROR)."""
    caplog.set_level(logging.WARNING)
    alerts = discord_fake.add_channel("bot-alerts")
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "gemini"], admin={"alert_channel_id": alerts})
    refusal = {"code": 50013, "message": "Missing Permissions"}
    discord_fake.fail_next("POST", rf"^/channels/{alerts}/messages$", status=403, body=refusal)
    fakes.seaart.script("out_of_credit")
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "no credit here"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(lambda: "alert" in caplog.text and "403" in caplog.text, timeout=10)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["provider"]) == ("delivered", "gemini")
    assert health(settings) == [("seaart", 0)]
    assert discord_fake.messages_in(alerts) == []
    assert "Ignoring exception" not in caplog.text and "Traceback" not in caplog.text
    (warning,) = [r for r in caplog.records if "alert" in r.getMessage()]
    assert warning.levelno == logging.WARNING and str(alerts) in warning.getMessage()


async def test_a_provider_that_accepts_a_job_again_is_marked_healthy(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.seaart.script("out_of_credit")
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "no credit here"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("seaart", 0)], timeout=10)
        # Only SeaArt makes 512 px Nano Banana 2 here: tried although unhealthy, and it works again.
        await discord_fake.slash_command("imagine", {"prompt": "small", "resolution": "512"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("seaart", 1)], timeout=10)
        admin = await discord_fake.slash_command("admin providers", {}, user_id=discord_fake.admin_id)
        await answer_given(discord_fake, admin)
    finally:
        await running.close()
    assert [(r["state"], r["provider"]) for r in rows(settings)] == [("delivered", "kie"), ("delivered", "seaart")]
    assert "⚠️" not in str(answer_data(discord_fake, admin)["embeds"])


def health(settings: Settings) -> list[tuple[str, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT provider, healthy FROM provider_health ORDER BY provider").fetchall()


async def test_content_block_and_bad_input_never_fail_over(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.seaart.script("content_blocked", "bad_input")
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "blocked"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "bad"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
    finally:
        await running.close()
    assert [(r["state"], r["provider"]) for r in rows(settings)] == [("blocked", "seaart"), ("failed", "seaart")]
    assert fakes.kie.creates == []


async def test_options_route_to_a_provider_that_supports_them(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"])
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command(
            "imagine", {"prompt": "seeded", "seed": 42, "thinking": "high", "output_format": "png"}
        )
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        # Web search at 512 px on Pro: no enabled provider offers 512 for Pro -> refused, naming what it has.
        refused = await discord_fake.slash_command(
            "imagine", {"prompt": "x", "model": "nano_banana_pro", "resolution": "512"}
        )
        await answer_given(discord_fake, refused)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["provider"]) == ("delivered", "segmind")
    body = fakes.segmind.creates[0].json
    assert body["seed"] == 42 and body["thinking_level"] == "high" and body["output_format"] == "png"
    assert fakes.seaart.creates == []
    content = answer_data(discord_fake, refused)["content"]
    assert answer_data(discord_fake, refused)["flags"] & 64 and "resolution 512" in content and "1K, 2K, 4K" in content


async def test_option_no_provider_supports_is_refused_by_name(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart"])
    running = await boot(settings, discord_fake)
    try:
        refused = await discord_fake.slash_command("imagine", {"prompt": "seeded", "seed": 7})
        await answer_given(discord_fake, refused)
        fmt = await discord_fake.slash_command("imagine", {"prompt": "png please", "output_format": "png"})
        await answer_given(discord_fake, fmt)
    finally:
        await running.close()
    assert "does not support a seed" in answer_data(discord_fake, refused)["content"]
    assert "output format png" in answer_data(discord_fake, fmt)["content"]
    assert rows(settings) == [] and fakes.seaart.requests == []


async def test_admin_defaults_are_enforced_in_code_and_used(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    running = await boot(settings, discord_fake)
    try:
        denied = await discord_fake.slash_command(
            "admin defaults", {"provider": "kie"}, user_id=discord_fake.member_id, permissions=PLAIN_MEMBER_PERMISSIONS
        )
        await answer_given(discord_fake, denied)
        allowed = await discord_fake.slash_command(
            "admin defaults", {"provider": "kie", "model": "nano_banana_pro"}, user_id=discord_fake.admin_id
        )
        await answer_given(discord_fake, allowed)
        await discord_fake.slash_command("imagine", {"prompt": "server default"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    assert "Manage Server" in answer_data(discord_fake, denied)["content"]
    assert answer_data(discord_fake, denied)["flags"] & 64
    assert "kie → seaart" in str(answer_data(discord_fake, allowed)["embeds"])
    (job,) = rows(settings)
    assert (job["provider"], job["model"], job["state"]) == ("kie", "nano_banana_pro", "delivered")
    assert fakes.kie.creates[0].json["model"] == "nano-banana-pro"


async def test_gemini_gets_reference_inline_and_delivers(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
    reference = png_bytes((80, 60))
    running = await boot(settings, discord_fake)
    try:
        attachment = discord_fake.add_attachment(reference, "ref.png", "image/png")
        interaction = await discord_fake.slash_command(
            "imagine", {"prompt": "inline me", "image1": attachment, "aspect_ratio": "4:3", "web_search": True}
        )
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert job["state"] == "delivered", job["error_message"]
    body = fakes.gemini.creates[0].json
    inline = body["contents"][0]["parts"][1]["inlineData"]
    import base64

    assert base64.b64decode(inline["data"]) == reference
    assert body["tools"] == [{"google_search": {}}]
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.files
    # Inline bytes are dropped from the row once the image is on Discord.
    assert all(img["data"] is None for img in json.loads(job["result_json"])["images"])


async def test_segmind_v1_raw_bytes_delivered_with_cost(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["segmind"], segmind_mode="v1")
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "raw bytes", "resolution": "1K"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert job["state"] == "delivered", job["error_message"]
    usage = json.loads(job["result_json"])["usage"]
    assert usage["cost_usd"] and usage["remaining_credits"]
    assert job["cost_micro_usd"] == 80_000  # the estimate for NB2 at 1K
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.files and "est. $0.08" in message.embeds[0]["footer"]["text"]


@pytest.mark.parametrize(
    ("outcome", "state", "category"),
    [
        ("text_only", "failed", "no_image"),
        ("prompt_blocked:PROHIBITED_CONTENT", "blocked", "content_blocked"),
        ("finish:IMAGE_SAFETY", "blocked", "content_blocked"),
        ("finish:NO_IMAGE", "failed", "no_image"),
    ],
)
async def test_gemini_refusals_are_distinct_and_shown(
    outcome: str, state: str, category: str, tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    routes = {"nano_banana_2": ["gemini", "kie"]}
    settings = fakes.settings(tmp_path, discord_fake, ["gemini", "kie"], models={"routes": routes})
    fakes.gemini.script(outcome)
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "refuse me"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(
            lambda: (
                (m := final_message(discord_fake, interaction.id)) is not None
                and bool(m.embeds)
                and "What happened" in str(m.embeds[0])
            ),
            timeout=10,
        )
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["error_category"], job["provider"]) == (state, category, "gemini")
    assert fakes.kie.creates == [], "a refusal is not a provider fault: no failover"
    message = final_message(discord_fake, interaction.id)
    assert message is not None and not message.files
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["What happened"] == job["error_message"]
    if outcome == "text_only":
        assert fields.get("The model said")


async def test_the_configured_route_decides_when_no_default_provider_is_set(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """An operator who orders ``[models] routes`` and sets no ``[imagine] default_provider`` gets that
    order, for /imagine and in what ``/admin defaults`` shows; the default used to put SeaArt first
    whenever it was enabled."""
    routes = {"nano_banana_2": ["kie", "seaart"]}
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"], models={"routes": routes})
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "routed as configured"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        shown = await discord_fake.slash_command("admin defaults", {}, user_id=discord_fake.admin_id)
        await answer_given(discord_fake, shown)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["provider"]) == ("delivered", "kie")
    assert len(fakes.kie.creates) == 1 and fakes.seaart.creates == []
    fields = {f["name"]: f["value"] for f in answer_data(discord_fake, shown)["embeds"][0]["fields"]}
    assert fields["Provider order"] == "kie → seaart"


async def test_a_create_leaves_a_provider_that_asked_to_be_left_alone_at_once(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """SeaArt answers everything with 429 and Retry-After of an hour: the first job learns it and moves
    to kie; a job sent after that goes to kie without asking SeaArt and without waiting out the pause
    (before: it waited in the queue for the minute the pause is obeyed, then asked SeaArt again)."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.seaart.chaos = Chaos(rate=1.0, faults=("429",), retry_after="3600")
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        asked = len(fakes.seaart.requests)
        sent = time.monotonic()
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        took = time.monotonic() - sent
    finally:
        await running.close()
    assert [(r["state"], r["provider"]) for r in rows(settings)] == [("delivered", "kie"), ("delivered", "kie")]
    assert len(fakes.seaart.requests) == asked, "the second job never asked the paused provider"
    assert took < LEAVE_PAUSED_PROVIDER_SECONDS, f"the second job waited {took:.1f} s"
    message = final_message(discord_fake, second.id)
    assert message is not None and message.files
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Provider"] == "kie (after seaart: rate limited)"


def ledger(settings: Settings) -> list[tuple[str, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT kind, cost_micro_usd FROM ledger ORDER BY id").fetchall()


async def test_a_failover_to_a_dearer_provider_stays_within_the_server_s_budget(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """The server's monthly budget counts reservations at their price. A job reserved at SeaArt's $0.04
    and moved to Segmind's $0.08 kept its $0.04 reservation: two were admitted under $0.10 and both
    committed at $0.08, $0.16 spent. The move now reprices the reservation in its own transaction."""
    settings = fakes.settings(
        tmp_path, discord_fake, ["seaart", "segmind"], quotas={"guild_monthly_budget_usd": "0.10", "daily": 100}
    )
    fakes.seaart.script(*["server_error"] * 40)
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "moved"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        second = await discord_fake.slash_command("imagine", {"prompt": "over the budget"})
        await answer_given(discord_fake, second)
    finally:
        await running.close()
    assert [(r["provider"], r["state"]) for r in rows(settings)] == [("segmind", "delivered")]
    assert ledger(settings) == [("reserve", 80_000), ("commit", 80_000)]
    refusal = answer_data(discord_fake, second)
    assert refusal["flags"] & 64 and "spent $0.08 of its $0.10 monthly budget" in refusal["content"]


async def test_a_failover_that_would_pass_the_budget_is_not_made(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """$0.04 fits a $0.07 budget and $0.08 does not: the job is not moved, and ends with SeaArt's own
    failure, uncharged; Segmind is never asked."""
    settings = fakes.settings(
        tmp_path, discord_fake, ["seaart", "segmind"], quotas={"guild_monthly_budget_usd": "0.07", "daily": 100}
    )
    fakes.seaart.script(*["server_error"] * 40)
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "stays"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["provider"], job["state"], job["charge_state"]) == ("seaart", "failed", "refunded")
    assert fakes.segmind.creates == []
    assert ledger(settings) == [("reserve", 40_000), ("refund", -40_000)]


async def test_a_searching_gemini_request_is_charged_its_search_in_the_estimate(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """Gemini bills Google Search grounding on top of the image: a request with web_search is estimated
    $0.014 dearer in the ledger (and so in /usage and the server's dollar budget); it was not."""
    settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
    running = await boot(settings, discord_fake)
    try:
        await discord_fake.slash_command("imagine", {"prompt": "today's weather in Paris", "web_search": True})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"], timeout=30)
        await discord_fake.slash_command("imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"] * 2, timeout=30)
    finally:
        await running.close()
    with sqlite3.connect(settings.database.path) as conn:
        costs = conn.execute(
            "SELECT l.cost_micro_usd FROM ledger l JOIN jobs j ON j.id = l.job_id WHERE l.kind = 'commit' "
            "ORDER BY j.created_at"
        ).fetchall()
    assert costs == [(67_000 + 14_000,), (67_000,)]


async def test_a_gemini_request_is_charged_its_reference_images_in_the_estimate(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: Fakes
) -> None:
    """Gemini bills each image sent with a request as input tokens (about $0.00056 each on Flash): three
    references were estimated as none, in the ledger, `/usage` and the server's dollar budget."""
    settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
    running = await boot(settings, discord_fake)
    try:
        options: dict[str, object] = {"prompt": "the three of them together"}
        for n in (1, 2, 3):
            options[f"image{n}"] = discord_fake.add_attachment(png_bytes(), f"ref{n}.png", "image/png")
        await discord_fake.slash_command("imagine", options)
        await discord_fake.wait_for(lambda: [r["state"] for r in rows(settings)] == ["delivered"], timeout=30)
    finally:
        await running.close()
    with sqlite3.connect(settings.database.path) as conn:
        costs = conn.execute("SELECT cost_micro_usd FROM ledger WHERE kind = 'commit'").fetchall()
    assert costs == [(67_000 + 3 * 560,)]
