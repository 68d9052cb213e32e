"""Settings from the environment: typos refused, bad values named by their variable, the environment
ignored on request (demo, tests); [imagine] default_model checked at load; [quotas] windows that go
together; ``~`` in paths."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.forked_cli import run_bot


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`bananacord ARGS` in ``tmp_path`` with a clean environment, plus ``env``."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        # Passed on where set, so these run against the bot a PYTHONPATH names (the original code, to
        # prove they fail there).
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
        **(env or {}),
    }
    return run_bot(list(args), env=clean, cwd=tmp_path)


KEYS = {"DISCORD_TOKEN": "t-123", "SEAART_API_KEY": "k-456"}


# ---- a BANANACORD_ variable that names no setting ---------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("BANANACORD_DATABASE_PATH", "BANANACORD_DATABASE__PATH"),
        ("BANANACORD_QUOTA__DAILY", "BANANACORD_QUOTAS__DAILY"),
        ("BANANACORD_QUOTAS_DAILY", "BANANACORD_QUOTAS__DAILY"),
        ("BANANACORD_JOBS__DEADLINE_SECOND", "BANANACORD_JOBS__DEADLINE_SECONDS"),
        ("BANANACORD_QUOTAS__TIERS__GOLD__ROLEID", None),
        ("BANANACORD_LOG_LEVEL__X", None),
    ],
)
def test_a_variable_that_names_no_setting_is_refused_naming_it(
    tmp_path: Path, variable: str, meant: str | None
) -> None:
    """Before, pydantic-settings ignored it and `check` said "configuration OK" with the default in force."""
    result = cli(tmp_path, "check", env={**KEYS, variable: "/data/secret-value-0"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"bananacord: config error: {variable}: is not a known setting."), line
    if meant is not None:
        assert f"Did you mean {meant}?" in line
    assert "secret-value-0" not in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BANANACORD_DATABASE__PATH", "x.sqlite3"),
        ("BANANACORD_LOG_LEVEL", "debug"),
        ("bananacord_jobs__deadline_seconds", "900"),  # read in any case, as pydantic-settings reads it
        ("BANANACORD_QUOTAS__TIERS__GOLD__ROLE_ID", "123"),
        ("BANANACORD_MODELS__ROUTES__NANO_BANANA_2", '["seaart"]'),
        ("BANANACORD_PROVIDERS__GEMINI__MODEL_IDS", '{"nano_banana_2": "gemini-x"}'),
        ("BANANACORD_IMAGINE", '{"max_attachment_bytes": 1000}'),
    ],
)
def test_variables_that_name_a_setting_still_load(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    load_settings(None)


# ---- errors on values from the environment name the variable ----------------------------------------------


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        ({"BANANACORD_JOBS__DEADLINE_SECONDS": "-5"}, "BANANACORD_JOBS__DEADLINE_SECONDS ([jobs] deadline_seconds): "),
        (
            {"BANANACORD_JOBS__POLL_INTERVAL_SECONDS": "20"},
            "BANANACORD_JOBS__POLL_INTERVAL_SECONDS ([jobs] poll_interval_seconds): 20 is more than",
        ),
        ({"BANANACORD_JOBS": '{"deadline_second": 5}'}, "BANANACORD_JOBS ([jobs] deadline_second): is not a known"),
        (
            {"BANANACORD_IMAGINE__DEFAULT_MODEL": "nano_banana_3"},
            "BANANACORD_IMAGINE__DEFAULT_MODEL ([imagine] default_model): `nano_banana_3` is not a model",
        ),
        (
            {"BANANACORD_MODELS__ROUTES__NANO_BANANA3": '["seaart"]'},
            "BANANACORD_MODELS__ROUTES__NANO_BANANA3 ([models] routes): `nano_banana3` is not a model",
        ),
    ],
)
def test_a_bad_value_from_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], starts: str
) -> None:
    """Before, the error named the TOML key ("[jobs] deadline_second: is not a known setting") of a file
    that may not even exist."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.user_message.startswith(starts), info.value.user_message


def test_a_setting_from_the_environment_that_another_contradicts_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANANACORD_QUOTAS__WEEKLY", "10")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[quotas]\ndaily = 25\n"))
    message = info.value.user_message
    assert message.startswith("[quotas] daily: 25 is more than [quotas] weekly (10)."), message
    assert message.endswith("[quotas] weekly is set by BANANACORD_QUOTAS__WEEKLY."), message


# ---- environment=False --------------------------------------------------------------------------------------


def test_settings_without_the_environment_read_no_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the demo and the tests: an operator's overrides and keys never reach the fakes (or past them)."""
    monkeypatch.setenv("BANANACORD_PROVIDERS__KIE__ENABLED", "true")
    monkeypatch.setenv("BANANACORD_PROVIDERS__KIE__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BANANACORD_QUOTAS__DAILY", "0")
    monkeypatch.setenv("BANANACORD_NOT_A_SETTING", "x")  # not even looked at
    monkeypatch.setenv("KIE_API_KEY", "CANARY-KIE")
    monkeypatch.setenv("DISCORD_TOKEN", "CANARY-TOKEN")
    monkeypatch.setenv("KIE_WEBHOOK_HMAC_KEY", "CANARY-HMAC")
    settings = load_settings(None, environment=False, seaart_api_key="mine", jobs={"deadline_seconds": 60})
    assert settings.providers.kie.enabled is False
    assert settings.providers.kie.base_url == "https://api.kie.ai"
    assert settings.quotas.daily == 25
    assert settings.jobs.deadline_seconds == 60
    assert settings.secret_values() == ["mine"]
    # A file is still read when one is given.
    from_file = load_settings(write(tmp_path, "[jobs]\ndeadline_seconds = 90\n"), environment=False)
    assert from_file.jobs.deadline_seconds == 90
    assert from_file.secret("kie_api_key") is None
    # With the environment (the default) they are read, and the unknown one is refused.
    with pytest.raises(ConfigError, match="BANANACORD_NOT_A_SETTING: is not a known setting"):
        load_settings(None)
    monkeypatch.delenv("BANANACORD_NOT_A_SETTING")
    monkeypatch.delenv("BANANACORD_QUOTAS__DAILY")
    assert load_settings(None).secret("kie_api_key") == "CANARY-KIE"


def test_the_suite_runs_without_operator_variables() -> None:
    """tests/conftest.py removes them for the session; a test that needs one sets it itself."""
    leaked = [
        name
        for name in os.environ
        if name.upper().startswith("BANANACORD_") or name.endswith("_API_KEY") or name == "DISCORD_TOKEN"
    ]
    assert leaked == []


# ---- [imagine] default_model --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[imagine]\ndefault_model = "nano_banana_3"\n', ["[imagine] default_model", "`nano_banana_3` is not a model"]),
        (
            "[providers.seaart]\nenabled = false\n[providers.sinancode]\nenabled = true\n"
            '[imagine]\ndefault_model = "nano_banana_pro"\n',
            ["[imagine] default_model", "`nano_banana_pro`", "no enabled provider serves it (enabled: sinancode)"],
        ),
    ],
)
def test_a_default_model_no_enabled_provider_serves_is_refused_at_load(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    """Before, `check` flagged it but `run` started and refused every /imagine that named no model."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert all(name in info.value.user_message for name in names), info.value.user_message
    result = cli(tmp_path, "run", "--config", "config.toml", env={**KEYS, "SINANCODE_API_KEY": "k"})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("bananacord: config error: [imagine] default_model"), line


def test_a_default_model_some_enabled_provider_serves_loads(tmp_path: Path) -> None:
    text = (
        "[providers.seaart]\nenabled = false\n[providers.kie]\nenabled = true\n"
        '[imagine]\ndefault_model = "nano_banana_pro"\n'
    )
    assert load_settings(write(tmp_path, text)).imagine.default_model == "nano_banana_pro"
    # With no provider enabled, start-up and `check` say that instead.
    assert load_settings(write(tmp_path, "[providers.seaart]\nenabled = false\n")).imagine.default_model


# ---- [quotas] windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "windows"),
    [
        ("", {}, (25, None, None)),  # no file, no variable: 25 a day, as before
        ('[quotas]\ntimezone = "Europe/Berlin"\nin_flight_per_user = 3\n', {}, (25, None, None)),
        ("[quotas]\nweekly = 10\n", {}, (None, 10, None)),
        ("[quotas]\nmonthly = 300\n", {}, (None, None, 300)),
        ("[quotas]\ndaily = 5\nweekly = 20\n", {}, (5, 20, None)),
        ("", {"BANANACORD_QUOTAS__WEEKLY": "10"}, (None, 10, None)),
        ("[quotas]\ndaily = 25\n", {"BANANACORD_QUOTAS__DAILY": "7"}, (7, None, None)),
    ],
)
def test_the_quota_windows_go_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], windows: tuple[int | None, ...]
) -> None:
    """Before, daily was 25 unless set: `weekly = 10` alone was refused ("[quotas] daily: 25 is more than
    [quotas] weekly (10)") and no daily limit could be had at all (TOML has no null)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    quotas = load_settings(write(tmp_path, text) if text else None).quotas
    assert (quotas.daily, quotas.weekly, quotas.monthly) == windows


def test_a_tier_still_leaves_its_windows_out(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[quotas.tiers.gold]\nrole_id = 1\nweekly = 10\n"))
    assert settings.quotas.daily == 25  # the defaults set no window
    gold = settings.quotas.tiers["gold"]
    assert (gold.daily, gold.weekly, gold.monthly) == (None, 10, None)


# ---- ~ in paths ---------------------------------------------------------------------------------------------


def test_a_tilde_in_the_database_path_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, `~/bc/bot.sqlite3` made a folder named `~` in the working directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    from_file = load_settings(write(tmp_path, '[database]\npath = "~/bc/bot.sqlite3"\n'))
    assert from_file.database.path == home / "bc" / "bot.sqlite3"
    monkeypatch.setenv("BANANACORD_DATABASE__PATH", "~/env.sqlite3")
    assert load_settings(None).database.path == home / "env.sqlite3"
    # Relative paths stay relative to the working directory.
    monkeypatch.setenv("BANANACORD_DATABASE__PATH", "data/bot.sqlite3")
    assert load_settings(None).database.path == Path("data/bot.sqlite3")


def test_the_cli_uses_the_expanded_path(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    write(work, '[database]\npath = "~/bc/bot.sqlite3"\n')
    env = {"HOME": str(home), "DISCORD_TOKEN": "t", "SEAART_API_KEY": "k"}
    check = cli(work, "check", env=env)
    assert f"database:    {home / 'bc' / 'bot.sqlite3'}" in check.stdout, check.stdout + check.stderr
    # `db` too looks in the home folder (and, finding no database there, says where it looked).
    migrate = cli(work, "db", "migrate", env=env)
    assert str(home / "bc" / "bot.sqlite3") in migrate.stdout + migrate.stderr
    assert not (work / "~").exists()


def test_a_tilde_of_no_known_user_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, '[database]\npath = "~no-such-user-bc/bot.sqlite3"\n')
    result = cli(tmp_path, "check", env=KEYS)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("bananacord: config error: [database] path: cannot expand ~no-such-user-bc"), line


def test_a_size_s_cost_and_price_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings lower-cases a variable's keys: BANANACORD_QUOTAS__UNITS__NANO_BANANA_2__1K gave "1k",
    refused as "not a size", so no size's cost or price could be set from the environment."""
    monkeypatch.setenv("BANANACORD_QUOTAS__UNITS__NANO_BANANA_2__1K", "3")
    monkeypatch.setenv("BANANACORD_MODELS__PRICES_USD__KIE__NANO_BANANA_PRO__4K", "0.2")
    settings = load_settings(None)
    assert settings.quotas.units["nano_banana_2"] == {"1K": 3}
    assert settings.models.prices_usd["kie"]["nano_banana_pro"] == {"4K": Decimal("0.2")}


def test_a_size_given_twice_in_two_spellings_is_refused() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        load_settings(None, environment=False, quotas={"units": {"nano_banana_2": {"1k": 1, "1K": 2}}})
