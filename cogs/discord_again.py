"""A Discord call made again when Discord failed it: a 5xx, or no answer at all.

discord.py retries a 500, 502, 504 or 524 itself, but not a 503, nor a connection that broke or timed out; a post
the bot makes on its own (a ✉️ copy by DM, a moderation log post, the DM telling a member how a job ended) was then
dropped, with a line in the log. Such a call is made again after a few waits; a post carries a nonce of its own
(bot/nonces.py), so one Discord made but whose answer was lost is the same message when sent again. Not for an
interaction's answer, which has its own 3 s (cogs/slow_answers.py), nor for a job's messages (bot/job_messages.py
keeps those owed across restarts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp
import discord

log = logging.getLogger(__name__)

T = TypeVar("T")
# How many of [jobs] final_edit_retry_seconds' waits such a call takes (1, 3 and 10 s by default): a member or a
# moderator may be waiting on it, and what Discord fails longer than that is logged, as before.
TRIES_AGAIN = 3


async def again_on_failure(call: Callable[[], Awaitable[T]], waits: Sequence[float], *, what: str) -> T:
    """``call``'s answer, asked again after each of ``waits`` while Discord fails it (a 5xx, no answer); the last
    failure, or any other (a 4xx: refused for good), is raised."""
    for wait in (*waits, None):
        try:
            return await call()
        except discord.HTTPException as exc:
            if exc.status < 500 or wait is None:
                raise
            log.info("%s: Discord failed (HTTP %s); again in %g s", what, exc.status, wait)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if wait is None:
                raise
            log.info("%s: no answer from Discord (%s); again in %g s", what, type(exc).__name__, wait)
        await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last try raises")
