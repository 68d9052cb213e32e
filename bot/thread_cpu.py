"""A thread's own CPU time, less the cycle collector's passes it happened to run.

The blocked-pattern bounds (bot/gate.py) are counted in the working thread's CPU time, so other busy threads
do not make a pattern look slow. But Python's cycle collector runs in whichever thread allocates when a pass is
due, and a full pass walks every object the process holds: 50 to 110 ms in a test worker late in the suite,
more in a bot with a large heap. A pass that fell inside the compile of a 40-word alternation (1.5 ms of work)
made it "too big to compile" (measured 106 ms), and the term was refused. That time is the process's, not the
pattern's, so :func:`work_time` leaves it out.

The passes are timed by a gc callback, installed only while some thread is inside :func:`counting_own_work`:
left installed for the process's life, it ran on every pass of every thread (tens of thousands in
bench/load.py's run), about 0.2 ms of CPU per job for a bot whose prompts were checked now and then.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_local = threading.local()
_lock = threading.Lock()
_counting = 0  # threads inside counting_own_work: the callback is installed while this is above 0


def _on_collect(phase: str, info: dict[str, Any]) -> None:
    # gc calls back in the thread that runs the pass, before and after it.
    now = time.thread_time()
    if phase == "start":
        _local.began = now
        return
    began = getattr(_local, "began", None)
    if began is not None:
        _local.collecting = getattr(_local, "collecting", 0.0) + (now - began)
        _local.began = None


@contextmanager
def counting_own_work() -> Iterator[None]:
    """While inside, :func:`work_time` in any thread leaves out the collector passes that thread runs."""
    global _counting
    with _lock:
        _counting += 1
        if _counting == 1:
            gc.callbacks.append(_on_collect)
    try:
        yield
    finally:
        with _lock:
            _counting -= 1
            if _counting == 0:
                gc.callbacks.remove(_on_collect)


def work_time() -> float:
    """This thread's CPU time in seconds, less what it spent in the cycle collector while inside
    :func:`counting_own_work`. Only differences between two calls in one thread, both inside it, mean anything,
    as with ``time.thread_time``."""
    return time.thread_time() - getattr(_local, "collecting", 0.0)
