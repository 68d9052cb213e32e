"""Private notes that had to go as a reply in the channel (the member takes no DMs), and the Imagine this offers
(cogs/mention_prompts.py), deleted when their time is up: in this run by a timer, at the next start for those a stop
or a kill left behind.

discord.py's ``delete_after`` is a timer in the process; a note posted seconds before a deploy stayed in
the channel for good, a member's refusal and its reason ("banned ... Reason: spam") for everyone to read
(bench/soak.py --seed 132 found one after a kill). bot/store/reply_notes.py keeps which note to delete
and when, with the reply's row.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import discord

from bot.app import Bananacord
from bot.store.reply_notes import NoteInChannel, ReplyNotes

log = logging.getLogger(__name__)

# A deletion Discord failed (5xx, 429 past discord.py's retries) is tried again after this long, once; a
# note still there after that is left to the next start.
RETRY_SECONDS = 5.0


class ChannelNotes:
    def __init__(self, bot: Bananacord, store: ReplyNotes) -> None:
        self.bot = bot
        self.store = store
        self._timers: dict[int, asyncio.Task[None]] = {}  # reply id -> its note's deletion
        self._resuming: asyncio.Task[None] | None = None  # the start's read of what is left to delete

    def delete_later(self, note: NoteInChannel) -> None:
        if note.reply_id in self._timers:
            return
        task = asyncio.create_task(self._delete(note), name=f"note-delete-{note.message_id}")
        self._timers[note.reply_id] = task
        task.add_done_callback(lambda _: self._timers.pop(note.reply_id, None))

    def resume(self) -> None:
        """Once per run, in the background: time the deletion of every note an earlier run left (those
        overdue at once). A database another program holds is tried again at the next session."""
        if self._resuming is None:
            self._resuming = asyncio.create_task(self._resume(), name="notes-to-delete")

    async def _resume(self) -> None:
        try:
            left = await self.store.to_delete()
        except sqlite3.Error as exc:
            log.warning("could not read the notes in channels left to delete (%s); the next session tries", exc)
            self._resuming = None
            return
        for note in left:
            self.delete_later(note)

    async def taken_away(self, reply_id: int) -> None:
        """The note about message ``reply_id`` was deleted otherwise (an Imagine this offer taken up): no timer
        deletes it again, now or at the next start."""
        timer = self._timers.pop(reply_id, None)
        if timer is not None:
            timer.cancel()
        await self.store.deleted(reply_id)

    def close(self) -> None:
        for task in [*self._timers.values(), self._resuming]:
            if task is not None:
                task.cancel()

    async def _delete(self, note: NoteInChannel) -> None:
        await asyncio.sleep(max(0.0, note.delete_at - time.time()))
        message = self.bot.get_partial_messageable(note.channel_id).get_partial_message(note.message_id)
        for pause in (RETRY_SECONDS, None):
            try:
                await message.delete()
                break
            except (discord.NotFound, discord.Forbidden):
                break  # gone already (a moderator, the channel), or no longer ours to delete: nothing to do
            except discord.HTTPException as exc:
                if pause is None:
                    log.warning(
                        "note %s: could not delete it (HTTP %s); the next start tries again",
                        note.message_id,
                        exc.status,
                    )
                    return
                await asyncio.sleep(pause)
        try:
            await self.store.deleted(note.reply_id)
        except sqlite3.Error as exc:  # the database held by another program: the next start finds it gone
            log.warning("note %s: deleted, but not recorded so (%s)", note.message_id, exc)
