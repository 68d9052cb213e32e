"""The blocked-pattern bounds leave out the cycle collector's passes (bot/thread_cpu.py): a full pass walks the
whole heap (50 to 110 ms in a test worker late in the suite), and one that fell inside the compile of a new
term made an ordinary pattern "too big to compile" (a CI run refused a 40-word alternation that compiles in
1.5 ms; reproduced with a growing heap: 2 of 300 compiles refused, at 106 ms)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import regex

from bot.gate import REGEX_COMPILE_LIMIT, Term, compile_term_timed
from bot.thread_cpu import counting_own_work, work_time

FORTY_WORDS = "|".join(f"forbidden{a}{b}" for a in "abcd" for b in "abcdefghij")


def _burn(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


class _SlowPass:
    """Once armed, the next collector pass takes ``seconds`` of CPU in the thread that runs it, as a full pass
    over a large heap does. Collections are due at almost every allocation while it is installed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self.made = 0

    def arm(self) -> None:
        self.armed = True

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and self.armed:
            self.armed = False
            self.made += 1
            _burn(self.seconds)


@contextmanager
def _collector(slow: _SlowPass) -> Iterator[_SlowPass]:
    # The accounting first, so its callback times the slow one (gc calls them in order): as while another
    # thread of the bot checks a prompt.
    with counting_own_work():
        thresholds = gc.get_threshold()
        gc.callbacks.append(slow)
        gc.set_threshold(1)
        try:
            yield slow
        finally:
            gc.set_threshold(*thresholds)
            gc.callbacks.remove(slow)


def test_a_collector_pass_inside_a_compile_is_not_the_patterns_time() -> None:
    term = Term(FORTY_WORDS, is_regex=True)
    regex.purge()  # compiled afresh, as a moderator's new term is
    with _collector(_SlowPass(REGEX_COMPILE_LIMIT * 2)) as slow:
        slow.arm()
        compiled = compile_term_timed(term)  # the pass is made by the compile's first allocations
    assert slow.made == 1
    assert compiled.pattern.search("a forbiddenbh castle") is not None


def test_work_time_counts_the_threads_own_work() -> None:
    """What the collector takes is left out, and only that: the thread's own work is all counted."""
    started = work_time()
    with _collector(_SlowPass(0.1)) as slow:
        _burn(0.03)
        slow.arm()
        gc.collect()
    took = work_time() - started
    assert slow.made == 1
    assert 0.03 <= took < 0.09, took


def test_no_callback_runs_outside_a_bounded_section() -> None:
    """Installed for the process's life, the accounting ran on every collector pass of every thread."""
    assert all(getattr(cb, "__module__", "") != "bot.thread_cpu" for cb in gc.callbacks)
    with counting_own_work(), counting_own_work():
        assert [cb for cb in gc.callbacks if getattr(cb, "__module__", "") == "bot.thread_cpu"]
    assert all(getattr(cb, "__module__", "") != "bot.thread_cpu" for cb in gc.callbacks)
