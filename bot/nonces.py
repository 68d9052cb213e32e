"""Nonces for the messages the bot posts, so Discord makes each one at most once.

A message sent with a nonce that Discord is asked to enforce (``enforce_nonce``, which discord.py sets
whenever a nonce is given) is checked against the same author's messages of the past few minutes: the
same nonce again returns the first message and makes nothing new. That is what a repeated send needs:
discord.py sends a post again after a 500, 502 or 504, and a proxy may answer so after Discord made the
message (the first copy would then sit there for good); a restart may repeat a send as well.
"""

from __future__ import annotations

import hashlib

# Discord takes a nonce of at most 25 characters.
MAX_NONCE = 25


def once(kind: str, key: object) -> str:
    """The nonce of the one message of ``kind`` for ``key`` (a job id, the message it answers)."""
    nonce = f"{kind}:{key}"
    if len(nonce) <= MAX_NONCE:
        return nonce
    return hashlib.blake2s(nonce.encode(), digest_size=12).hexdigest()  # 24 characters
