"""The signals that stop the bot (and a database backup or restore) gracefully.

SIGTERM (`docker stop`), SIGINT (Ctrl-C) and SIGHUP (a closed terminal or ssh session: its default action
killed the bot on the spot, a create in flight then lost as "uncertain"). But not SIGHUP when it is ignored
as the process starts: that is how `nohup` keeps a command running after its terminal closes, and a handler
of the bot's own put on top of it stopped a bot or a backup that was meant to outlive the session.
"""

from __future__ import annotations

import signal


def stop_signals() -> tuple[signal.Signals, ...]:
    """The stop signals to handle now (call it before installing any handler of one's own)."""
    hangup_ignored = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    return (signal.SIGTERM, signal.SIGINT) if hangup_ignored else (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
