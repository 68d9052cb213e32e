"""What the job runner's step modules share: the runner, its store and its clock.

The runner (bot/jobs.py) builds one of each part with itself; a part reaches the others through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.store.jobs import JobStore

if TYPE_CHECKING:
    from bot.jobs import JobRunner


class RunnerPart:
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.store: JobStore = runner.store
        self.clock: Callable[[], float] = runner.clock
