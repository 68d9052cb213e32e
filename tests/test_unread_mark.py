"""The mark of where unread replies begin (bot/unread_mark.py): the earliest wins, it survives as a file,
and a file that cannot be read falls back to the heartbeat rather than stopping the bot."""

from __future__ import annotations

from pathlib import Path

from bot.unread_mark import UnreadMark, earliest


def test_the_mark_keeps_the_earliest_time_until_cleared(tmp_path: Path) -> None:
    mark = UnreadMark(tmp_path / "bot.sqlite3.replies-unread")
    assert mark.read() is None
    mark.extend(1000.5)
    mark.extend(2000.0)  # a later stretch away: the earlier unread replies still begin at 1000.5
    assert mark.read() == 1000.5
    mark.extend(900.25)
    assert UnreadMark(mark.path).read() == 900.25  # a new process reads it back
    assert [p.name for p in tmp_path.iterdir()] == ["bot.sqlite3.replies-unread"]  # no part file left
    mark.clear()
    mark.clear()
    assert mark.read() is None and not mark.path.exists()


def test_a_mark_that_cannot_be_read_is_no_mark(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3.replies-unread"
    path.write_text("not a time")
    assert UnreadMark(path).read() is None
    UnreadMark(path).extend(5.0)  # written afresh
    assert UnreadMark(path).read() == 5.0


def test_earliest_of_what_is_known() -> None:
    assert earliest(None, None) is None
    assert earliest(3.0, None) == 3.0
    assert earliest(3.0, 2.0) == 2.0
