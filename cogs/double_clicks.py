"""A button pressed twice in a moment is one press.

A double click on Re-roll (or Vary, or an Upscale) sends Discord two interactions a few hundred
milliseconds apart, and each started a job: two images, both charged, where the member meant one. A
second press of the same button on the same job by the same member within ``WINDOW_SECONDS`` is answered
privately instead; a press after that is taken as meant, so two re-rolls a few seconds apart are two jobs.
Kept in memory only: a double click does not span a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_SECONDS = 1.5
# Neutral about the first press: it may have been refused (a quota, a ban), and that answer says so.
TAKEN_ONCE = (
    "You pressed that twice in a moment, so only the first press counts: its answer says what became of it. "
    "Press it again if you meant another."
)


class RecentPresses:
    """The last press of each (member, job, button), forgotten after ``WINDOW_SECONDS``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pressed: dict[tuple[int, str, str], float] = {}

    def again(self, user_id: int, job_id: str, action: str) -> bool:
        """Record this press; True if it repeats one made within the window (so it is not acted on)."""
        now = self._clock()
        # Forget presses past the window first, so the map holds only the last moment's presses.
        for key in [k for k, at in self._pressed.items() if now - at > WINDOW_SECONDS]:
            del self._pressed[key]
        key = (user_id, job_id, action)
        if key in self._pressed:
            return True
        self._pressed[key] = now
        return False
