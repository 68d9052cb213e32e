"""From a review of batches (``/imagine count``): a blocked batch is one block, not a cooldown; /jobs lists a
running batch whole however many images its member made since; a batch across a failover shows what each
candidate costs. Through the real bot, the fake Discord and the fake providers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, first_answer, make_settings, start_bot
from tests.e2e.edits import jobs, states
from tests.e2e.test_failover import Fakes, boot, fakes  # noqa: F401  (the fixture)
from tests.e2e.test_member_jobs import job_message, listed, private_list


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql).fetchall()


def block_posts(discord_fake: FakeDiscord, channel_id: int) -> list[str]:
    return [str(m.content) for m in discord_fake.messages_in(channel_id) if "blocked" in str(m.content)]


async def test_a_blocked_batch_is_one_block_towards_a_cooldown(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The provider blocks all three candidates of one /imagine count:3: one prompt, sent once, is one block
    towards the cooldown (three by default). It was three: a cooldown at once, the next /imagine refused."""
    assert settings.moderation.block_limit == 3
    seaart.script("content_blocked", "content_blocked", "content_blocked")
    await discord_fake.slash_command("imagine", {"prompt": "one edgy prompt", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["blocked"] * 3, timeout=20)
    # The audit trail keeps each candidate.
    await discord_fake.wait_for(
        lambda: len(query(settings, "SELECT 1 FROM audit_log WHERE action = 'provider_block'")) == 3, timeout=10
    )
    again = await first_answer(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "a cat"}))
    assert "cooldown" not in str(again["data"].get("content")), again
    await discord_fake.wait_for(lambda: states(settings)[-1] == "delivered", timeout=20)
    # Two more blocked prompts, one image each: the batch and these are three, and only now a cooldown.
    seaart.script("content_blocked", "content_blocked")
    for n in (1, 2):
        await discord_fake.slash_command("imagine", {"prompt": f"edgy {n}"})
        ended = ["blocked"] * 3 + ["delivered"] + ["blocked"] * n
        await discord_fake.wait_for(lambda: states(settings) == ended, timeout=20)  # noqa: B023
    await discord_fake.wait_for(lambda: query(settings, "SELECT kind FROM bans") == [("cooldown",)], timeout=10)
    # The cooldown's audit row is written after its ban row: waited for, not read at once.
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT 1 FROM audit_log WHERE action = 'cooldown'") != [], timeout=10
    )
    actions = [a[0] for a in query(settings, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["provider_block"] * 5 + ["cooldown"], actions
    assert query(settings, "SELECT reason FROM bans") == [("3 prompts blocked by a provider within 30 minutes",)]
    refused = await first_answer(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "again"}))
    assert "cooldown" in str(refused["data"].get("content")), refused


async def test_a_blocked_batch_is_one_post_in_the_moderation_log(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The log said "blocked an image" once per candidate, three posts for one prompt; now one post, edited
    as each candidate is blocked, says how many of the batch's images were."""
    log_channel = discord_fake.add_channel("mod-log")
    set_log = await discord_fake.slash_command(
        "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id
    )
    await first_answer(discord_fake, set_log)
    seaart.script("content_blocked", "content_blocked", "content_blocked")
    await discord_fake.slash_command("imagine", {"prompt": "one edgy prompt", "count": 3})
    await discord_fake.wait_for(lambda: states(settings) == ["blocked"] * 3, timeout=20)
    await discord_fake.wait_for(
        lambda: any("all 3 images" in p for p in block_posts(discord_fake, log_channel)), timeout=20
    )
    posts = block_posts(discord_fake, log_channel)
    assert len(posts) == 1, posts
    assert "seaart blocked all 3 images of one /imagine" in posts[0] and "one edgy prompt" in posts[0], posts
    assert all(f"{row[0]}" in posts[0] for row in query(settings, "SELECT id FROM jobs")), posts


async def test_a_running_batch_is_listed_whole_after_many_other_jobs(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """/jobs read a running batch's ended candidates from the member's latest finished rows only: twenty
    images later, "1 of 4 ready" was listed as "Generating · 3 images"."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 100, "in_flight_per_user": None, "in_flight_per_guild": None}
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold(True)
        await job_message(discord_fake, settings, {"prompt": "a slow batch of four", "count": 4})
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["running"] * 4, timeout=10)
        seaart.release(jobs(settings)[0]["provider_job_id"])
        await discord_fake.wait_for(lambda: jobs(settings)[0]["state"] == "delivered", timeout=10)
        for n in range(20):  # meanwhile the member makes twenty more images
            await job_message(discord_fake, settings, {"prompt": f"quick one {n}"})
        for row in jobs(settings)[4:]:
            seaart.release(row["provider_job_id"])
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)[4:]] == ["delivered"] * 20, timeout=30)
        the_list = await private_list(discord_fake)
        button = the_list.components[0]["components"][0]
    finally:
        await running.close()
    generating, latest = listed(the_list).split("**Latest**")
    assert "**Generating (1)**" in generating and "1 of 4 ready · 4 images" in generating, generating
    assert "quick one 19" in latest and "a slow batch" not in latest, latest
    assert button["label"] == "Cancel 1 generating"


async def test_a_batch_across_a_failover_shows_each_candidate_s_price(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """One candidate stays at SeaArt ($0.04), the other moves to Segmind ($0.08); each is charged its own
    price, and the footer said "est. $0.04 each", the first candidate's."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "segmind"], quotas={"daily": 100})
    fakes.seaart.script("success", *["server_error"] * 40)
    running = await boot(settings, discord_fake)
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "two, one moved", "count": 2})
        await discord_fake.wait_for(lambda: interaction.original_message_id is not None, timeout=10)
        message = discord_fake.messages[interaction.original_message_id or 0]
        await discord_fake.wait_for(lambda: "Done · 2 images" in str(message.embeds[0]["title"]), timeout=30)
    finally:
        await running.close()
    served = query(settings, "SELECT provider, cost_micro_usd FROM jobs ORDER BY batch_index")
    assert sorted(served) == [("seaart", 40_000), ("segmind", 80_000)]
    assert "est. $0.04–$0.08 each" in message.embeds[0]["footer"]["text"], message.embeds[0]["footer"]


async def test_a_finished_batch_is_listed_once(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """Read whole by its batch, a batch was added again for each of its other rows: "7 of 7 ready"."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 100, "in_flight_per_user": None})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await job_message(discord_fake, settings, {"prompt": "a batch of four", "count": 4})
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["delivered"] * 4, timeout=20)
        text = listed(await private_list(discord_fake))
    finally:
        await running.close()
    assert "4 of 4 ready" in text, text


async def test_a_running_batch_with_two_ended_is_listed_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 100, "in_flight_per_user": None})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        seaart.hold(True)
        await job_message(discord_fake, settings, {"prompt": "a slow batch", "count": 4})
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)] == ["running"] * 4, timeout=10)
        for n in (0, 1):
            seaart.release(jobs(settings)[n]["provider_job_id"])
        await discord_fake.wait_for(lambda: [r["state"] for r in jobs(settings)][:2] == ["delivered"] * 2, timeout=10)
        text = listed(await private_list(discord_fake))
    finally:
        await running.close()
    assert "2 of 4 ready · 4 images" in text, text


async def test_a_batch_s_log_post_deleted_by_a_moderator_is_posted_again_for_the_next_block(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Each later candidate's block edited the deleted post (404 Unknown Message), and none reached the log."""
    log_channel = discord_fake.add_channel("mod-log")
    await first_answer(
        discord_fake,
        await discord_fake.slash_command("mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id),
    )
    seaart.script("content_blocked", "content_blocked")
    seaart.hold(True)
    await discord_fake.slash_command("imagine", {"prompt": "one edgy prompt", "count": 2})
    await discord_fake.wait_for(
        lambda: len(jobs(settings)) == 2 and all(j["provider_job_id"] for j in jobs(settings)), timeout=20
    )
    seaart.release(jobs(settings)[0]["provider_job_id"])
    await discord_fake.wait_for(lambda: len(block_posts(discord_fake, log_channel)) == 1, timeout=20)
    first = next(m for m in discord_fake.messages_in(log_channel) if "blocked" in str(m.content))
    await discord_fake.delete_messages(first.id)  # a moderator tidies the log
    seaart.release(jobs(settings)[1]["provider_job_id"])
    await discord_fake.wait_for(lambda: states(settings) == ["blocked"] * 2, timeout=20)
    await discord_fake.wait_for(lambda: len(block_posts(discord_fake, log_channel)) == 1, timeout=10)
    (shown,) = block_posts(discord_fake, log_channel)
    assert "all 2 images" in shown, shown
