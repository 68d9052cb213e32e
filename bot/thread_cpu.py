"""A thread's own CPU time, less the cycle collector's passes it happened to run.

The blocked-pattern bounds (bot/gate.py) are counted in the working thread's CPU time, so other busy threads
do not make a pattern look slow. But Python's cycle collector runs in whichever thread allocates when a pass is
due, and a full pass walks every object the process holds: 50 to 110 ms in a test worker late in the suite,
more in a bot with a large heap. A pass that fell inside the compile of a 40-word alternation (1.5 ms of work)
made it "too big to compile" (measured 106 ms), and the term was refused. That time is the process's, not the
pattern's, so :func:`work_time` leaves it out.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


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


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            gc.callbacks.append(_on_collect)
            _installed = True


def work_time() -> float:
    """This thread's CPU time in seconds, less what it spent in the cycle collector since the first call in the
    process. Only differences between two calls in one thread mean anything, as with ``time.thread_time``."""
    if not _installed:
        _install()
    return time.thread_time() - getattr(_local, "collecting", 0.0)
