"""The redaction filter: configured secrets and token-shaped text never reach a log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from bot.logs import MAX_MESSAGE_CHARS, REDACTED, RedactingFilter, Redactor
from bot.thread_cpu import counting_own_work, work_time

SECRET = "sk-live-0123456789abcdef"
# The shape of a real interaction token: base64 of "interaction:<id>:..." then random text.
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTI4NjM5NDg1MjI2MzQ2OTAzMjpBYmNEZWZHaGlKa2xNbk9wUXJTdFV2V3hZeg"
BOT_TOKEN = "MTI4NjM5NDg1MjI2MzQ2OTAzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key is {SECRET}!", f"key is {REDACTED}!"),
        (
            "PATCH https://discord.com/api/v10/webhooks/1234/fake-itoken-9-abc_DEF/messages/@original",
            f"PATCH https://discord.com/api/v10/webhooks/1234/{REDACTED}/messages/@original",
        ),
        ("POST /interactions/99/tok.en-1/callback", f"POST /interactions/99/{REDACTED}/callback"),
        (f"token {INTERACTION_TOKEN} seen", f"token {REDACTED} seen"),
        (f"identify with {BOT_TOKEN}", f"identify with {REDACTED}"),
        ("Authorization: Bearer abcdefghijklmnop1234", f"Authorization: Bearer {REDACTED}"),
        (
            "Job(id='j1', interaction_token='fake-itoken-1-xyz', user_id=5)",
            f"Job(id='j1', interaction_token='{REDACTED}', user_id=5)",
        ),
        ('{"api_key": "k-123456", "model": "nb2"}', f'{{"api_key": "{REDACTED}", "model": "nb2"}}'),
        ("GET /v1/x?key=1&access_token=abcdef", f"GET /v1/x?key=1&access_token={REDACTED}"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert Redactor([SECRET])(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "job 1a2b -> failed (auth): the provider rejected SEAART_API_KEY",
        "interaction_token=None token_expires_at=1767225600.0",
        "DISCORD_TOKEN: was rejected by Discord",
        "Bot Bananacord connected in 1 guild(s)",
        "GET https://cdn.example.com/files/mmsu_1bd9fdf7e272ad90bba5b217-0.png",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert Redactor([SECRET])(text) == text


def test_longest_secret_first_and_short_values_ignored() -> None:
    redact = Redactor(["abcdef", "abcdef-and-more", "x", None, ""])
    assert redact("abcdef-and-more / abcdef / x marks") == f"{REDACTED} / {REDACTED} / x marks"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A parent logger writing to a string through a handler carrying the filter, and its child."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor([SECRET])))
    parent = logging.getLogger("bananacord-test-redaction")
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    try:
        yield parent.getChild("thirdparty"), stream
    finally:
        parent.removeHandler(handler)


def test_filter_covers_arguments_exceptions_and_stacks_of_propagated_records(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    child, stream = captured
    child.debug("calling %s with %r", f"https://x/webhooks/1/{INTERACTION_TOKEN}", {"token": SECRET})
    try:
        raise RuntimeError(f"provider said: bad key {SECRET}")
    except RuntimeError:
        child.exception("submit failed for %s", SECRET)
    child.warning("where %s", SECRET, stack_info=True)

    output = stream.getvalue()
    assert SECRET not in output and INTERACTION_TOKEN not in output
    assert output.count(REDACTED) >= 5
    assert "RuntimeError: provider said: bad key [redacted]" in output
    assert "Traceback" in output and "Stack (most recent call last)" in output


def test_filter_keeps_a_line_whose_arguments_do_not_format(captured: tuple[logging.Logger, io.StringIO]) -> None:
    child, stream = captured
    child.info("two %s %s", SECRET)  # one argument short
    output = stream.getvalue()
    assert "unformattable arguments" in output and SECRET not in output


def test_setup_logging_quiets_the_loggers_that_leak_and_redacts_the_rest() -> None:
    script = textwrap.dedent(
        f"""
        import logging
        from bot.logs import setup_logging
        setup_logging("debug", secrets=[{SECRET!r}])
        logging.getLogger("discord.webhook.async_").debug("Webhook ID 1 with PATCH /webhooks/1/leaky-token")
        logging.getLogger("aiosqlite").debug("executing ('leaky-token',)")
        logging.getLogger("discord.gateway").debug("WebSocket Event: {{'token': 'leaky-token'}}")
        logging.getLogger("discord.http").debug("PATCH with leaky-token has returned 200")
        logging.getLogger("httpx").info("HTTP Request: GET https://x/?key=leaky-token")
        logging.getLogger("bot.jobs").debug("own debug line, secret {SECRET}")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "leaky-token" not in result.stderr
    assert f"DEBUG   bot.jobs: own debug line, secret {REDACTED}" in result.stderr


def test_json_lines_are_redacted_and_one_object_each() -> None:
    """``log_format = "json"``: every line a JSON object with time, level, logger and message (a traceback as
    error), credentials redacted as in text lines, and text from outside unable to break a line."""
    script = textwrap.dedent(
        f"""
        import logging
        from bot.logs import setup_logging
        setup_logging("debug", secrets=[{SECRET!r}], log_format="json")
        logging.getLogger("discord.http").debug("PATCH with leaky-token has returned 200")
        logging.getLogger("bot.jobs").info("job %s: secret %s", "j1", {SECRET!r})
        logging.getLogger("bot.providers").warning("answered: %s", "a\\n{{\\"level\\": \\"forged\\"}}")
        try:
            raise ValueError("with {SECRET}")
        except ValueError:
            logging.getLogger("bot.app").exception("it broke")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("INFO", "bot.jobs"),
        ("WARNING", "bot.providers"),
        ("ERROR", "bot.app"),
    ], "discord.http's DEBUG is held back"
    assert lines[0]["message"] == f"job j1: secret {REDACTED}"
    assert lines[1]["message"].startswith("answered: a")
    assert "Traceback" in lines[2]["error"] and "ValueError" in lines[2]["error"]
    assert SECRET not in result.stderr and "leaky-token" not in result.stderr
    assert all(line["time"].endswith("+00:00") for line in lines)


def test_text_from_outside_cannot_forge_a_line_or_drive_the_terminal(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    child, stream = captured
    hostile = "IN_PROGR\x00\n2026-12-02 01:00:00,000 ERROR bot.jobs: forged\r\x1b[2J\x1b]0;title\x07\u2028end"
    child.warning("seaart answered: %s", hostile)
    output = stream.getvalue()
    assert output.count("\n") == 1, "one record, one line"
    assert "\x1b" not in output and "\x00" not in output and "\u2028" not in output
    assert "IN_PROGR\\x00\\n2026-12-02 01:00:00,000 ERROR bot.jobs: forged\\r\\x1b[2J" in output
    child.info("a\ttab stays")
    assert "a\ttab stays" in stream.getvalue()


@pytest.mark.parametrize("unit", ["a-", "token-"])
def test_a_long_run_of_name_characters_is_redacted_in_linear_time(unit: str) -> None:
    """The credential pattern began with ``\\b[\\w-]*``: every word start was tried against the whole run
    after it, so 40 kB of "a-a-a-" (a provider's unknown status, logged at every poll) took 23.5 s."""
    text = unit * (40_000 // len(unit)) + f" api_key={SECRET[::-1]}"
    # This thread's own CPU less collector passes: the process's would count every other thread of the worker.
    with counting_own_work():
        started = work_time()
        redacted = Redactor([SECRET])(text)
        assert work_time() - started < 0.5
    assert redacted.endswith(f"api_key={REDACTED}")


def test_a_long_message_is_cut_and_a_cut_never_leaves_part_of_a_secret(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """Cut at MAX_MESSAGE_CHARS, its secrets replaced in the whole text first: a secret, or a bot token,
    across the cut would otherwise leave its start behind."""
    child, stream = captured
    for token in (SECRET, BOT_TOKEN):
        child.warning("unknown state %s", "s" * (MAX_MESSAGE_CHARS - 20) + f" {token} " + "-a" * 30_000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line, token in zip(lines, (SECRET, BOT_TOKEN), strict=True):
        assert len(line) < MAX_MESSAGE_CHARS + 100 and line.endswith("characters)")
        assert token[:6] not in line
