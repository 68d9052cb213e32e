"""Nonces that name what a message is for, so that sending it again cannot make a second one.

Discord returns the earlier message, and makes none, when the same author sends the same nonce with
``enforce_nonce`` within "the past few minutes" (its docs give no figure); discord.py sets
``enforce_nonce`` whenever a nonce is given, and draws a random one otherwise. A random nonce only
covers discord.py's own retries of one call. A message the bot may send again after it lost the
answer, or after a restart (a note about a member's reply is recorded only once it was sent, so a kill
between the two sends it again), gets a nonce drawn from what it is about instead: the same message
sent twice within Discord's window is one message.
"""

from __future__ import annotations

import hashlib

# Discord takes a nonce of at most 25 characters.
_DIGEST_BYTES = 8  # 16 hex characters


def message_nonce(purpose: str, about: int | str) -> str:
    """The nonce of the message sent for ``purpose`` (e.g. "note-dm") about ``about`` (a message or job
    id): the same in every run, and unlike any other purpose's or subject's."""
    return hashlib.blake2b(f"{purpose}:{about}".encode(), digest_size=_DIGEST_BYTES).hexdigest()
