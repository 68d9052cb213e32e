"""Which signals stop the bot (and `db backup`/`db restore`) gracefully: SIGHUP too, unless the process was
started with it ignored, as `nohup` starts one (bot/stop_signals.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.bot_process import NOHUP

ASK = "import signal; from bot.stop_signals import stop_signals; print(sorted(s.name for s in stop_signals()))"


def handled(*, nohup: bool) -> str:
    command = [sys.executable, "-c", ASK]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", NOHUP, *command] if nohup else command, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_hangup_stops_the_bot_unless_it_was_started_to_ignore_it() -> None:
    assert handled(nohup=False) == "['SIGHUP', 'SIGINT', 'SIGTERM']"
    # Under nohup the bot (or a backup) is meant to outlive the session whose closing sends SIGHUP.
    assert handled(nohup=True) == "['SIGINT', 'SIGTERM']"
