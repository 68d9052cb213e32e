"""Settings: TOML + environment, secrets only from the environment, one clear line per mistake."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.forked_cli import run_bot


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_and_matches_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    settings = load_settings(example, required=True)
    defaults = load_settings(None)
    assert settings.model_dump() == defaults.model_dump()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[database]\npath = "file.db"\n[jobs]\ndeadline_seconds = 100\n')
    monkeypatch.setenv("BANANACORD_DATABASE__PATH", "env.db")
    monkeypatch.setenv("SEAART_API_KEY", "k-123")
    settings = load_settings(path)
    assert settings.database.path == Path("env.db")
    assert settings.jobs.deadline_seconds == 100
    assert settings.secret("seaart_api_key") == "k-123"
    assert "k-123" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[jobs]\ndeadline_seconds = -5\n", "[jobs] deadline_seconds"),
        ("[jobs]\ndeadline_secondz = 5\n", "[jobs] deadline_secondz"),
        ("[jobs]\nfinal_edit_retry_seconds = [1, 0]\n", "[jobs] final_edit_retry_seconds"),
        ("[jobs]\nheld_look_retry_seconds = [-1]\n", "[jobs] held_look_retry_seconds"),
        ('[discord]\napi_base_url = "discord.com"\n', "[discord] api_base_url"),
        ("[providers.seaart]\nenabled = 'maybe'\n", "[providers.seaart] enabled"),
        ('seaart_api_key = "oops"\n', "seaart_api_key"),
        ('[providers.seaart]\napi_key = "oops"\n', "providers.seaart.api_key"),
        ("[jobs\n", "config.toml"),
        ('[callbacks]\npublic_url = "https://bot.example/?token=1"\n', "[callbacks] public_url"),
        ('[callbacks]\npublic_url = "ftp://bot.example"\n', "[callbacks] public_url"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, names: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert names in info.value.user_message
    assert "oops" not in info.value.user_message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", required=True)


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env or {})}
    return run_bot(list(args), env=clean, cwd=tmp_path)


def test_cli_reports_one_line_without_traceback(tmp_path: Path) -> None:
    write(tmp_path, "[jobs]\ndeadline_seconds = 0\n")
    result = _cli(tmp_path, "--config", "config.toml", "run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and "[jobs] deadline_seconds" in lines[0]


def test_cli_run_without_token_says_which_variable(tmp_path: Path) -> None:
    result = _cli(tmp_path, "run", env={"SEAART_API_KEY": "x"})
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_cli_check_lists_what_is_missing(tmp_path: Path) -> None:
    result = _cli(tmp_path, "check")
    assert result.returncode == 1
    assert "DISCORD_TOKEN is not set" in result.stdout
    assert "SEAART_API_KEY is not set" in result.stdout
    ok = _cli(tmp_path, "check", env={"DISCORD_TOKEN": "t", "SEAART_API_KEY": "secret-k"})
    assert ok.returncode == 0, ok.stdout
    assert "configuration OK" in ok.stdout
    assert "secret-k" not in ok.stdout + ok.stderr


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error", "critical"])
def test_log_level_any_case(tmp_path: Path, level: str) -> None:
    assert load_settings(write(tmp_path, f'log_level = "{level}"\n')).log_level == level.upper()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('log_level = "LOUD"\n', ["log_level", "'LOUD'", "DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
        ("[jobs]\nshutdown_grace_seconds = -1\n", ["[jobs] shutdown_grace_seconds"]),
        (
            "[jobs]\npoll_interval_seconds = 20\n",  # above the default maximum of 15
            ["[jobs] poll_interval_seconds: 20", "[jobs] max_poll_interval_seconds (15)"],
        ),
        (
            "[jobs]\npoll_interval_seconds = 10\nmax_poll_interval_seconds = 30\ndeadline_seconds = 10\n",
            ["[jobs] poll_interval_seconds: 10", "[jobs] deadline_seconds (10)"],
        ),
        ("[quotas]\ndaily = 50\nweekly = 20\n", ["[quotas] daily: 50", "[quotas] weekly (20)"]),
        ("[quotas]\nweekly = 200\nmonthly = 100\n", ["[quotas] weekly: 200", "[quotas] monthly (100)"]),
        # With no weekly limit, daily is compared with monthly directly.
        ("[quotas]\ndaily = 40\nmonthly = 30\n", ["[quotas] daily: 40", "[quotas] monthly (30)"]),
        (
            "[quotas.tiers.gold]\nrole_id = 1\ndaily = 9\nweekly = 5\n",
            ["[quotas.tiers.gold] daily: 9", "[quotas.tiers.gold] weekly (5)"],
        ),
        ('[imagine]\ndefault_provider = "nope"\n', ["[imagine] default_provider", "`nope`", "seaart, kie"]),
        ('[imagine]\ndefault_provider = "gemini"\n', ["[imagine] default_provider", "[providers.gemini] enabled"]),
    ],
)
def test_settings_that_contradict_name_each_setting(tmp_path: Path, text: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    message = info.value.user_message
    assert all(name in message for name in names), message


@pytest.mark.parametrize(
    "text",
    [
        "[quotas]\ndaily = 20\nweekly = 20\nmonthly = 80\n",
        "[quotas]\ndaily = 0\nweekly = 5\n",
        "[jobs]\npoll_interval_seconds = 15\nmax_poll_interval_seconds = 15\n",
        # A disabled default provider the file never chose: /imagine follows [models] routes instead.
        "[providers.seaart]\nenabled = false\n[providers.kie]\nenabled = true\n",
        '[providers.kie]\nenabled = true\n[imagine]\ndefault_provider = "kie"\n',
    ],
)
def test_settings_that_agree_load(tmp_path: Path, text: str) -> None:
    load_settings(write(tmp_path, text))


def test_default_provider_chosen_in_the_environment_must_be_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANANACORD_IMAGINE__DEFAULT_PROVIDER", "segmind")
    with pytest.raises(ConfigError, match=r"\[providers.segmind\] enabled"):
        load_settings(None)
    monkeypatch.setenv("BANANACORD_PROVIDERS__SEGMIND__ENABLED", "true")
    assert load_settings(None).imagine.default_provider == "segmind"


# ---- mistakes that were tracebacks, or silently ignored -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('log_level = "INFO"\n# caf\xe9\n'.encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 24). Save it"),
        ('\ufefflog_level = "INFO"\n'.encode(), "starts with a byte order mark (BOM), which TOML does not allow"),
    ],
    ids=["latin-1", "utf-8-with-bom"],
)
def test_a_config_file_that_is_not_plain_utf8_is_one_line(tmp_path: Path, content: bytes, says: str) -> None:
    """Latin-1 was a UnicodeDecodeError traceback; a BOM read as "Invalid statement (at line 1, column 1)"."""
    (tmp_path / "config.toml").write_bytes(content)
    for command in (["check"], ["run"]):
        result = _cli(tmp_path, *command, "--config", "config.toml")
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"bananacord: config error: config.toml: {says}"), line


@pytest.mark.parametrize(
    ("variable", "value", "at", "as_json"),
    [
        ("BANANACORD_IMAGINE__TRUSTED_HOSTS", "images.lan", "character 0", '["images.lan"]'),
        ("BANANACORD_DISCORD__GUILD_IDS", "[1,", "character 3", "[1]"),
        ("BANANACORD_QUOTAS__UNITS", "nano_banana_2=1", "character 0", '{"nano_banana_2": {"1K": 1}}'),
    ],
)
def test_a_list_in_the_environment_that_is_not_json_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, at: str, as_json: str
) -> None:
    """Before: pydantic-settings' SettingsError traceback, naming the section ("imagine") and not the variable."""
    # A plain value in the same section is no JSON and needs none: it is not the one named.
    result = _cli(tmp_path, "check", env={variable: value, "BANANACORD_IMAGINE__DEFAULT_MODEL": "nano_banana_2"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"bananacord: config error: {variable}: is not valid JSON ("), line
    assert at in line and "written as JSON" in line
    assert value not in line.removeprefix(f"bananacord: config error: {variable}")
    monkeypatch.setenv(variable, as_json)  # written as JSON, it loads
    load_settings(None)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[providers.seaart]\nbase_url = "https://[::1"\n', ["[providers.seaart] base_url", "Invalid IPv6 URL"]),
        ('[providers.kie]\nbase_url = "https://api.kie.ai:99999"\n', ["[providers.kie] base_url", "out of range"]),
        ('[providers.gemini]\nbase_url = "https://:443/v1"\n', ["[providers.gemini] base_url", "has no host"]),
        ('[discord]\napi_base_url = "http://[::1/api/v10"\n', ["[discord] api_base_url", "Invalid IPv6 URL"]),
        ('[callbacks]\npublic_url = "https://bot.example:70000"\n', ["[callbacks] public_url", "out of range"]),
    ],
)
def test_a_url_that_cannot_be_connected_to_is_refused_at_load(tmp_path: Path, text: str, names: list[str]) -> None:
    """`check` said "configuration OK" to these and `run` crashed on them after connecting to Discord."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert all(name in info.value.user_message for name in names), info.value.user_message
    # Brackets that close, and a port in range, are fine.
    load_settings(write(tmp_path, '[providers.kie]\nbase_url = "http://[::1]:8443/api"\n'))


def test_check_refuses_a_provider_url_run_cannot_use(tmp_path: Path) -> None:
    write(tmp_path, '[providers.seaart]\nbase_url = "https://[::1"\n')
    result = _cli(tmp_path, "check", "--config", "config.toml", env={"DISCORD_TOKEN": "t", "SEAART_API_KEY": "k"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("bananacord: config error: [providers.seaart] base_url: is not a valid URL")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            '[models]\nroutes = { nano_banana2 = ["kie", "seaart"] }\n',
            ["[models] routes", "`nano_banana2` is not a model", "nano_banana_2, nano_banana_pro"],
        ),
        (
            '[models.prices_usd.seaart.nano_banana_two]\n"1K" = 0.05\n',
            ["[models.prices_usd.seaart]", "`nano_banana_two` is not a model", "nano_banana_2, nano_banana_pro"],
        ),
        (
            '[models.prices_usd.seaart.nano_banana_2]\n"3K" = 0.05\n',
            ["[models.prices_usd.seaart.nano_banana_2]", '"3K" is not a size of nano_banana_2', "512, 1K, 2K, 4K"],
        ),
        (
            '[models.prices_usd.sea_art.nano_banana_2]\n"1K" = 0.05\n',
            ["[models.prices_usd]", "`sea_art` is not a provider", "seaart, kie"],
        ),
        (
            '[models.prices_usd.kie.nano_banana_pro]\n"2K" = -0.05\n',
            ["[models.prices_usd.kie.nano_banana_pro]", '"2K" is -0.05', "0 or more"],
        ),
        (
            '[quotas.units]\nnano_banana_pro_typo = { "1K" = 50 }\n',
            ["[quotas.units]", "`nano_banana_pro_typo` is not a model", "nano_banana_2, nano_banana_pro"],
        ),
        (
            '[quotas.units]\nnano_banana_pro = { "512" = 1 }\n',
            ["[quotas.units] nano_banana_pro", '"512" is not a size of nano_banana_pro', "1K, 2K, 4K"],
        ),
        (
            '[quotas.units]\nnano_banana_2 = { "1K" = -1 }\n',
            ["[quotas.units] nano_banana_2", '"1K" is -1', "0 or more"],
        ),
    ],
)
def test_a_misspelt_model_or_size_in_a_table_is_refused(tmp_path: Path, text: str, names: list[str]) -> None:
    """Before, each was kept and never looked up: the route, price or unit cost meant stayed the default."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert all(name in info.value.user_message for name in names), info.value.user_message
    # Spelt right (a free size included), they load.
    right = load_settings(write(tmp_path, TABLES_SPELT_RIGHT))
    assert right.quotas.units["nano_banana_pro"] == {"1K": 0, "4K": 8}


TABLES_SPELT_RIGHT = (
    '[models]\nroutes = { nano_banana_pro = ["kie", "seaart"] }\n'
    '[models.prices_usd.seaart.nano_banana_2]\n"512" = 0\n"4K" = 0.12\n'
    '[quotas.units]\nnano_banana_pro = { "1K" = 0, "4K" = 8 }\n'
)
