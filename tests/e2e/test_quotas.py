"""Quotas through the real bot and the fake Discord: bursts cannot overspend, refunds restore,
admin commands are enforced in code."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answer_given, answered, make_settings, start_bot


def query(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql, params).fetchall()


def ephemeral_texts(discord_fake: FakeDiscord, interactions: list[int]) -> list[str]:
    texts = []
    for iid in interactions:
        callbacks = discord_fake.interactions[iid].callbacks
        # A refusal is ephemeral text; an accepted command is answered with its job's (public) message.
        if callbacks and callbacks[0]["type"] == 4 and callbacks[0]["data"].get("flags", 0) & 64:
            texts.append(callbacks[0]["data"]["content"])
    return texts


async def burst(discord_fake: FakeDiscord, count: int, user_id: int) -> list[int]:
    interactions = await asyncio.gather(
        *(discord_fake.slash_command("imagine", {"prompt": f"burst {i}"}, user_id=user_id) for i in range(count))
    )
    ids = [i.id for i in interactions]
    await discord_fake.wait_for(lambda: all(discord_fake.interactions[i].callbacks for i in ids), timeout=60)
    return ids


async def test_200_simultaneous_requests_accept_exactly_the_limit(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 5, "in_flight_per_user": None, "in_flight_per_guild": None}
    )
    seaart.hold(True)  # keep them in flight: reservations, not yet charges, must already count
    running = await start_bot(settings, discord_fake, Clock())
    try:
        ids = await burst(discord_fake, 200, discord_fake.member_id)
        refused = ephemeral_texts(discord_fake, ids)
        assert len(refused) == 195
        assert all("used 5 of your 5 daily units" in text and "resets <t:" in text for text in refused)
        assert query(settings, "SELECT COUNT(*) FROM jobs") == [(5,)]
        assert query(settings, "SELECT COUNT(*), SUM(units) FROM ledger WHERE kind = 'reserve'") == [(5, 5)]
        seaart.hold(False)
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") == [(5,)], timeout=60
        )
    finally:
        await running.close()
    assert query(settings, "SELECT COUNT(*) FROM ledger WHERE kind = 'commit'") == [(5,)]
    assert query(settings, "SELECT DISTINCT charge_state FROM jobs") == [("committed",)]


async def test_guild_budget_is_shared_by_members(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        quotas={"daily": 100, "guild_monthly_units": 5, "in_flight_per_user": None, "in_flight_per_guild": None},
    )
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first, second = await asyncio.gather(
            burst(discord_fake, 100, discord_fake.member_id), burst(discord_fake, 100, discord_fake.moderator_id)
        )
        refused = ephemeral_texts(discord_fake, first + second)
        assert len(refused) == 195 and all("of its 5 units this month" in t for t in refused)
        assert query(settings, "SELECT COUNT(*) FROM jobs") == [(5,)]
        seaart.hold(False)
    finally:
        await running.close()


async def test_failed_jobs_are_refunded_and_quota_shows_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 3})
    seaart.script("error:CONTENT_BLOCKED", "error:INFERENCE_FAILURE")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        for settled, prompt in enumerate(("blocked", "failed", "delivered"), start=1):
            await discord_fake.slash_command("imagine", {"prompt": prompt, "resolution": "2K"})
            await discord_fake.wait_for(
                lambda n=settled: (
                    query(settings, "SELECT COUNT(*) FROM jobs WHERE charge_state != 'reserved'") == [(n,)]
                ),
                timeout=30,
            )
        shown = await discord_fake.slash_command("quota show", {})
        await answer_given(discord_fake, shown)
    finally:
        await running.close()
    states = query(settings, "SELECT state, charge_state FROM jobs ORDER BY created_at")
    assert states == [("blocked", "refunded"), ("failed", "refunded"), ("delivered", "committed")]
    # 2K costs 2 units: two refunds leave only the delivered image counted.
    assert query(settings, "SELECT SUM(units) FROM ledger WHERE kind IN ('reserve','refund','grant')") == [(2,)]
    embed = answer_data(discord_fake, shown)["embeds"][0]
    today = next(f for f in embed["fields"] if f["name"] == "Today")
    assert today["value"].startswith("2 of 3 used") and "**1 left**" in today["value"]
    assert answer_data(discord_fake, shown)["flags"] & 64


async def test_quota_admin_commands_are_for_admins(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 1})
    running = await start_bot(settings, discord_fake, Clock())
    member = discord_fake.member_id
    try:

        async def run(name: str, options: dict[str, object], user: int, perms: int | None = None) -> str:
            interaction = await discord_fake.slash_command(name, options, user_id=user, permissions=perms)
            await answer_given(discord_fake, interaction)
            data = answer_data(discord_fake, interaction)
            assert data["flags"] & 64
            return str(data.get("content") or data.get("embeds"))

        for name, options in (
            ("quota set", {"member": member, "daily": 50}),
            ("quota grant", {"member": member, "units": 10}),
            ("quota reset", {"member": member}),
            ("quota show", {"member": discord_fake.admin_id}),
        ):
            refusal = await run(name, options, discord_fake.moderator_id, PLAIN_MEMBER_PERMISSIONS)
            assert "Manage Server" in refusal, name
        assert query(settings, "SELECT COUNT(*) FROM quota_limits") == [(0,)]
        assert query(settings, "SELECT COUNT(*) FROM ledger") == [(0,)]

        assert "daily 50" in await run("quota set", {"member": member, "daily": 50}, discord_fake.admin_id)
        assert "Granted 10" in await run(
            "quota grant", {"member": member, "units": 10, "reason": "contest"}, discord_fake.admin_id
        )
        assert "Reset" in await run("quota reset", {"member": member}, discord_fake.admin_id)
        assert "50" in await run("quota show", {"member": member}, discord_fake.admin_id)
    finally:
        await running.close()
    assert query(settings, "SELECT scope, target_id, daily FROM quota_limits") == [("user", member, 50)]
    assert query(settings, "SELECT kind, units, reason, actor_id FROM ledger") == [
        ("grant", -10, "contest", discord_fake.admin_id)
    ]
    assert query(settings, "SELECT user_id FROM quota_resets") == [(member,)]


async def test_usage_report_and_export_match_the_ledger(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    import csv
    import gzip
    import io

    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 50, "in_flight_per_user": None})
    seaart.script("error:INFERENCE_FAILURE")
    running = await start_bot(settings, discord_fake, Clock())
    try:
        for settled, resolution in enumerate(("1K", "2K", "4K"), start=1):
            await discord_fake.slash_command("imagine", {"prompt": f"r{settled}", "resolution": resolution})
            await discord_fake.wait_for(
                lambda n=settled: (
                    query(settings, "SELECT COUNT(*) FROM jobs WHERE charge_state != 'reserved'") == [(n,)]
                ),
                timeout=30,
            )
        denied = await discord_fake.slash_command(
            "usage report", {}, user_id=discord_fake.moderator_id, permissions=PLAIN_MEMBER_PERMISSIONS
        )
        report = await discord_fake.slash_command("usage report", {}, user_id=discord_fake.admin_id)
        export = await discord_fake.slash_command("usage export", {}, user_id=discord_fake.admin_id)
        for asked in (denied, report, export):
            await answer_given(discord_fake, asked)
        await discord_fake.wait_for(
            lambda: (
                export.original_message_id is not None and bool(discord_fake.messages[export.original_message_id].files)
            ),
            timeout=30,
        )
    finally:
        await running.close()
    assert "Manage Server" in answer_data(discord_fake, denied)["content"]
    charged = query(settings, "SELECT COUNT(*), SUM(units), SUM(cost_micro_usd) FROM ledger WHERE kind = 'commit'")
    (images, units, cost) = charged[0]
    assert images == 2  # the first job failed and was refunded
    fields = {f["name"]: f["value"] for f in answer_data(discord_fake, report)["embeds"][0]["fields"]}
    from bot.catalogue import usd

    assert fields["Charged"] == f"{images} image(s) · {units} unit(s) · {usd(int(cost))}"  # type: ignore[arg-type]
    assert fields["Outcomes"].startswith("1 failed")
    # This month, as the days it covers in the quota's zone (its last day, not the next month's first).
    assert answer_data(discord_fake, report)["embeds"][0]["description"].endswith("(quota days start at 00:00 UTC)")
    file = discord_fake.messages[export.original_message_id].files[0]  # type: ignore[index]
    assert file.filename.endswith(".csv.gz")
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(file.data).decode())))
    assert len(rows) == len(query(settings, "SELECT id FROM ledger"))
    assert sorted(r["kind"] for r in rows) == ["commit", "commit", "refund", "reserve", "reserve", "reserve"]


async def test_reroll_over_quota_is_refused_privately(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 1})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        interaction = await discord_fake.slash_command("imagine", {"prompt": "only one"})
        await discord_fake.wait_for(
            lambda: (
                query(settings, "SELECT state FROM jobs") == [("delivered",)]
                and interaction.original_message_id is not None
                and bool(discord_fake.messages[interaction.original_message_id].components)
            ),
            timeout=30,
        )
        message = discord_fake.messages[interaction.original_message_id]  # type: ignore[index]
        reroll = next(c["custom_id"] for r in message.components for c in r["components"] if c["label"] == "Re-roll")
        click = await discord_fake.click(message.id, reroll)
        await answer_given(discord_fake, click)
    finally:
        await running.close()
    data = answer_data(discord_fake, click)
    assert click.callbacks[0]["type"] == 4 and data["flags"] & 64
    assert "used 1 of your 1 daily units" in data["content"]
    assert query(settings, "SELECT COUNT(*) FROM jobs") == [(1,)]


async def test_quota_show_reads_right_after_grants_refunds_and_resets(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """It used to say "Today: -4 of 3 used · 7 left" after a grant of 5 on 1 used."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 3})
    seaart.script("success", "error:INFERENCE_FAILURE")
    member = discord_fake.member_id
    running = await start_bot(settings, discord_fake, Clock())
    try:

        async def today() -> str:
            shown = await discord_fake.slash_command("quota show", {}, user_id=member)
            await answer_given(discord_fake, shown)
            fields = answer_data(discord_fake, shown)["embeds"][0]["fields"]
            return str(next(f["value"] for f in fields if f["name"] == "Today"))

        async def settled(count: int) -> None:
            await discord_fake.wait_for(
                lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE charge_state != 'reserved'") == [(count,)],
                timeout=30,
            )

        await discord_fake.slash_command("imagine", {"prompt": "one delivered"}, user_id=member)
        await settled(1)
        await discord_fake.slash_command("imagine", {"prompt": "one refunded"}, user_id=member)
        await settled(2)
        after_refund = await today()
        grant = await discord_fake.slash_command(
            "quota grant", {"member": member, "units": 5}, user_id=discord_fake.admin_id
        )
        await answer_given(discord_fake, grant)
        after_grant = await today()
        reset = await discord_fake.slash_command("quota reset", {"member": member}, user_id=discord_fake.admin_id)
        await answer_given(discord_fake, reset)
        after_reset = await today()
    finally:
        await running.close()
    assert after_refund.startswith("1 of 3 used · **2 left**")
    assert re.match(r"1 of 3 used · \+5 granted, counted until <t:\d+:f> · \*\*7 left\*\*", after_grant), after_grant
    # A reset forgets the usage, not the units granted (it read "0 of 3 used · 3 left": the grant was gone too).
    assert re.match(r"0 of 3 used · \+5 granted, counted until <t:\d+:f> · \*\*8 left\*\*", after_reset), after_reset


async def test_quota_show_with_quotas_off_shows_no_limits(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """With `[quotas] enabled = false` nothing is refused, yet /quota show listed the configured limits
    ("1 of 3 used · 2 left"), and /help a number of units left."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"enabled": False, "daily": 3})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "free"})
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("delivered",)], timeout=20)
        shown = await discord_fake.slash_command("quota show", {})
        helped = await discord_fake.slash_command("help", {})
        await answer_given(discord_fake, shown)
        await answer_given(discord_fake, helped)
    finally:
        await running.close()
    embed = answer_data(discord_fake, shown)["embeds"][0]
    assert embed["description"].startswith("Quotas are off on this bot")
    today = next(f for f in embed["fields"] if f["name"] == "Today")
    assert today["value"] == "1 used · no limit"
    help_fields = {f["name"]: f["value"] for f in answer_data(discord_fake, helped)["embeds"][0]["fields"]}
    assert "left today" not in help_fields.get("Yours", "")


async def test_a_grant_says_until_when_it_counts(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """A grant is a ledger row at the time it is given, and each window counts the rows inside it: 10 units
    granted at 23:50 were gone from the daily limit ten minutes later, with no word of it, while /quota show's
    "This month" still read "+10 granted". The admin and the member are now told until when the units count."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 2, "monthly": 100})
    clock = Clock(datetime(2026, 11, 23, 23, 50, tzinfo=UTC).timestamp())
    midnight = int(datetime(2026, 11, 24, tzinfo=UTC).timestamp())
    next_midnight = midnight + 86_400
    member, admin = discord_fake.member_id, discord_fake.admin_id
    running = await start_bot(settings, discord_fake, clock)
    try:

        async def shown(user_id: int, options: dict[str, object]) -> dict[str, str]:
            interaction = await answered(discord_fake, "quota show", options, user_id=user_id)
            return {f["name"]: f["value"] for f in answer_data(discord_fake, interaction)["embeds"][0]["fields"]}

        granted = await answered(discord_fake, "quota grant", {"member": member, "units": 10}, user_id=admin)
        evening = await shown(member, {})
        clock.now += 20 * 60  # 00:10, the next quota day
        again = await answered(discord_fake, "quota grant", {"member": member, "units": 3}, user_id=admin)
        morning = await shown(member, {})
        seen_by_admin = await shown(admin, {"member": member})
    finally:
        await running.close()
    assert answer_data(discord_fake, granted)["content"] == (
        f"Granted 10 unit(s) to <@{member}>. They count toward <@{member}>'s daily limit until <t:{midnight}:f> "
        f"(<t:{midnight}:R>), the end of today's quota day: a grant counts only in the day, week and month it is "
        "given in, and the next day starts without them."
    )
    assert (
        f"daily limit until <t:{next_midnight}:f> (<t:{next_midnight}:R>)"
        in answer_data(discord_fake, again)["content"]
    )
    assert evening["Today"].startswith(f"0 of 2 used · +10 granted, counted until <t:{midnight}:f> · **12 left**")
    assert evening["This month"].startswith(
        f"0 of 100 used · +10 granted (they count toward your daily limit until <t:{midnight}:f>, the end of "
        "today's quota day) · **110 left**"
    )
    # The next day: the daily limit starts without yesterday's grant, which the month still counts.
    assert morning["Today"].startswith(f"0 of 2 used · +3 granted, counted until <t:{next_midnight}:f> · **5 left**")
    assert morning["This month"].startswith(
        f"0 of 100 used · +13 granted (3 count toward your daily limit until <t:{next_midnight}:f>; 10 given before "
        "today's quota day no longer do) · **113 left**"
    )
    assert "toward their daily limit" in seen_by_admin["This month"], seen_by_admin
