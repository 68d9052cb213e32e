"""cogs/errors.py ``with_typed``: a refused form's or command's words given back to copy, only where they come
back exactly as typed."""

from __future__ import annotations

from cogs.errors import TYPED_BACK, with_typed
from cogs.private_answers import MAX_CONTENT


def test_the_words_come_back_in_a_code_block_only_where_they_come_back_whole() -> None:
    refusal = "This server does not allow that prompt."
    given = with_typed(refusal, "a castle @everyone <@123> at dawn")
    assert given == f"{refusal}\n\n{TYPED_BACK}\n```\na castle @everyone <@123> at dawn\n```"
    # Nothing typed, or nothing but spaces: the refusal alone.
    assert with_typed(refusal, None) == refusal and with_typed(refusal, "  \n ") == refusal
    # A code fence in the words would end the block early: what came back would not be what was typed.
    assert with_typed(refusal, "a sign saying ```hi```") == refusal
    # Nor a link: a Discord file link's signature is not repeated in a message of the bot's.
    assert with_typed(refusal, "a cat https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3") == refusal
    # Discord's 2,000 characters: words that fit come back whole; longer ones are not cut, left off.
    room = MAX_CONTENT - len(with_typed(refusal, "x")) + 1
    assert with_typed(refusal, "y" * room).endswith("y" * room + "\n```")
    assert len(with_typed(refusal, "y" * room)) == MAX_CONTENT
    assert with_typed(refusal, "y" * (room + 1)) == refusal
