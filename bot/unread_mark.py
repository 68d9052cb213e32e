"""Since when members' replies may have gone unread, kept beside the database.

A bot that comes back reads the replies posted while it was away (cogs/replies.py). Where that reading
starts is when the previous run was last alive; but a run killed in the middle of its own catch-up was
alive long after the replies it never got to, so the next run would start too late and miss them. The
mark says where the unread replies begin until a catch-up has read them all, and survives a SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class UnreadMark:
    """A wall-clock time in a small file: set before a catch-up starts, cleared once it has read all."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> float | None:
        """The mark, or None: no catch-up was left unfinished (or the file cannot be read)."""
        try:
            return float(self.path.read_text(encoding="ascii"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); catching up from the last heartbeat", self.path, exc)
            return None

    def extend(self, since: float) -> None:
        """Replies from ``since`` on are unread too: the mark becomes the earlier of the two."""
        current = self.read()
        if current is not None and current <= since:
            return
        part = self.path.with_name(self.path.name + ".part")
        try:
            # Written aside and renamed: a kill halfway leaves the old mark, never a torn one.
            part.write_text(repr(since), encoding="ascii")
            os.replace(part, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc.strerror)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None
