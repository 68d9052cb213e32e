"""A blank key or token, or one with a space inside, is refused by `bananacord check` and by `run` before it
connects anywhere: one line naming the environment variable it came from, never the value.

Before, `check` said "key set ... configuration OK", and `run` migrated the database and logged in to
Discord before the adapter refused the key as "seaart.api_key: is empty" (or, for a blank token, Discord
refused it: "was rejected by Discord"). Each case runs the real CLI as a subprocess."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.errors import ConfigError
from bot.providers import PROVIDERS
from bot.providers._adapter import HttpAdapter
from tests.test_cli import cli, config, one_line

CANARY = "CANARY"  # in every unusable value below that has any text; must never be printed

BAD_KEYS = [
    pytest.param("", "is empty", id="empty"),
    pytest.param("   ", "is empty", id="blank"),
    pytest.param(" \n ", "is empty", id="newline"),
    pytest.param(f"{CANARY} SEAART", "contains whitespace", id="space-inside"),
    pytest.param(f"  {CANARY}-SEAART\n{CANARY}  ", "contains whitespace", id="line-break-inside"),
    pytest.param(f"{CANARY}\u00a0SEAART", "contains a character that is not ASCII", id="no-break-space"),
]
BAD_TOKENS = [
    pytest.param(" ", "is empty", id="blank"),
    pytest.param(f"{CANARY} TOKEN", "contains whitespace", id="space-inside"),
    pytest.param(f"{CANARY}\ttoken", "contains whitespace", id="tab-inside"),
    pytest.param(f"{CANARY}\u00e9token", "contains a character that is not ASCII", id="not-ascii"),
]


def _secret_free(text: str) -> None:
    assert CANARY not in text, text


@pytest.mark.parametrize(("value", "problem"), BAD_KEYS)
def test_check_refuses_a_provider_key_the_adapter_would_refuse(tmp_path: Path, value: str, problem: str) -> None:
    result = cli(tmp_path, "check", "--config", str(config(tmp_path)), env={"SEAART_API_KEY": value})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "configuration OK" not in out
    assert f"  - SEAART_API_KEY {problem}: " in result.stdout, out
    assert "seaart.api_key" not in out  # the variable the operator set, not the adapter's field
    assert "key set" not in out
    _secret_free(out)


@pytest.mark.parametrize(("value", "problem"), BAD_TOKENS)
def test_check_refuses_a_blank_or_spaced_discord_token(tmp_path: Path, value: str, problem: str) -> None:
    result = cli(tmp_path, "check", "--config", str(config(tmp_path)), env={"DISCORD_TOKEN": value})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "configuration OK" not in out
    assert f"  - DISCORD_TOKEN {problem}: " in result.stdout, out
    _secret_free(out)


def test_check_still_accepts_a_key_the_adapter_takes(tmp_path: Path) -> None:
    """Spaces around a key are stripped by the adapter; SeaArt's adapter allows a tab inside (its key_spaces)."""
    for key in ("  cli-key\n", "cli\tkey"):
        result = cli(tmp_path, "check", "--config", str(config(tmp_path)), env={"SEAART_API_KEY": key})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "configuration OK" in result.stdout


def _refused_before_connecting(tmp_path: Path, env: dict[str, str]) -> str:
    """`run` with Discord at a closed port: connecting first would say "cannot reach Discord" (and create
    the database, which the bot migrates before logging in)."""
    db = tmp_path / "bot.sqlite3"
    result = cli(tmp_path, "run", "--config", str(config(tmp_path, db=db)), env=env)
    assert result.returncode == 2, result.stderr
    assert "cannot reach Discord" not in result.stderr
    assert "logging in" not in result.stderr
    assert not db.exists()
    _secret_free(result.stdout + result.stderr)
    return one_line(result.stderr)


@pytest.mark.parametrize(("value", "problem"), BAD_KEYS)
def test_run_refuses_a_provider_key_before_connecting(tmp_path: Path, value: str, problem: str) -> None:
    line = _refused_before_connecting(tmp_path, {"SEAART_API_KEY": value})
    assert line.startswith(f"bananacord: config error: SEAART_API_KEY: {problem}. "), line
    assert "seaart.api_key" not in line


@pytest.mark.parametrize(("value", "problem"), BAD_TOKENS)
def test_run_refuses_a_blank_or_spaced_discord_token_before_connecting(
    tmp_path: Path, value: str, problem: str
) -> None:
    line = _refused_before_connecting(tmp_path, {"DISCORD_TOKEN": value})
    assert line.startswith(f"bananacord: config error: DISCORD_TOKEN: {problem}. "), line
    assert "rejected by Discord" not in line


def test_check_names_each_enabled_provider_s_own_variable(tmp_path: Path) -> None:
    """Kie's key, blank, with Kie enabled: named as KIE_API_KEY (the adapter said ``kie.api_key``)."""
    cfg = config(tmp_path, "[providers.kie]\nenabled = true\n")
    result = cli(tmp_path, "check", "--config", str(cfg), env={"KIE_API_KEY": f"{CANARY} KIE"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "  - KIE_API_KEY contains whitespace: " in result.stdout
    _secret_free(result.stdout + result.stderr)


# The adapter's rule, on every provider: what the start-up check refuses is exactly what the adapter's
# constructor refuses (for keys a header can carry; a non-ASCII key the adapter cannot even build headers for).
ASCII_KEYS = ["k", "  k  ", "\tk\n", "", "   ", "a b", "a\tb", "a\nb", "a\rb", "a\x0bb", "a\x0cb"]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
async def test_the_start_up_check_agrees_with_the_adapter(provider: type[HttpAdapter]) -> None:
    from bot.providers import key_text_problem  # here, so the CLI cases above collect on code without it

    async with httpx.AsyncClient() as client:
        for key in ASCII_KEYS:
            try:
                provider(api_key=key, client=client)
            except ConfigError as exc:
                assert exc.setting == f"{provider.name}.api_key"
                assert key_text_problem(key, provider.key_spaces) is not None, (provider.name, key)
            else:
                assert key_text_problem(key, provider.key_spaces) is None, (provider.name, key)
