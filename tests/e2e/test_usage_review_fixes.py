"""/usage, /quota show and /admin defaults as a review found them answering "something went wrong", showing a
member's name as Markdown, or saving what they should refuse. Through the real bot and the fake Discord.

  * a custom period the report cannot show (until 9999-12-31T23:59:59.999999, a since in year 1 with the
    quota zone ahead of UTC) is refused in one private line, as `bananacord usage` refuses it; one it can
    show (until:9999-12-31, a since before the reset hour of 1 Jan 0001) is reported;
  * a period named together with since/until is refused (it was ignored);
  * a member who has left the server can still be reported on (/usage report, /quota show), and a command
    that acts on members says plainly that they are not in the server (/quota set);
  * /admin defaults max_count out of 1..4 is refused, nothing saved (0 kept the old cap, -3 or 99 were saved);
  * a display name is shown as written in the titles, not as Markdown.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.discord.driver import INTERACTION_COMMAND
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answer_given, answered, make_settings, start_bot
from tests.discord_markdown import as_read, live_markdown

GONE = 555_000_000_000_000_001  # a user who was a member, and has left the server
APOLOGY = "something went wrong"


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def refusal(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """A private one-line text answer (no embed, no file)."""
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    assert not data.get("embeds") and not data.get("attachments"), data
    text = str(data["content"])
    assert "\n" not in text and APOLOGY not in text, text
    return text


def embed(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, Any]:
    data = answer_data(discord_fake, interaction)
    assert data["flags"] & 64, "answered privately"
    assert data.get("embeds"), data.get("content")
    shown: dict[str, Any] = data["embeds"][0]
    return shown


def fields(shown: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in shown["fields"]}


async def as_departed(
    discord_fake: FakeDiscord, name: str, options: dict[str, Any], *, user_id: int
) -> FakeInteraction:
    """``name`` with a user option naming someone no longer in the server: Discord resolves them under
    ``users`` only, with no ``members`` entry (the fake always sends both for a user option)."""
    await discord_fake._wait_for_live_connection()
    await discord_fake._wait_for_sync_if_none_yet(name.split()[0])
    data = discord_fake._command_data(name, options, focused=None)
    del data["resolved"]["members"]
    interaction = await discord_fake._dispatch_interaction(INTERACTION_COMMAND, data, user_id=user_id, channel_id=None)
    await answer_given(discord_fake, interaction)
    return interaction


def charge(settings: Settings, guild_id: int, user_id: int, at: float) -> None:
    """One commit row in the ledger, as a delivered image leaves it."""
    with sqlite3.connect(settings.database.path) as conn:
        conn.execute(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, units, cost_micro_usd, model, provider, size, "
            "window_at, created_at, reason, bypass) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (guild_id, user_id, "j1", "commit", 1, 40_000, "nano_banana_2", "seaart", "1K", at, at, None, 0),
        )


# ---- 1. bounds a report cannot show, and the edges of the calendar ------------------------------------


async def test_an_until_past_9999_is_refused_and_until_9999_12_31_reported(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """until:9999-12-31T23:59:59.999999 rounds, as a Unix time, into the year 10000; until:9999-12-31 is the
    last quota day's start, and the report named the day before it by adding a day to 31 Dec 9999
    (OverflowError). Both answered "something went wrong" with an ERROR and a traceback."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    admin = {"user_id": discord_fake.admin_id}
    try:
        rounds = await answered(
            discord_fake, "usage report", {"since": "2026-01-01", "until": "9999-12-31T23:59:59.999999"}, **admin
        )
        forever = await answered(discord_fake, "usage report", {"since": "2026-01-01", "until": "9999-12-31"}, **admin)
        member = await answered(
            discord_fake,
            "usage report",
            {"since": "2026-01-01", "until": "9999-12-31", "member": discord_fake.member_id},
            **admin,
        )
    finally:
        await running.close()
    assert refusal(discord_fake, rounds) == (
        "until: '9999-12-31T23:59:59.999999' is past the last moment a report can show (years 1 to 9999, in UTC): "
        "give an earlier end"
    )
    for interaction in (forever, member):
        assert embed(discord_fake, interaction)["description"] == (
            "1 Jan 2026 – 30 Dec 9999 (quota days start at 00:00 UTC)"
        )
    assert errors(caplog) == []


async def test_a_since_before_year_1_in_utc_is_refused_in_a_zone_ahead_of_utc(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """With the quota zone 14 hours ahead of UTC, since:0001-01-01 starts 14 hours before year 1 in UTC
    (ValueError: year 0 is out of range, "something went wrong"); the CLI refused it in one line."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"timezone": "Etc/GMT-14"})
    running = await start_bot(settings, discord_fake, Clock())
    admin = {"user_id": discord_fake.admin_id}
    try:
        early = await answered(discord_fake, "usage report", {"since": "0001-01-01", "until": "2024-01-01"}, **admin)
        first = await answered(
            discord_fake, "usage report", {"since": "0001-01-01T14:00", "until": "2024-01-01"}, **admin
        )
    finally:
        await running.close()
    assert refusal(discord_fake, early) == (
        "since: '0001-01-01' is before the first moment a report can show (years 1 to 9999, in UTC and in "
        "Etc/GMT-14): give a later start"
    )
    # The first moment of year 1 in UTC, and so not the start of a quota day: shown as instants.
    assert embed(discord_fake, first)["description"] == "<t:-62135596800:f> – <t:1704016800:f> (end excluded)"
    assert errors(caplog) == []


async def test_a_since_before_the_first_reset_hour_is_reported(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """With quota days starting at 06:00, 0001-01-01T03:00 belongs to the day before 1 Jan 0001, which no
    date can name: naming it was an OverflowError ("something went wrong"). It is no day's start, so the
    period is shown as instants."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"reset_hour": 6})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        i = await answered(
            discord_fake,
            "usage report",
            {"since": "0001-01-01T03:00", "until": "2024-01-01"},
            user_id=discord_fake.admin_id,
        )
    finally:
        await running.close()
    assert embed(discord_fake, i)["description"] == "<t:-62135586000:f> – <t:1704088800:f> (end excluded)"
    assert errors(caplog) == []


# ---- 6. a period named with since/until ------------------------------------------------------------


async def test_a_period_with_since_or_until_is_refused(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """period:today with since: was a report from since to now, as if no period had been named."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    admin = {"user_id": discord_fake.admin_id}
    try:
        report = await answered(discord_fake, "usage report", {"period": "day", "since": "2026-01-01"}, **admin)
        export = await answered(
            discord_fake, "usage export", {"period": "week", "since": "2026-01-01", "until": "2026-02-01"}, **admin
        )
        custom = await answered(discord_fake, "usage report", {"since": "2026-01-01", "until": "2026-02-01"}, **admin)
        month = await answered(discord_fake, "usage report", {"period": "month"}, **admin)
    finally:
        await running.close()
    assert refusal(discord_fake, report) == (
        "since and until only go with the custom period, not 'day': give either the period or since/until, not both"
    )
    assert refusal(discord_fake, export).startswith("since and until only go with the custom period, not 'week'")
    # since/until alone still make the period; a period alone is still that period.
    assert embed(discord_fake, custom)["description"] == "1 Jan 2026 – 31 Jan 2026 (quota days start at 00:00 UTC)"
    assert embed(discord_fake, month)["title"] == "🍌 Server usage"
    assert errors(caplog) == []


# ---- 2. a member who has left ----------------------------------------------------------------------


async def test_usage_report_and_quota_show_on_a_member_who_left(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, caplog: pytest.LogCaptureFixture
) -> None:
    """Their charges are in the ledger (`bananacord usage --user` reports them); the options took a Member,
    and discord.py refused a user without member data (TransformerError, "something went wrong")."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    charge(settings, discord_fake.guild_id, GONE, time.time() - 60)
    admin = discord_fake.admin_id
    try:
        report = await as_departed(discord_fake, "usage report", {"member": GONE}, user_id=admin)
        quota = await as_departed(discord_fake, "quota show", {"member": GONE}, user_id=admin)
        # /quota set acts on members: refused, saying why.
        setting = await as_departed(discord_fake, "quota set", {"member": GONE, "daily": 5}, user_id=admin)
    finally:
        await running.close()
    shown = embed(discord_fake, report)
    assert shown["title"] == f"🍌 Usage of User {GONE}"
    assert fields(shown)["Charged"] == "1 image(s) · 1 unit(s) · $0.04"
    status = embed(discord_fake, quota)
    assert status["title"] == f"🍌 Quota for User {GONE}"
    assert f"<@{GONE}> is not in this server now" in status["description"]
    assert refusal(discord_fake, setting) == (
        f"<@{GONE}> is not a member of this server (any more), so this command cannot act on them. Nothing was changed."
    )
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM quota_limits").fetchone() == (0,)
    assert errors(caplog) == []


# ---- 3. /admin defaults max_count ------------------------------------------------------------------


async def test_max_count_out_of_range_is_refused_and_nothing_saved(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The Range 1..4 is told to Discord only, and discord.py checks nothing: a hand-made payload's -3 or 99
    was saved (every /imagine then refused: "count must be at least 1"), and 0 kept the old cap
    (``max_count or current``) while the admin was shown the defaults as if set."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake, Clock())
    admin = {"user_id": discord_fake.admin_id, "unchecked": True}
    try:
        await answered(discord_fake, "admin defaults", {"max_count": 2}, **admin)
        refused = {
            count: await answered(discord_fake, "admin defaults", {"max_count": count}, **admin)
            for count in (-3, 0, 5, 99)
        }
    finally:
        await running.close()
    for count, interaction in refused.items():
        assert refusal(discord_fake, interaction) == (
            f"`max_count` must be from 1 to 4 images per /imagine, not {count}. Nothing was changed."
        )
    with sqlite3.connect(settings.database.path) as conn:
        assert conn.execute("SELECT max_count FROM guild_settings").fetchall() == [(2,)]


# ---- 4. display names in titles --------------------------------------------------------------------


async def test_a_display_name_is_shown_as_written_in_titles(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member named "**boss** ~~x~~ __y__" was shown bold, struck through and underlined in the titles of
    /usage report member: and /quota show member:."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    name = "**boss** ~~x~~ __y__ ||z|| `c`"  # 32 characters at most, as Discord allows
    discord_fake.users[discord_fake.member_id]["global_name"] = name
    running = await start_bot(settings, discord_fake, Clock())
    admin = {"user_id": discord_fake.admin_id}
    try:
        usage = await answered(discord_fake, "usage report", {"member": discord_fake.member_id}, **admin)
        quota = await answered(discord_fake, "quota show", {"member": discord_fake.member_id}, **admin)
    finally:
        await running.close()
    for interaction, title in ((usage, f"🍌 Usage of {name}"), (quota, f"🍌 Quota for {name}")):
        shown = embed(discord_fake, interaction)["title"]
        assert live_markdown(shown) == [], shown
        assert as_read(shown) == title
