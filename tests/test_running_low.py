"""bot/quotas.py ``running_low_note``: the word to a member whose quota is nearly spent."""

from __future__ import annotations

from bot.quotas import Limits, QuotaStatus, WindowUsage, running_low_note

RESETS = 1_900_000_000.0


def status(*windows: WindowUsage, enforced: bool = True, unlimited: bool = False) -> QuotaStatus:
    return QuotaStatus(list(windows), 0, None, Limits(None, None, None, None), unlimited, enforced)


def test_said_from_a_tenth_of_the_allowance_left_naming_the_tightest_window() -> None:
    assert running_low_note(status(WindowUsage("daily", 89, 100, RESETS))) is None
    assert running_low_note(status(WindowUsage("daily", 90, 100, RESETS))) == (
        f"You have 10 units left today (of 100); that resets <t:{int(RESETS)}:R>. `/quota show` has the rest."
    )
    # The week has less room than the day: it is the one named.
    week = WindowUsage("weekly", 199, 200, RESETS + 86_400)
    note = running_low_note(status(WindowUsage("daily", 1, 100, RESETS), week))
    assert note is not None and note.startswith("You have 1 unit left this week (of 200)")
    # Units granted add to the allowance, as /quota show counts them.
    assert running_low_note(status(WindowUsage("monthly", 10, 10, RESETS, granted=5))) is None
    assert (running_low_note(status(WindowUsage("monthly", 14, 10, RESETS, granted=5))) or "").startswith(
        "You have 1 unit left this month (of 15)"
    )


def test_nothing_said_without_a_limit_to_run_low_on() -> None:
    spent = WindowUsage("daily", 3, 3, RESETS)
    assert running_low_note(status(spent, enforced=False)) is None
    assert running_low_note(status(spent, unlimited=True)) is None
    assert running_low_note(status(WindowUsage("daily", 3, None, RESETS))) is None
    assert running_low_note(status(WindowUsage("daily", 0, 0, RESETS))) is None  # limit 0: /imagine refuses, says so
