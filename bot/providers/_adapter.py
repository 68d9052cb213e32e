"""What every HTTP provider adapter holds and does the same way, whatever the provider's API.

A provider is declared once, on its adapter class: name, label, key variable, default base URL and
timeout, settings model and models. The registry (bot/providers/__init__.py), the settings
(bot/config.py), `bananacord check` and moderation read those declarations.

``HttpAdapter`` checks the key and base URL once at start-up, keeps the app's client, the retry
policies, the timeout and the sleep, and sends every call through the one retry loop
(``request_with_retry``) with the one status -> error ladder below, which a provider extends only
with its own codes. What the provider's API says (fields, statuses, parsing) stays in its own module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Required, Self, TypedDict
from urllib.parse import SplitResult, urlsplit

import httpx

from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ErrorCategory,
    InvalidRequestError,
    NoImageError,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    TransientError,
)
from bot.http_terms import MAX_BODY, NO_COMPRESSION
from bot.models import GenerationRequest, JobHandle, JobUpdate, ReferenceImage, UpdateStatus
from bot.providers._http import (
    RetryPolicy,
    Sleep,
    describe_response,
    error_text,
    gateway_gave_up,
    is_web_url,
    json_object,
    parse_retry_after,
    poll_policy_for,
    probe_key,
    redact,
    request_with_retry,
    timeout_for,
)
from bot.providers.base import (
    Capabilities,
    Prefetched,
    ProviderCheck,
    ProviderSettings,
    base_url_problem,
    validate,
)
from bot.providers.families import AUTO
from bot.providers.keys import key_text_problem

if TYPE_CHECKING:
    from bot.config import Settings


# How an adapter tells whoever meters its requests (bot/budget.py BudgetHook, the provider's requests per
# second and 429 pauses) what an answer meant, since only the adapter reads the body: Kie says "rate limited"
# as code 429 in an HTTP 200 (docs/providers.md 4.1, 8.3), Segmind names its wait only in its own reset
# header (5.4). The adapter marks its requests SENDER_JUDGES; the meter leaves a RateLimitVerdict under
# RATE_LIMIT_VERDICT, called once the answer is read: (the answer, whether it was a rate limit, the wait it
# asked for or None).
SENDER_JUDGES = "bananacord.sender_judges_rate_limits"
RATE_LIMIT_VERDICT = "bananacord.rate_limit_verdict"
RateLimitVerdict = Callable[[httpx.Response, bool, float | None], None]


def tell_meter(response: httpx.Response, *, rate_limited: bool, wait: float | None = None) -> None:
    """Give the request's meter (if one left a RATE_LIMIT_VERDICT) the adapter's reading of ``response``."""
    try:
        request = response.request
    except RuntimeError:  # an answer built without a request was never sent, so never metered
        return
    verdict: RateLimitVerdict | None = request.extensions.get(RATE_LIMIT_VERDICT)
    if verdict is not None:
        verdict(response, rate_limited, wait)


class Op(StrEnum):  # a str, so it names the call in messages
    """Which call an answer is for: a 404 on a create means "no such model", after it "job gone"."""

    CREATE = "create"
    STATUS = "status"
    RESULT = "result"
    CANCEL = "cancel"


class JobGone(TransientError):
    """The provider does not know the job (any more); polling again will not help."""

    retryable = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ended without an image: its category and what the member reads (what to do)."""

    category: ErrorCategory
    message: str
    status: UpdateStatus = UpdateStatus.FAILED


NO_IMAGE = Outcome(ErrorCategory.NO_IMAGE, NoImageError.user_message)
# Words a provider's error text uses when the account has no money left (Kie, SeaArt 403 bodies).
_BALANCE_WORDS = ("balance", "insufficient", "credit", "quota exhausted")


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An answer that is not a success, as the error ladder reads it."""

    code: int  # the HTTP status, or the provider's own code where its body carries one (Kie's envelope)
    text: str  # the provider's words about it, for the rungs that read them
    op: Op
    model: str  # the bot's model name the call was for
    display: str  # the model as members read it ("Nano Banana 2"), for messages
    response: httpx.Response
    kw: dict[str, Any]  # detail, provider and status_code for the error


class AdapterArgs(TypedDict, total=False):
    """What every adapter's constructor takes (HttpAdapter.__init__); a subclass adds its own options."""

    api_key: Required[str]
    base_url: str | None
    client: Required[httpx.AsyncClient]
    policy: RetryPolicy | None
    timeout: httpx.Timeout | None
    # The create's own timeout, where it differs from ``timeout`` (``HttpAdapter.sync_read_seconds``).
    create_timeout: httpx.Timeout | None
    sleep: Sleep


def require_web_links(refs: Iterable[ReferenceImage], downloader: str) -> None:
    """Refuse a reference that is not an http(s) link, before anything is sent anywhere.

    Every provider takes references by link and fetches them itself (Gemini's adapter fetches them
    for it), so a link ``downloader`` cannot fetch is the member's to fix.
    """
    for ref in refs:
        if not is_web_url(ref.url):
            raise InvalidRequestError(f"`{ref.filename}` is not a web link {downloader} can download.")


def read_at_least(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """``timeout`` with a read timeout of at least ``seconds`` (no limit stays no limit), the other phases as
    they are: a create that draws the image before it answers (``HttpAdapter.sync_read_seconds``)."""
    read = timeout.read if timeout.read is None else max(timeout.read, seconds)
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


def ratio_to_send(request: GenerationRequest, caps: Capabilities) -> str | None:
    """The ``aspect_ratio`` value a create carries, or None to leave the field out.

    The member's ratio when they chose one. Without one, an edit (a request with reference images) means
    "keep the reference's own shape" (bot/derive.py AS_IT_IS, /imagine with references and no ratio). An API
    whose field defaults to a fixed ratio would make that edit square (Segmind's NB2 and Kie's Pro default to
    1:1, docs/providers.md 4.1 and 5.2), so where the model takes ``auto`` it is sent: the model then decides
    from the references, as Google's own API does without a ratio (6.2). A model without ``auto`` gets no
    field and its provider's default (SeaArt's Pro follows the input image, 2.4).
    """
    if request.aspect_ratio is not None:
        return request.aspect_ratio
    if request.reference_images and AUTO in caps.aspect_ratios:
        return AUTO
    return None


class HttpAdapter(ABC):
    """The declarations, constructor and plumbing shared by the provider adapters.

    A subclass declares the class attributes below. The keys its settings model adds are passed to
    its constructor by name (``_options``), and its model table may depend on them (``_models_for``).
    It implements ``submit``, ``_poll``, ``cancel`` and ``check`` and, where its API has codes of its
    own, extends ``_error``.
    """

    # -- the declaration: one per provider --
    name: str  # its settings section [providers.NAME] and the provider of its job handles
    label: ClassVar[str]  # the provider as members read it
    key_env: ClassVar[str]  # the environment variable that holds its key
    default_base_url: ClassVar[str]
    default_timeout: ClassVar[float] = 30.0  # seconds; [providers.NAME] request_timeout
    # An API whose create answers only once the image is drawn (it holds the connection meanwhile) declares
    # the least read timeout that create gets: request_timeout suits the quick calls, and a create it cuts
    # short is lost, never sent again, though the provider may have made and billed the image
    # (docs/providers.md 8.4: up to 360 s for NB2 at busy times). None: the create is as quick as any call.
    sync_read_seconds: ClassVar[float | None] = None
    # The longest answer read from this API (bot/transport.py MAX_BODY): status and create answers are
    # a few kB; an API that answers with the image itself raises it.
    max_answer_bytes: ClassVar[int] = 4 * 1024 * 1024
    enabled_by_default: ClassVar[bool] = False
    settings_model: ClassVar[type[ProviderSettings]] = ProviderSettings  # subclassed for extra keys
    MODELS: ClassVar[Mapping[str, Capabilities]]  # the bot's model name -> what it takes here
    # How the key travels: in this header, after this prefix.
    key_header: ClassVar[str] = "Authorization"
    key_prefix: ClassVar[str] = "Bearer "
    # Characters refused inside a key; None refuses every whitespace character. The adapters were
    # written with different sets, and each keeps its own so that no key accepted before is refused now.
    key_spaces: ClassVar[str | None] = None
    # False where the adapter downloads references itself; otherwise only web links can be sent.
    provider_fetches_references: ClassVar[bool] = True
    gone_reason: ClassVar[str] = "it may have expired"  # why a job can vanish, for the member

    # -- what the rest of the bot reads from the declaration --

    @classmethod
    def key_field(cls) -> str:
        """The settings field that holds the key (``seaart_api_key``), read from ``key_env``."""
        return f"{cls.name}_api_key"

    @classmethod
    def section(cls, settings: Settings) -> ProviderSettings:
        """This provider's [providers.NAME] settings."""
        section = getattr(settings.providers, cls.name)
        assert isinstance(section, cls.settings_model)
        return section

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return cls.section(settings).enabled

    @classmethod
    def key(cls, settings: Settings) -> str | None:
        return settings.secret(cls.key_field())

    @classmethod
    def models_for(cls, settings: Settings) -> Mapping[str, Capabilities]:
        """The models this provider serves with these settings (without building it)."""
        return cls._models_for(**cls._options(settings))

    @classmethod
    def _models_for(cls, **options: Any) -> dict[str, Capabilities]:
        """The model table for these constructor options (a provider's may depend on them)."""
        return dict(cls.MODELS)

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> Self:
        """The adapter as configured; a missing key is a ConfigError naming its variable."""
        key = cls.key(settings)
        if not key:
            raise ConfigError(
                cls.key_env,
                "is not set",
                f"Export your {cls.name} API key as {cls.key_env}, or disable [providers.{cls.name}].",
            )
        section = cls.section(settings)
        timeout = timeout_for(section.request_timeout)
        # A drawing create reads for the longer of request_timeout and sync_read_seconds: the setting is the
        # least it waits, never the most (before, 120 s from the settings cut Segmind v1's creates short of the
        # 360 s it allowed them, and Gemini's at 180 s).
        drawing = None if cls.sync_read_seconds is None else read_at_least(timeout, cls.sync_read_seconds)
        return cls(
            api_key=key,
            base_url=section.base_url,
            client=client,
            timeout=timeout,
            create_timeout=drawing,
            **cls._options(settings),
        )

    @classmethod
    def _options(cls, settings: Settings) -> dict[str, Any]:
        """Constructor options from the settings: the keys the provider's settings model adds."""
        section = cls.section(settings)
        own = cls.settings_model.model_fields.keys() - ProviderSettings.model_fields.keys()
        return {name: getattr(section, name) for name in own}

    # -- the instance --

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        client: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        create_timeout: httpx.Timeout | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Check the key and base URL (ConfigError naming the setting) and keep the shared state.

        ``timeout`` is every call's; ``create_timeout`` the create's, if different. Without either, a drawing
        create (``sync_read_seconds``) reads for at least that long. One ``timeout`` and no ``create_timeout``
        (an adapter built by hand, as the tests do to make a hang end soon) is every call's, the create's too.
        """
        problem = key_text_problem(api_key, self.key_spaces)
        if problem is not None:
            fix = f"Set {self.key_env} to your {self.label} API key, exactly as it shows it"
            raise ConfigError(f"{self.name}.api_key", problem, fix)
        key = api_key.strip()
        base_url = base_url or self.default_base_url
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{self.name}.base_url", "is not an http(s) URL", f"Use {self.default_base_url}")
        # Every path is appended to the base, so a query string there would end up mid-URL. The settings
        # refuse it when they load (bot/providers/base.py), in the same words; this is for an adapter built
        # by hand.
        if (problem := base_url_problem(base_url)) is not None:
            raise ConfigError(f"{self.name}.base_url", problem, f"Use the address alone, e.g. {self.default_base_url}")
        self._api_key = key
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._policy = policy or RetryPolicy()
        self._poll_policy = poll_policy_for(self._policy)
        self._timeout = timeout or timeout_for(self.default_timeout)
        if create_timeout is None and timeout is None and self.sync_read_seconds is not None:
            create_timeout = read_at_least(self._timeout, self.sync_read_seconds)
        self._create_timeout = create_timeout or self._timeout
        self._sleep = sleep
        # Per instance: tests may loosen one entry; a provider whose table depends on its options
        # replaces it with _models_for(...).
        self._models = dict(self.MODELS)
        # Uncompressed answers, whatever client the adapter is given: the bot's transport refuses a compressed
        # answer to such a request unread, where httpx would inflate it without a bound (bot/transport.py).
        self._headers = {self.key_header: f"{self.key_prefix}{key}", "Accept": "application/json", **NO_COMPRESSION}
        # The same, as httpx keeps them: a dict is normalised again on every request, an httpx.Headers
        # only copied (about a tenth of a status poll's CPU, bench/load.py).
        self._request_headers = httpx.Headers(self._headers)
        # Every call to this API reads at most this much of an answer (bot/transport.py).
        self._answer_bounds: dict[str, Any] = {MAX_BODY: self.max_answer_bytes}
        # The calls sent through ``_send`` also tell the request budget what each answer meant (``_map_error``):
        # only the adapter reads the body that says "rate limited" in a 200 (Kie), or the header with the wait
        # (Segmind), where the budget's hook sees only the HTTP status (bot/budget.py).
        self._send_extensions: dict[str, Any] = {**self._answer_bounds, SENDER_JUDGES: True}
        # The subclass's module logger, so a record names the provider it is about.
        self._log = logging.getLogger(type(self).__module__)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={self._base_url!r})"

    @property
    def models(self) -> dict[str, Capabilities]:
        return self._models

    async def aclose(self) -> None:
        """Nothing to close: the httpx client belongs to the app, which closes it."""
        return None

    @abstractmethod
    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        """Create the job. Raises ProviderError; never re-sends a create that may have been accepted."""

    @abstractmethod
    async def cancel(self, handle: JobHandle) -> bool:
        """Ask the provider to stop the job; True if it accepted the cancellation."""

    @abstractmethod
    async def check(self) -> ProviderCheck:
        """Reachability and the cheapest call that proves the key, without generating an image."""

    def _accept(self, request: GenerationRequest) -> Capabilities:
        """The model's capabilities, once the request is known to fit them (else InvalidRequestError)."""
        caps = self._models.get(request.model)
        if caps is None:
            names = ", ".join(c.display_name for c in self._models.values())
            raise InvalidRequestError(f"{self.label} does not offer that model here. Choose one of: {names}.")
        validate(request, caps)
        if self.provider_fetches_references:
            require_web_links(request.reference_images, self.label)
        return caps

    def _display_name(self, model: str) -> str:
        """The model's name for a message; a model we do not serve is "this model"."""
        caps = self._models.get(model)
        return caps.display_name if caps is not None else "this model"

    # -- polling --

    async def poll(self, handle: JobHandle) -> JobUpdate:
        """The job's state. A handle that came with its answer (synchronous APIs) is that answer."""
        if handle.ready is not None:
            return handle.ready
        try:
            return await self._poll(handle)
        except JobGone as exc:
            return self._gone(handle, exc)

    @abstractmethod
    async def _poll(self, handle: JobHandle) -> JobUpdate:
        """Ask the provider for the state of a job submitted without its answer."""

    def _gone(self, handle: JobHandle, exc: ProviderError) -> JobUpdate:
        """The terminal update for a job the provider no longer knows (``exc`` is its JobGone)."""
        self._log.warning("%s job %s not found: %s", self.name, handle.provider_job_id, exc.detail)
        return JobUpdate(
            status=UpdateStatus.FAILED,
            error_category=exc.category,
            error_message=exc.user_message,
            error_detail=exc.detail,
        )

    def _ended(self, outcome: Outcome, detail: str, usage: dict[str, Any], *, text: str | None = None) -> JobUpdate:
        """The terminal update for a job that ended without an image; ``detail`` is logged, redacted."""
        detail = self._redact(detail)
        self._log.info("job ended: %s -> %s", detail, outcome.category)
        return JobUpdate(
            status=outcome.status,
            text=text,
            error_category=outcome.category,
            error_message=outcome.message,
            error_detail=detail,
            usage=usage,
        )

    # -- sending --

    async def _send(
        self,
        method: str,
        url: str,
        op: Op,
        model: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call through the shared retry loop, answers read by this adapter's error ladder.

        A create is never re-sent once it may have arrived ("every POST is a new billable job");
        status and result calls are repeated by the job runner anyway, so they get the lighter policy.
        """
        return await request_with_retry(
            self._client,
            method,
            # Only a status link is asked for again and again; a result or cancel link once.
            _parsed_once(url) if op is Op.STATUS else url,
            idempotent=op is not Op.CREATE,
            policy=self._poll_policy if op in (Op.STATUS, Op.RESULT) else self._policy,
            map_error=lambda response: self._map_error(response, op, model),
            map_success=True,
            uncertain=self._answer_uncertain,
            sleep=self._sleep,
            provider=self.name,
            headers=headers or self._request_headers,
            timeout=timeout or self._timeout,
            extensions=self._send_extensions,
            **kwargs,
        )

    async def _probe(self, url: str) -> ProviderCheck:
        """probe_key against ``url`` with this adapter's headers and timeout."""
        return await probe_key(
            self._client,
            url,
            headers=self._headers,
            timeout=self._timeout,
            secrets=[self._api_key],
            extensions=self._answer_bounds,
        )

    @functools.cached_property
    def _base_parts(self) -> SplitResult:
        # Split once, on first use (a subclass may still adjust _base_url in its __init__): _is_ours runs
        # on every poll.
        return urlsplit(self._base_url)

    def _is_ours(self, url: str, under: str = "/") -> bool:
        """Whether a URL the provider returned points ``under`` the configured base, and can be sent.

        Our key goes with every call, so a returned URL is followed only when it does. One that does not
        parse (``https://[x/``), or that httpx would refuse to send (a control character, too long), is not
        followed either: the documented path is used instead. Before, its ValueError or InvalidURL escaped
        every poll (a traceback each, until the deadline) and every cancel (the job never ended).
        """
        if len(url) > MAX_LINK_CHARS:
            return False
        try:
            other = urlsplit(url)
            parsed_url(url)
        except (ValueError, httpx.InvalidURL):
            return False
        base = self._base_parts
        return (
            other.scheme == base.scheme
            and other.netloc.lower() == base.netloc.lower()
            and other.path.startswith(base.path.rstrip("/") + under)
            and not other.query
        )

    # -- the error ladder --

    def _map_error(self, response: httpx.Response, op: Op, model: str) -> ProviderError | None:
        """Any answer -> None (a success, or an answer the caller reads) or the error it means."""
        code = self._code(response)
        if 200 <= code < 300 or self._is_answer(response, op):
            tell_meter(response, rate_limited=False)
            return None
        detail = self._describe(response)
        if code != response.status_code:
            detail += f" (code {code} in the body)"
        kw = {"detail": detail, "provider": self.name, "status_code": code}
        text = self._error_text(response)
        error = self._error(ErrorAnswer(code, text, op, model, self._display_name(model), response, kw))
        if code == 429 and isinstance(error, RateLimitedError):
            # A rate limit as this API says it (the HTTP status, or Kie's code in a 200's body): every request
            # to the provider pauses for the wait it asked, where it says one (Segmind's reset header, Gemini's
            # RetryInfo, a Retry-After), as the retry loop waits it (bot/providers/_http.py).
            wait = error.retry_after
            if wait is None:
                wait = parse_retry_after(response.headers.get("Retry-After"))
            tell_meter(response, rate_limited=True, wait=wait)
        else:
            tell_meter(response, rate_limited=False)
        return error

    def _code(self, response: httpx.Response) -> int:
        """The code that decides: the HTTP status, unless the provider puts its own in the body."""
        return response.status_code

    def _is_answer(self, response: httpx.Response, op: Op) -> bool:
        """A non-2xx the caller reads as a result rather than an error (e.g. a failed job's 422)."""
        return False

    def _error_text(self, response: httpx.Response) -> str:
        return error_text(response)

    def _retry_hint(self, response: httpx.Response) -> float | None:
        """Seconds an answer asks us to wait where the API says so outside Retry-After: a 429's (the ladder
        below puts it on the RateLimitedError), or an adapter's own overload (an OverloadedError's)."""
        return None

    def _answer_uncertain(self, response: httpx.Response, error: ProviderError) -> bool:
        """Whether this error answer to a create leaves it unknown whether the job was made, so it is never
        sent again (SubmitUncertainError). A gateway's 504 by default; an API whose own error body says
        the work was given up overrides it."""
        return gateway_gave_up(response, error)

    def _error(self, answer: ErrorAnswer) -> ProviderError:
        """The default ladder (docs/providers.md 8.3); a provider handles its own codes first, then
        calls this for the rest."""
        label, code, kw = self.label, answer.code, answer.kw
        if code == 401:
            return AuthError(f"{label} rejected the bot's API key. The bot owner has to check {self.key_env}.", **kw)
        if code == 402 or (code == 403 and any(word in answer.text.lower() for word in _BALANCE_WORDS)):
            return OutOfCreditError(
                f"The bot's {label} account is out of credit. The bot owner has to top it up.", **kw
            )
        if code == 403:
            return AuthError(
                f"{label} refused the bot's API key (it may be limited to other addresses or models). "
                "The bot owner has to check the key's settings.",
                **kw,
            )
        if code == 404 and answer.op is Op.CREATE:
            return AuthError(
                f"{label} does not offer {answer.display} at the configured address. The bot owner has to "
                "check the base URL and the model in the configuration.",
                **kw,
            )
        if code == 404:
            return JobGone(
                f"{label} no longer knows this job ({self.gone_reason}). Nothing more will arrive; start a new one.",
                **kw,
            )
        if code == 429:
            return RateLimitedError(
                f"{label} is rate limiting the bot right now.",
                retry_after=self._retry_hint(answer.response),
                **kw,
            )
        if 400 <= code < 500:
            return BadInputError(
                f"{label} rejected the request's settings. Check the prompt and the reference images "
                "(they must be public image links), then try again.",
                **kw,
            )
        if code >= 500:
            return TransientError(f"{label} had a temporary failure. Try again in a minute.", **kw)
        return TransientError(f"{label} sent an unexpected answer. Try again in a minute.", **kw)

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

    def _unreadable(self) -> Outcome:
        return Outcome(
            ErrorCategory.TRANSIENT, f"{self.label} sent an answer the bot could not read. Try again in a few minutes."
        )

    def _unexpected(self, response: httpx.Response, what: str, why: str) -> TransientError:
        """A ``what`` (create, status, result) answer the adapter cannot read: logged, and worth a retry."""
        detail = f"{self.name} {what} answer unreadable ({why}): {self._describe(response)}"
        self._log.warning("%s", detail)
        return TransientError(
            self._unreadable().message, detail=detail, provider=self.name, status_code=response.status_code
        )


# The longest status, result or cancel link from an answer that is followed: they have no query (``_is_ours``),
# and a path under the base is far shorter. Longer ones cost a parse at every poll for nothing.
MAX_LINK_CHARS = 2048


def _parsed_once(url: str) -> httpx.URL | str:
    """``parsed_url(url)``, or ``url`` itself if httpx cannot parse it: the request then fails in the retry
    loop, which reports it as a provider error (nothing sent) rather than letting InvalidURL escape."""
    try:
        return parsed_url(url)
    except httpx.InvalidURL:
        return url


@functools.lru_cache(maxsize=16384)
def parsed_url(url: str) -> httpx.URL:
    """``url`` as httpx parses it, once. A job's status link is the same at every poll, and httpx parses
    a str (checking it character by character) on each request: about a third of a poll's CPU in
    bench/load.py. httpx.URL is immutable, so one instance serves every request. The cache must hold
    every job in flight: polled round-robin, a smaller LRU misses every time (at 10,000 jobs in flight
    a cache of 4,096 made parsing a quarter of the bot's CPU); 16,384 links weigh about 10 MB."""
    return httpx.URL(url)
