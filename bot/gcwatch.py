"""The cycle collector's share of the bot's CPU, kept small and counted.

Python's cycle collector walks every object it tracks on each full pass, the long-lived ones too: the
modules, classes and pydantic schemas imported at start-up, tens of thousands of objects that live as
long as the process and are never garbage. `freeze_startup` moves them out of its sight once the bot is
set up and before any job exists (Python's documented use of ``gc.freeze``), so full passes only walk
what the jobs made. In bench/load.py (1,000 jobs, about 14 full passes) those passes took 0.82 s of the
bot's 26 s of CPU before and 0.25 s after.

`GcWatch` times the collector's passes for the stats file beside the database (bot/jobs.py), which
bench/load.py prints, so a change that makes more garbage shows up as a figure.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcWatch:
    """Seconds spent in the cycle collector since `install`, by generation (gc's own callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            self._installed = True
            gc.callbacks.append(self._on_pass)

    def _on_pass(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._began

    def figures(self) -> dict[str, float | int]:
        """For the stats file: collector time (0 when not installed), its full passes, objects frozen."""
        return {
            "gc_seconds": round(sum(self.seconds), 4),
            "gc_full_passes": gc.get_stats()[2]["collections"],
            "gc_frozen": gc.get_freeze_count(),
        }


# One per process: the collector is.
WATCH = GcWatch()


def freeze_startup() -> None:
    """Exempt every object alive now from the collector's passes, for good; call once, before any job.

    Collected first, so what start-up already dropped is freed rather than kept for ever. Only for the
    bot's own process (`bananacord run`): in a process that hosts many bots one after another, as the
    test suite does, frozen objects that later fall into cycles would never be freed."""
    gc.collect()
    gc.freeze()
