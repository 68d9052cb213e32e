"""The link that adds the bot to a server, asking for exactly the permissions it uses.

Ticking the permissions one by one in the developer portal's URL generator is where a new operator goes wrong (Read
Message History, say, left out: replies to images go unanswered). The permissions are those ``/admin check`` looks
for (bot/channel_rights.py ``EVERY_RIGHT``), so the two never disagree. ``bananacord check`` prints the link from the
token's bot id, and the running bot logs it from the application's id, which Discord sends at login.
"""

from __future__ import annotations

import base64
import binascii

import discord

from bot.channel_rights import EVERY_RIGHT

SCOPES = ("bot", "applications.commands")


def permissions() -> discord.Permissions:
    """Every permission the bot uses in a channel, and no other."""
    return discord.Permissions(**{right.flag: True for right in EVERY_RIGHT})


def invite_url(application_id: int) -> str:
    """The link that adds the application's bot to a server the opener manages, with ``permissions()``."""
    return discord.utils.oauth_url(application_id, permissions=permissions(), scopes=SCOPES)


def bot_id_of(token: str) -> int | None:
    """The bot's user id, which a token begins with (its digits in base64), or None for a text that is no token.
    An application made since 2017 or so has the same id; an older one's may differ (the portal shows it)."""
    head = token.strip().split(".", 1)[0]
    try:
        digits = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode("ascii")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    # A snowflake: 17 to 20 digits.
    return int(digits) if digits.isdigit() and 17 <= len(digits) <= 20 else None
