"""The nonces the bot's posts carry (bot/nonces.py): one per message meant, within Discord's 25 characters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.nonces import MAX_NONCE, once


@given(st.sampled_from(["reply", "note", "end"]), st.text(max_size=60) | st.integers(min_value=0, max_value=2**64))
def test_a_nonce_fits_discord_s_limit_and_names_one_message(kind: str, key: object) -> None:
    nonce = once(kind, key)
    assert 0 < len(nonce) <= MAX_NONCE
    assert once(kind, key) == nonce
    assert once("other", key) != nonce


def test_the_bot_s_own_keys_stay_readable() -> None:
    assert once("reply", "0123456789abcdef") == "reply:0123456789abcdef"
    assert once("note", 1577540838945193984) == "note:1577540838945193984"
