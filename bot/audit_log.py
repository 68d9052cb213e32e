"""The server's audit log as /mod log reads it: the newest events first, narrowed to a member, a kind or a time.

Each event is a row of ``audit_log`` (bot/store/migrations/0005_moderation.sql), written by
``ModerationStore.audit`` with the words the moderation log channel was sent (``summary``). Rows written before
the bot kept those words are described from their columns instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.render import literal, truncate
from bot.store import Database

# The kinds /mod log narrows to, each the actions it covers (every action the bot writes is in one).
KINDS: dict[str, tuple[str, ...]] = {
    "blocks": ("blocked_prompt", "provider_block", "slow_pattern"),
    "bans": ("ban", "unban", "cooldown"),
    "moderators' actions": ("cancel", "delete", "purge", "privacy_erased", "privacy_downloaded", "pause", "resume"),
    "reports": ("report",),
    "settings": ("setting", "log_channel_gone", "gallery"),
    "quotas and defaults": (
        "quota_override",
        "quota_tier",
        "quota_override_cleared",
        "quota_tier_cleared",
        "quota_grant",
        "quota_reset",
        "quota_server",
        "quota_server_cleared",
        "quota_server_alert",
        "server_defaults",
    ),
}
# How many events /mod log reads at most: its pages are made of these. Older ones are reached by narrowing,
# or with before: (a date), which starts the newest-first list there.
NEWEST = 500
# One event's line at most, and how much of its prompt it quotes: a page holds several.
LINE_CHARS = 400
PROMPT_CHARS = 120
# How an event without its words (a row of an older version) reads.
_DID = {
    "blocked_prompt": "a prompt was refused by a blocked term",
    "provider_block": "a provider's filter blocked an image",
    "slow_pattern": "a blocked term was too slow to check",
    "ban": "banned",
    "unban": "unbanned",
    "cooldown": "put on a cooldown",
    "cancel": "cancelled a job",
    "delete": "deleted an image",
    "purge": "deleted a member's images",
    "report": "reported an image",
    "privacy_erased": "erased a member's words",
    "privacy_downloaded": "downloaded a member's requests",
    "pause": "paused image making",
    "resume": "let image making go on again",
    "setting": "changed a moderation setting",
    "log_channel_gone": "the moderation log channel was deleted",
    "gallery": "changed the gallery",
    "server_defaults": "changed the server's defaults",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    action: str
    actor_id: int | None
    target_id: int | None
    channel_id: int | None
    job_id: str | None
    prompt: str | None
    reason: str | None
    summary: str | None

    def line(self) -> str:
        """The event on one line: when (in the reader's own time zone), what was said of it, its prompt quoted."""
        # One event, one line: a post's words may run over several (a change of several defaults).
        words = " ".join((self.summary or self._described()).split("\n"))
        quoted = f" · prompt: {literal(self.prompt, PROMPT_CHARS)}" if self.prompt else ""
        return truncate(f"<t:{int(self.at)}:f> {words}", LINE_CHARS - len(quoted)) + quoted

    def _described(self) -> str:
        who = f"<@{self.actor_id}> " if self.actor_id is not None else ""
        did = _DID.get(self.action, self.action.replace("_", " "))
        whom = f" <@{self.target_id}>" if self.target_id is not None else ""
        where = f" in <#{self.channel_id}>" if self.channel_id is not None else ""
        job = f" (job {self.job_id})" if self.job_id else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{who}{did}{whom}{where}{job}{why}"


async def newest_entries(
    db: Database, guild_id: int, *, member: int | None, kind: str | None, before: float | None = None
) -> list[AuditEntry]:
    """The server's ``NEWEST`` latest events, newest first; ``member``: those by or about them; ``kind``: a key of
    ``KINDS``; ``before``: only those earlier than this Unix time (how a reader reaches past the newest)."""
    where: list[str] = ["guild_id = ?"]
    params: list[float] = [guild_id]
    if before is not None:
        where.append("created_at < ?")
        params.append(before)
    if member is not None:
        where.append("(actor_id = ? OR target_id = ?)")
        params += [member, member]
    actions: tuple[str, ...] = KINDS[kind] if kind is not None else ()
    if actions:
        where.append(f"action IN ({', '.join('?' * len(actions))})")
    sql = (
        "SELECT created_at, action, actor_id, target_id, channel_id, job_id, prompt, reason, summary FROM audit_log "
        f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"
    )
    async with db.read() as conn, conn.execute(sql, (*params, *actions, NEWEST)) as cursor:
        rows = await cursor.fetchall()
    return [AuditEntry(*row) for row in rows]
