"""`bananacord privacy`: the operator shows, exports and erases what the bot keeps of one member in every server
(bot/privacy_cli.py), the real CLI on the database the real bot wrote; the bot, started again, draws the messages
again without the words."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.store.lock import DatabaseLock
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answered, make_settings, start_bot
from tests.e2e.test_missed_reactions import copy_of_row
from tests.e2e.test_privacy import stored
from tests.e2e.test_rework import imagine
from tests.e2e.test_star_reaction import stars
from tests.test_cli import cli, config, one_line

ELSEWHERE = 777  # another server the member used the bot in


async def privacy(tmp_path: Path, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "operator"
    folder.mkdir(exist_ok=True)
    cfg = config(folder, db=settings.database.path)
    return await asyncio.to_thread(cli, folder, "privacy", *args, "--config", str(cfg))


async def test_the_operator_shows_exports_and_erases_a_member_s_words_in_every_server(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    clock = Clock()
    member, other, guild = discord_fake.member_id, discord_fake.other_member_id, discord_fake.guild_id
    running = await start_bot(settings, discord_fake, clock)
    try:
        image = await imagine(discord_fake, {"prompt": "my secretword kitchen"})
        await imagine(discord_fake, {"prompt": "their lighthouse"}, user_id=other)
        await answered(discord_fake, "preferences", {"suffix": "in my secretword style"})
        assert await discord_fake.react(image.id, "⭐")
        await discord_fake.wait_for(lambda: len(stars(settings)) == 1, timeout=10)
    finally:
        await running.close()
    (mine,) = stored(settings, f"SELECT id FROM jobs WHERE user_id = {member}")
    copy_of_row(settings, mine[0], id="e1sewhere0000001", guild_id=ELSEWHERE, message_id=None)  # used elsewhere too
    asked = stored(settings, f"SELECT created_at FROM jobs WHERE id = '{mine[0]}'")[0][0]
    day = datetime.fromtimestamp(asked, UTC).date().isoformat()

    shown = await privacy(tmp_path, settings, "show", "--user", str(member))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"member {member}:",
        f"  server {ELSEWHERE}: 1 request(s) with their words since {day}, no preferences, 0 star(s)",
        f"  server {guild}: 1 request(s) with their words since {day}, preferences set, 1 star(s)",
    ]

    out = tmp_path / "for-them"
    exported = await privacy(tmp_path, settings, "export", "--user", str(member), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"requests-{ELSEWHERE}.csv", f"requests-{guild}.csv"])
    with (out / f"requests-{guild}.csv").open(encoding="utf-8") as file:
        (row,) = list(csv.DictReader(file))
    assert row["job_id"] == mine[0] and "secretword kitchen" in row["prompt"] and row["words_erased"] == "no"
    again = await privacy(tmp_path, settings, "export", "--user", str(member), "--out", str(out))
    assert again.returncode == 1 and "exists already" in one_line(again.stderr)

    # With the bot running (it holds the database's lock), the erasure is refused: nothing erased.
    with DatabaseLock(settings.database.path):
        refused = await privacy(tmp_path, settings, "erase", "--user", str(member))
    assert refused.returncode == 1 and "in use" in one_line(refused.stderr), refused.stderr
    assert stored(settings, "SELECT COUNT(*) FROM jobs WHERE erased_at IS NOT NULL") == [(0,)]

    erased = await privacy(tmp_path, settings, "erase", "--user", str(member))
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.splitlines() == [
        f"server {ELSEWHERE}: erased the words of 1 request(s) and 0 star(s)",
        f"server {guild}: erased the words of 1 request(s), their preferences and 1 star(s)",
        "the bot draws their messages and DMs again without the words at its next start",
    ]
    kept = stored(settings, "SELECT user_id, erased_at IS NOT NULL, request_json FROM jobs ORDER BY user_id")
    assert [(who, gone) for who, gone, _ in kept] == sorted([(member, 1), (member, 1), (other, 0)])
    assert all("secretword" not in words for who, _, words in kept if who == member)
    assert stored(settings, "SELECT COUNT(*) FROM member_preferences") == [(0,)] and stars(settings) == []
    audit = stored(settings, "SELECT guild_id, actor_id, target_id FROM audit_log WHERE action = 'privacy_erased'")
    assert sorted(audit) == sorted([(ELSEWHERE, None, member), (guild, None, member)])

    # The bot, started again, draws the message again without the words.
    running = await start_bot(settings, discord_fake, clock)
    try:
        await discord_fake.wait_for(
            lambda: (
                stored(settings, "SELECT COUNT(*) FROM jobs WHERE erased_at > 0 AND erasure_shown_at IS NULL") == [(0,)]
            ),
            timeout=10,
        )
        await discord_fake.wait_for(lambda: "secretword" not in json.dumps(discord_fake.messages[image.id].embeds))
        await asyncio.sleep(0.5)  # its reading of the reactions given while it was away, done
    finally:
        await running.close()
    # The member's ⭐ still on the message is the one the erasure took away: not given back.
    assert stars(settings) == []

    # Again: nothing more to erase, and nothing more in the audit log.
    twice = await privacy(tmp_path, settings, "erase", "--user", str(member), "--guild", str(guild))
    assert twice.stdout.splitlines()[0] == f"server {guild}: erased the words of 0 request(s) and 0 star(s)"
    assert len(stored(settings, "SELECT 1 FROM audit_log WHERE action = 'privacy_erased'")) == 2


async def test_the_operator_s_mistakes_are_refused_in_one_line_and_change_nothing(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart)
    running = await start_bot(settings, discord_fake)
    try:
        await imagine(discord_fake, {"prompt": "kept"})
    finally:
        await running.close()
    nobody = await privacy(tmp_path, settings, "erase", "--user", "12345")
    assert (nobody.returncode, nobody.stdout) == (0, "the bot keeps nothing of member 12345 in any server\n")
    elsewhere = await privacy(tmp_path, settings, "show", "--user", str(discord_fake.member_id), "--guild", "99")
    assert elsewhere.stdout == f"the bot keeps nothing of member {discord_fake.member_id} in server 99\n"
    for args, says in (
        (["show", "--user", "0"], "--user 0 is not a Discord id"),
        (["erase", "--user", str(discord_fake.member_id), "--out", "x"], "privacy erase takes no --out"),
    ):
        result = await privacy(tmp_path, settings, *args)
        assert result.returncode == 1 and says in one_line(result.stderr), result.stderr
    assert stored(settings, "SELECT COUNT(*) FROM jobs WHERE erased_at IS NOT NULL") == [(0,)]
