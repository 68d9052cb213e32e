"""Letting the handlers of what Discord already sent finish before the bot closes what they use.

discord.py runs each event listener, slash command, button press and form submit in a task of its own
and keeps no list of them; its ``close()`` ends the gateway and the HTTP session at once, and the bot
then closes the database. A command being answered at that moment (Discord slow to take the answer)
lost both: its answer was never made, the member saw "The application did not respond", and its job
waited, held, for the next start (bench/soak.py --terms found it as "Cannot operate on a closed
database"). So a stop first ends the gateway connection (nothing new arrives), then waits a bounded time
for the handlers already running, found by the names discord.py gives their tasks, and cancels any
still running after that: their work is written as it goes, and the next start takes up what is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

# What discord.py (2.7) names the tasks it runs handlers in: listeners ("discord.py: on_message"), the
# app-command tree, a view's or a dynamic item's button callback, a form's submit. A name not matched
# here is a handler this drain does not wait for: the stop is then as it was before, never stuck.
HANDLER_TASK_PREFIXES = (
    "discord.py: ",
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-dynamic-item-",
    "discord-ui-modal-dispatch-",
)
# The handlers in flight get this long after the gateway closes. Most take well under a second; one
# still looking for a lost answer (up to 15 s) is cancelled, and its job is found again at the next start.
HANDLER_DRAIN_SECONDS = 5.0


def handlers_in_flight() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [
        task
        for task in asyncio.all_tasks()
        if task is not current and not task.done() and task.get_name().startswith(HANDLER_TASK_PREFIXES)
    ]


async def drain_handlers(timeout: float = HANDLER_DRAIN_SECONDS) -> None:
    """Wait up to ``timeout`` seconds for the handlers running now, then cancel those still running."""
    running = handlers_in_flight()
    if not running:
        return
    log.info("letting %d handler(s) of Discord events in flight finish (up to %g s)", len(running), timeout)
    _, pending = await asyncio.wait(running, timeout=timeout)
    if pending:
        log.warning("stopping: %d handler(s) still running after %g s cancelled", len(pending), timeout)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)
