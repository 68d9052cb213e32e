"""`bananacord check`: what is missing or wrong in the configuration, and (with --providers) whether
each enabled provider is reachable and accepts its key, without generating an image."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from bot.catalogue import Catalogue, usd
from bot.config import Settings, callbacks_key_missing
from bot.errors import ConfigError
from bot.invite import bot_id_of, invite_url
from bot.logs import Redactor
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers import PROVIDERS, key_problem
from bot.providers._http import safe_url
from bot.providers.keys import EMPTY, NOT_ASCII, NOT_SET, WHITESPACE, SecretProblem, key_text_problem
from bot.store import DatabaseTooNewError, DatabaseUnusableError, latest_schema_version

# The first bytes of every SQLite 3 database file (https://www.sqlite.org/fileformat.html), and where in the
# 100-byte header the user_version our migrations set is kept (big-endian).
SQLITE_MAGIC = b"SQLite format 3\x00"
USER_VERSION_AT = 60


def token_problem(settings: Settings) -> SecretProblem | None:
    """What is wrong with DISCORD_TOKEN, or None. discord.py strips the token; a Discord token never holds
    whitespace nor anything but ASCII, so a blank token or one with a space inside is refused here, before
    anything connects, not "rejected by Discord" after logging in."""
    problem = key_text_problem(settings.secret("discord_token"))
    if problem is None:
        return None
    fix = {
        NOT_SET: "Export your bot token (Discord developer portal).",
        EMPTY: "Export your bot token as DISCORD_TOKEN (Discord developer portal -> Bot -> Reset Token).",
        WHITESPACE: "Export the bot token without spaces or line breaks.",
        NOT_ASCII: "Export the bot token exactly as the developer portal shows it.",
    }[problem]
    return SecretProblem("DISCORD_TOKEN", problem, fix)


def database_problem(path: Path) -> str | None:
    """What `run` would refuse about the database at ``path`` (bot/store ``make_parent`` and
    ``Database.connect``), found without creating, opening for writing or changing anything; None if
    nothing. Before, `check` said "configuration OK" to a folder, a file that is not SQLite, or a path whose
    folder cannot be made, and `run` then refused them (exit 2)."""
    if path.is_dir():
        return DatabaseUnusableError(path, "is a folder, not a file").user_message
    if path.exists():
        return _existing_database_problem(path)
    # Not there yet: `run` creates it and any folder missing on the way, in the nearest folder that exists.
    nearest = path.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        reason = f"cannot be created: {nearest} is a file, not a folder"
    elif not os.access(nearest, os.W_OK | os.X_OK):
        reason = f"cannot be created: {nearest} is not writable (Permission denied)"
    else:
        return None
    return DatabaseUnusableError(path, reason).user_message


def _existing_database_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        reason = f"cannot be opened ({exc.strerror}; check it and its folder are readable and writable)"
        return DatabaseUnusableError(path, reason).user_message
    # An empty file is a database SQLite has not written to yet, as the bot's own first start leaves it.
    if header and not header.startswith(SQLITE_MAGIC):
        return DatabaseUnusableError(path, "is not a SQLite database").user_message
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        # SQLite writes the database and, beside it, its -wal and -shm files.
        return DatabaseUnusableError(path, "is read-only (the bot needs to write to it and to its folder)").user_message
    if len(header) >= USER_VERSION_AT + 4:
        version = int.from_bytes(header[USER_VERSION_AT : USER_VERSION_AT + 4], "big")
        if version > (known := latest_schema_version()):
            return DatabaseTooNewError(path, version, known).user_message
    return None


def check_config(settings: Settings, config_path: Path) -> list[str]:
    """Print what is configured; return the problems."""
    problems: list[str] = []
    shown = config_path if config_path.exists() else f"{config_path} (not found, using defaults)"
    print(f"config file: {shown}")
    sources = settings.sources
    if sources.variables:
        print(f"environment: {', '.join(sources.variables)}")
    print(f"database:    {settings.database.path.absolute()}")
    # A proxy's password in the URL is not printed.
    print(f"discord:     {safe_url(settings.discord.api_base_url)}")
    for warning in sources.overrides:
        print(f"warning:     {warning}")
    if (database := database_problem(settings.database.path)) is not None:
        problems.append(database)
    if (token := token_problem(settings)) is not None:
        problems.append(token.line())
    elif (bot_id := bot_id_of(settings.secret("discord_token") or "")) is not None:
        # The id is not secret (Discord shows it as the bot's user id); the token it came from is never printed.
        print(f"invite:      {invite_url(bot_id)}")
    catalogue = Catalogue(settings)
    for provider in PROVIDERS:
        name, enabled = provider.name, provider.enabled(settings)
        # Never the key itself: only whether the adapter would take it.
        bad = key_problem(provider, settings)
        keyed = "key set" if bad is None else "key missing" if bad.problem == NOT_SET else "key unusable"
        print(f"provider:    {name:<10} {'enabled' if enabled else 'disabled':<8} {keyed}")
        if enabled and bad is not None:
            problems.append(bad.line())
        if enabled:
            for model, caps in provider.models_for(settings).items():
                priced = catalogue.capabilities(name, model) or caps
                prices = ", ".join(f"{size} {usd(micro)}" for size, micro in priced.prices_micro_usd)
                print(f"               {model:<16} {prices}")
    if not catalogue.providers:
        problems.append("no provider is enabled: enable at least one [providers.NAME] section.")
    if (unverifiable := callbacks_key_missing(settings)) is not None:
        problems.append(str(unverifiable))
    for model in catalogue.models():
        print(f"route:       {model:<16} {' -> '.join(catalogue.route(model))}")
    # An unknown [imagine] default_provider never gets here: load_settings refuses it.
    if settings.imagine.default_model not in catalogue.models():
        problems.append(
            f"[imagine] default_model `{settings.imagine.default_model}` is not served by any enabled provider."
        )
    return problems


async def check_providers(settings: Settings) -> list[str]:
    """Call each enabled provider's cheapest key-proving endpoint; return the problems.

    Through the bot's own client (bot/netguard.py): its transport refuses a compressed answer nobody asked
    for and reads no more of an answer than the adapter allows (bot/transport.py). A plain httpx client
    inflated a 1 MB gzip answer to gigabytes. What is printed goes to stdout, past the log's redaction, so
    each detail is redacted here with every configured secret."""
    problems: list[str] = []
    redact = Redactor(settings.secret_values())
    print("\nprovider checks (no image is generated):")
    async with guarded_client(trusted_hosts_for(settings), timeout=httpx.Timeout(15.0, connect=5.0)) as client:
        for adapter in PROVIDERS:
            name = adapter.name
            if not adapter.enabled(settings):
                continue
            if (bad := key_problem(adapter, settings)) is not None:
                print(f"  {name:<10} key {'missing' if bad.problem == NOT_SET else 'unusable'}")
                continue  # already reported by check_config
            try:
                provider = adapter.from_settings(settings, client)
            except ConfigError as exc:
                problems.append(f"{name}: {exc.user_message}")
                continue
            result = await provider.check()
            await provider.aclose()
            reach = "reachable" if result.reachable else "UNREACHABLE"
            key = {True: "key accepted", False: "KEY REJECTED", None: "key not proven"}[result.key_accepted]
            detail = redact(result.detail)
            print(f"  {name:<10} {reach:<12} {key:<15} {detail}")
            if not result.reachable:
                # Without a password the URL may carry (a proxy's): this goes to stdout, past the log's redaction.
                url = safe_url(adapter.section(settings).base_url)
                problems.append(f"{name}: {url} is unreachable ({detail}).")
            elif result.key_accepted is False:
                problems.append(f"{name}: the provider rejected {adapter.key_env} ({detail}).")
    return problems
