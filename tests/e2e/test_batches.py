"""/imagine count: several candidates of one prompt in one message, through the fake Discord and the fake
SeaArt: each candidate its own job, reserved and charged or refunded on its own, the message drawn whole
at every step (deliveries that finish at different times, a restart mid-batch), and the caps."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot import derive
from bot.config import Settings, load_settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeMessage
from bot.testing.providers import FakeSeaArt
from tests.conftest import (
    BOT_TOKEN,
    SEAART_KEY,
    Clock,
    RunningBot,
    answer_data,
    answer_given,
    make_settings,
    png_bytes,
    start_bot,
)
from tests.e2e.bot_process import BotProcess, bot_processes, write_config
from tests.e2e.edits import jobs, states


def ledger(settings: Settings) -> list[tuple[str, str, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        rows = conn.execute("SELECT job_id, kind, units FROM ledger ORDER BY id").fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


def labels(message: FakeMessage) -> list[str]:
    """The labels of ``message``'s buttons (a More menu's list aside)."""
    return [c["label"] for row in message.components for c in row["components"] if c["type"] == 2]


def buttons_for(delivered: list[int], *, running: bool = False) -> list[str]:
    """The labels under a batch's message with candidates ``delivered`` (numbers) ready: a row per action."""
    first = [f"V{n} strong" for n in delivered] + (["Cancel"] if running else ["Re-roll"])
    subtle = [f"V{n} subtle" for n in delivered] + ([] if running else ["Change prompt"])
    edits = [f"E{n}" for n in delivered] + ([] if running or not delivered else ["Delete"])
    # The More menu's button (Zoom out, Use as reference) in the first re-render row's last place.
    upscales = [f"U{n} 2K" for n in delivered] + (["More"] if delivered else []) + [f"U{n} 4K" for n in delivered]
    return first + subtle + edits + upscales


def custom_id(message: FakeMessage, label: str) -> str:
    found = [c["custom_id"] for row in message.components for c in row["components"] if c.get("label") == label]
    assert found, f"no {label} button: {labels(message)}"
    return str(found[0])


def refusal(discord_fake: FakeDiscord, interaction_id: int) -> str:
    callback = discord_fake.interactions[interaction_id].callbacks[0]
    assert callback["type"] == 4 and callback["data"]["flags"] & 64, callback
    return str(callback["data"]["content"])


async def batch_message(discord_fake: FakeDiscord, options: dict[str, Any], **kwargs: Any) -> FakeMessage:
    interaction = await discord_fake.slash_command("imagine", options, **kwargs)
    await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
    assert interaction.original_message_id is not None
    return discord_fake.messages[interaction.original_message_id]


async def test_a_batch_of_four_with_one_blocked_and_one_failed_charges_the_two_delivered(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.script("success", "content_blocked", "transient_failure", "success")
    message = await batch_message(discord_fake, {"prompt": "four bananas @everyone", "count": 4})
    await discord_fake.wait_for(lambda: all(r["finished_at"] for r in jobs(settings)) and len(jobs(settings)) == 4)
    rows = jobs(settings)

    # Four jobs of one batch, numbered 1-4, all shown in the one message of the one interaction.
    assert len({r["batch_id"] for r in rows}) == 1 and rows[0]["batch_id"] is not None
    assert [r["batch_index"] for r in rows] == [1, 2, 3, 4]
    assert {r["message_id"] for r in rows} == {message.id}
    assert sorted(states(settings)) == ["blocked", "delivered", "delivered", "failed"]
    # The provider got four creates of the same request.
    assert len(seaart.creates) == 4
    assert all(c.json == seaart.creates[0].json for c in seaart.creates)
    assert seaart.creates[0].json["prompt"] == "four bananas @everyone"

    # One reservation per candidate; the two delivered are charged, the other two refunded.
    by_job = {r["id"]: r for r in rows}
    entries = ledger(settings)
    assert sorted(kind for _, kind, _ in entries if kind == "reserve") == ["reserve"] * 4
    settled = {job_id: kind for job_id, kind, _ in entries if kind in ("commit", "refund")}
    assert settled == {job_id: "commit" if row["state"] == "delivered" else "refund" for job_id, row in by_job.items()}
    assert {r["charge_state"] for r in rows if r["state"] == "delivered"} == {"committed"}
    assert {r["charge_state"] for r in rows if r["state"] != "delivered"} == {"refunded"}

    # The message holds both delivered images, in candidate order, and says what became of the others.
    await discord_fake.wait_for(lambda: "2 of 4 ready" in message.embeds[0]["title"], timeout=10)
    delivered = [r for r in rows if r["state"] == "delivered"]
    assert [a["filename"].split("-")[1] for a in message.attachments] == [r["id"] for r in delivered]
    stored = [int(a) for r in delivered for a in _ids(r)]
    assert [int(a["id"]) for a in message.attachments] == stored
    # Each keeps its alt text through the later edits that kept it by id: the prompt and which image it is.
    alts = [a["description"] for a in message.attachments]
    assert alts == [f"four bananas @everyone (#{r['batch_index']})" for r in delivered]
    assert len(message.files) == 2 and all(f.data.startswith(b"\x89PNG") for f in message.files)
    blocked = next(r for r in rows if r["state"] == "blocked")
    failed = next(r for r in rows if r["state"] == "failed")
    lines = fields(message)["Images"]
    assert f"**#{blocked['batch_index']}** 🚫 was blocked by the provider's safety filter" in lines
    assert f"**#{failed['batch_index']}** ❌ failed" in lines
    assert lines.count("✅ ready") == 2
    missing = sorted((blocked["batch_index"], failed["batch_index"]))
    assert fields(message)["Charged"] == f"Only the 2 delivered; #{missing[0]} and #{missing[1]} cost nothing."
    assert message.embeds[0]["description"] == "four bananas @everyone"
    assert message.allowed_mentions == {"parse": []}
    assert labels(message) == buttons_for([r["batch_index"] for r in delivered])
    # While the interaction lives its message is edited through it (an ended candidate's token is wiped; the
    # others' still serve), never with the bot token, which may not reach the channel.
    assert not [r.path for r in discord_fake.requests if r.method == "PATCH" and r.path.startswith("/channels/")]


def _ids(row: sqlite3.Row) -> list[int]:
    return [int(a) for a in json.loads(row["attachment_ids"])]


async def test_candidates_finishing_apart_keep_each_others_images_and_progress_shows_each(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "one at a time", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=10)
    await discord_fake.wait_for(lambda: fields(message)["Images"].count("generating") == 3, timeout=10)
    assert "Generating 3 images" in message.embeds[0]["title"] and labels(message) == ["Cancel"]

    provider_ids = {r["provider_job_id"]: r for r in jobs(settings)}
    order = sorted(provider_ids, key=lambda pid: -provider_ids[pid]["batch_index"])  # #3, #2, #1
    seen: list[list[int]] = []
    for done, pid in enumerate(order, start=1):
        seaart.release(pid)
        await discord_fake.wait_for(lambda n=done: len(message.attachments) == n, timeout=10)
        seen.append([int(a["id"]) for a in message.attachments])
        if done == 1:
            # #3 is there: its buttons come at once, beside Cancel for the two still running.
            assert labels(message) == buttons_for([3], running=True)
    # Each image stayed once it came (the same attachment, never uploaded again), in candidate order.
    assert seen[0][0] in seen[1] and set(seen[1]) <= set(seen[2])
    rows = jobs(settings)
    assert [a["filename"].split("-")[1] for a in message.attachments] == [r["id"] for r in rows]
    await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Done · 3 images", timeout=10)
    assert len(message.files) == 3
    # Progress drew every candidate: at some point one was ready and the others still generating.
    history = [r.json for r in discord_fake.requests if r.method == "PATCH" and r.json and r.json.get("embeds")]
    assert any("1 of 3 ready" in (p["embeds"][0]["title"]) for p in history)


async def test_cancel_stops_every_candidate_and_refunds_them(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "never mind", "count": 2})
    await discord_fake.wait_for(lambda: labels(message) == ["Cancel"] and states(settings) == ["running"] * 2)
    click = await discord_fake.click(message.id, custom_id(message, "Cancel"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=10)
    # Answered by showing both candidates cancelling, without a Cancel button, before either has ended.
    answer = click.callbacks[0]
    assert answer["type"] == 7 and json.dumps(answer["data"]["embeds"]).count("cancelling") == 2
    assert answer["data"]["components"] == []
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"] * 2, timeout=10)
    await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Cancelled", timeout=10)
    assert sorted(kind for _, kind, _ in ledger(settings)) == ["refund", "refund", "reserve", "reserve"]
    # Each provider task is asked to stop once its job's end is shown.
    await discord_fake.wait_for(lambda: len([r for r in seaart.requests if r.path.endswith("/cancel")]) == 2)
    # Run again as it was, or with other words (the member stopped it: perhaps for a word they typed wrong).
    assert labels(message) == ["Re-roll", "Change prompt"] and not message.attachments


async def test_a_cancelled_batch_of_four_is_shown_cancelled_in_one_edit(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The click's answer shows the four cancelling; then one edit shows them cancelled (before: one edit
    per candidate, each showing one more gone, four edits into Discord's rate limit for one click)."""
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "four, never mind", "count": 4})
    await discord_fake.wait_for(lambda: labels(message) == ["Cancel"] and states(settings) == ["running"] * 4)
    before = message.edits
    await discord_fake.click(message.id, custom_id(message, "Cancel"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["cancelled"] * 4, timeout=10)
    await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Cancelled", timeout=10)
    await discord_fake.wait_for(lambda: len([r for r in seaart.requests if r.path.endswith("/cancel")]) == 4)
    assert message.edits - before == 2, "the click's answer, then one edit for the end"
    assert json.dumps(message.embeds).count("Cancelled") >= 4 and labels(message) == ["Re-roll", "Change prompt"]
    assert sorted(kind for _, kind, _ in ledger(settings)) == ["refund"] * 4 + ["reserve"] * 4


async def test_a_cancel_is_answered_while_discord_is_slow_to_take_a_candidate_s_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """One candidate's image is on its way to the message (its edit held by Discord, the batch's message
    busy); a Cancel on the batch is answered at once all the same, then the other candidate ends
    cancelled and the one whose image was in hand is delivered."""
    seaart.hold(True)
    message = await batch_message(discord_fake, {"prompt": "two, one slow", "count": 2})
    await discord_fake.wait_for(lambda: labels(message) == ["Cancel"] and states(settings) == ["running"] * 2)
    discord_fake.hold_edits(True)
    seaart.release(next(iter(seaart.jobs)))
    await discord_fake.wait_for(lambda: discord_fake.edits_waiting > 0 and "succeeded" in states(settings))
    click = await discord_fake.click(message.id, custom_id(message, "Cancel"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: click.acknowledged, timeout=30)
    # No Cancel offered again: the candidate in delivery cannot be stopped (one was, only to answer "too late").
    answer = click.callbacks[0]["data"]
    assert "Cancel" not in [c["label"] for row in answer["components"] for c in row["components"]]
    discord_fake.hold_edits(False)
    await discord_fake.wait_for(lambda: sorted(states(settings)) == ["cancelled", "delivered"], timeout=10)
    await discord_fake.wait_for(lambda: len(message.files) == 1 and "Cancelled" in json.dumps(message.embeds))
    assert "Cancel" not in labels(message)


async def test_reroll_of_a_batch_runs_the_whole_batch_again_for_the_presser(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
    message = await batch_message(discord_fake, {"prompt": "again", "count": 2, "image1": ref})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=10)
    assert [c.json["image_urls"] for c in seaart.creates] == [[ref["url"]]] * 2
    await discord_fake.wait_for(lambda: labels(message) == buttons_for([1, 2]), timeout=10)
    await discord_fake.click(message.id, custom_id(message, "Re-roll"), user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=10)
    assert [c.json["image_urls"] for c in seaart.creates[2:]] == [[ref["url"]]] * 2
    again = jobs(settings)[2:]
    assert {r["user_id"] for r in again} == {discord_fake.moderator_id}
    assert again[0]["batch_id"] == again[1]["batch_id"] != jobs(settings)[0]["batch_id"]

    await discord_fake.click(message.id, custom_id(message, "Delete"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: message.deleted, timeout=10)
    await discord_fake.wait_for(lambda: all(r["deleted_by"] for r in jobs(settings)[:2]), timeout=10)


def cdn_downloads(discord_fake: FakeDiscord) -> list[str]:
    return [r.path for r in discord_fake.requests if r.method == "GET" and "/attachments/" in r.path]


async def test_a_batch_checks_its_references_once_not_once_per_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Each candidate of `/imagine count:4` with two references downloaded and checked both before its create:
    eight downloads of the same two files (up to 10 MiB each) and each create waiting for its own. Now each
    link is checked once for the batch (bot/references.py ReferencePasses), and a Re-roll soon after checks
    none again; every candidate is still sent both links and delivered."""
    first = discord_fake.add_attachment(png_bytes((64, 48)), "first.png", "image/png")
    second = discord_fake.add_attachment(png_bytes((48, 64)), "second.png", "image/png")
    message = await batch_message(discord_fake, {"prompt": "two refs", "count": 4, "image1": first, "image2": second})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    per_batch = cdn_downloads(discord_fake)
    await discord_fake.wait_for(lambda: labels(message) == buttons_for([1, 2, 3, 4]), timeout=10)
    await discord_fake.click(message.id, custom_id(message, "Re-roll"), user_id=discord_fake.member_id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 8, timeout=20)
    assert sorted(per_batch) == sorted(urlsplit(a["url"]).path for a in (first, second)), per_batch
    assert cdn_downloads(discord_fake) == per_batch, "the Re-roll checked nothing again"
    assert [c.json["image_urls"] for c in seaart.creates] == [[first["url"], second["url"]]] * 8


async def test_a_batch_is_refused_whole_when_the_member_cannot_afford_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    # One request in flight at a time: a batch is one request to its member.
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 5, "in_flight_per_user": 1})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "three", "count": 3})
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=10)
        answer = discord_fake.interactions[first.id].callbacks[0]
        # Answered with the batch's message itself (public, its embed drawn), not a "thinking..." answer.
        assert answer["type"] == 4 and not answer["data"].get("flags", 0) & 64 and answer["data"]["embeds"]
        refused = await discord_fake.slash_command("imagine", {"prompt": "four more", "count": 4})
        await answer_given(discord_fake, refused)
        text = refusal(discord_fake, refused.id)
        assert "4 images cost 4 unit(s)" in text and "used 3 of your 5 daily units" in text
        assert "ask for count:2" in text and "Nothing was started or charged" in text
        assert len(jobs(settings)) == 3 and len(seaart.creates) == 3
        assert [k for _, k, _ in ledger(settings)].count("reserve") == 3
    finally:
        await running.close()


async def test_the_server_caps_count(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    admin = await discord_fake.slash_command(
        "admin defaults", {"max_count": 2}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    await answer_given(discord_fake, admin)
    assert "up to 2" in str(answer_data(discord_fake, admin)["embeds"])

    refused = await discord_fake.slash_command("imagine", {"prompt": "too many", "count": 3})
    await answer_given(discord_fake, refused)
    assert "allows up to 2 image(s) per prompt" in refusal(discord_fake, refused.id)
    assert "count:2" in refusal(discord_fake, refused.id)
    assert jobs(settings) == [] and seaart.requests == []

    await discord_fake.slash_command("imagine", {"prompt": "fine", "count": 2})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=10)


async def test_a_batch_made_before_the_cap_was_lowered_is_rolled_again_at_the_cap(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Its Re-roll was refused "ask for count:2", which no button can do."""
    message = await batch_message(discord_fake, {"prompt": "three of them", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    admin = await discord_fake.slash_command(
        "admin defaults", {"max_count": 2}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    await answer_given(discord_fake, admin)
    rerolled = await discord_fake.click(message.id, custom_id(message, "Re-roll"))
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 5, timeout=20)
    assert rerolled.callbacks and not answer_data(discord_fake, rerolled).get("flags", 0) & 64
    assert [c.json["prompt"] for c in seaart.creates].count("three of them") == 5


async def test_a_restart_mid_batch_ends_with_every_image_in_the_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        message = await batch_message(discord_fake, {"prompt": "survive", "count": 4})
        await discord_fake.wait_for(lambda: states(settings) == ["running"] * 4, timeout=10)
        first = jobs(settings)[1]  # #2 comes before the restart
        seaart.release(first["provider_job_id"])
        await discord_fake.wait_for(lambda: len(message.attachments) == 1, timeout=10)
        await discord_fake.wait_for(lambda: "delivered" in states(settings), timeout=10)
        kept = int(message.attachments[0]["id"])
    finally:
        await running.close()

    seaart.release()
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
        await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Done · 4 images", timeout=10)
        assert labels(message) == buttons_for([1, 2, 3, 4])
        # The buttons drawn by either process work in this one: #2's came before the restart.
        await discord_fake.click(message.id, custom_id(message, "V2 strong"))
        await discord_fake.wait_for(lambda: len(seaart.creates) == 5, timeout=10)
        assert await fetched(seaart.creates[4].json["image_urls"][0]) == await image_of(message, first["id"])
    finally:
        await running.close()
    assert len(seaart.creates) == 5, "no candidate was sent twice"
    assert len(message.attachments) == 4 and int(message.attachments[1]["id"]) == kept
    assert [a["filename"].split("-")[1] for a in message.attachments] == [r["id"] for r in jobs(settings)[:4]]
    assert sorted(k for _, k, _ in ledger(settings)[:8]) == ["commit"] * 4 + ["reserve"] * 4


def two_lives(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> tuple[Settings, contextlib.AbstractContextManager[Callable[[], BotProcess]]]:
    """The settings of a bot run as its own process, and the starter of its processes (a first one to
    kill, a second one to finish its work)."""
    config = write_config(tmp_path, discord_fake, seaart)
    settings = load_settings(config, environment=False, discord_token=BOT_TOKEN, seaart_api_key=SEAART_KEY)
    return settings, bot_processes(config, tmp_path / "bot.log")


async def test_a_bot_killed_mid_batch_finishes_it_in_the_same_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """SIGKILL with one candidate shown and two still at the provider: a new process polls the two,
    adds their images to the same message beside the first (kept, not sent again) and charges all three."""
    settings, lives = two_lives(tmp_path, discord_fake, seaart)
    with lives as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        seaart.hold(True)
        message = await batch_message(discord_fake, {"prompt": "survive a kill", "count": 3})
        await discord_fake.wait_for(lambda: states(settings) == ["running"] * 3, timeout=20)
        seaart.release(jobs(settings)[0]["provider_job_id"])
        await discord_fake.wait_for(lambda: len(message.attachments) == 1, timeout=20)
        await discord_fake.wait_for(lambda: states(settings)[0] == "delivered", timeout=20)
        kept = message.attachments[0]["id"]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        seaart.release()
        start()
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=30)
        await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Done · 3 images", timeout=20)
    assert len(seaart.creates) == 3
    assert [a["filename"].split("-")[1] for a in message.attachments] == [r["id"] for r in jobs(settings)]
    assert message.attachments[0]["id"] == kept
    assert sorted(k for _, k, _ in ledger(settings)) == ["commit"] * 3 + ["reserve"] * 3


async def test_a_batch_ends_whole_while_discord_refuses_a_share_of_its_edits(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Rate limits and 5xx on the shared message's edits: each refused edit is retried (by discord.py, then
    by the runner), and since every edit is drawn from the rows, the last one holds all four images."""
    discord_fake.chaos(0.4, seed=12, statuses=(429, 503))
    message = await batch_message(discord_fake, {"prompt": "under fire", "count": 4})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=60)
    await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Done · 4 images", timeout=30)
    discord_fake.chaos(0)
    assert discord_fake.chaos_faults, "some edits were refused"
    assert [a["filename"].split("-")[1] for a in message.attachments] == [r["id"] for r in jobs(settings)]
    assert [int(a["id"]) for a in message.attachments] == [i for r in jobs(settings) for i in _ids(r)]
    assert sorted(k for _, k, _ in ledger(settings)) == ["commit"] * 4 + ["reserve"] * 4


async def test_a_batch_held_when_the_bot_died_starts_in_the_message_discord_made(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Killed while acknowledging the command, and Discord did make the "thinking" message: the new process
    finds it and runs every candidate into it."""
    settings, lives = two_lives(tmp_path, discord_fake, seaart)
    with lives as start:
        first = start()
        await discord_fake.wait_until_ready(timeout=30)
        discord_fake.hold_callbacks()
        interaction = await discord_fake.slash_command("imagine", {"prompt": "held twice", "count": 2})
        await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert states(settings) == ["queued", "queued"] and seaart.creates == []
        discord_fake.hold_callbacks(False)  # Discord carries out the acknowledgement after all
        start()
        await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=30)
        assert interaction.original_message_id is not None
        message = discord_fake.messages[interaction.original_message_id]
        await discord_fake.wait_for(lambda: message.embeds[0]["title"] == "🍌 Done · 2 images", timeout=20)
    assert len(seaart.creates) == 2 and len(message.attachments) == 2
    assert {r["message_id"] for r in jobs(settings)} == {message.id}


async def image_of(message: FakeMessage, job_id: str) -> bytes:
    """The bytes of the image a batch's message shows for one candidate."""
    (file,) = [f for f in message.files if f.filename.startswith(f"bananacord-{job_id}-")]
    return file.data


async def fetched(url: str) -> bytes:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()


async def test_each_image_of_a_batch_has_its_own_vary_edit_and_re_render(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await batch_message(discord_fake, {"prompt": "three pears", "count": 3})
    await discord_fake.wait_for(lambda: labels(message) == buttons_for([1, 2, 3]), timeout=20)
    first, second, third = jobs(settings)
    stranger = 4242

    vary = await discord_fake.click(message.id, custom_id(message, "V2 strong"), user_id=stranger)
    await discord_fake.wait_for(lambda: len(seaart.creates) == 4, timeout=10)
    assert await fetched(seaart.creates[3].json["image_urls"][0]) == await image_of(message, second["id"])
    assert seaart.creates[3].json["prompt"] == derive.varied("three pears", "vary")

    edit = await discord_fake.click(message.id, custom_id(message, "E3"), user_id=stranger)
    await answer_given(discord_fake, edit)
    assert (
        edit.callbacks[0]["type"] == 9
        and answer_data(discord_fake, edit)["custom_id"] == f"bananacord:edit:{third['id']}"
    )
    await discord_fake.submit_modal(edit, {"instruction": "make the third one golden"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 5, timeout=10)
    create = seaart.creates[4].json
    assert create["prompt"] == "make the third one golden" and len(create["image_urls"]) == 1
    assert await fetched(create["image_urls"][0]) == await image_of(message, third["id"])

    # (One at a time: the member may have two requests generating at once.)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 5, timeout=20)
    await discord_fake.click(message.id, custom_id(message, "U1 4K"), user_id=stranger)
    await discord_fake.wait_for(lambda: len(seaart.creates) == 6, timeout=10)
    create = seaart.creates[5].json
    assert create["resolution"] == "4K"
    assert await fetched(create["image_urls"][0]) == await image_of(message, first["id"])

    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 6, timeout=20)
    await discord_fake.click(message.id, custom_id(message, "V1 subtle"), user_id=stranger)
    await discord_fake.wait_for(lambda: len(seaart.creates) == 7, timeout=10)
    create = seaart.creates[6].json
    assert create["prompt"] == derive.varied("three pears", "vary_subtle")
    assert await fetched(create["image_urls"][0]) == await image_of(message, first["id"])

    # Each press is a single new job in a new message, charged to whoever pressed it.
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 7, timeout=20)
    pressed = jobs(settings)[3:]
    assert {r["user_id"] for r in pressed} == {stranger} and {r["batch_id"] for r in pressed} == {None}
    assert len({r["message_id"] for r in pressed} | {message.id}) == 5
    assert vary.original_message_id is not None and vary.original_message_id != message.id
    with sqlite3.connect(settings.database.path) as conn:
        units = conn.execute("SELECT kind, SUM(units) FROM ledger WHERE user_id = ? GROUP BY kind", (stranger,))
        assert dict(units.fetchall()) == {"reserve": 1 + 1 + 3 + 1, "commit": 1 + 1 + 3 + 1}  # 4K costs 3 units


STRANGER = 4242  # a member of the server who did not ask for the batch


async def more_pressed(
    discord_fake: FakeDiscord, settings: Settings, options: dict[str, Any]
) -> tuple[FakeMessage, sqlite3.Row, sqlite3.Row, FakeMessage]:
    """A batch of two made with ``options``, and its More pressed by a stranger: (the batch's message, its two jobs'
    rows, the private menu)."""
    message = await batch_message(discord_fake, {**options, "count": 2})
    await discord_fake.wait_for(lambda: labels(message) == buttons_for([1, 2]), timeout=20)
    first, second = jobs(settings)
    more = await discord_fake.click(message.id, custom_id(message, "More"), user_id=STRANGER)
    await answer_given(discord_fake, more)
    return message, first, second, discord_fake.messages[more.original_message_id or 0]


async def test_a_batch_s_more_menu_zooms_out_from_or_uses_as_a_reference_the_image_it_names(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A batch's five rows hold no Zoom out or Use as reference per image: More offers them privately, each acting
    on its own image as the single image's button does, which the press finds on the batch's message."""
    message, first, second, menu = await more_pressed(
        discord_fake, settings, {"prompt": "two pears", "aspect_ratio": "3:2"}
    )
    assert menu.ephemeral and "zoom out" in (menu.content or "")
    assert labels(menu) == ["Zoom out #1", "Zoom out #2", "Use #1 as reference", "Use #2 as reference"]

    zoom = await discord_fake.click(menu.id, custom_id(menu, "Zoom out #2"), user_id=STRANGER)
    await discord_fake.wait_for(lambda: len(seaart.creates) == 3, timeout=10)
    create = seaart.creates[2].json
    assert create["prompt"] == derive.framed("", derive.Frame(zoom_out=True))[0] and create["aspect_ratio"] == "3:2"
    assert await fetched(create["image_urls"][0]) == await image_of(message, second["id"])
    await discord_fake.wait_for(lambda: zoom.original_message_id is not None, timeout=10)
    zoomed = discord_fake.messages[zoom.original_message_id or 0]
    await discord_fake.wait_for(lambda: bool(zoomed.files), timeout=20)
    # Its "Made from" links the batch's message, not the private menu.
    assert f"/{message.id})" in json.dumps(zoomed.embeds[0]["fields"])

    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    opened = await discord_fake.click(menu.id, custom_id(menu, "Use #1 as reference"), user_id=STRANGER)
    await answer_given(discord_fake, opened)
    await discord_fake.submit_modal(opened, {"prompt": "the same pear on a plate"})
    await discord_fake.wait_for(lambda: len(seaart.creates) == 4, timeout=10)
    create = seaart.creates[3].json
    assert create["prompt"] == "the same pear on a plate"
    assert await fetched(create["image_urls"][0]) == await image_of(message, first["id"])

    # The batch's message gone: the menu's buttons say so, nothing made.
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    await discord_fake.delete_messages(message.id)
    gone = await discord_fake.click(menu.id, custom_id(menu, "Zoom out #1"), user_id=STRANGER)
    await answer_given(discord_fake, gone)
    assert "The message that showed this image was deleted" in str(answer_data(discord_fake, gone).get("content"))
    assert len(seaart.creates) == 4


async def test_a_batch_s_more_menu_lists_each_image_s_pans_and_make_square(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The single image's pans and Make square, for each image of a batch, in the More menu's one list (its rows
    have no room for them as buttons); a choice a modified client makes up is refused, nothing made."""
    message, first, second, menu = await more_pressed(
        discord_fake, settings, {"prompt": "two kites", "aspect_ratio": "16:9"}
    )
    assert "make it square" in (menu.content or "")
    (listed,) = [c for row in menu.components for c in row["components"] if c["type"] == 3]
    each = [(f"pan-{way}", f"Pan #{{n}} {way}") for way in derive.PANS] + [("square", "Make #{n} square")]
    both = ((1, first), (2, second))
    wanted = [(f"{step}:{job['id']}", label.format(n=n)) for n, job in both for step, label in each]
    assert [(o["value"], o["label"]) for o in listed["options"]] == wanted

    picked = f"pan-right:{second['id']}"
    await discord_fake.click(menu.id, listed["custom_id"], user_id=STRANGER, values=[picked])
    await discord_fake.wait_for(lambda: len(seaart.creates) == 3, timeout=10)
    create = seaart.creates[2].json
    assert create["prompt"] == derive.framed("", derive.Frame(ratio="21:9", pan="right"))[0]
    assert create["aspect_ratio"] == "21:9"
    assert await fetched(create["image_urls"][0]) == await image_of(message, second["id"])

    for value in (f"vary:{first['id']}", "square:not-a-job", ""):
        odd = await discord_fake.click(menu.id, listed["custom_id"], user_id=STRANGER, values=[value] if value else [])
        await answer_given(discord_fake, odd)
        assert "not one this menu offers" in str(answer_data(discord_fake, odd).get("content")), value
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    assert len(seaart.creates) == 3


async def test_a_reply_to_a_batch_edits_the_image_it_names(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    message = await batch_message(discord_fake, {"prompt": "three plums", "count": 3})
    await discord_fake.wait_for(lambda: labels(message) == buttons_for([1, 2, 3]), timeout=20)
    member = discord_fake.member_id

    async def refused(text: str) -> str:
        before = len(discord_fake.dms_to(member))
        await discord_fake.post_message(text, reply_to=message.id)
        await discord_fake.wait_for(lambda: len(discord_fake.dms_to(member)) == before + 1, timeout=10)
        return discord_fake.dms_to(member)[-1].content or ""

    # Which of three? The member is told privately how to say it; nothing is made or charged.
    unnamed = await refused("make it night")
    assert "shows 3 images (#1, #2, #3)" in unnamed and "`#3 make it night`" in unnamed
    assert "no image #7; it shows #1, #2, #3" in await refused("#7 make it night")
    # A number with only chatter after it is a comment on that image, left alone like any chatter.
    await discord_fake.post_message("#2 lol", reply_to=message.id)
    assert len(seaart.creates) == 3 and len(jobs(settings)) == 3

    reply = await discord_fake.post_message("#2: make it night", reply_to=message.id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 4, timeout=20)
    create = seaart.creates[3].json
    second = jobs(settings)[1]
    # Only the second candidate's image went, with the words after the number.
    assert create["prompt"] == "make it night" and len(create["image_urls"]) == 1
    assert await fetched(create["image_urls"][0]) == await image_of(message, second["id"])
    edit = jobs(settings)[3]
    assert edit["reply_to_message_id"] == reply.id and edit["batch_id"] is None and edit["user_id"] == member
    answer = discord_fake.messages[edit["message_id"]]
    assert answer.reference is not None and answer.reference["message_id"] == str(reply.id)
    assert [(kind, units) for job_id, kind, units in ledger(settings) if job_id == edit["id"]] == [
        ("reserve", 1),
        ("commit", 1),
    ]
    assert len(discord_fake.dms_to(member)) == 2
