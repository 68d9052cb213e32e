"""How long a job usually takes, as a member reads it in the progress message (bot/render.py)."""

from __future__ import annotations

import pytest

from bot.render import duration_span
from bot.schedule import CompletionTimes, PollSchedule, ScheduleSettings, job_kind


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (1.6, 2.2, "about 2 s"),
        (3.0, 8.4, "3-8 s"),
        (14.0, 26.0, "14-25 s"),
        (27.0, 43.0, "25-45 s"),
        (31.0, 33.0, "30-35 s"),  # to 5 s above 20 s: a schedule learned from polls knows no better
        (34.0, 37.0, "about 35 s"),
        (70.0, 150.0, "1-2 min"),
        (130.0, 170.0, "2-3 min"),
        (160.0, 200.0, "about 3 min"),
        (0.2, 0.4, "about 1 s"),
    ],
)
def test_spans_read_as_a_person_would_say_them(low: float, high: float, shown: str) -> None:
    assert duration_span(low, high) == shown


def test_the_span_is_the_middle_of_what_was_learned_and_nothing_before() -> None:
    kind = job_kind("seaart", "nano_banana_2", "1K", 0)
    schedule = PollSchedule(ScheduleSettings(), CompletionTimes())
    for seconds in (20.0, 30.0, 40.0, 50.0):
        schedule.times.add(kind, seconds)
    assert schedule.typical(kind) is None  # four samples: not learned, so no guess for members
    for seconds in range(20, 61):
        schedule.times.add(kind, float(seconds))
    low, high = schedule.typical(kind) or (0.0, 0.0)
    assert 22 <= low <= 26 and 54 <= high <= 58
    # A sibling (one reference image) with no history of its own is told its siblings' span.
    assert schedule.typical(job_kind("seaart", "nano_banana_2", "1K", 1)) == (low, high)
    assert schedule.typical(job_kind("seaart", "nano_banana_2", "4K", 0)) is None
