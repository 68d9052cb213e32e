"""The tests' forked `python -m bot` (tests/forked_cli.py) answers as a real process does: the same exit code,
stdout and stderr for the same command, the environment and working folder it was given and no other, and a
command past its time is killed."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess, start_process
from tests.forked_cli import run_bot, start_bot
from tests.test_cli import config


def real(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["check", "--config", "missing.toml"], id="missing-config"),
        pytest.param(["check", "--config", "bot.toml"], id="check"),
        pytest.param(
            ["usage", "--guild", "1", "--period", "day", "--since", "2024-01-01", "--config", "bot.toml"],
            id="refused-period",
        ),
        pytest.param(["db", "status", "--config", "bot.toml"], id="db-status"),
        pytest.param(["no-such-command"], id="unknown-command"),
    ],
)
def test_a_forked_command_answers_as_a_real_process_does(tmp_path: Path, args: list[str]) -> None:
    config(tmp_path, db=tmp_path / "bot.sqlite3").rename(tmp_path / "bot.toml")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DISCORD_TOKEN": "t-1",
        "SEAART_API_KEY": "k-1",
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }
    forked = run_bot(args, env=env, cwd=tmp_path)
    started = real(args, env, tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (started.returncode, started.stdout, started.stderr)


def test_a_forked_command_sees_only_its_own_environment_and_folder(tmp_path: Path) -> None:
    """A setting in the test process's environment, not given, is not seen (it would refuse the configuration);
    the same setting given is; a relative --config is read in the folder given."""
    config(tmp_path, db=tmp_path / "bot.sqlite3").rename(tmp_path / "bot.toml")
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": "t-1", "SEAART_API_KEY": "k-1"}
    os.environ["BANANACORD_LOG_LEVEL"] = "LOUD"
    try:
        clean = run_bot(["check", "--config", "bot.toml"], env=env, cwd=tmp_path)
    finally:
        del os.environ["BANANACORD_LOG_LEVEL"]
    given = run_bot(["check", "--config", "bot.toml"], env={**env, "BANANACORD_LOG_LEVEL": "LOUD"}, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert given.returncode != 0 and "LOUD" in given.stdout + given.stderr, given.stdout + given.stderr


def test_a_forked_command_past_its_time_is_killed(tmp_path: Path) -> None:
    """`bananacord run` against a Discord that takes the connection and never answers runs on; past the timeout
    it is killed and the caller gets TimeoutExpired, as from subprocess.run."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        api = f"http://127.0.0.1:{silent.getsockname()[1]}/api/v10"
        config(tmp_path, db=tmp_path / "bot.sqlite3", api=api).rename(tmp_path / "bot.toml")
        env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": "t-1", "SEAART_API_KEY": "k-1"}
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            run_bot(["run", "--config", "bot.toml"], env=env, cwd=tmp_path, timeout=1.5)
    assert time.monotonic() - started < 10


def silent_discord_config(tmp_path: Path, silent: socket.socket) -> None:
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    api = f"http://127.0.0.1:{silent.getsockname()[1]}/api/v10"
    config(tmp_path, db=tmp_path / "bot.sqlite3", api=api).rename(tmp_path / "bot.toml")


def started(tmp_path: Path, log: Path, *, forked: bool, nohup: bool = False) -> BotProcess:
    """`bananacord run` with the environment of the tests above: forked from the fork server itself (whatever
    ``TESTS_REAL_CLI_PROCESSES`` says), or a real process as ``start_process`` starts one."""
    env = {"PATH": "/usr/bin:/bin", "DISCORD_TOKEN": "t-1", "SEAART_API_KEY": "k-1"}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})
    config = tmp_path / "bot.toml"
    if not forked:
        return start_process(config, log, env, nohup=nohup, real=True)
    with log.open("ab") as out:
        args = ["run", "--config", str(config)]
        return start_bot(args, env=env, cwd=tmp_path, stdout=out.fileno(), stderr=out.fileno(), nohup=nohup)


def outcome(process: BotProcess, log: Path, sig: int, *, nohup: bool) -> tuple[int, list[str]]:
    """Signal a bot waiting on a silent Discord once it is logging in (its signal handlers are set by then), and
    what came of it: its exit status and the messages it logged from then (under nohup, SIGHUP first: ignored)."""
    deadline = time.monotonic() + 30
    while "logging in" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.2)  # running: a wait with a timeout gives up, as Popen's does
    if nohup:
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert process.poll() is None, "nohup: SIGHUP is ignored"
    process.send_signal(sig)
    code = process.wait(30)
    process.send_signal(signal.SIGKILL)  # ended: nothing to signal, and no error, as Popen's
    lines = log.read_text(errors="replace").splitlines()
    since = next(n for n, line in enumerate(lines) if "logging in" in line)
    return code, [line.split(": ", 1)[-1] for line in lines[since:]]  # without the time, level and logger


@pytest.mark.parametrize(
    ("sig", "nohup"),
    [
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
        (signal.SIGKILL, False),
        (signal.SIGHUP, False),
        (signal.SIGTERM, True),
    ],
    ids=["SIGTERM", "SIGINT", "SIGKILL", "SIGHUP", "nohup-SIGHUP-then-SIGTERM"],
)
def test_a_forked_bot_process_takes_signals_as_a_real_one_does(tmp_path: Path, sig: int, nohup: bool) -> None:
    """tests/e2e/bot_process.py starts `bananacord run` forked for the tests that stop, kill and restart it:
    the same exit status as a real process for each signal (-9 for SIGKILL, as Popen gives), the same log lines
    about it, and under `nohup` SIGHUP ignored."""
    outcomes = []
    for forked in (True, False):
        folder = tmp_path / ("forked" if forked else "real")
        folder.mkdir()
        with socket.socket() as silent:
            silent_discord_config(folder, silent)
            log = folder / "bot.log"
            outcomes.append(outcome(started(folder, log, forked=forked, nohup=nohup), log, sig, nohup=nohup))
    assert outcomes[0] == outcomes[1]
    if sig == signal.SIGKILL:
        assert outcomes[0][0] == -signal.SIGKILL


def test_a_forked_process_dropped_after_it_ended_leaves_no_unclosed_socket(tmp_path: Path) -> None:
    """A test that kills a bot and never waits for it drops its ForkedProcess; Popen would say nothing of an
    ended process, and neither may the connection to the fork server (the suite turns warnings into errors)."""
    with socket.socket() as silent:
        silent_discord_config(tmp_path, silent)
        process = started(tmp_path, tmp_path / "bot.log", forked=True)
        process.kill()
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{process.pid}/cmdline") and time.monotonic() < deadline:
            time.sleep(0.02)  # reaped by the fork server: gone from /proc
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del process
            gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
