"""A message's nonce names what it is for: the same in every run, distinct across purposes and subjects,
and short enough for Discord (25 characters at most)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.nonces import message_nonce

purposes = st.sampled_from(["note-dm", "note-reply"])
subjects = st.integers(min_value=0, max_value=2**64 - 1) | st.text(min_size=1, max_size=40)


@given(purposes, subjects)
def test_a_nonce_is_short_enough_for_discord_and_the_same_each_time(purpose: str, about: int | str) -> None:
    nonce = message_nonce(purpose, about)
    assert 0 < len(nonce) <= 25 and nonce == message_nonce(purpose, about)


def test_each_purpose_and_subject_has_its_own_nonce() -> None:
    reply = 1577928532716158976
    nonces = {message_nonce(p, a) for p in ("note-dm", "note-reply") for a in (reply, reply + 1)}
    assert len(nonces) == 4


def test_a_nonce_is_fixed_across_processes() -> None:
    # Not Python's hash(), which is salted per process: a restart must send the nonce the last run sent.
    assert message_nonce("note-dm", 1577928532716158976) == "b1fea5832dbec52a"
