"""Since when the bot has been away from Discord's gateway: what a new session has to read back.

Discord replays to a resumed session what it missed, and nothing to a new one (a start, or a resume it refused): the
replies and reactions posted meanwhile are lost unless read back from the channels (cogs/replies.py,
cogs/missed_reactions.py). Each keeps one of these, told of the gateway's disconnects, resumes and new sessions.
"""

from __future__ import annotations

import time


class TimeAway:
    def __init__(self, since: float | None) -> None:
        # Wall clock; None: connected. A start's is when the previous run was last alive (None on a first start).
        self.since = since

    def disconnected(self) -> None:
        if self.since is None:
            self.since = time.time()

    def resumed(self) -> None:
        self.since = None  # Discord replays what the session missed

    def new_session(self) -> float | None:
        """Since when the time away that a new session ends began (None: none was missed); connected from now."""
        since, self.since = self.since, None
        return since
