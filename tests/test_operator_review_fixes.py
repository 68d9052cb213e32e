"""An operator review of the command line: `check` passing what `run` refuses, settings silently overridden,
a start-up that never says what it runs on, `health` fooled by its input, typos without suggestions, `demo`
offering a --config it ignores, a password printed from a URL, and only the first missing secret named.

Each case runs the real CLI as a subprocess (tests/test_cli.py ``cli``) or loads settings as the CLI does.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.test_cli import cli, closed_port, config, last_line


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


# ---- 1. `check` runs the database check `run` runs, creating nothing -------------------------------------


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "db-folder").mkdir()
    return tmp_path / "db-folder"


def _not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    return path


def _parent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    return tmp_path / "a-file" / "sub" / "bot.sqlite3"


def _too_new(tmp_path: Path) -> Path:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=9999")
    conn.close()
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_folder, "is a folder, not a file"),
        (_not_sqlite, "is not a SQLite database"),
        (_parent_is_a_file, "cannot be created"),
        (_too_new, "has schema version 9999, written by a newer bananacord"),
    ],
)
def test_check_refuses_a_database_run_refuses(tmp_path: Path, make: Callable[[Path], Path], reason: str) -> None:
    """Before, `check` said "configuration OK" (exit 0) and `run` then exited 2 (or 1) on the same settings."""
    db = make(tmp_path)
    cfg = str(config(tmp_path, db=db))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    checked = cli(tmp_path, "check", "--config", cfg)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "configuration OK" not in checked.stdout
    problem = next(line for line in checked.stdout.splitlines() if line.startswith("  - ") and str(db) in line)
    assert reason in problem, checked.stdout
    # Read, never made or changed: no folder, no database, no -wal or lock file.
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    # `run` refuses the same path for the same reason.
    ran = cli(tmp_path, "run", "--config", cfg)
    assert ran.returncode in (1, 2)
    assert reason in last_line(ran.stderr)
    # A database `run` would create (folders and all) passes `check`, which creates none of it.
    fine = cli(tmp_path, "check", "--config", str(config(tmp_path, db=tmp_path / "not" / "yet" / "bot.sqlite3")))
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize("path", ["", "  ", ".", "/", "/data/db/", "./db/"])
def test_a_database_path_that_names_no_file_is_refused_at_load(tmp_path: Path, path: str) -> None:
    """`[database] path = ""` was read as ".", the working folder: `check` said OK, `run` refused it later. A
    trailing slash was dropped as the path was read: "/data/db/" made a SQLite file named "db"."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f'[database]\npath = "{path}"\n'))
    message = info.value.user_message
    assert message.startswith("[database] path: "), message
    assert "is empty" in message or "names a folder, not the SQLite file" in message, message


@pytest.mark.parametrize("value", ["", "."])
def test_health_with_a_database_path_that_names_no_file_is_one_line(tmp_path: Path, value: str) -> None:
    """`BANANACORD_DATABASE__PATH=` (empty, as a compose file leaves it) made `health` crash with a ValueError
    traceback from heartbeat_path."""
    result = cli(tmp_path, "health", env={"BANANACORD_DATABASE__PATH": value})
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith("bananacord: config error: BANANACORD_DATABASE__PATH ([database] path): "), line


# ---- 1. a provider base_url with a query string is refused at load, with its real reason ----------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/model?x=1", "https://api.kie.ai/#frag", "https://api.kie.ai?"])
def test_a_provider_base_url_with_a_query_is_refused_at_load(tmp_path: Path, url: str) -> None:
    """Before, `check` passed it; `run` logged in to Discord and then exited 2 saying "is not an http(s) URL"."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f'[providers.kie]\nbase_url = "{url}"\n'))
    message = info.value.user_message
    assert message.startswith("[providers.kie] base_url: has a ?query or #fragment"), message
    (tmp_path / "config.toml").unlink()
    result = cli(tmp_path, "check", env={"BANANACORD_PROVIDERS__SEAART__BASE_URL": "http://127.0.0.1:9/model?x=1"})
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "BANANACORD_PROVIDERS__SEAART__BASE_URL ([providers.seaart] base_url): has a ?query" in line, line
    assert "is not an http(s) URL" not in line


# ---- 3. a variable overriding what the file sets is said, named, never shown ------------------------------


def test_check_and_run_warn_when_a_variable_overrides_the_file(tmp_path: Path) -> None:
    """The Docker image's ENV BANANACORD_DATABASE__PATH silently won over a mounted config.toml's [database] path."""
    canary = "CANARY-PASS-7"
    cfg = config(
        tmp_path,
        '[providers.seaart]\nbase_url = "https://seaart.example/model"\n[jobs]\nconcurrency = 3\n',
        db=tmp_path / "file.sqlite3",
    )
    env = {
        "BANANACORD_DATABASE__PATH": str(tmp_path / "env.sqlite3"),
        "BANANACORD_PROVIDERS__SEAART__BASE_URL": f"https://user:{canary}@seaart.example/model",
        "BANANACORD_JOBS__DEADLINE_SECONDS": "900",  # the file does not set it: nothing to warn about
    }
    checked = cli(tmp_path, "check", "--config", str(cfg), env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, checked.stdout
    assert any("BANANACORD_DATABASE__PATH overrides [database] path set in" in line for line in warnings), warnings
    assert any(
        "BANANACORD_PROVIDERS__SEAART__BASE_URL overrides [providers.seaart] base_url" in line for line in warnings
    )
    assert canary not in checked.stdout + checked.stderr
    assert f"database:    {tmp_path / 'env.sqlite3'}" in checked.stdout
    # `run` says so at start-up too (then fails to reach Discord at a closed port).
    ran = cli(tmp_path, "run", "--config", str(cfg), env=env)
    assert ran.returncode == 1, ran.stderr
    logged = [line for line in ran.stderr.splitlines() if "WARNING" in line and "overrides" in line]
    assert len(logged) == 2, ran.stderr
    assert any("BANANACORD_DATABASE__PATH overrides [database] path" in line for line in logged)
    assert canary not in ran.stdout + ran.stderr


def test_no_override_warning_without_a_conflict(tmp_path: Path) -> None:
    cfg = config(tmp_path, db=tmp_path / "file.sqlite3")
    result = cli(tmp_path, "check", "--config", str(cfg), env={"BANANACORD_JOBS__CONCURRENCY": "3"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning:" not in result.stdout
    assert "environment: BANANACORD_JOBS__CONCURRENCY" in result.stdout


# ---- 4. `run` first says which config file and which database ---------------------------------------------


def test_run_first_logs_its_config_file_and_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    result = cli(tmp_path, "run", "--config", "config.toml", env={"BANANACORD_JOBS__CONCURRENCY": "3"})
    assert result.returncode == 2  # config.toml named but missing: nothing logged before the one line
    config(tmp_path, db=db)
    result = cli(tmp_path, "run", "--config", "config.toml", env={"BANANACORD_JOBS__CONCURRENCY": "3"})
    assert result.returncode == 1 and "cannot reach Discord" in last_line(result.stderr), result.stderr
    first, second = result.stderr.splitlines()[:2]
    assert first.endswith(
        f"bot: settings: config file {tmp_path / 'config.toml'}; set from the environment: BANANACORD_JOBS__CONCURRENCY"
    ), first
    assert second.endswith(f"bot: database: {db}"), second


def test_run_without_a_config_file_says_so(tmp_path: Path) -> None:
    """Started from another folder, `run` found no ./config.toml, made a new database there and said nothing."""
    env = {
        "BANANACORD_DISCORD__API_BASE_URL": f"http://127.0.0.1:{closed_port()}/api/v10",
        "BANANACORD_DATABASE__PATH": "relative.sqlite3",
    }
    result = cli(tmp_path, "run", env=env)
    assert result.returncode == 1 and "cannot reach Discord" in last_line(result.stderr), result.stderr
    first, second = result.stderr.splitlines()[:2]
    assert (
        f"bot: settings: no config file found ({tmp_path / 'config.toml'}): defaults and BANANACORD_* variables"
        in first
    ), first
    assert second.endswith(f"bot: database: {tmp_path / 'relative.sqlite3'}"), second


# ---- 5. `health`: a heartbeat from the future, a max age that is no number -------------------------------


def test_a_heartbeat_in_the_future_is_stale(tmp_path: Path) -> None:
    """The clock set back 2 hours: "healthy: last heartbeat -7200 s ago", whatever the job loop was doing."""
    cfg = str(config(tmp_path))
    heartbeat = tmp_path / "bot.sqlite3.heartbeat"
    heartbeat.touch()
    later = time.time() + 7200
    os.utime(heartbeat, (later, later))
    result = cli(tmp_path, "health", "--config", cfg)
    assert result.returncode == 1, result.stdout
    assert "in the future" in result.stdout and "-7" not in result.stdout, result.stdout
    now = time.time()
    os.utime(heartbeat, (now, now))
    fresh = cli(tmp_path, "health", "--config", cfg)
    assert fresh.returncode == 0 and fresh.stdout.startswith("healthy: last heartbeat "), fresh.stdout


@pytest.mark.parametrize("max_age", ["nan", "inf", "0", "-5"])
def test_health_refuses_a_max_age_that_is_no_finite_positive_number(tmp_path: Path, max_age: str) -> None:
    """`--max-age nan` was always healthy: no age is more than NaN."""
    cfg = str(config(tmp_path))
    heartbeat = tmp_path / "bot.sqlite3.heartbeat"
    heartbeat.touch()
    old = time.time() - 600
    os.utime(heartbeat, (old, old))
    result = cli(tmp_path, "health", "--config", cfg, f"--max-age={max_age}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "argument --max-age" in result.stderr and "Traceback" not in result.stderr
    assert "healthy" not in result.stdout


# ---- 6. typos in the file: suggestions, every error, the secret's own variable ----------------------------


def test_typos_in_the_file_are_each_named_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, "[jobs]\ndeadline_second = 5\n[quota]\ndaily = 5\n[quotas.tiers.gold]\nrole_id = 1\nweekley = 3\n")
    result = cli(tmp_path, "check", "--config", "config.toml")
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 3, lines
    assert all(line.startswith("bananacord: config error: ") for line in lines), lines
    said = "\n".join(lines)
    assert "[jobs] deadline_second: is not a known setting. Did you mean deadline_seconds?" in said
    assert "quota: is not a known setting. Did you mean [quotas]?" in said
    assert "[quotas.tiers.gold] weekley: is not a known setting. Did you mean weekly?" in said
    assert result.stdout == ""


def test_at_most_ten_errors_are_listed(tmp_path: Path) -> None:
    write(tmp_path, "[jobs]\n" + "".join(f"not_a_setting_{n} = 1\n" for n in range(13)))
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "config.toml")
    lines = info.value.user_message.splitlines()
    assert len(lines) == 11, lines
    assert lines[-1].startswith("... and 3 more"), lines


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ('[providers.seaart]\napi_key = "x"\n', "SEAART_API_KEY"),
        ('[providers.kie]\ntoken = "x"\n', "KIE_API_KEY"),
        ('[discord]\ntoken = "x"\n', "DISCORD_TOKEN"),
        ('[callbacks]\nsecret = "x"\n', "KIE_WEBHOOK_HMAC_KEY"),
    ],
)
def test_a_secret_in_the_file_names_its_own_variable(tmp_path: Path, text: str, variable: str) -> None:
    """Before: "set the matching environment variable", leaving the operator to guess which."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert f"set {variable} in the environment instead" in info.value.user_message, info.value.user_message


# ---- 7. `demo` takes no --config ---------------------------------------------------------------------------


def test_demo_offers_no_config_and_refuses_one(tmp_path: Path) -> None:
    """`demo --help` advertised --config, which the demo (isolated from real settings) silently ignored."""
    shown = cli(tmp_path, "demo", "--help")
    assert shown.returncode == 0 and "--out" in shown.stdout
    assert "--config" not in shown.stdout
    for args in (["demo", "--config", "broken.toml"], ["--config", "broken.toml", "demo"]):
        refused = cli(tmp_path, *args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert "Demo finished" not in refused.stdout
    assert not (tmp_path / "demo-output").exists()


# ---- 8. `check --providers` prints no password written into a URL ----------------------------------------


def test_check_prints_no_password_from_a_url(tmp_path: Path) -> None:
    canary = "CANARYPASS"
    port = closed_port()
    env = {
        "BANANACORD_PROVIDERS__SEAART__BASE_URL": f"http://proxyuser:{canary}@127.0.0.1:{port}/model",
        "BANANACORD_DISCORD__API_BASE_URL": f"http://proxyuser:{canary}@127.0.0.1:{port}/api/v10",
        "BANANACORD_DATABASE__PATH": str(tmp_path / "bot.sqlite3"),
    }
    result = cli(tmp_path, "check", "--providers", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"seaart: http://127.0.0.1:{port}/model is unreachable" in result.stdout, result.stdout
    assert f"discord:     http://127.0.0.1:{port}/api/v10" in result.stdout
    assert canary not in result.stdout + result.stderr
    assert "proxyuser" not in result.stdout + result.stderr


# ---- minor: `run` names every missing secret ----------------------------------------------------------------


def test_run_names_every_missing_secret(tmp_path: Path) -> None:
    cfg = config(
        tmp_path, '[providers.kie]\nenabled = true\n[callbacks]\nenabled = true\npublic_url = "https://b.example"\n'
    )
    result = cli(tmp_path, "run", "--config", str(cfg), env={"DISCORD_TOKEN": "", "SEAART_API_KEY": ""})
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert [line.split(":")[1].strip() for line in lines] == ["config error"] * 4, lines
    said = "\n".join(lines)
    for variable in ("DISCORD_TOKEN: is empty", "SEAART_API_KEY", "KIE_API_KEY", "KIE_WEBHOOK_HMAC_KEY"):
        assert f"bananacord: config error: {variable}" in said, said
    assert not (tmp_path / "bot.sqlite3").exists()


def test_every_unknown_variable_is_named_at_once(tmp_path: Path) -> None:
    """The file's typos were all listed, the environment's one a run: fixing three took three runs."""
    env = {"BANANACORD_DATABASE_PATH": "x", "BANANACORD_QUOTA__DAILY": "3", "BANANACORD_JOBS__DEADLINE_SECOND": "9"}
    result = cli(tmp_path, "check", env=env)
    assert result.returncode == 2
    said = "\n".join(stderr_lines(result))
    for name in env:
        assert f"{name}: is not a known setting" in said, said
    assert "Did you mean BANANACORD_JOBS__DEADLINE_SECONDS?" in said
