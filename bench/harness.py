"""What the benchmarks that run the REAL bot share: the bot as its own process against in-process fakes.

The bot runs as an operator runs it, `python -m bot run --config CONFIG`, in the config's directory,
its output in bot.log there. ``BotSource`` says which bot: this checkout, or another tree (a git
worktree of an older commit, put first on PYTHONPATH with the same interpreter), and which config keys
that bot knows, so a benchmark can give an older bot a config it accepts. The fakes stay in the
benchmark's process and event loop, so a figure such as ``FakeMessage.files_at`` is read directly.

Used by bench/poll_schedule.py, bench/load.py and bench/soak.py; run those, not this.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.models import TERMINAL_STATES
from bot.providers import PROVIDERS
from bot.testing.discord import FakeDiscord, FakeInteraction

BOT_TOKEN = "bench-bot-token"
PROVIDER_KEY = "bench-provider-key"
HMAC_KEY = "bench-webhook-hmac-key"
REPO = Path(__file__).resolve().parent.parent

# Config: section ("jobs", "providers.seaart") -> key -> value; rendered as TOML by render_config().
Config = dict[str, dict[str, Any]]


# ---- which bot ------------------------------------------------------------------------------------

# Prints {section: [keys]} for the bot on sys.path: the config keys that version accepts.
_KEYS_PROBE = """
import json
from pydantic import BaseModel
from bot.config import Settings

def walk(model, prefix, out):
    out[prefix] = sorted(model.model_fields)
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            walk(kind, f"{prefix}.{name}" if prefix else name, out)
    return out

print(json.dumps(walk(Settings, "", {})))
"""


@dataclass(frozen=True)
class BotSource:
    """Which bot to run: this checkout (``root`` None) or the tree at ``root``."""

    label: str = "this checkout"
    root: Path | None = None
    # Run with ``[metrics]`` on and scraped as Prometheus would (bench/load.py --metrics-beside).
    metrics: bool = False

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This environment without BANANACORD_* overrides, plus the credentials the fakes accept."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANANACORD_")}
        env |= {"DISCORD_TOKEN": BOT_TOKEN} | {provider.key_env: PROVIDER_KEY for provider in PROVIDERS}
        if self.root is not None:
            # First on the path, so `python -m bot` is that tree's bot, not this checkout's (the editable
            # install's finder comes after sys.path).
            env["PYTHONPATH"] = os.pathsep.join([str(self.root), *filter(None, [env.get("PYTHONPATH")])])
        return env | dict(extra or {})

    @functools.cached_property
    def known_keys(self) -> dict[str, frozenset[str]]:
        """Config section -> the keys this bot accepts (an older bot refuses a file with unknown keys)."""
        done = subprocess.run(
            [sys.executable, "-c", _KEYS_PROBE],
            env=self.env(),
            cwd=self.root or REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cannot read the config keys of {self.label}: {done.stderr.strip()[-500:]}")
        return {section: frozenset(keys) for section, keys in json.loads(done.stdout).items()}

    def knows(self, section: str, key: str) -> bool:
        return key in self.known_keys.get(section, frozenset())

    def has_stats(self) -> bool:
        """Whether this bot writes ``<database>.stats.json`` (bot/jobs.py; older commits do not)."""
        root = self.root or REPO
        with contextlib.suppress(OSError):
            return "stats.json" in (root / "bot" / "jobs.py").read_text(encoding="utf-8")
        return False


@contextlib.contextmanager
def worktree(rev: str, into: Path) -> Iterator[BotSource]:
    """``git worktree add`` of ``rev`` at ``into`` (removed again afterwards); yields its BotSource."""
    short = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), rev],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        yield BotSource(label=f"baseline {short}", root=into)
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(into)], capture_output=True, check=False
        )


@contextlib.contextmanager
def bench_folder(prefix: str, keep: bool, label: str = "") -> Iterator[Path]:
    """A fresh folder for one bot's config, log and database (``bench-<prefix>-...`` in the temp folder), removed
    afterwards unless ``keep``, then named on stderr (``label``: which run it was)."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"  {label + ' ' if label else ''}kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a TOML basic string is a JSON string for what we write
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} to TOML")


def render_config(config: Config, source: BotSource | None = None) -> tuple[str, list[str]]:
    """TOML for ``config``; with ``source``, keys that bot does not know are left out and returned."""
    lines: list[str] = []
    dropped: list[str] = []
    top = config.get("", {})
    for key, value in top.items():
        if source is None or source.knows("", key):
            lines.append(f"{key} = {_toml(value)}")
        else:
            dropped.append(key)
    for section, values in config.items():
        if not section:
            continue
        kept = []
        for key, value in values.items():
            if source is not None and not source.knows(section, key):
                dropped.append(f"{section}.{key}")
                continue
            kept.append(f"{key} = {_toml(value)}")
        lines += [f"[{section}]", *kept]
    return "\n".join(lines) + "\n", dropped


def base_config(discord_fake: FakeDiscord, workdir: Path) -> Config:
    """The sections every benchmark needs: the fake Discord and a database in ``workdir``."""
    return {
        "": {"log_level": "INFO"},
        "discord": {"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        "database": {"path": str(workdir / "bot.sqlite3")},
    }


# ---- the bot as its own process -------------------------------------------------------------------


class StartFailed(Exception):
    """The bot exited (or never got ready) instead of connecting; the message is its last log line."""


@dataclass
class BotProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    started_at: float = field(default_factory=time.time)  # wall clock, when spawned

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def last_line(self) -> str:
        lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.proc.returncode}, no output"

    def cpu_seconds(self) -> float:
        """User + system CPU of every thread so far, from /proc/PID/stat (fields 14 and 15, clock ticks)."""
        return sum(self.cpu_times())

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds of every thread so far, from /proc/PID/stat (fields 14 and 15)."""
        return self._cpu_times(f"/proc/{self.proc.pid}/stat")

    def loop_cpu_seconds(self) -> float:
        """User + system CPU of the main thread alone (the event loop's), from /proc/PID/task/PID/stat:
        what is left of ``cpu_seconds`` went to threads (SQLite's, the image checks, file copies)."""
        return sum(self._cpu_times(f"/proc/{self.proc.pid}/task/{self.proc.pid}/stat"))

    @staticmethod
    def _cpu_times(path: str) -> tuple[float, float]:
        with contextlib.suppress(OSError):
            stat = Path(path).read_text()
            fields = stat[stat.rfind(")") + 2 :].split()  # the command name may contain spaces
            tick = os.sysconf("SC_CLK_TCK")
            return int(fields[11]) / tick, int(fields[12]) / tick
        return float("nan"), float("nan")

    def peak_rss_mb(self) -> float:
        """The most resident memory the process has had (VmHWM in /proc/PID/status), MiB."""
        return self._status_mb("VmHWM:")

    def rss_mb(self) -> float:
        """The memory the process has resident now (VmRSS in /proc/PID/status), MiB."""
        return self._status_mb("VmRSS:")

    def _status_mb(self, field: str) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        return float("nan")


def spawn(config: Path, env: dict[str, str]) -> BotProcess:
    """`python -m bot run --config CONFIG` in the config's directory, output appended to bot.log there."""
    log = config.parent / "bot.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )
    return BotProcess(proc, log)


async def start_bot(config: Path, discord_fake: FakeDiscord, env: dict[str, str], timeout: float = 60) -> BotProcess:
    """The bot, connected to the fake Discord; StartFailed with its last log line if it exits instead."""
    bot = spawn(config, env)
    deadline = time.monotonic() + timeout
    while True:
        if not bot.alive():
            raise StartFailed(bot.last_line())
        if time.monotonic() > deadline:
            await stop_bot(bot)
            raise StartFailed(f"not ready after {timeout:g} s: " + bot.last_line())
        with contextlib.suppress(TimeoutError):
            await discord_fake.wait_until_ready(timeout=0.5)
            return bot


async def stop_bot(bot: BotProcess, timeout: float = 30) -> None:
    """SIGTERM (the graceful stop, which writes the stats file), then SIGKILL if it takes too long."""
    if bot.alive():
        bot.proc.send_signal(signal.SIGTERM)
    await wait_exit(bot, timeout)
    if bot.alive():
        bot.proc.kill()
        bot.proc.wait(timeout=10)


async def kill_bot(bot: BotProcess) -> None:
    """SIGKILL: no shutdown at all, as a crash or an OOM kill."""
    if bot.alive():
        bot.proc.send_signal(signal.SIGKILL)
    await wait_exit(bot, 10)


async def wait_exit(bot: BotProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # Polled, not proc.wait(): the bot needs this event loop (the fakes) to finish its shutdown.
    while bot.alive() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


def read_stats(db: Path) -> dict[str, float] | None:
    """The counters the bot writes beside its database (bot/jobs.py JobRunner.write_stats), if any."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(db.with_name(db.name + ".stats.json").read_text(encoding="utf-8"))
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
    return None


# ---- sending commands, waiting for jobs -----------------------------------------------------------


def finished_jobs(db: Path) -> int:
    """Jobs in a terminal state, read from the bot's database (WAL: reading beside the bot is fine)."""
    if not db.exists():
        return 0
    marks = ",".join("?" * len(TERMINAL_STATES))
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", [str(s) for s in TERMINAL_STATES])
        return int(row.fetchone()[0])


async def send_spread(
    discord_fake: FakeDiscord, prompts: Iterable[str], spread: float, options: Mapping[str, Any] | None = None
) -> dict[str, FakeInteraction]:
    """One /imagine per prompt, evenly over ``spread`` seconds; the interactions by prompt."""
    prompts = list(prompts)
    sent: dict[str, FakeInteraction] = {}
    start = time.monotonic()
    gap = spread / (len(prompts) - 1) if len(prompts) > 1 else 0.0
    for index, prompt in enumerate(prompts):
        await asyncio.sleep(max(0.0, start + index * gap - time.monotonic()))
        sent[prompt] = await discord_fake.slash_command("imagine", {"prompt": prompt, **(options or {})})
    return sent


async def wait_finished(bot: BotProcess, db: Path, count: int, timeout: float) -> None:
    """Until ``count`` jobs are over; TimeoutError / RuntimeError naming how far it got."""
    deadline = time.monotonic() + timeout
    while (done := finished_jobs(db)) < count:
        if not bot.alive():
            raise RuntimeError(f"bot exited ({done}/{count} jobs over): {bot.last_line()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done}/{count} jobs over after {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def send_and_wait(
    discord_fake: FakeDiscord,
    bot: BotProcess,
    db: Path,
    prompts: list[str],
    spread: float,
    timeout: float,
    options: Mapping[str, Any] | None = None,
) -> dict[str, FakeInteraction]:
    """Dispatch one /imagine per prompt, evenly over ``spread`` s; return once all jobs in the database
    are over. Raises TimeoutError / RuntimeError naming how far it got."""
    already = finished_jobs(db)
    sent = await send_spread(discord_fake, prompts, spread, options)
    await wait_finished(bot, db, already + len(prompts), timeout)
    return sent


def interactions_for(discord_fake: FakeDiscord, prompts: Iterable[str]) -> dict[str, FakeInteraction]:
    """The interactions dispatched so far for these prompts (after a phase that did not finish)."""
    wanted = set(prompts)
    found: dict[str, FakeInteraction] = {}
    for interaction in discord_fake.interactions.values():
        options = interaction.payload.get("data", {}).get("options", [])
        prompt = next((o.get("value") for o in options if o.get("name") == "prompt"), None)
        if prompt in wanted:
            found[str(prompt)] = interaction
    return found


# ---- figures --------------------------------------------------------------------------------------


def percentile(values: Iterable[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def peak_per_second(times: list[float]) -> tuple[int, int]:
    """(most requests in one 1-s bin of wall time, most in any sliding 1-s window)."""
    if not times:
        return 0, 0
    bins: dict[int, int] = {}
    for at in times:
        bins[int(at)] = bins.get(int(at), 0) + 1
    ordered = sorted(times)
    sliding, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        sliding = max(sliding, last - first + 1)
    return max(bins.values()), sliding


def fmt(value: float, digits: int = 2) -> str:
    """A figure, or "-" for NaN (not measured)."""
    return "-" if value != value else f"{value:.{digits}f}"


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError):
        load = f", load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    return f"{os.cpu_count()} cores, {model}{load}; Python {sys.version.split()[0]}"
