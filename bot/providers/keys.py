"""What can be wrong with an API key or a bot token as the operator set it: one rule for the adapters, which
refuse such a key when they are built, and for `bananacord check` and `run`, which refuse it before anything
connects."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import ConfigError

# What can be wrong with a key or token (the words after its variable's name).
NOT_SET = "is not set"
EMPTY = "is empty"
WHITESPACE = "contains whitespace"
NOT_ASCII = "contains a character that is not ASCII"


def key_text_problem(value: str | None, spaces: str | None = None) -> str | None:
    """What is wrong with a key or token, or None if it can be sent.

    Stripped, it must not be empty nor hold any of ``spaces`` (None: any whitespace character; an adapter's
    ``key_spaces``), nor, as no HTTP header can carry it, a character that is not ASCII. The adapter checks
    its key by this (bot/providers/_adapter.py), and so do `check`, and `run` before it logs in to Discord
    (bot/providers/__init__.py ``key_problem``), naming the variable the key came from and never its value.
    """
    if value is None:
        return NOT_SET
    key = value.strip()
    if not key:
        return EMPTY
    if any(c.isspace() if spaces is None else c in spaces for c in key):
        return WHITESPACE
    if not key.isascii():
        # The adapter would pass it, and then fail to build its request headers (UnicodeEncodeError):
        # no such key can be sent. A pasted no-break space is the usual one.
        return NOT_ASCII
    return None


@dataclass(frozen=True, slots=True)
class SecretProblem:
    """A secret that is not set or not usable, named by where it came from (its environment variable).
    Never holds the value."""

    variable: str
    problem: str  # NOT_SET, EMPTY, WHITESPACE or NOT_ASCII
    fix: str  # a sentence, capitalised

    def line(self) -> str:
        """As `bananacord check` lists it."""
        return f"{self.variable} {self.problem}: {self.fix[:1].lower()}{self.fix[1:]}"

    def error(self) -> ConfigError:
        """As `bananacord run` refuses it."""
        return ConfigError(self.variable, self.problem, self.fix)
