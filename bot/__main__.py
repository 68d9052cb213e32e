"""Command line: `run`, `demo`, `generate`, `check`, `db`. Also `python -m bot`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import mimetypes
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import Settings, load_settings
from bot.errors import BananacordError, ConfigError

log = logging.getLogger("bot")
DEFAULT_CONFIG = Path("config.toml")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request line and discord.http logs webhook routes (which embed interaction
    # tokens) at DEBUG; keep both quiet so no credential ever reaches a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("discord.http").setLevel(logging.INFO)
    logging.getLogger("discord.gateway").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bananacord", description="Nano Banana image bot for Discord.")
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML settings file (default: ./config.toml if present)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the bot (needs DISCORD_TOKEN and a provider key)")

    demo = sub.add_parser("demo", help="run the whole path offline against the bundled fakes")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write the image")
    demo.add_argument("--prompt", default="A ripe banana wearing sunglasses on a beach, studio lighting")

    gen = sub.add_parser("generate", help="generate one image from the shell, without Discord")
    gen.add_argument("prompt")
    gen.add_argument("--provider", default=None)
    gen.add_argument("--model", default=None)
    gen.add_argument("--aspect-ratio", default=None)
    gen.add_argument("--resolution", default=None)
    gen.add_argument("--image", action="append", default=[], metavar="PATH_OR_URL", help="reference image (repeat)")
    gen.add_argument("--out", type=Path, default=Path("."), help="folder for the image(s)")

    check = sub.add_parser("check", help="validate the configuration and say what is missing")
    check.add_argument("--providers", action="store_true", help="also check each provider (later issue)")

    health = sub.add_parser("health", help="exit 0 if the running bot's job loop is alive")
    health.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["migrate", "status"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            _setup_logging("WARNING")
            return asyncio.run(run_demo(out_dir=args.out, prompt=args.prompt))
        config_path = args.config or DEFAULT_CONFIG
        settings = load_settings(config_path, required=args.config is not None)
        _setup_logging(settings.log_level)
        if args.command == "run":
            return _run(settings)
        if args.command == "check":
            return _check(settings, config_path)
        if args.command == "generate":
            return asyncio.run(_generate(settings, args))
        if args.command == "health":
            return _health(settings, args.max_age)
        if args.command == "db":
            return asyncio.run(_db(settings, args.action))
    except ConfigError as exc:
        print(f"bananacord: config error: {exc.user_message}", file=sys.stderr)
        return 2
    except BananacordError as exc:
        print(f"bananacord: {exc.user_message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _run(settings: Settings) -> int:
    from bot.app import Bananacord, point_discord_at
    from bot.providers import missing_keys

    token = settings.secret("discord_token")
    if not token:
        raise ConfigError("DISCORD_TOKEN", "is not set", "Export your bot token as DISCORD_TOKEN.")
    missing = missing_keys(settings)
    if missing:
        raise ConfigError(missing[0], "is not set", f"Export it, or disable that provider in the config.")
    point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
    bot = Bananacord(settings)
    bot.run(token, log_handler=None)
    return 0


def _check(settings: Settings, config_path: Path) -> int:
    from bot.providers import FACTORIES, missing_keys

    problems: list[str] = []
    print(f"config file: {config_path if config_path.exists() else f'{config_path} (not found, using defaults)'}")
    print(f"database:    {settings.database.path}")
    print(f"discord:     {settings.discord.api_base_url}")
    if not settings.secret("discord_token"):
        problems.append("DISCORD_TOKEN is not set: export your bot token (Discord developer portal).")
    for name, factory in FACTORIES.items():
        state = "enabled" if factory.enabled(settings) else "disabled"
        keyed = "key set" if settings.secret(factory.key_env.lower()) else "key missing"
        print(f"provider:    {name} ({state}, {keyed}; models: {', '.join(factory.models)})")
    for env in missing_keys(settings):
        problems.append(f"{env} is not set: export it, or disable that provider in the config.")
    if settings.imagine.default_provider not in FACTORIES:
        problems.append(f"[imagine] default_provider `{settings.imagine.default_provider}` is not a known provider.")
    elif settings.imagine.default_model not in FACTORIES[settings.imagine.default_provider].models:
        problems.append(f"[imagine] default_model `{settings.imagine.default_model}` is not offered by "
                        f"{settings.imagine.default_provider}.")
    if problems:
        print("\nmissing or wrong:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nconfiguration OK")
    return 0


def _health(settings: Settings, max_age: float) -> int:
    from bot.config import heartbeat_path

    path = heartbeat_path(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {path} (is the bot running?)")
        return 1
    if age > max_age:
        print(f"unhealthy: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)")
        return 1
    print(f"healthy: last heartbeat {age:.0f} s ago")
    return 0


async def _db(settings: Settings, action: str) -> int:
    from bot.store import Database
    from bot.store.jobs import JobStore

    db = Database(settings.database.path)
    await db.connect()  # applies migrations
    try:
        version = await db.schema_version()
        print(f"{settings.database.path}: schema version {version}")
        if action == "status":
            for state, count in sorted((await JobStore(db).count_by_state()).items()):
                print(f"  {state:<10} {count}")
    finally:
        await db.close()
    return 0


async def _reference(http: object, value: str, max_bytes: int) -> object:
    """Turn --image into a ReferenceImage: URLs are checked (type, size) but passed on as URLs."""
    import httpx

    from bot.errors import InvalidRequestError
    from bot.fetch import download
    from bot.images import inspect
    from bot.models import ReferenceImage

    assert isinstance(http, httpx.AsyncClient)
    if value.startswith(("http://", "https://")):
        data = await download(http, value, max_bytes=max_bytes, timeout=30.0)
        try:
            fmt, _, _ = inspect(data)
        except BananacordError:
            raise InvalidRequestError(f"--image {value.split('?')[0]} is not an image.") from None
        name = value.split("?")[0].rsplit("/", 1)[-1] or "image"
        return ReferenceImage(url=value, content_type=f"image/{fmt.lower()}", size=len(data), filename=name)
    path = Path(value)
    if not path.is_file():
        raise InvalidRequestError(f"--image {value}: no such file or URL.")
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    raise InvalidRequestError(
        f"--image {path.name} ({guessed}) is a local file, but this provider fetches reference images by "
        "public URL. Upload it somewhere public and pass the URL."
    )


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from bot.cli_sink import FileSink
    from bot.jobs import JobRunner
    from bot.models import GenerationRequest
    from bot.providers import build_providers, get_factory
    from bot.providers.base import validate
    from bot.store import Database
    from bot.store.jobs import JobStore, NewJob

    provider_name = args.provider or settings.imagine.default_provider
    factory = get_factory(provider_name)
    model = args.model or settings.imagine.default_model
    caps = factory.models.get(model)
    if caps is None:
        print(f"bananacord: {provider_name} has no model {model}; choose one of: {', '.join(factory.models)}",
              file=sys.stderr)
        return 2
    if not settings.secret(factory.key_env.lower()):
        raise ConfigError(factory.key_env, "is not set", f"Export your {provider_name} API key as {factory.key_env}.")
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        refs = [await _reference(http, value, settings.imagine.max_attachment_bytes) for value in args.image]
        request = GenerationRequest(
            model=model,
            prompt=args.prompt,
            reference_images=tuple(refs),  # type: ignore[arg-type]
            aspect_ratio=args.aspect_ratio,
            resolution=args.resolution,
        )
        validate(request, caps)
        providers = {provider_name: factory.build(settings, http)}
        db = Database(settings.database.path)
        await db.connect()
        sink = FileSink(args.out)
        runner = JobRunner(JobStore(db), providers, sink, settings.jobs, settings.imagine, http=http)
        started = time.monotonic()
        try:
            job = await runner.create(NewJob(provider=provider_name, model=model, request=request, source="cli"))
            await runner.start()
            try:
                job = await runner.wait_terminal(job.id, timeout=settings.jobs.deadline_seconds + 660)
            except (KeyboardInterrupt, asyncio.CancelledError):
                await runner.cancel(job.id, by_user=None)
                raise
        finally:
            await runner.stop()
            for provider in providers.values():
                await provider.aclose()
            await db.close()
    summary = {
        "job_id": job.id,
        "provider": job.provider,
        "model": job.model,
        "provider_job_id": job.provider_job_id,
        "state": str(job.state),
        "files": [str(p) for p in sink.files.get(job.id, [])],
        "duration_seconds": round(time.monotonic() - started, 3),
        "text": job.result.get("text"),
        "usage": job.result.get("usage", {}),
        "error": None if job.error_message is None else {"category": str(job.error_category),
                                                          "message": job.error_message},
    }
    print(json.dumps(summary, indent=2))
    return 0 if str(job.state) == "delivered" else 1


if __name__ == "__main__":
    raise SystemExit(main())
