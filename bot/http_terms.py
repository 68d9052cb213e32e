"""The names the bot's HTTP layers share: what a request tells the transport (bot/transport.py) about
reading its answer, and the errors raised when an answer is refused or a request may not be sent
(bot/netguard.py).

Kept apart from those two modules, which import aiohttp: the configuration and the provider adapters need
only these names, and every `bananacord` command loads them. Through the transport's import, a command such
as `bananacord db status` spent about a third of a second loading an HTTP client it never used.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import httpx

# The header that asks for an answer as it is: sent with every request the bot makes (bot/transport.py).
NO_COMPRESSION: Final[Mapping[str, str]] = MappingProxyType({"Accept-Encoding": "identity"})

# The request extension that bounds an answer's body, in bytes (bot/transport.py).
MAX_BODY = "max_body_bytes"


class AnswerTooLarge(httpx.ReadError):
    """The answer's body is longer than the request's ``MAX_BODY``: reading stopped there."""


class UnaskedEncoding(httpx.ReadError):
    """The answer is compressed although the request asked for ``identity``: it was not read."""


class ForbiddenAddressError(httpx.UnsupportedProtocol):
    """The request was refused before connecting: the target is internal or not http(s) (bot/netguard.py).

    A subclass of httpx's own "this URL will not be sent" error, so every caller that already treats
    that as "nothing was sent, retrying cannot help" (the provider retry loop included) does the right
    thing without knowing about this guard.
    """

    def __init__(self, message: str, *, request: httpx.Request, reason: str) -> None:
        super().__init__(message, request=request)
        self.reason = reason
