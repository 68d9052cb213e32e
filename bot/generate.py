"""`bananacord generate`: one job from the shell through the same submit/poll/download path, no Discord."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bot.catalogue import Catalogue
from bot.cli_sink import FileSink
from bot.config import Settings
from bot.errors import ConfigError, InvalidRequestError
from bot.fetch import download, redact_url
from bot.images import check_reference
from bot.job_delivery import DELIVERY_GRACE_SECONDS
from bot.jobs import JobRunner
from bot.models import GenerationRequest, ReferenceImage
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers import provider_class
from bot.providers.base import validate
from bot.store import Database
from bot.store.jobs import JobStore, NewJob


async def reference_from_argument(http: httpx.AsyncClient, value: str, max_bytes: int) -> ReferenceImage:
    """--image URL: fetched once to check it is an image of allowed size, then passed on as a URL."""
    if value.startswith(("http://", "https://")):
        name = redact_url(value).rsplit("/", 1)[-1] or "image"
        data = await download(http, value, max_bytes=max_bytes, timeout=30.0, label=f"--image {name}")
        # The same judgement as a Discord attachment gets: by its bytes, not its name or headers.
        mime, _, _ = check_reference(data, name)
        return ReferenceImage(url=value, content_type=mime, size=len(data), filename=name)
    path = Path(value)
    if not path.is_file():
        raise InvalidRequestError(f"--image {value}: no such file or URL.")
    guessed = mimetypes.guess_type(path.name)[0] or "unknown type"
    raise InvalidRequestError(
        f"--image {path.name} ({guessed}) is a local file, but this provider fetches reference images by "
        "public URL. Upload it somewhere public and pass the URL."
    )


def _throwaway_database(held: contextlib.ExitStack) -> Path:
    """A database of this run's own, gone when it ends. Never the bot's: a job runner on a database does
    more than its one job. Its start resumes every unfinished job (the bot's, sent again, and delivered to
    this command's folder, charged to a member whose message stays "Queued"), cancels held jobs it finds
    no message for, and settles the final edits the bot owes its members as if it had drawn them."""
    folder = held.enter_context(tempfile.TemporaryDirectory(prefix="bananacord-generate-"))
    return Path(folder) / "generate.sqlite3"


def _writable_folder(out_dir: Path) -> None:
    """Make sure the image will have somewhere to go before the provider is paid to make it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise InvalidRequestError(f"--out {out_dir}: cannot write there ({exc.strerror or exc}).") from None


async def generate(
    settings: Settings,
    *,
    prompt: str,
    provider: str | None,
    model: str | None,
    aspect_ratio: str | None,
    resolution: str | None,
    images: list[str],
    out_dir: Path,
) -> dict[str, Any]:
    """Run one job to its end and return the JSON-able summary the CLI prints."""
    model_name = model or settings.imagine.default_model
    provider_name = provider or settings.imagine.default_provider or _first_routed(settings, model_name)
    adapter = provider_class(provider_name)
    offered = adapter.models_for(settings)
    # Through the catalogue so configured price overrides count for the estimate too.
    caps = Catalogue(settings, [provider_name]).capabilities(provider_name, model_name)
    if caps is None:
        raise InvalidRequestError(f"{provider_name} has no model {model_name}; choose one of: {', '.join(offered)}.")
    if not adapter.key(settings):
        raise ConfigError(adapter.key_env, "is not set", f"Export your {provider_name} API key as {adapter.key_env}.")
    async with guarded_client(trusted_hosts_for(settings), timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        refs = [await reference_from_argument(http, v, settings.imagine.max_attachment_bytes) for v in images]
        request = GenerationRequest(
            model=model_name,
            prompt=prompt,
            reference_images=tuple(refs),
            aspect_ratio=aspect_ratio,
            resolution=resolution,
        )
        validate(request, caps)
        # This process serves no callbacks: a callBackUrl would send the task's end to a running bot (or
        # nowhere), and a create whose answer was lost would wait for a callback that cannot come.
        uncalled = settings.model_copy(update={"callbacks": settings.callbacks.model_copy(update={"enabled": False})})
        providers = {provider_name: adapter.from_settings(uncalled, http)}
        _writable_folder(out_dir)
        held = contextlib.ExitStack()
        db = Database(_throwaway_database(held), busy_timeout=settings.database.busy_timeout_seconds)
        sink = FileSink(out_dir)
        runner = JobRunner(JobStore(db), providers, sink, settings.jobs, settings.imagine, http=http)
        started = time.monotonic()
        try:
            await db.connect()
            job = await runner.create(
                NewJob(
                    provider=provider_name,
                    model=model_name,
                    request=request,
                    source="cli",
                    cost_micro_usd=caps.price_of(request),
                )
            )
            await runner.start()
            try:
                job = await runner.wait_terminal(
                    job.id, timeout=settings.jobs.deadline_seconds + DELIVERY_GRACE_SECONDS + 60
                )
            except (asyncio.CancelledError, KeyboardInterrupt):
                await runner.cancel(job.id, by_user=None)
                raise
        finally:
            await runner.stop()
            for built in providers.values():
                await built.aclose()
            await db.close()
            held.close()
    return {
        "job_id": job.id,
        "provider": job.provider,
        "model": job.model,
        "provider_job_id": job.provider_job_id,
        "state": str(job.state),
        "files": [str(p) for p in sink.files.get(job.id, [])],
        "duration_seconds": round(time.monotonic() - started, 3),
        "text": job.result.text,
        "usage": job.result.usage,
        "estimated_cost_usd": None if job.cost_micro_usd is None else job.cost_micro_usd / 1_000_000,
        "error": None
        if job.error_message is None
        else {"category": str(job.error_category), "message": job.error_message},
    }


def _first_routed(settings: Settings, model: str) -> str:
    """Where /imagine would send ``model`` with no default provider: the first of its route."""
    route = Catalogue(settings).route(model)
    if not route:
        raise ConfigError("[providers]", f"no enabled provider serves {model}", "Enable one, or pass --provider.")
    return route[0]
