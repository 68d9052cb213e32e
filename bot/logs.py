"""Logging set-up, and the redaction filter that keeps credentials out of every log line.

Two layers: the third-party loggers that put credentials into their DEBUG lines are held at INFO
(discord.py logs webhook URLs that embed interaction tokens and whole gateway payloads; aiosqlite logs
SQL parameters, which include the stored interaction tokens; httpx logs request URLs), and a filter on
the root handler replaces the configured secrets and anything shaped like a Discord token with
``[redacted]``, in case a line slips through some other way.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

REDACTED = "[redacted]"

# Loggers whose DEBUG (or INFO) lines carry credentials, and the lowest level each may log at.
QUIET_LOGGERS: dict[str, int] = {
    "discord.http": logging.INFO,  # routes and bodies of every REST call, webhook tokens included
    "discord.webhook": logging.INFO,  # interaction follow-ups: /webhooks/{application_id}/{token}
    "discord.gateway": logging.INFO,  # every gateway event, INTERACTION_CREATE (with its token) included
    "aiosqlite": logging.INFO,  # every statement with its parameters
    "httpx": logging.WARNING,  # every request URL (some providers take the key in the query)
    "httpcore": logging.WARNING,
}

# Secrets shorter than this are not real credentials (tests use "x"); replacing them would mangle every line.
MIN_SECRET_LENGTH = 6

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Interaction callbacks and follow-ups carry the interaction (webhook) token as a path segment.
    (re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/\s?#'\"]+"), rf"\1{REDACTED}"),
    # Discord interaction tokens are base64 of "interaction:<id>:..." and so all start alike.
    (re.compile(r"aW50ZXJhY3Rpb246[A-Za-z0-9_\-.:=+/]+"), REDACTED),
    # Bot tokens: three base64url parts joined by dots.
    (re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"), REDACTED),
    # Authorization header values.
    (re.compile(r"\b(Bot|Bearer)\s+[A-Za-z0-9._~+/=-]{16,}"), rf"\1 {REDACTED}"),
    # key=value and "key": "value" where the key names a credential (a dataclass repr of a job row shows
    # interaction_token='...'); an unquoted "key: text" is prose ("DISCORD_TOKEN: was rejected"). The match
    # starts at the credential's word, not at the start of the name holding it ("interaction_" is left as it
    # is either way): a `\b[\w-]*` before it tried every word start against the whole run after it, so
    # 40 kB of "a-a-a-" from a provider took 23 s to redact.
    (
        re.compile(
            r"""(?i)((?:token|api[_-]?key|secret|password)(?:["']\s*:\s*|\s*=\s*)["']?)"""
            r"""(?!None\b|null\b)[^\s"',}&)]+"""
        ),
        rf"\1{REDACTED}",
    ),
)

# The longest message written. Text from outside (a provider's status, reason or error body) can be of any
# length; a line is for reading, and redacting costs in proportion to what is redacted.
MAX_MESSAGE_CHARS = 4000
# The token patterns read this far past the cut, so that a token the cut falls inside is still matched whole
# (the longest any of them needs to recognise a token is well under this).
_CUT_MARGIN = 256


# Control characters in text from outside (provider answers, prompts, file names) would let it forge log
# lines (a line break, then a timestamp and a level of its own) or drive the terminal of whoever reads the
# log (ANSI escapes). A message is written on one line, with each of them shown as its Python escape
# (\n, \x1b); a tab stays. Tracebacks keep their lines.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


# A secret cut short before it reached a redactor (a provider's message clipped to 300 characters, then
# redacted) is no longer found whole, and its start was written out: 40 of a 44-character key. So a run of
# at least this many characters that starts a secret longer than that is removed too, however far it goes.
SECRET_START_CHARS = 10


def without_secret_starts(text: str, secret: str, replacement: str, least: int = SECRET_START_CHARS) -> str:
    """``text`` with every run that starts ``secret`` (``least`` characters or more of it, as far as it matches)
    replaced: what is left of the secret where something cut it. The secret whole is replaced the same way."""
    if len(secret) <= least:
        return text.replace(secret, replacement)
    head = secret[:least]
    start = text.find(head)
    if start < 0:
        return text
    parts: list[str] = []
    done = 0
    while start >= 0:
        end = start + least
        limit = min(len(text), start + len(secret))
        while end < limit and text[end] == secret[end - start]:
            end += 1
        parts += (text[done:start], replacement)
        done = end
        start = text.find(head, end)
    parts.append(text[done:])
    return "".join(parts)


class Redactor:
    """Replaces the given secrets (and what is left of one cut short: ``without_secret_starts``) and
    token-shaped text with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        return self.shaped(self.known(text))

    def known(self, text: str) -> str:
        """``text`` without the configured secrets."""
        for secret in self.secrets:
            text = without_secret_starts(text, secret, REDACTED)
        return text

    @staticmethod
    def shaped(text: str) -> str:
        """``text`` without token-shaped text."""
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def cut(self, text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
        """``text`` redacted and cut to ``limit`` characters, saying how long it was. The secrets are replaced
        in the whole text first, so a cut never leaves the start of one; the token patterns read only to a
        margin past the cut."""
        text = self.known(text)
        if len(text) <= limit:
            return self.shaped(text)
        return f"{self.shaped(text[: limit + _CUT_MARGIN])[:limit]}... ({len(text)} characters)"


class RedactingFilter(logging.Filter):
    """Redacts a record's message (with its arguments), exception text and stack before it is formatted,
    and writes the message on one line (``escape_controls``).

    Installed on handlers, not loggers: a handler filter sees records from every logger that propagates
    to it, third-party ones included.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must not lose the line (or leak its raw arguments)
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = escape_controls(self.redact.cut(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the redacted traceback is what gets written.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (``log_format = "json"``), for a log collector (Loki, Elasticsearch, CloudWatch) that
    reads fields rather than parsing text: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and
    ``error`` with a traceback. What it writes is what RedactingFilter left: the record is redacted before any
    formatter sees it, and JSON escapes what control characters remain."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, secrets: Iterable[str | None] = (), log_format: str = "text") -> None:
    """Log to stderr at ``level`` (as text lines, or JSON objects: ``log_format``), credentials redacted, noisy
    third-party loggers held back."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    root = logging.getLogger()
    root.setLevel(numeric)
    redacting = RedactingFilter(Redactor(secrets))
    for handler in root.handlers:
        handler.addFilter(redacting)
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
