"""Command line: `run`, `demo`, `generate`, `check`, `db`. Also `python -m bot`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigErrors, Settings, callbacks_key_missing, config_error, load_settings
from bot.errors import BananacordError, ConfigError
from bot.logs import setup_logging

log = logging.getLogger("bot")
DEFAULT_CONFIG = Path("config.toml")
# A heartbeat this far in the future is taken as the clock having been set back, not as fresh: a bot whose
# job loop stopped before the clock jumped back 2 hours was "healthy: last heartbeat -7200 s ago" for 2 hours.
# (The file's timestamp and the clock may disagree by a little, on a network file system.)
FUTURE_HEARTBEAT_SLACK_SECONDS = 5.0


def _max_age(text: str) -> float:
    """--max-age: a finite number of seconds above 0. `--max-age nan` was always healthy (no age is more than
    NaN), `inf` too, and 0 or less never."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _parser() -> argparse.ArgumentParser:
    config_help = "TOML settings file (default: ./config.toml if present)"
    parser = argparse.ArgumentParser(prog="bananacord", description="Nano Banana image bot for Discord.")
    parser.add_argument("--config", type=Path, default=None, help=config_help)
    # Every subcommand takes --config too (`bananacord run --config x.toml`); SUPPRESS keeps a value
    # given before the subcommand from being overwritten by the subcommand's own default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    command("run", help="run the bot (needs DISCORD_TOKEN and a provider key)")

    # No --config: the demo runs on its own settings against the bundled fakes and reads no file (nor any
    # variable) of the operator's (tests/test_demo_isolation.py). `demo --help` offered --config, which was
    # silently ignored.
    demo = sub.add_parser("demo", help="run the whole path offline against the bundled fakes (reads no config)")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write the image")
    demo.add_argument("--prompt", default="A ripe banana wearing sunglasses on a beach, studio lighting")

    gen = command("generate", help="generate one image from the shell, without Discord")
    gen.add_argument("prompt")
    gen.add_argument("--provider", default=None)
    gen.add_argument("--model", default=None)
    gen.add_argument("--aspect-ratio", default=None)
    gen.add_argument("--resolution", default=None)
    gen.add_argument("--image", action="append", default=[], metavar="PATH_OR_URL", help="reference image (repeat)")
    gen.add_argument("--out", type=Path, default=Path("."), help="folder for the image(s)")

    check = command("check", help="validate the configuration and say what is missing")
    check.add_argument(
        "--providers", action="store_true", help="also call each enabled provider: reachable? key accepted?"
    )

    health = command("health", help="exit 0 if the running bot's job loop is alive")
    health.add_argument("--max-age", type=_max_age, default=120.0, help="seconds, above 0 (default 120)")

    usage = command("usage", help="usage report for a server (same figures as /usage)")
    usage.add_argument("--guild", type=int, required=True, help="the server (guild) id")
    # None, not "month": a period named with --since/--until is refused (it was silently ignored), and only
    # a period left out can be told from one named.
    usage.add_argument(
        "--period",
        choices=["day", "week", "month"],
        default=None,
        help="the current quota day, week or month (default: month); not with --since/--until",
    )
    usage.add_argument("--since", default=None, help="ISO date or time; makes the period custom")
    usage.add_argument("--until", default=None, help="ISO date or time (exclusive)")
    usage.add_argument("--user", type=int, default=None, help="one member's report")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")

    privacy = command("privacy", help="what the bot keeps of one member in every server: show, export, erase")
    privacy.add_argument("action", choices=["show", "export", "erase"])
    privacy.add_argument("--user", type=int, required=True, help="the member's (user) id")
    privacy.add_argument("--guild", type=int, default=None, help="one server (guild) only")
    privacy.add_argument(
        "--out", type=Path, default=None, help="export: the folder for its CSV files (default ./privacy-<user>)"
    )

    db = command("db", help="database upkeep: migrate, status, audit, backup FILE, restore FILE")
    db.add_argument("action", choices=["migrate", "status", "audit", "backup", "restore"])
    db.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=None,
        help="backup: the new file to copy the database to; restore: the copy to put back",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.config is not None:
        # `bananacord --config prod.toml demo`: the file would be ignored, so say so rather than seem to use it.
        parser.error("demo reads no config file: it runs on its own settings against the bundled fakes")
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            setup_logging("WARNING")
            return asyncio.run(run_demo(out_dir=args.out, prompt=args.prompt))
        config_path = args.config or DEFAULT_CONFIG
        settings = load_settings(config_path, required=args.config is not None)
        setup_logging(settings.log_level, secrets=settings.secret_values(), log_format=settings.log_format)
        if args.command == "run":
            return _run(settings)
        if args.command == "check":
            return _check(settings, config_path, providers=args.providers)
        if args.command == "generate":
            return asyncio.run(_generate(settings, args))
        if args.command == "usage":
            from bot.usage_cli import run_usage

            print(
                asyncio.run(
                    run_usage(
                        settings,
                        guild_id=args.guild,
                        since=args.since,
                        until=args.until,
                        period=args.period,
                        user_id=args.user,
                        fmt=args.format,
                    )
                ),
                end="",
            )
            return 0
        if args.command == "privacy":
            from bot.privacy_cli import run_privacy

            print(
                asyncio.run(run_privacy(settings, args.action, user_id=args.user, guild_id=args.guild, out=args.out)),
                end="",
            )
            return 0
        if args.command == "health":
            return _health(settings, args.max_age)
        if args.command == "db":
            from bot.db_cli import run_db

            return asyncio.run(run_db(settings, args.action, args.file))
    except ConfigError as exc:
        # Several at once (a file with three typos, two keys missing): one line each.
        for line in exc.lines() if isinstance(exc, ConfigErrors) else [exc.user_message]:
            print(f"bananacord: config error: {line}", file=sys.stderr)
        return 2
    except BananacordError as exc:
        print(f"bananacord: {exc.user_message}", file=sys.stderr)
        # 1, or what the error says: a backup or restore stopped by a signal exits 130 as Ctrl-C does.
        code: int = getattr(exc, "exit_code", 1)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read the output stopped early (`bananacord usage ... | head`): nothing went wrong here.
        # stdout now points at /dev/null, so the interpreter's last flush does not fail again (the recipe
        # in the Python docs' "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _run(settings: Settings) -> int:
    # Until the bot's own handlers are in place, SIGTERM (and SIGHUP, unless ignored: nohup) interrupt start-up
    # exactly as Ctrl-C does (bot/stop_signals.py).
    from bot.stop_signals import stop_signals

    for sig in stop_signals():
        if sig is not signal.SIGINT:
            signal.signal(sig, signal.default_int_handler)
    from bot.check import token_problem
    from bot.providers import missing_keys
    from bot.service import serve
    from bot.store.lock import DatabaseLock

    # Before anything connects: a token or key that would be refused later (a blank one, one with a space
    # inside) is one line naming its variable, never its value. Every one of them, as `check` lists them:
    # before, only the first was named, and the next run refused the next.
    refused = [bad.error() for bad in [token_problem(settings), *missing_keys(settings)] if bad is not None]
    if (unverifiable := callbacks_key_missing(settings)) is not None:
        refused.append(unverifiable)
    if refused:
        raise config_error(refused)
    token = settings.secret("discord_token")
    assert token is not None  # token_problem said so
    # Held until the process exits: a second bot on this database would resume and re-send our jobs.
    with DatabaseLock(settings.database.path):
        _log_sources(settings)
        return asyncio.run(serve(settings, token))


def _log_sources(settings: Settings) -> None:
    """The first lines a starting bot logs: which config file (or none) and which database it runs on, and
    each variable that overrides the file. Started from another folder, `run` found no ./config.toml, made a
    new database there and said nothing; the Docker image's BANANACORD_DATABASE__PATH silently won over a
    mounted config.toml's [database] path. (After the lock: a second bot on the database refuses in one line.)"""
    log.info("settings: %s", settings.sources.describe())
    log.info("database: %s", settings.database.path.absolute())
    for warning in settings.sources.overrides:
        log.warning("%s", warning)


def _check(settings: Settings, config_path: Path, *, providers: bool) -> int:
    from bot.check import check_config, check_providers

    problems = check_config(settings, config_path)
    if providers:
        problems += asyncio.run(check_providers(settings))
    if problems:
        print("\nmissing or wrong:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nconfiguration OK" + (" and every enabled provider answered" if providers else ""))
    return 0


def _health(settings: Settings, max_age: float) -> int:
    from bot.config import heartbeat_path

    path = heartbeat_path(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {path} (is the bot running?)")
        return 1
    if age < -FUTURE_HEARTBEAT_SLACK_SECONDS:
        # The clock was set back since: the heartbeat says nothing about the job loop now. A live loop
        # writes a new one within 30 s.
        print(f"unhealthy: last heartbeat is {-age:.0f} s in the future (was the clock set back?): stale")
        return 1
    if age > max_age:
        print(f"unhealthy: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)")
        return 1
    print(f"healthy: last heartbeat {max(age, 0.0):.0f} s ago")
    return 0


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.generate import generate

    summary = await generate(
        settings,
        prompt=args.prompt,
        provider=args.provider,
        model=args.model,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        images=args.image,
        out_dir=args.out,
    )
    print(json.dumps(summary, indent=2))
    return 0 if summary["state"] == "delivered" else 1


if __name__ == "__main__":
    raise SystemExit(main())
