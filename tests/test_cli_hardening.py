"""The CLI under a running bot, a locked database, a stop signal, and input it cannot take: one line naming what
to fix (or what happened), the right exit code, nothing changed that should not be, nothing left behind.
Each case runs the real CLI as a subprocess against real SQLite files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store.lock import DatabaseLock
from tests.test_cli import cli, config, last_line, one_line, user_version

# ---- `usage` reads the database as it is ------------------------------------------------------------------


def test_usage_beside_a_running_bot_never_migrates_its_database(tmp_path: Path) -> None:
    """`db migrate` is refused under a running bot (its code uses the tables as they are); `usage` applied the
    migration all the same. Now it reads without migrating and says, in one line, why it cannot report."""
    db = tmp_path / "bot.sqlite3"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    latest = user_version(db)
    user_version(db, latest - 1)  # the bot runs the code of the version before
    with DatabaseLock(db):
        result = cli(tmp_path, "usage", "--guild", "1", "--config", cfg)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"{db} is at schema version {latest - 1}, this bananacord's is {latest}" in line, line
    assert user_version(db) == latest - 1


@pytest.mark.parametrize("option", ["--guild", "--user"])
def test_usage_for_an_id_past_64_bits_is_one_line(tmp_path: Path, option: str) -> None:
    """Before: OverflowError ("Python int too large to convert to SQLite INTEGER") and a traceback."""
    cfg = str(config(tmp_path))
    (tmp_path / "bot.sqlite3").touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    args = ["--guild", "1", "--user", "1"]
    args[args.index(option) + 1] = "99999999999999999999999"
    result = cli(tmp_path, "usage", *args, "--config", cfg)
    assert result.returncode == 1
    assert f"{option} 99999999999999999999999 is not a Discord id" in one_line(result.stderr)


# ---- one lock per database, whatever name it is reached by --------------------------------------------------


def test_a_database_reached_through_a_symlink_meets_the_same_lock(tmp_path: Path) -> None:
    """A second bot (or `db migrate`) on the database through a link to it: before, it locked
    ``link.sqlite3.lock``, not ``bot.sqlite3.lock``, and went ahead beside the running bot."""
    db, link = tmp_path / "bot.sqlite3", tmp_path / "link.sqlite3"
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", str(config(tmp_path, db=db))).returncode == 0
    link.symlink_to(db)
    linked = str(config(tmp_path, db=link))
    with DatabaseLock(db):  # what `bananacord run` holds while it runs
        for command in (["db", "migrate"], ["run"]):
            result = cli(tmp_path, *command, "--config", linked)
            assert result.returncode == 1, (command, result.stderr)
            line = one_line(result.stderr)
            assert f"the database {link} is in use by" in line and f"pid {os.getpid()}" in line, line
    assert not (tmp_path / "link.sqlite3.lock").exists()


# ---- a stop while start-up waits for the database --------------------------------------------------------


def test_sigterm_while_start_up_waits_for_a_locked_database_stops_at_once(tmp_path: Path) -> None:
    """Another program holds the write lock (BEGIN IMMEDIATE) and the bot waits for it at start, for ever with
    ``busy_wait_seconds = inf``: `docker stop` must still stop it. Before, SIGTERM was ignored until the wait
    ended (never, with inf; with the default 30 s, exit 1 about 26 s later)."""
    db, log = tmp_path / "bot.sqlite3", tmp_path / "bot.log"
    cfg = str(config(tmp_path, db=db))
    db.touch(mode=0o600)  # `db migrate` makes no database (the bot does, at its first start)
    assert cli(tmp_path, "db", "migrate", "--config", cfg).returncode == 0
    (tmp_path / "config.toml").write_text(
        (tmp_path / "config.toml").read_text().replace("[database]\n", "[database]\nbusy_wait_seconds = inf\n")
    )
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        env = {**os.environ, "DISCORD_TOKEN": "cli-token", "SEAART_API_KEY": "cli-key"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", cfg], stdout=out, stderr=out, cwd=tmp_path, env=env
            )
        try:
            deadline = time.monotonic() + 30
            while "is locked by another program; waiting" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            time.sleep(1.5)  # well into the wait: past a try, into SQLite's own wait for the lock
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = proc.wait(timeout=10)
            took = time.monotonic() - stopped
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        holder.close()
    text = log.read_text()
    assert code == 0, text
    assert took < 3, took
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1].endswith("SIGTERM received: stopped before start-up finished"), text


# ---- `demo` ----------------------------------------------------------------------------------------------


def demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`bananacord demo` with its temporary folder made in ``tmp_path`` (TMPDIR), so what it leaves is seen."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "TMPDIR": str(tmp_path), **(env or {})},
        timeout=30,
    )


def test_a_demo_reads_no_setting_from_the_environment_and_leaves_only_its_image(tmp_path: Path) -> None:
    """The demo's settings are its own: BANANACORD_PROVIDERS__SEAART__ENABLED=false once reached it (its
    set-up then failed, and before that fix hung for ever). Now it is named as ignored and the demo runs;
    its temporary folder is removed. (tests/test_demo_isolation.py: no request leaves the machine.)"""
    result = demo(tmp_path, env={"BANANACORD_PROVIDERS__SEAART__ENABLED": "false"})
    assert result.returncode == 0, result.stderr
    assert "(Ignored here, the demo uses its own settings: BANANACORD_PROVIDERS__SEAART__ENABLED" in result.stdout
    assert "Demo finished" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-output"]


def test_a_demo_whose_image_cannot_be_written_says_so_before_it_runs(tmp_path: Path) -> None:
    """Before, the whole demo ran and then ended in a traceback (FileExistsError, NotADirectoryError)."""
    (tmp_path / "a-file").write_text("not a folder")
    for out, says in [
        ("a-file", "--out a-file is a file: name a folder for the image"),
        ("a-file/images", "cannot write the image to --out a-file/images: Not a directory"),
    ]:
        result = demo(tmp_path, "--out", out)
        assert result.returncode == 1
        assert one_line(result.stderr) == f"bananacord: {says}"
        assert result.stdout == ""  # refused before the demo ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_demo_stopped_by_sigterm_removes_its_temporary_folder(tmp_path: Path) -> None:
    """Before, SIGTERM killed the demo at once and its bananacord-demo-* folder (a database with the fake
    member's prompt) stayed in /tmp."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_")}
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--out", "out"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**clean, "TMPDIR": str(tmp_path)},
    ) as proc:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("bananacord-demo-*")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Demo finished" not in stdout
    assert last_line(stderr) == "bananacord: demo stopped (SIGTERM); its temporary files were removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
