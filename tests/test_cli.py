"""What a user sees from `bananacord ...` when something is wrong: one line naming what to fix, an exit
code, no traceback, and nothing sent to Discord first. Each case runs the real CLI as a subprocess."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.testing.discord import FakeDiscord
from tests.forked_cli import run_bot

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _without_permission_override() -> None:
    """Run the child as root minus the capabilities that let root ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _file_modes_apply() -> Callable[[], None] | None:
    """What makes file modes bind a child process; skips the test where nothing can."""
    if os.geteuid() != 0:
        return None
    try:
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_without_permission_override, check=True)
    except (subprocess.SubprocessError, OSError):
        pytest.skip("running as root without CAP_SETPCAP: file modes cannot be made to apply")
    return _without_permission_override


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_") and not k.endswith("_API_KEY")}
    full = {**clean, "DISCORD_TOKEN": "cli-token", "SEAART_API_KEY": "cli-key", **(env or {})}
    if preexec is None:
        return run_bot(list(args), env=full, cwd=tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=full,
        preexec_fn=preexec,
        timeout=60,
    )


async def acli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The CLI without blocking the event loop a fake answers on; returns (exit code, stderr)."""
    result = await asyncio.to_thread(cli, tmp_path, *args, env=env)
    return result.returncode, result.stderr


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    return lines[0]


def last_line(stderr: str) -> str:
    """The user-facing line after any ordinary log lines; exactly one such line, no traceback."""
    assert "Traceback" not in stderr
    ours = [line for line in stderr.splitlines() if line.startswith("bananacord:")]
    assert len(ours) == 1 and stderr.rstrip().endswith(ours[0]), stderr
    return ours[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, text: str = "", *, db: Path | None = None, api: str | None = None) -> Path:
    # Discord points at a closed port unless a test says otherwise: a database check that ran after
    # contacting Discord would show up as "cannot reach Discord" instead.
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{db or tmp_path / "bot.sqlite3"}"\n'
        f'[discord]\napi_base_url = "{api or f"http://127.0.0.1:{closed_port()}/api/v10"}"\n{text}',
        encoding="utf-8",
    )
    return path


# ---- --config before or after the subcommand --------------------------------------------------


@pytest.mark.parametrize("order", ["before", "after"])
def test_config_before_or_after_the_subcommand(tmp_path: Path, order: str) -> None:
    cfg = config(tmp_path, db=tmp_path / "chosen.sqlite3")
    args = ["--config", str(cfg), "check"] if order == "before" else ["check", "--config", str(cfg)]
    result = cli(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"database:    {tmp_path / 'chosen.sqlite3'}" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["run"], ["generate", "a prompt"], ["check"], ["health"], ["usage", "--guild", "1"], ["db", "status"]],
)
def test_every_subcommand_takes_config_after_it(tmp_path: Path, command: list[str]) -> None:
    result = cli(tmp_path, *command, "--config", "elsewhere.toml")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "elsewhere.toml: does not exist" in line


# ---- the database ---------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_folder, "is a folder"),
        (_not_sqlite, "is not a SQLite database"),
        (_parent_is_a_file, "cannot be created"),
    ],
)
def test_unusable_database_is_one_line_before_discord(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    db = make(tmp_path)
    result = cli(tmp_path, "run", "--config", str(config(tmp_path, db=db)))
    assert result.returncode == 2
    # After the start-up lines naming the config file and the database (bot/__main__.py _log_sources).
    line = last_line(result.stderr)
    assert "[database] path" in line and str(db) in line and reason in line


def _make_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (0o444, "is read-only"),  # today: starts "healthy", then every /imagine fails
        (0o000, "cannot be opened"),
    ],
)
def test_database_without_permission_is_one_line(tmp_path: Path, mode: int, reason: str) -> None:
    preexec = _file_modes_apply()
    db = tmp_path / "bot.sqlite3"
    # Fully migrated first, so only a real write (not the migration) can find it read-only.
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    migrated = cli(tmp_path, "db", "migrate", "--config", str(config(tmp_path, db=db)))
    assert migrated.returncode == 0, migrated.stderr
    db.chmod(mode)
    try:
        result = cli(tmp_path, "run", "--config", str(config(tmp_path, db=db)), preexec=preexec)
    finally:
        db.chmod(0o644)
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert "[database] path" in line and str(db) in line and reason in line


def test_database_in_a_folder_without_write_permission_is_one_line(tmp_path: Path) -> None:
    preexec = _file_modes_apply()
    folder = tmp_path / "locked"
    folder.mkdir()
    cfg = config(tmp_path, db=folder / "bot.sqlite3")
    folder.chmod(0o555)
    try:
        result = cli(tmp_path, "run", "--config", str(cfg), preexec=preexec)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "[database] path" in line and "Permission denied" in line


def user_version(db: Path, set_to: int | None = None) -> int:
    with sqlite3.connect(db) as conn:
        if set_to is not None:
            conn.execute(f"PRAGMA user_version={set_to}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


def test_db_status_of_a_path_with_no_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """A typo in [database] path must not read as "an empty database", nor leave one behind."""
    db = tmp_path / "typo.sqlite3"
    result = cli(tmp_path, "db", "status", "--config", str(config(tmp_path, db=db)))
    assert result.returncode == 1
    assert f"no database at {db}" in one_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_db_status_reads_the_database_as_it_is_and_counts_its_jobs(tmp_path: Path) -> None:
    """Status is a look, not a change: a database behind this code is reported behind, not migrated."""
    db = tmp_path / "bot.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    migrated = cli(tmp_path, "db", "migrate", "--config", cfg)
    assert migrated.returncode == 0, migrated.stderr
    latest = user_version(db)
    assert f"schema version {latest} (up to date)" in migrated.stdout
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at)"
            " VALUES ('j1', 'delivered', 'seaart', 'nano_banana_2', '{}', 0, 0, 0)"
        )
    conn.close()
    user_version(db, latest - 1)
    result = cli(tmp_path, "db", "status", "--config", cfg)
    assert result.returncode == 0, result.stderr
    assert f"schema version {latest - 1}; 1 migration(s) to apply at the bot's next start" in result.stdout
    assert "delivered  1" in result.stdout
    assert user_version(db) == latest - 1


def test_a_database_a_newer_bananacord_migrated_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """Run after a downgrade, older code would read and write tables it does not know: `run` and `db
    migrate` refuse in one line before contacting Discord, `db status` says why, and nothing is changed."""
    db = tmp_path / "bot.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    newer = user_version(db) + 1
    user_version(db, newer)
    for command in (["run"], ["db", "migrate"]):
        result = cli(tmp_path, *command, "--config", cfg)
        assert result.returncode == 1, (command, result.stderr)
        # `run`: after its start-up lines naming the config file and the database.
        line = last_line(result.stderr)
        assert f"schema version {newer}, written by a newer bananacord" in line, line
        assert "Run the newer version, or restore a copy" in line
    status = cli(tmp_path, "db", "status", "--config", cfg)
    assert status.returncode == 1
    assert f"schema version {newer}, newer than this bananacord knows ({newer - 1})" in status.stdout
    assert user_version(db) == newer


def _job_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        ids = [str(r[0]) for r in conn.execute("SELECT id FROM jobs ORDER BY id")]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return ids


def _insert_job(conn: sqlite3.Connection, job_id: str) -> None:
    conn.execute(
        "INSERT INTO jobs (id, state, provider, model, request_json, deadline_at, created_at, updated_at)"
        " VALUES (?, 'delivered', 'seaart', 'nano_banana_2', '{}', 0, 0, 0)",
        (job_id,),
    )


async def test_db_backup_copies_what_is_committed_while_a_bot_holds_the_database_and_writes(tmp_path: Path) -> None:
    """The copy is made beside a running bot (its lock held, a write of its open and not yet committed) and is
    a whole database: the committed jobs, the schema version, not the write in progress. An existing file is
    never overwritten."""
    from bot.store.lock import DatabaseLock

    db, copy = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        _insert_job(writer, "committed")
        writer.execute("BEGIN IMMEDIATE")
        _insert_job(writer, "in-progress")
        with DatabaseLock(db):
            code, stderr = await acli(tmp_path, "db", "backup", str(copy), "--config", cfg)
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert code == 0, stderr
    assert _job_ids(copy) == ["committed"]
    assert user_version(copy) == user_version(db)
    again = cli(tmp_path, "db", "backup", str(copy), "--config", cfg)
    assert again.returncode == 1 and "already exists" in one_line(again.stderr)
    assert _job_ids(copy) == ["committed"]


async def test_db_migrate_beside_a_running_bot_is_refused(tmp_path: Path) -> None:
    """The running bot's code uses the tables as they are; it migrates at its own start."""
    from bot.store.lock import DatabaseLock

    db = tmp_path / "bot.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    with DatabaseLock(db):  # what `bananacord run` holds while it runs
        code, stderr = await acli(tmp_path, "db", "migrate", "--config", cfg)
    assert code == 1
    line = one_line(stderr)
    assert f"the database {db} is in use by" in line and f"pid {os.getpid()}" in line
    assert "Stop that process first" in line
    assert db.read_bytes() == b""  # not migrated


# ---- Discord -------------------------------------------------------------------------------------


async def test_discord_unreachable_names_the_url(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    code, stderr = await acli(tmp_path, "run", "--config", str(config(tmp_path, api=api)))
    assert code == 1
    line = last_line(stderr)
    assert api in line and "connection refused" in line


async def test_gateway_unreachable_names_the_url(tmp_path: Path) -> None:
    gateway = f"ws://127.0.0.1:{closed_port()}/"
    async with FakeDiscord(bot_token="cli-token") as fake:
        cfg = config(tmp_path, f'gateway_url = "{gateway}"\n', api=fake.api_base_url)
        code, stderr = await acli(tmp_path, "run", "--config", str(cfg))
    assert code == 1
    line = last_line(stderr)
    assert gateway in line and "connection refused" in line


async def test_rejected_token_names_discord_token(tmp_path: Path) -> None:
    async with FakeDiscord(bot_token="the-real-token") as fake:
        cfg = config(tmp_path, api=fake.api_base_url)
        code, stderr = await acli(tmp_path, "run", "--config", str(cfg), env={"DISCORD_TOKEN": "an-old-token"})
        assert fake.identify_count == 0
    assert code == 2
    line = last_line(stderr)
    assert "DISCORD_TOKEN" in line and "rejected" in line and "an-old-token" not in stderr


# ---- settings that contradict each other ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('log_level = "LOUD"\n', ["log_level", "LOUD"]),
        (
            "[jobs]\npoll_interval_seconds = 5\nmax_poll_interval_seconds = 1\n",
            ["[jobs] poll_interval_seconds", "[jobs] max_poll_interval_seconds"],
        ),
        ("[quotas]\ndaily = 50\nweekly = 20\n", ["[quotas] daily", "[quotas] weekly"]),
        ('[imagine]\ndefault_provider = "kie"\n', ["[imagine] default_provider", "[providers.kie] enabled"]),
    ],
)
def test_contradicting_settings_are_one_line(tmp_path: Path, text: str, names: list[str]) -> None:
    # log_level comes before any section; the others are sections of their own.
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    result = cli(tmp_path, "run", "--config", str(cfg))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert all(name in line for name in names), line


def test_output_cut_short_by_its_reader_is_no_error(tmp_path: Path) -> None:
    """`bananacord usage ... | head -0`: the reader goes before the output comes; no traceback, exit 1."""
    db = tmp_path / "bot.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    for command in (["usage", "--guild", "1", "--format", "csv"], ["db", "audit"]):
        with subprocess.Popen(
            [sys.executable, "-m", "bot", *command, "--config", cfg],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "DISCORD_TOKEN": "cli-token"},
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # long before the process has anything to write
            stderr = proc.stderr.read().decode()
            assert proc.wait(timeout=60) == 1, stderr
        assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


# ---- callbacks' HMAC key: a secret to run with, not to read the database with ----------------------

CALLBACKS_ON = '[callbacks]\nenabled = true\npublic_url = "https://bot.example"\n'


def test_running_with_callbacks_and_no_key_to_verify_them_is_refused_before_discord(tmp_path: Path) -> None:
    result = cli(tmp_path, "run", "--config", str(config(tmp_path, CALLBACKS_ON)))
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert "KIE_WEBHOOK_HMAC_KEY: is not set, but [callbacks] enabled is true" in line, line
    assert "cannot reach Discord" not in result.stderr


def test_check_names_the_missing_callbacks_key(tmp_path: Path) -> None:
    result = cli(tmp_path, "check", "--config", str(config(tmp_path, CALLBACKS_ON)))
    assert result.returncode == 1
    assert "  - KIE_WEBHOOK_HMAC_KEY: is not set, but [callbacks] enabled is true" in result.stdout
    keyed = cli(tmp_path, "check", "--config", str(config(tmp_path, CALLBACKS_ON)), env={"KIE_WEBHOOK_HMAC_KEY": "k"})
    assert keyed.returncode == 0, keyed.stdout + keyed.stderr


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_blank_callbacks_key_is_refused_like_a_missing_one(tmp_path: Path, command: str) -> None:
    """A stray space in a compose file: callbacks were verified against "   ", a key anyone could guess, and
    kie.ai's real callbacks failed to verify. Refused, naming the variable, never showing the value."""
    result = cli(
        tmp_path, command, "--config", str(config(tmp_path, CALLBACKS_ON)), env={"KIE_WEBHOOK_HMAC_KEY": "   "}
    )
    assert result.returncode == (1 if command == "check" else 2), result.stdout + result.stderr
    assert "KIE_WEBHOOK_HMAC_KEY: is empty, but [callbacks] enabled is true" in result.stdout + result.stderr
    assert "cannot reach Discord" not in result.stderr


@pytest.mark.parametrize("command", [["db", "status"], ["db", "audit"], ["usage", "--guild", "1"]])
def test_reading_the_database_needs_none_of_the_bot_s_secrets(tmp_path: Path, command: list[str]) -> None:
    """An operator's backup or audit from cron, without the bot's environment: the callbacks' key (like a
    provider's) is not asked for. Before, every command refused without it."""
    cfg = config(tmp_path, CALLBACKS_ON)
    (tmp_path / "bot.sqlite3").touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", str(cfg)).returncode == 0
    result = cli(tmp_path, *command, "--config", str(cfg), env={"DISCORD_TOKEN": "", "SEAART_API_KEY": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KIE_WEBHOOK_HMAC_KEY" not in result.stdout + result.stderr


def test_the_configuration_and_the_adapters_load_without_the_http_transport(tmp_path: Path) -> None:
    """Every `bananacord` command loads the configuration, and with it the provider adapters; the transport
    (bot/transport.py, bot/netguard.py) imports aiohttp, about a third of a second of a command's start, and
    only the bot and the commands that call out need it (bot/http_terms.py)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bot.config, bot.providers, bot.fetch; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout
    assert "'bot.providers.gemini'" in loaded  # the adapters are there
    assert "'aiohttp'" not in loaded and "'bot.transport'" not in loaded and "'bot.netguard'" not in loaded
