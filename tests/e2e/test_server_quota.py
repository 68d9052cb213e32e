"""`/quota server`: a server's admins see and set its own limits (images generating at once, units and dollars a
month) over the bot's configured ones, from Discord, without a restart (bot/server_limits.py). Before, the config
gave every server the same, and a stored server row was read but nothing could write one. Through the real bot,
the fake Discord and the fake SeaArt."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from bot.quotas import window_bounds
from bot.server_limits import cents
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot
from tests.e2e.test_quota_tiers import content, quota_shown
from tests.e2e.test_quotas import query
from tests.e2e.test_rework import delivered
from tests.e2e.test_waiting_turns import embed_of, field, prompts_sent

CONFIGURED = "The bot's configuration"


def shown(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, str]:
    """The private answer's embed, as {field name: value}, with its description under "description"."""
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    embed = data["embeds"][0]
    fields = {f["name"]: str(f["value"]) for f in embed.get("fields", [])}
    return {**fields, "description": str(embed.get("description") or "")}


async def server(discord_fake: FakeDiscord, options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, str]:
    """An admin's (or ``user_id``'s) /quota server with ``options``, as its embed reads."""
    kwargs.setdefault("user_id", discord_fake.admin_id)
    return shown(discord_fake, await answered(discord_fake, "quota server", options or {}, **kwargs))


def audit(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT action, actor_id, reason FROM audit_log WHERE action IN ('quota_server', 'quota_server_cleared') "
            "ORDER BY id"
        ).fetchall()


async def test_an_admin_sets_the_servers_room_and_waiting_requests_start_at_once(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server is shown with the bot's limits; an admin lowers its images at once to one: a second member's
    request waits for the room. Raised to two, that request starts at once (not at its 30 s look), and the server's
    own limits, the changes and who made them are in the audit log and the moderation log channel."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 10})
    log_channel = discord_fake.add_text_channel("mod-log")
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    admin = discord_fake.admin_id
    try:
        await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id)
        before = await server(discord_fake)
        lowered = await server(discord_fake, {"in_flight": 1})
        first = await discord_fake.slash_command("imagine", {"prompt": "first"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
        full = await server(discord_fake)
        await asyncio.sleep(0.3)  # time enough for a create, were one to go
        assert prompts_sent(seaart) == ["first"]
        raised = await server(discord_fake, {"in_flight": 2})
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first", "second"], timeout=5)
        seaart.hold(False)
        await delivered(discord_fake, first)
        await delivered(discord_fake, second)
        await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= 3, timeout=10)
    finally:
        seaart.hold(False)
        await running.close()
    assert before["Images generating now"] == "0 of 10", before
    assert before["Where each comes from"] == (
        "Images at once: 10 image(s) generating at once (the bot's configuration)\n"
        "Monthly units: no monthly unit limit (the bot's configuration)\n"
        "Monthly budget: no monthly budget (the bot's configuration)"
    ), before
    assert lowered["Images generating now"] == "0 of 1", lowered
    assert lowered["Where each comes from"].startswith(
        "Images at once: 1 image(s) generating at once, set for this server (the bot's: 10 image(s) generating"
    ), lowered
    assert full["Images generating now"] == "1 of 1 · 1 waiting for room", full
    # Made due by the change, the waiting image starts a moment after the answer is drawn.
    assert " of 2" in raised["Images generating now"], raised
    assert raised["description"] == "The 1 image(s) waiting their turn here look for room again now.", raised
    assert audit(settings.database.path) == [
        ("quota_server", admin, "1 image(s) generating at once (before: none (the bot's configured limits))"),
        ("quota_server", admin, "2 image(s) generating at once (before: 1 image(s) generating at once)"),
    ]
    posts = [post.content for post in discord_fake.messages_in(log_channel)[1:]]
    assert posts == [
        f"<@{admin}> set this server's limits: 1 image(s) generating at once (before: none (the bot's configured "
        "limits)).",
        f"<@{admin}> set this server's limits: 2 image(s) generating at once (before: 1 image(s) generating at once).",
    ], posts
    assert query(settings, "SELECT DISTINCT charge_state FROM jobs") == [("committed",)]


async def test_the_servers_monthly_units_and_budget_refuse_past_them_and_no_limit_and_clear_undo(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A server's own monthly units refuse the request past them, saying so; its budget in dollars likewise.
    ``no_limit`` lifts the configured images-at-once limit for the server; ``clear`` returns one limit, or all,
    to the bot's configuration, and the config's applies again."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 1, "guild_monthly_units": 100}
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        set_units = await server(discord_fake, {"monthly_units": 1, "budget_usd": 12.345})
        first = await discord_fake.slash_command("imagine", {"prompt": "first"})
        await delivered(discord_fake, first)
        past_units = await discord_fake.slash_command("imagine", {"prompt": "past the units"})
        await discord_fake.wait_for(lambda: bool(past_units.callbacks), timeout=10)
        spent = await server(discord_fake)
        members_view = await quota_shown(discord_fake, discord_fake.member_id)
        # The units back to the config's (100), the budget down to what one image costs: refused for dollars now.
        ((cost,),) = query(settings, "SELECT cost_micro_usd FROM ledger WHERE kind = 'reserve'")
        await server(discord_fake, {"clear": "monthly units", "budget_usd": int(cost) / 1_000_000})
        past_budget = await discord_fake.slash_command("imagine", {"prompt": "past the budget"})
        await discord_fake.wait_for(lambda: bool(past_budget.callbacks), timeout=10)
        lifted = await server(discord_fake, {"no_limit": "images at once", "clear": "monthly budget"})
        seaart.hold(True)
        batch = await discord_fake.slash_command("imagine", {"prompt": "a batch", "count": 3})
        await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == 4, timeout=10)
        seaart.hold(False)
        await delivered(discord_fake, batch)
        cleared = await server(discord_fake, {"clear": "all of them"})
        again = await server(discord_fake, {"clear": "all of them"})
    finally:
        seaart.hold(False)
        await running.close()
    assert set_units["Units this month"].startswith("0 of 1 · resets <t:"), set_units
    assert set_units["Spent this month (estimated)"].startswith("$0.00 of $12.35 · resets <t:"), set_units
    assert "This server has used 1 of its 1 units this month." in content(discord_fake, past_units)
    assert spent["Units this month"].startswith("1 of 1 ·"), spent
    # A member's /quota show says what the server has left, its budget as a share (its dollars are the admins').
    server_line = members_view["This server"].splitlines()
    assert server_line[:3] == [
        "0 of 1 images generating now",
        "1 of 1 units used this month",
        f"{int(cost) / cents(12.345):.0%} of its monthly budget used",
    ], server_line
    assert server_line[3].startswith("The month resets <t:"), server_line
    assert f"This server has spent ${int(cost) / 1_000_000:.2f} of its" in content(discord_fake, past_budget)
    assert lifted["Where each comes from"].startswith(
        "Images at once: no limit on images generating at once, set for this server (the bot's: 1 image(s)"
    ), lifted
    assert lifted["Images generating now"] == "0 · no limit", lifted
    assert query(settings, "SELECT COUNT(*) FROM jobs WHERE batch_id IS NOT NULL AND waits_for IS NULL") == [(3,)]
    assert cleared["Where each comes from"].splitlines()[0] == (
        "Images at once: 1 image(s) generating at once (the bot's configuration)"
    ), cleared
    assert again["description"] == "Nothing changed: this server's limits were already so.", again
    assert query(settings, "SELECT COUNT(*) FROM quota_limits WHERE scope = 'guild'") == [(0,)]
    actions = [row[0] for row in audit(settings.database.path)]
    assert actions == ["quota_server"] * 3 + ["quota_server_cleared"], actions


async def test_lowering_the_servers_room_to_zero_ends_the_waiting_request_uncharged(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A request waits for the server's room; an admin sets the server's images at once to 0: none could ever start,
    so it ends at once, uncharged, saying who set what, and the next request is refused, nothing recorded."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 1})
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
        await server(discord_fake, {"in_flight": 0})
        await discord_fake.wait_for(lambda: embed_of(discord_fake, second)["title"] == "🍌 Cancelled", timeout=5)
        said = embed_of(discord_fake, second)
        third = await discord_fake.slash_command("imagine", {"prompt": "third"})
        await discord_fake.wait_for(lambda: bool(third.callbacks), timeout=10)
    finally:
        seaart.hold(False)
        await running.close()
    assert "An admin has set this server's limit on images generating at once to 0" in str(said), said
    assert query(settings, "SELECT state, charge_state FROM jobs WHERE request_json LIKE '%second%'") == [
        ("cancelled", "refunded")
    ]
    assert "This server's limit on images generating at once is 0 (set by an admin)" in content(discord_fake, third)
    assert query(settings, "SELECT COUNT(*) FROM jobs WHERE request_json LIKE '%third%'") == [(0,)]
    assert prompts_sent(seaart) == ["first"]


async def test_members_and_contradicting_options_change_nothing(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member who is no admin is refused, privately; an admin naming one limit twice (a number and no_limit, or
    a number and clear) or a value past the range (a hand-made payload) is told which, and nothing is stored."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        by_member = await discord_fake.slash_command("quota server", {"in_flight": 1})
        twice = await discord_fake.slash_command(
            "quota server", {"in_flight": 3, "no_limit": "images at once"}, user_id=discord_fake.admin_id
        )
        back = await discord_fake.slash_command(
            "quota server", {"budget_usd": 5, "clear": "all of them"}, user_id=discord_fake.admin_id
        )
        negative = await discord_fake.slash_command(
            "quota server", {"monthly_units": -5}, user_id=discord_fake.admin_id, unchecked=True
        )
        for asked in (by_member, twice, back, negative):
            await discord_fake.wait_for(lambda asked=asked: bool(asked.callbacks), timeout=10)
    finally:
        await running.close()
    assert (
        content(discord_fake, by_member) == "You need the Manage Server permission (or the bot's admin role) for this."
    )
    assert content(discord_fake, twice) == (
        "`in_flight` and `no_limit: images at once` name the same limit: give a number or no limit."
    )
    assert content(discord_fake, back).startswith(
        "`clear: all of them` returns monthly budget to the bot's configured value, and `budget_usd` sets it"
    )
    assert "`monthly_units` must be from 0 to 1,000,000,000, not -5. Nothing was changed." in content(
        discord_fake, negative
    )
    assert query(settings, "SELECT COUNT(*) FROM quota_limits") == [(0,)]
    assert query(settings, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'quota_server%'") == [(0,)]


async def test_the_moderators_are_told_once_when_the_servers_month_is_mostly_used_and_when_it_is_spent(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server may use 5 units a month (one a 1K image). The fourth image takes it to 80%: its moderation log
    channel is told, once; the fifth spends it: told again, with when it resets and how to raise it. The sixth is
    refused and tells nothing more; neither does a restart. Before, moderators learnt of it from members refused."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "guild_monthly_units": 5})
    log_channel = discord_fake.add_text_channel("mod-log")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id)
        for n in range(5):
            made = await discord_fake.slash_command("imagine", {"prompt": f"image {n}"})
            await delivered(discord_fake, made)
        await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= 3, timeout=10)
        sixth = await discord_fake.slash_command("imagine", {"prompt": "past the month"})
        await discord_fake.wait_for(lambda: bool(sixth.callbacks), timeout=10)
    finally:
        await running.close()
    told = len(discord_fake.messages_in(log_channel))
    running = await start_bot(settings, discord_fake, Clock())
    try:
        again = await discord_fake.slash_command("imagine", {"prompt": "after a restart"})
        await discord_fake.wait_for(lambda: bool(again.callbacks), timeout=10)
        await asyncio.sleep(0.3)  # time enough for a post, were one to go
        assert len(discord_fake.messages_in(log_channel)) == told
        # An admin raises the month to 6 units: the sixth image spends it, which is told again.
        await server(discord_fake, {"monthly_units": 6})
        await delivered(discord_fake, await discord_fake.slash_command("imagine", {"prompt": "the sixth"}))
        await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= told + 2, timeout=10)
    finally:
        await running.close()
    posts = [post.content for post in discord_fake.messages_in(log_channel)[1:]]
    assert len(posts) == 4, posts  # the second after the raise is the admin's change itself
    assert posts[0].startswith("This server has used 4 of its 5 units this month (80%). It resets <t:"), posts
    assert posts[0].endswith("; an admin may raise it with `/quota server monthly_units:`."), posts
    assert posts[1].startswith(
        "This server's monthly units are spent (5 of its 5 units used): members' requests are refused until it resets "
        "<t:"
    ), posts
    assert posts[1].endswith(", or an admin raises it with `/quota server monthly_units:`."), posts
    assert "This server has used 5 of its 5 units this month." in content(discord_fake, sixth)
    rows = query(settings, "SELECT action, reason FROM audit_log WHERE action = 'quota_server_alert' ORDER BY id")
    assert rows == [("quota_server_alert", "most"), ("quota_server_alert", "spent"), ("quota_server_alert", "spent")]
    assert posts[2].startswith(f"<@{discord_fake.admin_id}> set this server's limits: 6 units a month"), posts
    assert posts[3].startswith("This server's monthly units are spent (6 of its 6 units used)"), posts


async def test_an_alert_the_bot_died_before_telling_is_told_at_its_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A reservation claimed "spent" and committed, and the bot died before its post (its row, told_at empty, as
    that leaves it): the next start tells it, once, and marks it told. One of an earlier month is not told."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "guild_monthly_units": 5})
    log_channel = discord_fake.add_text_channel("mod-log")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await answered(discord_fake, "mod logchannel", {"channel": log_channel}, user_id=discord_fake.moderator_id)
    finally:
        await running.close()
    start, end = window_bounds("monthly", time.time())
    guild = discord_fake.guild_id
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO server_alerts (guild_id, month_start, what, level, limit_value, used, resets_at, created_at) "
            "VALUES (?, ?, 'units', 'spent', 5, 5, ?, ?)",
            [(guild, start, end, time.time()), (guild, start - 40 * 86400, start, start - 86400)],
        )
    for _ in range(2):
        running = await start_bot(settings, discord_fake, Clock())
        try:
            await discord_fake.wait_for(lambda: len(discord_fake.messages_in(log_channel)) >= 2, timeout=10)
            await asyncio.sleep(0.3)  # time enough for another post, were one to go
        finally:
            await running.close()
    posts = [post.content for post in discord_fake.messages_in(log_channel)[1:]]
    assert posts == [
        "This server's monthly units are spent (5 of its 5 units used): members' requests are refused until it "
        f"resets <t:{int(end)}:R>, or an admin raises it with `/quota server monthly_units:`."
    ], posts
    told = query(settings, "SELECT told_at IS NOT NULL FROM server_alerts ORDER BY month_start DESC")
    assert told == [(1,), (0,)], told
