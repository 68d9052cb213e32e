"""Blocked terms as stored: one the gate's rules no longer accept is left out, never fatal to the server."""

from __future__ import annotations

import logging

import pytest

from bot.gate import Term
from bot.moderation import ModerationStore
from bot.store import Database
from tests.conftest import Clock

GUILD = 10


async def test_a_stored_term_the_gate_can_no_longer_use_is_ignored_not_fatal(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A term made only of a Hangul filler was accepted before the gate learnt to drop the fillers as
    invisible; it then had no letters to match, and building the server's gate raised at every prompt
    ("something went wrong" for every /imagine in the server)."""
    moderation = ModerationStore(db, clock=Clock())
    await moderation.add_term(GUILD, Term("gore"), by=1)
    async with db.transaction() as conn:  # as an older version stored it
        await conn.execute(
            "INSERT INTO blocked_terms (guild_id, term, is_regex, added_by, added_at) VALUES (?, ?, 0, 1, 0)",
            (GUILD, "\u3164"),
        )
    with caplog.at_level(logging.WARNING):
        assert not (await moderation.check_prompt(GUILD, "a quiet harbour")).blocked
        assert (await moderation.check_prompt(GUILD, "some gore")).blocked
    assert any("cannot be used and is ignored" in r.getMessage() for r in caplog.records)
    # It can still be removed, and a new one like it is refused when added.
    assert await moderation.remove_term(GUILD, "\u3164")
    with pytest.raises(ValueError):
        await moderation.add_term(GUILD, Term("\u3164"), by=1)
