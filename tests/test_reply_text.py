"""How a reply's text is read (cogs/replies.py): which image of a batch it names, and what is chatter."""

from __future__ import annotations

import pytest

from cogs.replies import candidate_choice, is_chatter


@pytest.mark.parametrize(
    ("text", "number", "rest"),
    [
        ("#2 make it night", 2, "make it night"),
        ("# 3, make it red", 3, "make it red"),
        ("2: blue sky", 2, "blue sky"),
        ("2) blue sky", 2, "blue sky"),
        ("4. blue sky", 4, "blue sky"),
        ("1 - blue sky", 1, "blue sky"),
        ("Image 3 with a hat", 3, "with a hat"),
        ("no. 4 hat", 4, "hat"),
        ("#2", 2, ""),
        # Not a choice: numbers that belong to the instruction.
        ("2 cats on a sofa", None, "2 cats on a sofa"),
        ("2.5x bigger", None, "2.5x bigger"),
        ("2-tone background", None, "2-tone background"),
        ("#2lol", None, "#2lol"),
        ("make it night", None, "make it night"),
    ],
)
def test_a_reply_names_a_candidate_only_in_the_forms_members_write(text: str, number: int | None, rest: str) -> None:
    assert candidate_choice(text) == (number, rest)


@pytest.mark.parametrize(
    ("text", "chatter"),
    [
        ("lol", True),
        ("nice!! 😂", True),
        ("make it night", False),
        # Praise, which ran a charged edit with the praise as its prompt.
        ("it's perfect", True),
        ("that's amazing, thank you", True),
        ("looks good", True),
        ("I love it", True),
        ("so good", True),
        ("is the best one", True),  # after "#2": the reply names the image it likes
        # Instructions that share words with praise.
        ("make it perfect", False),
        ("more of that", False),
        ("the best one but at night", False),
        ("good lighting please", False),
        ("it's too dark", False),
    ],
)
def test_chatter_is_told_from_instructions(text: str, chatter: bool) -> None:
    assert is_chatter(text) is chatter
