"""bot/store/reports.py on a real SQLite file: one report per member and image, however it is sent."""

from __future__ import annotations

import asyncio

from bot.store import Database
from bot.store.reports import PER_HOUR, Outcome, Report, report


def _report(job_id: str, reporter: int) -> Report:
    return Report(1, job_id, reporter, 9, 50, "a cat", None)


async def test_a_form_sent_twice_at_once_is_one_report_and_others_count(db: Database) -> None:
    both = await asyncio.gather(*(report(db, _report("j1", 7), str, now=100.0) for _ in range(2)))
    assert sorted(r.outcome.value for r in both) == ["already", "taken"]
    other = await report(db, _report("j1", 8), lambda n: f"{n} reported", now=101.0)
    assert (other.outcome, other.reporters) == (Outcome.TAKEN, 2)
    async with db.read() as conn, conn.execute("SELECT summary FROM audit_log ORDER BY id") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["1", "2 reported"]


async def test_a_member_s_reports_an_hour_are_bounded_and_counted_again_after_it(db: Database) -> None:
    for n in range(PER_HOUR):
        assert (await report(db, _report(f"j{n}", 7), str, now=1000.0 + n)).outcome is Outcome.TAKEN
    assert (await report(db, _report("late", 7), str, now=1100.0)).outcome is Outcome.TOO_MANY
    assert (await report(db, _report("late", 8), str, now=1100.0)).outcome is Outcome.TAKEN, "another member's"
    assert (await report(db, _report("late", 7), str, now=1000.0 + 3601 + PER_HOUR)).outcome is Outcome.TAKEN
