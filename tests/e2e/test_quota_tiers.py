"""Role tiers, member overrides and zero limits through the real bot and the fake Discord: what the admin
is told when setting them, what members read in /quota show, and what /imagine then accepts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot
from tests.e2e.test_quotas import query
from tests.e2e.test_typed_back import refusal_of


def content(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    data = answer_data(discord_fake, interaction)
    assert data.get("flags", 0) & 64, f"answered privately, not {data}"
    assert data["allowed_mentions"]["parse"] == [], "naming people pings nobody"
    return str(data.get("content") or "")


async def quota_shown(discord_fake: FakeDiscord, user_id: int) -> dict[str, str]:
    """A member's own /quota show, as {field name: value}."""
    shown = await answered(discord_fake, "quota show", {}, user_id=user_id)
    data = answer_data(discord_fake, shown)
    assert data["flags"] & 64
    return {field["name"]: field["value"] for field in data["embeds"][0]["fields"]}


def admin(discord_fake: FakeDiscord) -> dict[str, Any]:
    return {"user_id": discord_fake.admin_id}


async def test_a_role_tier_applies_in_place_of_the_default_and_show_names_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The shipped default (daily 25, no weekly or monthly limit) was always the "most generous" candidate:
    `/quota set role:@Moderator daily:100 monthly:2000` answered as if set, yet a moderator read "0 of 25 used",
    footer "Limits: default"."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    assert (settings.quotas.daily, settings.quotas.weekly, settings.quotas.monthly) == (25, None, None)
    running = await start_bot(settings, discord_fake, Clock())
    role = discord_fake.moderator_role_id
    try:
        told = content(
            discord_fake,
            await answered(
                discord_fake, "quota set", {"role": role, "daily": 100, "monthly": 2000}, **admin(discord_fake)
            ),
        )
        moderator = await quota_shown(discord_fake, discord_fake.moderator_id)
        member = await quota_shown(discord_fake, discord_fake.member_id)
    finally:
        await running.close()
    assert told.startswith(
        f"Quota tier for <@&{role}>: daily 100, no weekly limit, monthly 2000, 2 at once (the bot's default)."
    ), told
    assert moderator["Today"].startswith("0 of 100 used · **100 left**"), moderator
    assert moderator["This week"] == "0 used · no limit"
    assert moderator["This month"].startswith("0 of 2000 used · **2000 left**")
    assert moderator["Generating now"] == "0 of 2"
    assert moderator["Limits set by"] == (
        f"The tier for <@&{role}>: daily 100, no weekly limit, monthly 2000\nThe bot's defaults: 2 at once"
    )
    # Without the role: the defaults, named as such.
    assert member["Today"].startswith("0 of 25 used")
    assert member["Limits set by"] == "The bot's defaults: daily 25, no weekly limit, no monthly limit, 2 at once"
    assert query(settings, "SELECT scope, target_id, daily, weekly, monthly, in_flight FROM quota_limits") == [
        ("role", role, 100, None, 2000, None)
    ]


async def test_a_stricter_role_tier_binds(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """`/quota set role:@Moderator daily:1` was silently ignored: the default's daily 25 won."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    moderator = discord_fake.moderator_id
    try:
        await answered(
            discord_fake, "quota set", {"role": discord_fake.moderator_role_id, "daily": 1}, **admin(discord_fake)
        )
        await answered(discord_fake, "imagine", {"prompt": "the one a day"}, user_id=moderator)
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("delivered",)], timeout=30)
        refused = content(
            discord_fake, await answered(discord_fake, "imagine", {"prompt": "a second"}, user_id=moderator)
        )
    finally:
        await running.close()
    assert "you have used 1 of your 1 daily units" in refused, refused
    assert query(settings, "SELECT COUNT(*) FROM jobs") == [(1,)]


async def test_a_member_override_changes_only_the_limits_it_names(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`/quota set member:X daily:10` stored "no limit" for everything else and said so ("weekly unlimited,
    monthly unlimited, in flight unlimited"): the member lost their tier's monthly cap and could run any number
    of requests at once. What is left out now stays as their roles and the defaults give it, and the admin is
    told what applies and why. (No request waits its turn here: the limit at once refuses, and shows.)"""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"waiting_per_user": 0})
    seaart.hold(True)  # keep requests generating, so the limit on requests at once shows
    running = await start_bot(settings, discord_fake, Clock())
    moderator, role = discord_fake.moderator_id, discord_fake.moderator_role_id
    try:
        await answered(discord_fake, "quota set", {"role": role, "monthly": 2000}, **admin(discord_fake))
        told = content(
            discord_fake,
            await answered(discord_fake, "quota set", {"member": moderator, "daily": 10}, **admin(discord_fake)),
        )
        shown = await quota_shown(discord_fake, moderator)
        asked = await asyncio.gather(
            *(discord_fake.slash_command("imagine", {"prompt": f"at once {n}"}, user_id=moderator) for n in range(3))
        )
        await discord_fake.wait_for(lambda: all(i.callbacks for i in asked), timeout=30)
        refusals = [
            str(answer_data(discord_fake, i).get("content"))
            for i in asked
            if i.callbacks[0]["type"] == 4 and answer_data(discord_fake, i).get("flags", 0) & 64
        ]
        seaart.hold(False)
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") == [(2,)], timeout=30
        )
    finally:
        await running.close()
    assert told == (
        f"Quota override for <@{moderator}>: daily 10.\n"
        f"<@{moderator}>'s limits now:\n"
        "The member's own override: daily 10\n"
        f"The tier for <@&{role}>: no weekly limit, monthly 2000\n"
        "The bot's defaults: 2 at once"
    ), told
    assert shown["Today"].startswith("0 of 10 used") and shown["This month"].startswith("0 of 2000 used")
    assert shown["Limits set by"].startswith("Your own override: daily 10\n"), shown
    refused = "You already have 2 request(s) generating (limit 2). Wait for one to finish, or cancel one."
    assert [refusal_of(text) for text in refusals] == [refused]
    assert query(settings, "SELECT COUNT(*) FROM jobs") == [(2,)]
    assert query(settings, "SELECT daily, weekly, monthly, in_flight FROM quota_limits WHERE scope = 'user'") == [
        (10, None, None, None)
    ]


async def test_an_override_names_a_limit_or_is_cleared(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """An empty `/quota set member:X` stored an override of no limits at all; `clear` beside limits dropped
    the limits without a word."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    member = discord_fake.member_id
    try:
        empty = content(
            discord_fake, await answered(discord_fake, "quota set", {"member": member}, **admin(discord_fake))
        )
        both = content(
            discord_fake,
            await answered(
                discord_fake, "quota set", {"member": member, "daily": 5, "clear": True}, **admin(discord_fake)
            ),
        )
        nothing = content(
            discord_fake,
            await answered(discord_fake, "quota set", {"member": member, "clear": True}, **admin(discord_fake)),
        )
    finally:
        await running.close()
    assert empty.startswith("Name at least one limit"), empty
    assert both.startswith("`clear` removes the override or tier as a whole"), both
    assert nothing == f"<@{member}> has no quota override; nothing changed."
    assert query(settings, "SELECT COUNT(*) FROM quota_limits") == [(0,)]
    assert query(settings, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'quota%'") == [(0,)]


async def test_a_zero_limit_says_an_admin_set_it_and_promises_no_wait(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """With in_flight 0 a member read "You already have 0 request(s) generating (limit 0). Wait for one to
    finish, or cancel one."; with daily 0, "used 0 of your 0 daily units ... resets <t:...>". Neither wait
    changes anything."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    member = discord_fake.member_id
    try:
        await answered(discord_fake, "quota set", {"member": member, "in_flight": 0}, **admin(discord_fake))
        at_once = content(discord_fake, await answered(discord_fake, "imagine", {"prompt": "a fox"}))
        flight_shown = await quota_shown(discord_fake, member)
        await answered(discord_fake, "quota set", {"member": member, "daily": 0}, **admin(discord_fake))
        daily = content(discord_fake, await answered(discord_fake, "imagine", {"prompt": "a fox"}))
        daily_batch = content(discord_fake, await answered(discord_fake, "imagine", {"prompt": "foxes", "count": 2}))
        daily_shown = await quota_shown(discord_fake, member)
    finally:
        await running.close()
    assert at_once.startswith("An admin has set your quota of requests generating at once to 0"), at_once
    assert flight_shown["Generating now"] == "0 · limit 0, set by an admin"
    assert daily.startswith("An admin has set your daily quota to 0 units"), daily
    assert refusal_of(daily_batch) == refusal_of(daily)  # each with its own prompt given back
    for refusal in (at_once, daily, daily_batch):
        assert "Wait for one" not in refusal and "<t:" not in refusal and "resets" not in refusal
    assert daily_shown["Today"] == "0 used · limit 0, set by an admin"
    assert query(settings, "SELECT COUNT(*) FROM jobs") == [(0,)]


async def test_limits_that_contradict_each_other_are_refused_and_not_saved(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """`/quota set member:X daily:100 weekly:3` and `role:@Moderator daily:50 monthly:5` were saved, though the
    config refuses a shorter window above a longer one at load: the longer limit binds first, and the shorter
    can never be reached. An override is checked with the limits it leaves as they were."""
    settings = make_settings(tmp_path, discord_fake, seaart)  # the default: daily 25
    running = await start_bot(settings, discord_fake, Clock())
    member, moderator, role = discord_fake.member_id, discord_fake.moderator_id, discord_fake.moderator_role_id

    async def told(options: dict[str, Any]) -> str:
        return content(discord_fake, await answered(discord_fake, "quota set", options, **admin(discord_fake)))

    try:
        override = await told({"member": member, "daily": 100, "weekly": 3})
        below_default = await told({"member": member, "weekly": 10})
        tier = await told({"role": role, "daily": 50, "monthly": 5})
        await told({"role": role, "monthly": 20})
        below_tier = await told({"member": moderator, "daily": 30})
        fits = await told({"member": moderator, "daily": 30, "monthly": 40})
    finally:
        await running.close()
    never = "can never be reached"
    assert override == (
        f"Not saved: with this override <@{member}> would have daily 100 and weekly 3. A daily limit above the "
        f"weekly one {never} (the weekly limit always binds first): lower daily or raise weekly (an override may "
        f"name both). <@{member}>'s limits are unchanged."
    ), override
    assert below_default.startswith(
        f"Not saved: with this override <@{member}> would have daily 25 (from the bot's defaults, which the "
        "override leaves as is) and weekly 10."
    ), below_default
    assert tier == (
        f"Not saved: the tier for <@&{role}> would have daily 50 and monthly 5. A daily limit above the monthly "
        f"one {never} (the monthly limit always binds first): lower daily or raise monthly. The tier is unchanged."
    ), tier
    assert below_tier.startswith(
        f"Not saved: with this override <@{moderator}> would have daily 30 and monthly 20 (from the tier for "
        f"<@&{role}>, which the override leaves as is)."
    ), below_tier
    assert fits.startswith(f"Quota override for <@{moderator}>: daily 30, monthly 40."), fits
    assert query(settings, "SELECT scope, target_id, daily, weekly, monthly FROM quota_limits ORDER BY scope") == [
        ("role", role, None, None, 20),
        ("user", moderator, 30, None, 40),
    ]
    assert query(settings, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'quota%'") == [(2,)]


async def test_an_override_lifts_a_member_to_no_limit_over_their_tier(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """An override stored NULL for "leave this limit as the tiers give it", and nothing else could mean "no
    limit": an admin could raise a member's daily cap to any number but not lift it, short of the unlimited
    role, which lifts every limit at once. `no_limit:` lifts the windows it names and nothing else."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    moderator, role = discord_fake.moderator_id, discord_fake.moderator_role_id
    try:
        await answered(discord_fake, "quota set", {"role": role, "daily": 1, "monthly": 40}, **admin(discord_fake))
        for_role = content(
            discord_fake,
            await answered(discord_fake, "quota set", {"role": role, "no_limit": "daily"}, **admin(discord_fake)),
        )
        both = content(
            discord_fake,
            await answered(
                discord_fake,
                "quota set",
                {"member": moderator, "no_limit": "daily and weekly", "weekly": 5},
                **admin(discord_fake),
            ),
        )
        unknown = content(
            discord_fake,
            await answered(
                discord_fake,
                "quota set",
                {"member": moderator, "no_limit": "hourly"},
                unchecked=True,
                **admin(discord_fake),
            ),
        )
        refused_rows = query(settings, "SELECT scope, daily, weekly, monthly FROM quota_limits ORDER BY scope")
        told = content(
            discord_fake,
            await answered(
                discord_fake, "quota set", {"member": moderator, "no_limit": "daily"}, **admin(discord_fake)
            ),
        )
        asked = await asyncio.gather(
            *(discord_fake.slash_command("imagine", {"prompt": f"fox {n}"}, user_id=moderator) for n in range(2))
        )
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") == [(2,)], timeout=30
        )
        shown = await quota_shown(discord_fake, moderator)
    finally:
        await running.close()
    assert for_role.startswith("`no_limit` is for a member's override."), for_role
    assert both == "`no_limit: daily and weekly` and `weekly` name the same limit: give a number or no limit, not both."
    assert unknown.startswith("`no_limit` takes one of: daily, weekly, monthly,"), unknown
    assert refused_rows == [("role", 1, None, 40)], "a refused command stores nothing"
    assert told == (
        f"Quota override for <@{moderator}>: no daily limit.\n"
        f"<@{moderator}>'s limits now:\n"
        "The member's own override: no daily limit\n"
        f"The tier for <@&{role}>: no weekly limit, monthly 40\n"
        "The bot's defaults: 2 at once"
    ), told
    assert all(not answer_data(discord_fake, i).get("flags", 0) & 64 for i in asked), "neither was refused"
    assert shown["Today"].startswith("2 used · no limit"), shown
    assert shown["This month"].startswith("2 of 40 used"), shown
    assert query(settings, "SELECT daily, weekly, monthly, in_flight FROM quota_limits WHERE scope = 'user'") == [
        (-1, None, None, None)
    ]
    assert query(
        settings, "SELECT reason FROM audit_log WHERE action = 'quota_override' AND target_id = ?", moderator
    ) == [("no daily limit (before: none)",)]
