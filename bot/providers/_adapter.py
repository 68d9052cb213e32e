"""What every HTTP provider adapter holds and does the same way, whatever the provider's API.

``HttpAdapter`` checks the key and base URL once at start-up, keeps the app's client, the retry
policies, the timeout and the sleep, and offers the small steps every adapter takes (send with
retries, look a model up, describe an answer without the key, turn an unreadable answer or a
vanished job into an error or an update). What the provider's API says (fields, statuses, error
mapping, parsing) stays in its own module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.errors import ConfigError, InvalidRequestError, ProviderError, TransientError
from bot.models import JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.providers._http import (
    ErrorMapper,
    RetryPolicy,
    Sleep,
    describe_response,
    is_web_url,
    json_object,
    poll_policy_for,
    probe_key,
    redact,
    request_with_retry,
)
from bot.providers.base import Capabilities, ProviderCheck


class JobGone(TransientError):
    """The provider does not know the job (any more); polling again will not help."""

    retryable = False


def require_web_links(refs: Iterable[ReferenceImage], downloader: str) -> None:
    """Refuse a reference that is not an http(s) link, before anything is sent anywhere.

    Every provider takes references by link and fetches them itself (Gemini's adapter fetches them
    for it), so a link ``downloader`` cannot fetch is the member's to fix.
    """
    for ref in refs:
        if not is_web_url(ref.url):
            raise InvalidRequestError(f"`{ref.filename}` is not a web link {downloader} can download.")


class HttpAdapter:
    """The constructor and plumbing shared by the provider adapters.

    A subclass names itself with ``name`` (also its settings section, as in ``seaart.api_key``) and
    ``_label`` (the provider as members read it), as class attributes or set before calling this
    constructor; after it, it sets ``_models`` and ``_headers`` (each provider authenticates its own way).
    """

    name: str
    _label: str
    _models: dict[str, Capabilities]
    _headers: dict[str, str]

    def __init__(
        self,
        *,
        api_key: str,
        key_hint: str,
        base_url: str,
        default_base_url: str,
        client: httpx.AsyncClient,
        policy: RetryPolicy | None,
        timeout: httpx.Timeout | None,
        default_timeout: httpx.Timeout,
        sleep: Sleep = asyncio.sleep,
        key_spaces: str | None = None,
    ) -> None:
        """Check the key and base URL (ConfigError naming the setting) and keep the shared state.

        ``key_hint`` says where the key comes from when it is empty. ``key_spaces`` are the characters
        refused inside the key; None refuses every whitespace character. The adapters were written with
        different sets, and each keeps its own so that no key accepted before is refused now.
        """
        key = api_key.strip()
        if not key:
            raise ConfigError(f"{self.name}.api_key", "is empty", key_hint)
        if any(c.isspace() if key_spaces is None else c in key_spaces for c in key):
            raise ConfigError(f"{self.name}.api_key", "contains whitespace", "Paste the key without spaces")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{self.name}.base_url", "is not an http(s) URL", f"Use {default_base_url}")
        self._api_key = key
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._policy = policy or RetryPolicy()
        self._poll_policy = poll_policy_for(self._policy)
        self._timeout = timeout or default_timeout
        self._sleep = sleep
        # The subclass's module logger, so a record names the provider it is about.
        self._log = logging.getLogger(type(self).__module__)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    @property
    def models(self) -> dict[str, Capabilities]:
        return self._models

    async def aclose(self) -> None:
        """Nothing to close: the httpx client belongs to the app, which closes it."""

    def _capabilities(self, model: str) -> Capabilities:
        caps = self._models.get(model)
        if caps is None:
            names = ", ".join(c.display_name for c in self._models.values())
            raise InvalidRequestError(f"{self._label} does not offer that model here. Choose one of: {names}.")
        return caps

    def _display_name(self, model: str) -> str:
        """The model's name for a message; a model we do not serve is "this model"."""
        caps = self._models.get(model)
        return caps.display_name if caps is not None else "this model"

    # -- sending --

    async def _request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        map_error: ErrorMapper,
        policy: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """request_with_retry with this adapter's client, key headers, timeout and sleep filled in.

        ``policy`` defaults to the full one (for creates); status calls pass ``self._poll_policy``.
        """
        return await request_with_retry(
            self._client,
            method,
            url,
            idempotent=idempotent,
            policy=policy or self._policy,
            map_error=map_error,
            sleep=sleep or self._sleep,
            provider=self.name,
            headers=headers or self._headers,
            timeout=timeout or self._timeout,
            **kwargs,
        )

    async def _probe(self, url: str) -> ProviderCheck:
        """probe_key against ``url`` with this adapter's headers and timeout."""
        return await probe_key(self._client, url, headers=self._headers, timeout=self._timeout, secrets=[self._api_key])

    def _is_ours(self, url: str, under: str = "/") -> bool:
        """Whether a URL the provider returned points ``under`` the configured base.

        Our key goes with every call, so a returned URL is followed only when it does.
        """
        base, other = urlsplit(self._base_url), urlsplit(url)
        return (
            other.scheme == base.scheme
            and other.netloc.lower() == base.netloc.lower()
            and other.path.startswith(base.path.rstrip("/") + under)
            and not other.query
        )

    # -- reading answers --

    def _describe(self, response: httpx.Response) -> str:
        return describe_response(response, [self._api_key])

    def _redact(self, text: str) -> str:
        return redact(text, [self._api_key])

    def _require_json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        data = json_object(response)
        if data is None:
            raise self._unexpected(response, what, "not a JSON object")
        return data

    def _unexpected(self, response: httpx.Response, what: str, why: str) -> TransientError:
        """A ``what`` (create, status, result) answer the adapter cannot read: logged, and worth a retry."""
        detail = f"{self.name} {what} answer unreadable ({why}): {self._describe(response)}"
        self._log.warning("%s", detail)
        return TransientError(
            f"{self._label} sent an answer the bot could not read. Try again in a few minutes.",
            detail=detail,
            provider=self.name,
            status_code=response.status_code,
        )

    def _gone(self, handle: JobHandle, exc: ProviderError) -> JobUpdate:
        """The terminal update for a job the provider no longer knows (``exc`` is its JobGone)."""
        self._log.warning("%s job %s not found: %s", self.name, handle.provider_job_id, exc.detail)
        return JobUpdate(
            status=UpdateStatus.FAILED,
            error_category=exc.category,
            error_message=exc.user_message,
            error_detail=exc.detail,
        )
