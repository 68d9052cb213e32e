"""Moderation through the real bot and the fake Discord: blocked prompts, safety levels per provider,
ceilings, bans, cooldowns, moderator-only commands, the audit trail."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt, FakeSegmind
from tests.conftest import BOT_TOKEN, Clock, RunningBot, first_answer, start_bot
from tests.discord_markdown import as_read, live_markdown

KEY = "mod-test-key"


def query(settings: Settings, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeSeaArt, FakeSegmind]]:
    async with FakeSeaArt(api_key=KEY) as seaart, FakeSegmind(api_key=KEY) as segmind:
        yield seaart, segmind


def settings_for(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], enabled: list[str], **extra: Any
) -> Settings:
    seaart, segmind = fakes
    return load_settings(
        None,
        environment=False,
        discord_token=BOT_TOKEN,
        seaart_api_key=KEY,
        segmind_api_key=KEY,
        discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        database={"path": str(tmp_path / "mod.sqlite3")},
        providers={
            "seaart": {"enabled": "seaart" in enabled, "base_url": seaart.base_url},
            "segmind": {"enabled": "segmind" in enabled, "base_url": segmind.base_url},
        },
        models={"routes": {"nano_banana_2": enabled}},
        jobs={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2, "progress_interval_seconds": 0},
        **extra,
    )


async def command(discord_fake: FakeDiscord, name: str, options: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The command's answer: after a "thinking…" deferral (a loaded machine), the follow-up that replaces it."""
    answer = await first_answer(discord_fake, await discord_fake.slash_command(name, options, **kw))
    return {"type": answer["type"], **answer["data"]}


async def finished(settings: Settings, count: int, discord_fake: FakeDiscord) -> None:
    await discord_fake.wait_for(
        lambda: len(query(settings, "SELECT id FROM jobs WHERE charge_state IN ('committed','refunded')")) == count,
        timeout=30,
    )


@pytest.fixture
async def bot_for() -> AsyncIterator[list[RunningBot]]:
    started: list[RunningBot] = []
    yield started
    for running in started:
        await running.close()


async def test_blocked_terms_and_evasions_never_reach_a_provider(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    assert "Blocked" in (await command(discord_fake, "mod blockterm add", {"term": "nsfw"}, user_id=mod))["content"]
    await command(discord_fake, "mod logchannel", {"channel": discord_fake.channel_id}, user_id=mod)
    for evasion in ("make it N.S.F.W please", "ｎｓｆｗ art", "ns\u200bfw scene", "n s f w"):
        reply = await command(discord_fake, "imagine", {"prompt": evasion})
        assert reply["type"] == 4 and reply["flags"] & 64 and "does not allow" in reply["content"], evasion
    # A word that merely contains a blocked term passes.
    await command(discord_fake, "mod blockterm add", {"term": "ass"}, user_id=mod)
    benign = await command(discord_fake, "imagine", {"prompt": "a classic brass assistant"})
    assert benign["type"] == 4 and not benign.get("flags", 0) & 64 and benign["embeds"]  # the job's message
    await finished(settings, 1, discord_fake)
    seaart, _ = fakes
    assert [c.json["prompt"] for c in seaart.creates] == ["a classic brass assistant"]
    assert query(settings, "SELECT COUNT(*) FROM jobs") == [(1,)]
    assert query(settings, "SELECT COUNT(*) FROM ledger WHERE kind='reserve'") == [(1,)]  # blocked: never charged
    blocked = query(settings, "SELECT prompt FROM audit_log WHERE action='blocked_prompt' ORDER BY id")
    # Prompts are recorded as cleaned: the zero-width space is gone before the gate judges it.
    assert [b[0] for b in blocked] == ["make it N.S.F.W please", "ｎｓｆｗ art", "nsfw scene", "n s f w"]
    posted = [m.content for m in discord_fake.messages_in(discord_fake.channel_id) if m.content]
    assert sum("Blocked a prompt" in p for p in posted) == 4
    # The log shows a blocked prompt as it was written: a masked link in it is text, not a link.
    hostile = "[nsfw pics](https://phish.example/4) **now** \\[again](https://phish.example/5)"
    await command(discord_fake, "imagine", {"prompt": hostile})
    await discord_fake.wait_for(
        lambda: any("phish.example/5" in (m.content or "") for m in discord_fake.messages_in(discord_fake.channel_id)),
        timeout=10,
    )
    (logged,) = [m.content for m in discord_fake.messages_in(discord_fake.channel_id) if "phish" in (m.content or "")]
    shown = logged.split("\nPrompt: ", 1)[1]
    assert as_read(shown) == hostile and live_markdown(shown) == []


async def test_safety_level_reaches_each_provider_or_is_refused(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart", "segmind"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    seaart, segmind = fakes
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod safety set", {"level": 2}, user_id=mod)
    await command(discord_fake, "imagine", {"prompt": "strict"})
    await finished(settings, 1, discord_fake)
    # Level 2 is within what SeaArt honours (with the bot's gate in front): SeaArt, first in the route, serves it.
    assert len(seaart.creates) == 1 and query(settings, "SELECT safety_level FROM jobs") == [(2,)]
    # Age-restricted channel up to its ceiling of 6: only Segmind can honour it, and receives it.
    await command(discord_fake, "mod safety set", {"level": 6, "channel": discord_fake.nsfw_channel_id}, user_id=mod)
    await command(discord_fake, "imagine", {"prompt": "loose"}, channel_id=discord_fake.nsfw_channel_id)
    await finished(settings, 2, discord_fake)
    assert segmind.creates[-1].json["safety_tolerance"] == 6
    # The same level in a normal channel is capped by the normal ceiling (4).
    await command(discord_fake, "mod safety set", {"level": 6, "channel": discord_fake.channel_id}, user_id=mod)
    await command(discord_fake, "imagine", {"prompt": "capped"})
    await finished(settings, 3, discord_fake)
    assert query(settings, "SELECT safety_level FROM jobs ORDER BY created_at") == [(2,), (6,), (4,)]


async def test_level_no_provider_honours_is_refused(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    await command(
        discord_fake,
        "mod safety set",
        {"level": 6, "channel": discord_fake.nsfw_channel_id},
        user_id=discord_fake.moderator_id,
    )
    reply = await command(discord_fake, "imagine", {"prompt": "x"}, channel_id=discord_fake.nsfw_channel_id)
    assert reply["flags"] & 64 and "safety level is 6" in reply["content"]
    assert fakes[0].requests == [] and query(settings, "SELECT COUNT(*) FROM jobs") == [(0,)]


async def test_mod_commands_refuse_members_and_bans_work(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    member, mod = discord_fake.member_id, discord_fake.moderator_id
    plain = {"user_id": member, "permissions": PLAIN_MEMBER_PERMISSIONS}
    for name, options in (
        ("mod safety set", {"level": 1}),
        ("mod safety show", {}),
        ("mod blockterm add", {"term": "x"}),
        ("mod blockterm remove", {"term": "x"}),
        ("mod blockterm list", {}),
        ("mod ban", {"member": mod}),
        ("mod unban", {"member": mod}),
        ("mod bans", {}),
        ("mod log", {}),
        ("mod logchannel", {}),
        ("mod settings", {}),
    ):
        reply = await command(discord_fake, name, options, **plain)
        assert reply["flags"] & 64 and "Manage Messages" in reply["content"], name
    assert query(settings, "SELECT COUNT(*) FROM audit_log") == [(0,)]

    await command(discord_fake, "mod ban", {"member": member, "reason": "spam"}, user_id=mod)
    refused = await command(discord_fake, "imagine", {"prompt": "hello"})
    assert "banned" in refused["content"] and "spam" in refused["content"]
    assert "spam" in (await command(discord_fake, "mod bans", {}, user_id=mod))["content"]
    await command(discord_fake, "mod unban", {"member": member}, user_id=mod)
    accepted = await command(discord_fake, "imagine", {"prompt": "hello"})
    assert accepted["type"] == 4 and not accepted.get("flags", 0) & 64 and accepted["embeds"]
    await finished(settings, 1, discord_fake)
    actions = [a[0] for a in query(settings, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["ban", "unban"]
    view = await command(discord_fake, "mod settings", {}, user_id=mod)
    assert "Moderation settings" in str(view["embeds"])


async def test_repeated_provider_blocks_put_a_member_on_cooldown(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"], moderation={"block_limit": 2})
    seaart, _ = fakes
    seaart.script("content_blocked", "content_blocked")
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    for settled in (1, 2):
        await command(discord_fake, "imagine", {"prompt": f"edgy {settled}"})
        await finished(settings, settled, discord_fake)
    await discord_fake.wait_for(lambda: query(settings, "SELECT kind FROM bans") == [("cooldown",)], timeout=10)
    refused = await command(discord_fake, "imagine", {"prompt": "again"})
    assert "cooldown" in refused["content"]
    # The cooldown's audit row is written after its ban row, which alone the refusal needs: waited for.
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT 1 FROM audit_log WHERE action = 'cooldown'") != [], timeout=10
    )
    assert [a[0] for a in query(settings, "SELECT action FROM audit_log ORDER BY id")] == [
        "provider_block",
        "provider_block",
        "cooldown",
    ]
    assert query(settings, "SELECT SUM(units) FROM ledger WHERE kind IN ('reserve','refund')") == [(0,)]


async def test_every_mod_command_works_for_a_moderator_and_is_audited(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod safety set", {"level": 4, "ceiling": True}, user_id=mod)
    await command(discord_fake, "mod blockterm add", {"term": "dragon"}, user_id=mod)
    assert "`dragon`" in (await command(discord_fake, "mod blockterm list", {}, user_id=mod))["content"]
    assert (
        "Unblocked" in (await command(discord_fake, "mod blockterm remove", {"term": "dragon"}, user_id=mod))["content"]
    )
    bad = await command(discord_fake, "mod blockterm add", {"term": "(unclosed", "regex": True}, user_id=mod)
    assert "cannot be used" in bad["content"]
    assert "off" in (await command(discord_fake, "mod blockterm builtin", {"enabled": False}, user_id=mod))["content"]
    shown = await command(discord_fake, "mod safety show", {}, user_id=mod)
    assert "normal 4" in str(shown["embeds"]) and "built-in list off" in str(shown["embeds"])
    # A moderator deletes a member's image: the message goes, the job records who, the audit log too.
    interaction = await discord_fake.slash_command("imagine", {"prompt": "to be deleted"})
    await finished(settings, 1, discord_fake)
    message_id = interaction.original_message_id
    assert message_id is not None
    await discord_fake.wait_for(lambda: bool(discord_fake.messages[message_id].components), timeout=10)
    delete = next(
        c["custom_id"]
        for r in discord_fake.messages[message_id].components
        for c in r["components"]
        if c["label"] == "Delete"
    )
    await discord_fake.click(message_id, delete, user_id=mod)
    await discord_fake.wait_for(lambda: discord_fake.messages[message_id].deleted, timeout=10)
    await discord_fake.wait_for(lambda: query(settings, "SELECT deleted_by FROM jobs") == [(mod,)], timeout=10)
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT COUNT(*) FROM audit_log WHERE action='delete'") == [(1,)], timeout=10
    )
    actions = [a[0] for a in query(settings, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["setting", "setting", "setting", "setting", "delete"]


async def test_a_thread_answers_to_its_channel_s_safety_level_and_age_restriction(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A moderator's level for a channel holds in its threads, and a thread of an age-restricted channel is
    age-restricted: read from the channel alone, every thread ran at the server's level under the normal
    ceiling, so a member could leave a strict channel's level by starting a thread in it."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart", "segmind"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    seaart, segmind = fakes
    mod = discord_fake.moderator_id
    await command(discord_fake, "mod safety set", {"level": 4}, user_id=mod)
    await command(discord_fake, "mod safety set", {"level": 1, "channel": discord_fake.channel_id}, user_id=mod)
    await command(discord_fake, "mod safety set", {"level": 6, "channel": discord_fake.nsfw_channel_id}, user_id=mod)
    strict = discord_fake.add_thread(discord_fake.channel_id, "a thread of a strict channel")
    loose = discord_fake.add_thread(discord_fake.nsfw_channel_id, "a thread of an age-restricted channel")
    shown = await command(discord_fake, "mod safety show", {}, user_id=mod, channel_id=strict)
    assert {"name": "In this channel", "value": "1", "inline": True} in shown["embeds"][0]["fields"]
    await command(discord_fake, "imagine", {"prompt": "strict"}, channel_id=strict)
    await finished(settings, 1, discord_fake)
    await command(discord_fake, "imagine", {"prompt": "loose"}, channel_id=loose)
    await finished(settings, 2, discord_fake)
    assert query(settings, "SELECT safety_level FROM jobs ORDER BY created_at") == [(1,), (6,)]
    # Level 6 only Segmind honours: it received it, under the age-restricted ceiling.
    assert len(seaart.creates) == 1 and segmind.creates[-1].json["safety_tolerance"] == 6


async def test_what_the_bot_repeats_of_a_moderator_s_words_is_bounded_by_discord(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A ban's reason is repeated to the banned member at every refusal, and a term in answers and the
    log: a 1,950-character reason made every refusal longer than Discord takes, so the member got none."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    (mod,) = [c for c in discord_fake.commands if c["name"] == "mod"]

    def option(path: str, name: str) -> dict[str, Any]:
        node: dict[str, Any] = mod
        for part in path.split():
            node = next(o for o in node["options"] if o["name"] == part)
        return next(o for o in node["options"] if o["name"] == name)

    assert option("ban", "reason")["max_length"] == 300
    assert option("blockterm add", "term")["max_length"] == 1000
    assert option("blockterm remove", "term")["max_length"] == 6000  # a term stored before the bound too
    await command(
        discord_fake,
        "mod ban",
        {"member": discord_fake.member_id, "reason": "r" * 300},
        user_id=discord_fake.moderator_id,
    )
    refusal = await command(discord_fake, "imagine", {"prompt": "hello"})
    assert refusal["flags"] & 64 and "banned" in refusal["content"] and "r" * 300 in refusal["content"]


async def test_a_long_pattern_is_listed_cut_and_removed_by_its_number(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A regular expression of many alternatives is listed cut to fit, so it cannot be copied back whole to
    remove it: it is removed by its number in the list."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    long_pattern = "|".join(f"forbidden{a}{b}" for a in "abcd" for b in "abcdefghij")  # 40 of them, 479 characters
    await command(discord_fake, "mod blockterm add", {"term": "dragon"}, user_id=mod)
    added = await command(discord_fake, "mod blockterm add", {"term": long_pattern, "regex": True}, user_id=mod)
    assert added["content"].startswith("Blocked `forbiddenaa|"), added["content"]
    listed = (await command(discord_fake, "mod blockterm list", {}, user_id=mod))["content"]
    assert listed.startswith("#1 `dragon`\n#2 `forbiddenaa|") and listed.endswith("…` (regex)")
    refused = await command(discord_fake, "imagine", {"prompt": "a forbiddenbh castle"})
    assert refused["flags"] & 64 and "does not allow" in refused["content"]
    missing = await command(discord_fake, "mod blockterm remove", {"term": "#3"}, user_id=mod)
    assert "There is no term #3" in missing["content"]
    removed = await command(discord_fake, "mod blockterm remove", {"term": "#2"}, user_id=mod)
    assert removed["content"].startswith("Unblocked `forbiddenaa|")
    assert query(settings, "SELECT term FROM blocked_terms") == [("dragon",)]


async def logging_dragons(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> int:
    """A bot whose moderators log to a channel of their own and block "dragon"; that channel's id."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    log_channel = discord_fake.nsfw_channel_id
    await command(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    await command(discord_fake, "mod blockterm add", {"term": "dragon"}, user_id=mod)
    return log_channel


@pytest.mark.parametrize("who", ["a member's blocked prompt", "a moderator's ban"])
async def test_a_rate_limited_log_channel_does_not_hold_up_the_answer(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: tuple[FakeSeaArt, FakeSegmind],
    bot_for: list[RunningBot],
    who: str,
) -> None:
    """The log channel is rate limited (a flood of blocked prompts: Discord's 429, retry_after 4 s): the post
    to it waited before the answer, which then came after Discord's 3 s and was refused ("The application did
    not respond"; the ban saved, the moderator never told). The answer comes first; the post, later."""
    log_channel = await logging_dragons(tmp_path, discord_fake, fakes, bot_for)
    mod = discord_fake.moderator_id
    discord_fake.answer_window = 3.0
    limited = {"message": "You are being rate limited.", "retry_after": 4.0, "global": False}
    discord_fake.fail_next("POST", rf"^/channels/{log_channel}/messages$", status=429, body=limited)
    if who == "a member's blocked prompt":
        answer = await command(discord_fake, "imagine", {"prompt": "a dragon"})
        assert "does not allow" in answer["content"]
    else:
        answer = await command(
            discord_fake, "mod ban", {"member": discord_fake.member_id, "reason": "spam"}, user_id=mod
        )
        assert "can no longer use the bot" in answer["content"], answer
    # The post follows once the channel's wait is over.
    await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= 3, timeout=15)


async def test_a_log_post_discord_fails_is_posted_again_once(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A 503 on the log post (which discord.py does not retry) dropped it: the moderators never saw the blocked
    prompt in their channel. It is posted again; one Discord made whose answer was lost is the same post (nonce)."""
    log_channel = await logging_dragons(tmp_path, discord_fake, fakes, bot_for)

    def posted() -> list[str]:
        return [
            m.content or "" for m in discord_fake.messages_in(log_channel) if "Blocked a prompt" in (m.content or "")
        ]

    def tries() -> list[int]:
        path = f"/channels/{log_channel}/messages"
        posts = [r for r in discord_fake.requests if r.method == "POST" and r.path == path]
        return [r.status for r in posts if "dragon" in json.dumps(r.json)]

    for carried_out, posts in ((False, 1), (True, 2)):
        discord_fake.fail_next("POST", rf"^/channels/{log_channel}/messages$", status=503, after=carried_out)
        refused = await command(discord_fake, "imagine", {"prompt": f"a dragon number {posts}"})
        assert "does not allow" in refused["content"]
        await discord_fake.wait_for(lambda posts=posts: tries()[2 * posts - 2 :] == [503, 200], timeout=15)
        assert len(posted()) == posts and f"a dragon number {posts}" in posted()[-1]


async def test_a_blocked_prompt_matching_a_long_term_still_reaches_the_log_channel(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """The post quoted the whole 479-character term and a 2,000-character prompt: over Discord's 2,000, refused
    (400), so a member could pad a blocked prompt to keep it out of the log. It is fitted to a message."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    log_channel = discord_fake.nsfw_channel_id
    await command(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    long_pattern = "|".join(f"forbidden{a}{b}" for a in "abcd" for b in "abcdefghij")
    added = await command(discord_fake, "mod blockterm add", {"term": long_pattern, "regex": True}, user_id=mod)
    assert added["content"].startswith("Blocked `forbiddenaa|"), added["content"]
    refused = await command(discord_fake, "imagine", {"prompt": "a forbiddenbh castle " + "with towers " * 160})
    assert "does not allow" in refused["content"]

    def posted() -> list[str]:
        return [
            m.content for m in discord_fake.messages_in(log_channel) if m.content and "Blocked a prompt" in m.content
        ]

    await discord_fake.wait_for(lambda: bool(posted()), timeout=10)
    assert all(len(text) <= 2000 for text in posted()) and "Prompt: a forbiddenbh castle" in posted()[0]


async def test_a_log_channel_the_bot_cannot_post_in_is_refused_and_one_it_can_is_kept(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A channel made after the bot connected (not in its cache) failed to convert, and the moderator read
    "something went wrong"; one the bot may not post in was kept, and every post after it refused. The channel
    is tried first: refused, nothing is kept and the moderator reads what to fix."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    hidden = discord_fake.add_channel("staff-log", hidden=True)
    missing_access = {"code": 50001, "message": "Missing Access"}
    discord_fake.fail_next("POST", rf"^/channels/{hidden}/messages$", status=403, body=missing_access)
    refused = await command(discord_fake, "mod logchannel", {"channel": hidden}, user_id=mod)
    assert "cannot post in" in refused["content"] and "Send Messages" in refused["content"]
    assert query(settings, "SELECT log_channel_id FROM mod_settings") in ([], [(None,)])

    shown = discord_fake.add_channel("mod-log")  # after the bot connected: not in its cache
    kept = await command(discord_fake, "mod logchannel", {"channel": shown}, user_id=mod)
    assert kept["content"] == f"Moderation log: <#{shown}>."
    assert query(settings, "SELECT log_channel_id FROM mod_settings") == [(shown,)]
    assert "set the moderation log to this channel" in (discord_fake.messages_in(shown)[0].content or "")


@pytest.mark.parametrize("when", ["while the bot runs", "while the bot is stopped"])
async def test_a_deleted_log_channel_is_forgotten_once_not_warned_of_at_every_event(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: tuple[FakeSeaArt, FakeSegmind],
    bot_for: list[RunningBot],
    when: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The moderation log channel is deleted. Each later event posted there anyway, to a 404 and a warning in
    the bot's log, for good. It is forgotten (CHANNEL_DELETE, or the first 404 Unknown Channel when it went while
    the bot was away), with a row in the audit trail; `/mod settings` shows no log channel, and a new one can be
    set."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    log_channel = discord_fake.add_channel("mod-log")
    await command(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=mod)
    await command(discord_fake, "mod blockterm add", {"term": "dragon"}, user_id=mod)
    if when == "while the bot runs":
        await discord_fake.delete_channel(log_channel)
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT log_channel_id FROM mod_settings") == [(None,)], timeout=10
        )
    else:
        await bot_for.pop().close()
        discord_fake.remove_channel(log_channel)
        bot_for.append(await start_bot(settings, discord_fake, Clock()))
    posts = rf"^/channels/{log_channel}/messages$"
    seen = len(discord_fake.requests)
    for n in range(3):
        assert "does not allow" in (await command(discord_fake, "imagine", {"prompt": f"a dragon {n}"}))["content"]
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT COUNT(*) FROM audit_log WHERE action = 'log_channel_gone'") == [(1,)],
            timeout=10,
        )
    assert query(settings, "SELECT log_channel_id FROM mod_settings") == [(None,)]
    tried = [r for r in discord_fake.requests[seen:] if r.method == "POST" and re.search(posts, r.path)]
    assert len(tried) == (0 if when == "while the bot runs" else 1)
    assert sum("moderation log channel" in r.getMessage() for r in caplog.records) <= 1
    view = await command(discord_fake, "mod settings", {}, user_id=mod)
    assert "none" in str(view["embeds"])
    # A new log channel is taken and posted to.
    await command(discord_fake, "mod logchannel", {"channel": discord_fake.nsfw_channel_id}, user_id=mod)
    await command(discord_fake, "imagine", {"prompt": "a dragon again"})
    await discord_fake.wait_for(
        lambda: any(
            "dragon again" in (m.content or "") for m in discord_fake.messages_in(discord_fake.nsfw_channel_id)
        ),
        timeout=10,
    )


async def test_a_thread_can_be_the_log_channel_and_is_forgotten_when_deleted(
    tmp_path: Path, discord_fake: FakeDiscord, fakes: tuple[FakeSeaArt, FakeSegmind], bot_for: list[RunningBot]
) -> None:
    """A thread for the moderators is a common place for a log; the option offered text channels only."""
    settings = settings_for(tmp_path, discord_fake, fakes, ["seaart"])
    thread = discord_fake.add_thread(discord_fake.channel_id, "mod-log")
    bot_for.append(await start_bot(settings, discord_fake, Clock()))
    mod = discord_fake.moderator_id
    answer = await command(discord_fake, "mod logchannel", {"channel": thread}, user_id=mod)
    assert answer["content"] == f"Moderation log: <#{thread}>."
    await command(discord_fake, "mod blockterm add", {"term": "dragon"}, user_id=mod)
    assert "does not allow" in (await command(discord_fake, "imagine", {"prompt": "a dragon"}))["content"]
    await discord_fake.wait_for(
        lambda: any("a dragon" in (m.content or "") for m in discord_fake.messages_in(thread)), timeout=10
    )
    await discord_fake.delete_channel(thread)
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT log_channel_id FROM mod_settings") == [(None,)], timeout=10
    )
    # The audit row is written after the channel is forgotten: waited for, not read at once.
    await discord_fake.wait_for(
        lambda: query(settings, "SELECT COUNT(*) FROM audit_log WHERE action = 'log_channel_gone'") != [(0,)],
        timeout=10,
    )
    assert query(settings, "SELECT COUNT(*) FROM audit_log WHERE action = 'log_channel_gone'") == [(1,)]
