"""What the job runner reports beyond a job's own message, for the policies that react to it.

The runner hands each event to its sink (``JobSink.notify``); the Discord sink dispatches it as a
discord.py event (``bot.dispatch(event.name, event)``), so a cog reacts with
``@commands.Cog.listener()`` on ``on_<name>``; the CLI's sink has nobody to tell. Nothing here knows
Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bot.errors import ProviderError
from bot.store.jobs import Job


@dataclass(frozen=True, slots=True)
class ProviderProblem:
    """A provider rejected its key or ran out of credit: its owner has to act (jobs fail over meanwhile)."""

    name: ClassVar[str] = "provider_problem"
    provider: str
    error: ProviderError


@dataclass(frozen=True, slots=True)
class ProviderRecovered:
    """A provider that had a problem accepted a job again."""

    name: ClassVar[str] = "provider_recovered"
    provider: str


@dataclass(frozen=True, slots=True)
class JobBlocked:
    """A provider's safety filter blocked a job."""

    name: ClassVar[str] = "job_blocked"
    job: Job


@dataclass(frozen=True, slots=True)
class EndNotShown:
    """Every try to show how a job ended (its message edited) was refused: its member has not been told."""

    name: ClassVar[str] = "end_not_shown"
    job: Job


@dataclass(frozen=True, slots=True)
class ImageReady:
    """A job's image is in its member's message: a lone job's, or the first of a batch's (the others follow in
    the same message). Reported once, after the delivery is written."""

    name: ClassVar[str] = "image_ready"
    job: Job


@dataclass(frozen=True, slots=True)
class NothingMade:
    """A job ended without an image (failed, blocked, timed out; not cancelled: whoever cancelled it knows), its
    end drawn in its member's message."""

    name: ClassVar[str] = "nothing_made"
    job: Job


RunnerEvent = ProviderProblem | ProviderRecovered | JobBlocked | EndNotShown | ImageReady | NothingMade
