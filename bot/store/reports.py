"""Members' reports of the bot's images to their server's moderators (cogs/report_menu.py), kept as audit rows.

A report is an ``audit_log`` row (action ``report``: the reporter its actor, the image's member its target, the job,
the reason), so ``/mod log`` lists it beside the moderators' own actions and no new table is needed. One per member
and image, and at most ``PER_HOUR`` a member an hour: checked and written in one transaction, so that a form sent twice
at once is one report.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from bot.store import Database

# A member's reports an hour in a server: a raid of reports would flood the moderation log channel.
PER_HOUR = 5


class Outcome(enum.Enum):
    TAKEN = "taken"
    ALREADY = "already"  # this member reported this image before
    TOO_MANY = "too many"  # PER_HOUR in the last hour


@dataclass(frozen=True, slots=True)
class Reported:
    outcome: Outcome
    reporters: int  # the members who have reported the image, this one included if taken


@dataclass(frozen=True, slots=True)
class Report:
    guild_id: int
    job_id: str
    reporter: int
    maker: int | None
    channel_id: int | None
    prompt: str | None
    reason: str | None


async def report(db: Database, report: Report, summary: Callable[[int], str], *, now: float) -> Reported:
    """Keep ``report`` (its log words ``summary(reporters)``) unless its member reported the image already or too
    often lately; how many members have reported the image."""
    async with db.transaction() as conn:
        where = "guild_id = ? AND action = 'report'"
        async with conn.execute(
            f"SELECT COUNT(DISTINCT actor_id), COALESCE(SUM(actor_id = ?), 0) FROM audit_log WHERE {where} "
            "AND job_id = ?",
            (report.reporter, report.guild_id, report.job_id),
        ) as cur:
            reporters, mine = await cur.fetchone() or (0, 0)
        if mine:
            return Reported(Outcome.ALREADY, int(reporters))
        async with conn.execute(
            f"SELECT COUNT(*) FROM audit_log WHERE {where} AND actor_id = ? AND created_at >= ?",
            (report.guild_id, report.reporter, now - 3600),
        ) as cur:
            (lately,) = await cur.fetchone() or (0,)
        if lately >= PER_HOUR:
            return Reported(Outcome.TOO_MANY, int(reporters))
        await conn.execute(
            "INSERT INTO audit_log (guild_id, action, actor_id, target_id, channel_id, job_id, prompt, reason, "
            "summary, created_at) VALUES (?, 'report', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report.guild_id,
                report.reporter,
                report.maker,
                report.channel_id,
                report.job_id,
                report.prompt,
                report.reason,
                summary(int(reporters) + 1),
                now,
            ),
        )
    return Reported(Outcome.TAKEN, int(reporters) + 1)
