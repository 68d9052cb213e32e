"""The link that adds the bot to a server (bot/invite.py): the permissions `/admin check` looks for and no other,
printed by `bananacord check` from the token's bot id and logged by the running bot from its application's id."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from bot.channel_rights import EVERY_RIGHT
from bot.invite import bot_id_of, invite_url, permissions
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, make_settings, start_bot
from tests.test_cli import cli

BOT_ID = 1579606869092073470


def token_of(bot_id: int) -> str:
    """A token shaped as Discord's: the bot's id in base64 (unpadded), a timestamp, a signature."""
    head = base64.b64encode(str(bot_id).encode()).decode().rstrip("=")
    return f"{head}.GxYz12.abcdefghijklmnopqrstuvwxyz0123456789ABCD"


def test_the_link_asks_for_every_permission_admin_check_looks_for_and_no_other() -> None:
    query = parse_qs(urlsplit(invite_url(BOT_ID)).query)
    assert query["client_id"] == [str(BOT_ID)]
    assert query["scope"] == ["bot applications.commands"]  # slash commands need the second
    asked = discord.Permissions(int(query["permissions"][0]))
    assert all(getattr(asked, right.flag) for right in EVERY_RIGHT)
    assert bin(asked.value).count("1") == len(EVERY_RIGHT)  # and no other
    # As Discord numbers them: View Channel, Send Messages, Send Messages in Threads, Read Message History, Embed
    # Links, Attach Files, Add Reactions; nothing that lets the bot manage the server or its members.
    assert asked.value == (1 << 10) | (1 << 11) | (1 << 38) | (1 << 16) | (1 << 14) | (1 << 15) | (1 << 6)
    assert not (asked.administrator or asked.manage_messages or asked.manage_guild or asked.mention_everyone)
    assert permissions() == asked


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (token_of(BOT_ID), BOT_ID),
        (f"  {token_of(BOT_ID)}\n", BOT_ID),  # as pasted
        ("not-a-token", None),
        (base64.b64encode(b"hello").decode() + ".x.y", None),  # base64, not digits
        (base64.b64encode(b"123").decode() + ".x.y", None),  # too short for an id
        ("%%%.x.y", None),
        ("", None),
    ],
)
def test_the_bot_id_is_read_from_a_token_and_nothing_from_anything_else(token: str, expected: int | None) -> None:
    assert bot_id_of(token) == expected


def test_check_prints_the_link_and_never_the_token(tmp_path: Path) -> None:
    token = token_of(BOT_ID)
    result = cli(tmp_path, "check", env={"DISCORD_TOKEN": token})
    lines = [line for line in result.stdout.splitlines() if line.startswith("invite:")]
    assert lines == [f"invite:      {invite_url(BOT_ID)}"]
    assert token not in result.stdout + result.stderr
    assert token.split(".")[0] not in result.stdout + result.stderr
    # A token that carries no id: no link, and the check goes on as before.
    plain = cli(tmp_path, "check", env={"DISCORD_TOKEN": "cli-token"})
    assert "invite:" not in plain.stdout and "provider:" in plain.stdout


async def test_the_running_bot_logs_its_link_and_warns_with_it_while_no_server_has_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    settings = make_settings(tmp_path, discord_fake, seaart)
    expected = f"add the bot to a server with {invite_url(discord_fake.application_id)}"

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "bot.app" and r.getMessage() == expected]

    for in_a_server, level in ((True, logging.INFO), (False, logging.WARNING)):
        if not in_a_server:
            await discord_fake.remove_bot(seen=False)  # its next READY lists no server
        caplog.clear()
        running = await start_bot(settings, discord_fake, clock)
        try:
            await discord_fake.wait_for(lambda: bool(logged()), timeout=10)
            assert bool(running.bot.guilds) is in_a_server
        finally:
            await running.close()
        assert [r.levelno for r in logged()] == [level]
