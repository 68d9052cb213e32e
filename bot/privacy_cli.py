"""`bananacord privacy --user ID [--guild ID] show|export|erase`: what the bot keeps of one member, in every server.

/privacy works in one server, for a member who is in it (or for its admins). A person who asks the bot's operator
instead (by mail, say) to see or erase what it keeps of theirs may have used it in several servers, or left them all.
``show`` and ``export`` only read, so they run beside the bot. ``erase`` erases in each server as /privacy's button
does (bot/store/erasure.py) and keeps it in each server's audit log (``privacy_erased``, by the operator); it holds
the database's lock, so the bot must be stopped: a running bot keeps members' preferences in memory, and would write
an erased suffix back. The messages and DMs that showed the words are drawn again without them by the bot at its
next start (bot/erased_messages.py), as after any erasure it did not finish drawing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.errors import BananacordError
from bot.moderation import ModerationStore
from bot.store import Database
from bot.store.erasure import erase, kept_about, requests_csv, servers_of
from bot.store.lock import DatabaseLock
from bot.usage_cli import check_id, open_current


async def run_privacy(
    settings: Settings,
    action: str,
    *,
    user_id: int,
    guild_id: int | None = None,
    out: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Carry out ``action``; the text to print."""
    check_id("--user", user_id)
    check_id("--guild", guild_id)
    if out is not None and action != "export":
        raise BananacordError(f"privacy {action} takes no --out (only privacy export writes files)")
    if action == "erase":
        with DatabaseLock(settings.database.path):  # no bot may run on it meanwhile (the module's docstring)
            db = await open_current(settings, doing="erase in it")
            try:
                return await _erase(db, user_id, guild_id, clock())
            finally:
                await db.close()
    db = await open_current(settings, doing="read it")
    try:
        servers = await _servers(db, user_id, guild_id)
        if not servers:
            return _nothing(user_id, guild_id)
        if action == "export":
            return await _export(db, user_id, servers, out or Path(f"privacy-{user_id}"))
        return await _show(db, user_id, servers)
    finally:
        await db.close()


async def _servers(db: Database, user_id: int, guild_id: int | None) -> list[int]:
    """The servers where the bot keeps something of the member's: every one, or ``guild_id`` alone."""
    found = await servers_of(db, user_id)
    if guild_id is None:
        return found
    return [guild_id] if guild_id in found else []


def _nothing(user_id: int, guild_id: int | None) -> str:
    where = f"in server {guild_id}" if guild_id is not None else "in any server"
    return f"the bot keeps nothing of member {user_id} {where}\n"


async def _show(db: Database, user_id: int, servers: list[int]) -> str:
    lines = [f"member {user_id}:"]
    for guild in servers:
        kept = await kept_about(db, guild, user_id)
        since = f" since {_day(kept.oldest)}" if kept.oldest is not None else ""
        parts = [f"{kept.requests} request(s) with their words{since}"]
        if kept.unfinished:
            parts.append(f"{kept.unfinished} still generating or waiting")
        if kept.erased:
            parts.append(f"{kept.erased} erased before")
        parts.append("preferences set" if kept.preferences else "no preferences")
        parts.append(f"{kept.stars} star(s)")
        lines.append(f"  server {guild}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


async def _export(db: Database, user_id: int, servers: list[int], out: Path) -> str:
    files = [out / f"requests-{guild}.csv" for guild in servers]
    there = [str(file) for file in files if file.exists()]
    if there:
        raise BananacordError(f"{', '.join(there)} exists already: give another --out, or move it away first")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BananacordError(f"cannot make {out}: {exc.strerror}") from None
    lines = []
    for guild, file in zip(servers, files, strict=True):
        count, text = await requests_csv(db, guild, user_id)
        try:
            file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BananacordError(f"cannot write {file}: {exc.strerror}") from None
        lines.append(f"{file}: {count} request row(s) in server {guild}")
    return "\n".join(lines) + "\n"


async def _erase(db: Database, user_id: int, guild_id: int | None, now: float) -> str:
    servers = await _servers(db, user_id, guild_id)
    if not servers:
        return _nothing(user_id, guild_id)
    audit = ModerationStore(db, clock=lambda: now)
    lines = []
    for guild in servers:
        done = await erase(db, guild, user_id, now=now)
        if done.requests or done.preferences or done.stars:
            await audit.audit(
                guild,
                "privacy_erased",
                target_id=user_id,
                summary=(
                    f"The bot's operator erased the words of {done.requests} request(s) of <@{user_id}> "
                    "(`bananacord privacy erase`)."
                ),
            )
        waiting = (
            f"; {done.unfinished} still generating or waiting keep theirs until they end: run this again then"
            if done.unfinished
            else ""
        )
        prefs = ", their preferences" if done.preferences else ""
        lines.append(
            f"server {guild}: erased the words of {done.requests} request(s){prefs} and {done.stars} star(s){waiting}"
        )
    lines.append("the bot draws their messages and DMs again without the words at its next start")
    return "\n".join(lines) + "\n"


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()
