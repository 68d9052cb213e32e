"""bot/store/reply_notes.py on a real SQLite file: one note per reply, and the notes in a channel still to
delete kept past the rows' usual life until they are deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database
from bot.store.reply_notes import KEPT_SECONDS, NoteInChannel, ReplyNotes


@pytest.fixture
async def notes(tmp_path: Path) -> AsyncIterator[ReplyNotes]:
    database = Database(tmp_path / "bot.sqlite3")
    await database.connect()
    yield ReplyNotes(database)
    await database.close()


async def test_a_note_in_a_channel_is_kept_until_deleted_however_old(notes: ReplyNotes) -> None:
    in_channel = NoteInChannel(reply_id=1, channel_id=10, message_id=100, delete_at=20.0)
    await notes.record(1, now=0.0, in_channel=in_channel)
    await notes.record(2, now=5.0)  # by DM: nothing to delete
    later = NoteInChannel(reply_id=3, channel_id=10, message_id=300, delete_at=15.0)
    await notes.record(3, now=6.0, in_channel=later)
    assert await notes.to_delete() == [later, in_channel]  # the soonest due first

    # Two days on, the DM's row goes; the one whose note is still in the channel stays until deleted.
    await notes.record(4, now=KEPT_SECONDS + 10.0)
    assert not await notes.sent(2) and await notes.sent(1) and await notes.sent(4)
    await notes.deleted(in_channel.reply_id)
    assert await notes.to_delete() == [later] and await notes.sent(1)
    await notes.record(5, now=KEPT_SECONDS + 11.0)
    assert not await notes.sent(1)


async def test_a_note_owed_is_kept_until_sent_or_let_go_and_old_ones_lapse(notes: ReplyNotes) -> None:
    await notes.owe(100, channel_id=10, now=1.0)
    await notes.owe(100, channel_id=10, now=2.0)  # tried again: still one
    await notes.owe(200, channel_id=11, now=3.0)
    await notes.owe(50, channel_id=12, now=4.0)
    assert await notes.owed(after=0) == [(12, 50), (10, 100), (11, 200)]  # oldest reply first
    assert not await notes.sent(100)  # owed is not told

    await notes.record(100, now=5.0)  # sent: nothing owed
    await notes.settle(200)  # given up (marked), or taken up again
    assert await notes.owed(after=0) == [(12, 50)] and await notes.sent(100)
    assert await notes.owed(after=50) == []  # a reply too old to take up again is let go
    assert await notes.owed(after=0) == []
