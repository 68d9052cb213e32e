"""/mod log: the audit log read in Discord, newest first, narrowed to a member or a kind, in pages."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import discord

from bot.config import Settings
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot


def insert_older_rows(settings: Settings, guild_id: int, rows: list[tuple[object, ...]]) -> None:
    """Audit rows as an older version wrote them: no summary, at the times given (oldest first)."""
    with sqlite3.connect(settings.database.path) as conn:
        conn.executemany(
            "INSERT INTO audit_log (guild_id, action, actor_id, target_id, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(guild_id, *row) for row in rows],
        )


async def mod_log(discord_fake: FakeDiscord, **options: object) -> str:
    reply = answer_data(
        discord_fake, await answered(discord_fake, "mod log", dict(options), user_id=discord_fake.moderator_id)
    )
    assert reply["flags"] & 64, reply  # for the moderator alone
    content = str(reply["content"])
    assert len(content) <= 2000, len(content)
    return content


async def test_the_audit_log_is_read_newest_first_narrowed_by_member_or_kind(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A ban, a blocked term, a prompt it refused, an admin's grant and the unban are listed newest first, in the
    words the log channel was sent (the refused prompt quoted); a row an older version wrote, with no such words,
    is described from its columns. `member:` keeps what they did or what was done to them, `kind:` one kind."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 10})
    mod, member, other = discord_fake.moderator_id, discord_fake.member_id, discord_fake.other_member_id
    running = await start_bot(settings, discord_fake, Clock())
    try:
        # Before anything happened here: nothing to read, said so.
        empty = await mod_log(discord_fake)
        insert_older_rows(settings, discord_fake.guild_id, [("ban", mod, member, "an old grudge", time.time() - 86400)])
        await answered(discord_fake, "mod ban", {"member": other, "reason": "spam"}, user_id=mod)
        await answered(discord_fake, "mod blockterm add", {"term": "forbidden"}, user_id=mod)
        await answered(discord_fake, "imagine", {"prompt": "a forbidden fruit"})
        await answered(discord_fake, "quota grant", {"member": member, "units": 5}, user_id=discord_fake.admin_id)
        await answered(discord_fake, "mod unban", {"member": other}, user_id=mod)
        everything = await mod_log(discord_fake)
        about_other = await mod_log(discord_fake, member=other)
        quotas = await mod_log(discord_fake, kind="quotas and defaults")
        none_of_that_kind = await mod_log(discord_fake, member=other, kind="blocks")
    finally:
        await running.close()
    assert empty == "Nothing in the audit log yet."
    lines = everything.splitlines()
    assert lines[0].startswith("Audit log, newest first (all;"), lines[0]
    said = [
        f"<@{mod}> unbanned <@{other}>.",
        f"<@{discord_fake.admin_id}> granted 5 unit(s) to <@{member}>",
        "a forbidden fruit",
        f"<@{mod}> blocked the term `forbidden`.",
        f"<@{mod}> banned <@{other}>",
        f"<@{mod}> banned <@{member}>: an old grudge",  # the older version's row, described
    ]
    found = [next((i for i, line in enumerate(lines) if words in line), None) for words in said]
    assert None not in found and found == sorted(found), (found, everything)
    assert len(lines) == 1 + len(said), lines
    assert all(line.startswith("<t:") for line in lines[1:]), lines
    blocked = lines[found[2] or 0]
    assert "prompt: a forbidden fruit" in blocked and f"<@{member}>" in blocked, blocked

    other_lines = about_other.splitlines()
    assert other_lines[0].startswith(f"Audit log by or about <@{other}>, newest first"), other_lines[0]
    assert [("unbanned" in line, "banned" in line) for line in other_lines[1:]] == [(True, True), (False, True)]
    assert len(quotas.splitlines()) == 2 and "granted" in quotas.splitlines()[1], quotas
    assert none_of_that_kind == f"Nothing in the audit log by or about <@{other}> of the kind blocks yet."


async def test_a_long_audit_log_is_read_in_pages_each_within_a_message(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Sixty events of long reasons fill several pages: each starts with the heading, ends saying how many
    follow and the command for the next (with the same narrowing), and fits Discord's 2,000 characters; every
    event is on exactly one page, and a page past the last says which is the last."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    mod, member = discord_fake.moderator_id, discord_fake.member_id
    start = time.time() - 3600
    running = await start_bot(settings, discord_fake, Clock())
    try:
        insert_older_rows(
            settings,
            discord_fake.guild_id,
            [("ban", mod, member, f"reason {n:02d} " + "x" * 150, start + n) for n in range(60)],
        )
        first = await mod_log(discord_fake, kind="bans")
        pages = int(first.splitlines()[-1].split(" of ")[1].split(":")[0])
        rest = [await mod_log(discord_fake, kind="bans", page=n) for n in range(2, pages + 1)]
        past = await mod_log(discord_fake, kind="bans", page=pages + 1)
    finally:
        await running.close()
    assert pages >= 3, first
    assert "`/mod log kind:bans page:2`" in first.splitlines()[-1], first.splitlines()[-1]
    shown: list[str] = []
    for page in [first, *rest]:
        lines = page.splitlines()
        assert lines[0].startswith("Audit log of the kind bans, newest first"), lines[0]
        shown += [line.split("reason ")[1][:2] for line in lines[1:] if "reason " in line]
    assert shown == [f"{n:02d}" for n in reversed(range(60))]
    assert past == f"There are only {pages} pages: `/mod log kind:bans page:{pages}` is the last."


async def test_before_reaches_past_the_newest_events_and_skips_none(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """/mod log reads the newest 500 events that match, and older ones could not be reached by any option: a
    busy server's log ended a few days back. The heading of a full list now names the `before:` that continues
    it; typed back, it lists the older events, the last second of the list before included (rounded up, so
    none is skipped). A date that is not one is refused in words."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    mod, member = discord_fake.moderator_id, discord_fake.member_id
    start = int(time.time()) - 2 * 86400
    running = await start_bot(settings, discord_fake, Clock())
    try:
        insert_older_rows(
            settings,
            discord_fake.guild_id,
            [("ban", mod, member, f"reason {n:03d}", start + n * 60 + 0.5) for n in range(520)],
        )
        newest = await mod_log(discord_fake, kind="bans")
        hint = newest.splitlines()[0].split("`before:")[1].split("`")[0]
        older = await mod_log(discord_fake, kind="bans", before=hint)
        by_date = await mod_log(discord_fake, kind="bans", before="2001-01-01")
        reply = answer_data(
            discord_fake,
            await answered(discord_fake, "mod log", {"before": "last week"}, user_id=mod),
        )
    finally:
        await running.close()
    assert newest.splitlines()[0].startswith("Audit log of the kind bans, newest first (the newest 500; older ones:")
    assert hint == datetime.fromtimestamp(start + 20 * 60 + 1, UTC).strftime("%Y-%m-%dT%H:%M:%S"), hint
    lines = older.splitlines()
    assert lines[0].startswith("Audit log of the kind bans before <t:"), lines[0]
    assert "(all;" in lines[0], lines[0]
    assert [line.split("reason ")[1] for line in lines[1:]] == [f"{n:03d}" for n in reversed(range(21))], older
    assert by_date.startswith("Nothing in the audit log of the kind bans before <t:"), by_date
    assert reply["flags"] & 64 and "before: 'last week' is not an ISO date" in str(reply["content"]), reply


async def test_before_takes_a_messages_link_or_a_discord_timestamp(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """What a moderator has at hand when asking what happened before something they see: the message's link (Copy
    Message Link), its id, or a Discord timestamp. Each lists the events before that moment (the log's time zone plays
    no part: a link names its own moment)."""
    settings = make_settings(tmp_path, discord_fake, seaart)
    mod, member = discord_fake.moderator_id, discord_fake.member_id
    start = int(time.time()) - 3600
    running = await start_bot(settings, discord_fake, Clock())
    try:
        insert_older_rows(
            settings,
            discord_fake.guild_id,
            [("ban", mod, member, "early", start), ("unban", mod, member, "late", start + 600)],
        )
        # A message posted between the two (its id carries the moment).
        between = discord.utils.time_snowflake(datetime.fromtimestamp(start + 300, UTC))
        link = f"https://discord.com/channels/{discord_fake.guild_id}/{discord_fake.channel_id}/{between}"
        by_link = await mod_log(discord_fake, before=link)
        by_id = await mod_log(discord_fake, before=str(between))
        by_stamp = await mod_log(discord_fake, before=f"<t:{start + 300}:f>")
    finally:
        await running.close()
    for listed in (by_link, by_id, by_stamp):
        assert f"before <t:{start + 300}:f>" in listed.splitlines()[0], listed
        assert "early" in listed and "late" not in listed, listed
