"""HTTP plumbing every provider adapter shares: retry with backoff, Retry-After, and redaction.

Provider-neutral on purpose: an adapter passes ``map_error`` (its own status/body -> ProviderError
mapping) and decides whether the call is idempotent; everything else lives here, in one place
(docs/architecture.md section 3, "one retry policy, status -> error mapping in one place").
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeGuard
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.errors import ProviderError, RateLimitedError, SubmitUncertainError, TransientError
from bot.logs import without_secret_starts
from bot.providers.base import ProviderCheck

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ErrorMapper = Callable[[httpx.Response], ProviderError | None]
# Whether an error answer to a create leaves it unknown whether the work was done (and billed): the answer
# and the error ``ErrorMapper`` made of it.
AnswerUncertain = Callable[[httpx.Response, ProviderError], bool]

# The connection was never established, so the server cannot have seen the request: always safe to
# retry, even a non-idempotent create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Local mistakes (bad URL scheme, a header httpx refuses): nothing was sent and retrying cannot help.
_LOCAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# Gateway timeouts say the upstream did not answer in time, not that it did nothing: a create behind
# a 504 may well have been accepted, so it is treated like a lost answer (never re-sent), unless the
# adapter knows better from the answer (``AnswerUncertain``).
_UNCERTAIN_STATUSES = frozenset({504})


def gateway_gave_up(response: httpx.Response, error: ProviderError) -> bool:
    """The default ``AnswerUncertain``: a 504 (the HTTP status, or the provider's own code in its body)."""
    return error.status_code in _UNCERTAIN_STATUSES


class BetweenAttempts(Protocol):
    """Told when a non-idempotent call (a create) waits to try again: every attempt so far was answered
    as not done (a 429 or 5xx) or never left, so nothing of it is outstanding until the next leaves."""

    async def settled(self) -> None:
        """No attempt is outstanding; the wait before the next one begins."""

    async def leaving(self) -> None:
        """The next attempt is about to leave."""


# Set by whoever sends a create and must know when one may be in flight (the job runner: bot/jobs.py).
BETWEEN_ATTEMPTS: ContextVar[BetweenAttempts | None] = ContextVar("BETWEEN_ATTEMPTS", default=None)
# Set by request_with_retry while an attempt of such a create is inside httpx: a request hook that holds
# it back before it leaves (bot/budget.py, the provider's requests per second) tells it too.
CREATE_ATTEMPT: ContextVar[BetweenAttempts | None] = ContextVar("CREATE_ATTEMPT", default=None)

REDACTED = "***"
_MIN_SECRET_LEN = 4
# Header/query names that carry credentials across the providers we talk to (Bearer/Key auth,
# Segmind's x-api-key, Gemini's x-goog-api-key and ?key=).
_SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization")
_SECRET_QUERY = ("key", "api_key", "apikey", "token", "access_token", "signature", "sig")
# Last line of defence for text we did not build ourselves (exception strings, echoed bodies).
# A token must hold a digit, so prose such as "key features" survives.
_AUTH_TOKEN_RE = re.compile(
    r"(?i)\b(bearer|key|basic|token)\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}",
)
_URL_RE = re.compile(r"https?://[^\s\"'<>]+")
_SECRET_PARAM_RE = re.compile(
    r"(?i)([?&](?:" + "|".join(_SECRET_QUERY) + r")=)[^&#\s\"']+",
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one HTTP call is retried.

    ``max_attempts`` counts every try, the first included. Delays grow as ``base_delay * 2**(n-1)``
    up to ``max_delay``; with ``jitter`` the delay is drawn uniformly from [0, that] ("full jitter"),
    so many jobs hitting the same 429 do not come back in lockstep.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        A server's Retry-After is a floor (waiting less would just earn another 429); the result is
        always capped at ``max_delay``.
        """
        backoff = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        wait = random.uniform(0.0, backoff) if self.jitter else backoff
        if retry_after is not None and math.isfinite(retry_after):
            wait = max(wait, retry_after)
        return max(0.0, min(self.max_delay, wait))


def timeout_for(seconds: float) -> httpx.Timeout:
    """``[providers.NAME] request_timeout`` as an httpx timeout: connecting gets at most 10 s of it."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def poll_policy_for(policy: RetryPolicy) -> RetryPolicy:
    """A lighter ``policy`` for status calls: at most 2 attempts and 5 s between them.

    Polls are repeated by the job runner with its own backoff anyway; retrying a poll for a minute
    inside one call would only hold up the runner's slot.
    """
    return RetryPolicy(
        max_attempts=min(2, policy.max_attempts),
        base_delay=policy.base_delay,
        max_delay=min(5.0, policy.max_delay),
        jitter=policy.jitter,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    Returns None for a missing or unparseable value. A date in the past means "now" (0.0).
    Fractional seconds are accepted because some gateways send them, although the RFC does not.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC dates are GMT; a naive result means "-0000"
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


# --- reading answers -----------------------------------------------------------------------------


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None if the body is not JSON (an HTML error page, bad UTF-8)."""
    try:
        return response.json()
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; nesting past the parser
        return None


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON body if it is an object, else None: every API we call answers with one."""
    body = json_body(response)
    return body if isinstance(body, dict) else None


def error_text(response: httpx.Response) -> str:
    """The provider's own words in an error answer, whatever its envelope: the usual JSON fields
    (``{"error": {"message"}}``, ``msg``, ``message``, ``detail``...) joined, or the start of a text body."""
    body = json_body(response)
    if isinstance(body, dict):
        parts: list[str] = []
        for key in ("error", "error_description", "msg", "message", "error_msg", "error_code", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("error")
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
        return " ".join(parts)[:500]
    if isinstance(body, str):
        return body[:500]
    try:
        text = response.text
    except Exception:  # an undecodable body is not worth failing the error path for
        return ""
    if "<html" in text[:200].lower():
        return "HTML error page"
    return text.strip()[:500]


# Provider job ids seen so far are 20-40 characters (docs/providers.md); an id is stored in the job row,
# sent in every status call and written in log lines, so one far longer, or with control characters, is
# not a job the bot can follow.
MAX_JOB_ID_CHARS = 256


def usable_job_id(value: object) -> str | None:
    """The job id a create answer gives, if the bot can use it: text of 1 to MAX_JOB_ID_CHARS printable
    characters (surrounding spaces dropped). None otherwise: the create may have made the task, but it
    cannot be followed."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not (0 < len(text) <= MAX_JOB_ID_CHARS and text.isprintable()):
        return None
    # "." and ".." stay as they are in a URL path (quote leaves dots), and httpx removes such a dot segment:
    # the status poll, sent with the key, went to another endpoint ({base}/v1/tasks/.. -> {base}/v1/).
    return None if not text.strip(".") else text


# Numbers in answers (a code, a seed, a count) are read from text only as ASCII digits, at most this many: str.isdigit
# also takes "²" and other digits int() refuses, and int() refuses more than 4,300 digits (ValueError either way,
# which escaped the adapters and ended a create as "the bot restarted").
MAX_NUMBER_DIGITS = 18
_NUMBER_RE = re.compile(rf"-?[0-9]{{1,{MAX_NUMBER_DIGITS}}}")


def number_in(text: str, *, signed: bool = False) -> int | None:
    """The integer ``text`` writes (surrounding spaces dropped; a minus sign only if ``signed``), or None."""
    text = text.strip()
    if not _NUMBER_RE.fullmatch(text) or (text.startswith("-") and not signed):
        return None
    return int(text)


# What of a value from an answer (a status, a reason, a code) goes into a log line or an error's detail: a
# provider can send one of any length, and it was logged whole on every poll.
SHOWN_CHARS = 80


def clipped(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` for a log line: a string's repr cut to ``limit`` characters (saying how long it was), a
    number or null as is, anything else by its type only (a list can hold a whole answer)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"<a JSON {type(value).__name__}>"


def is_web_url(value: object) -> TypeGuard[str]:
    """True for an http(s) link: what a provider can download."""
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def is_result_url(value: object) -> TypeGuard[str]:
    """True for any absolute URL given as a result, http(s) or not (see ``result_urls``)."""
    if not isinstance(value, str):
        return False
    try:
        return bool(urlsplit(value.strip()).scheme)
    except ValueError:
        return False


def result_urls(urls: Iterable[str]) -> list[str]:
    """The http(s) result URLs; if there are none, the other absolute URLs (``file://``, ``data:``).

    A non-web link beside web ones is noise and is dropped; when it is all there is, it is kept so the
    download step refuses it with a message naming the scheme, rather than "the model sent no image".
    """
    candidates = [url for url in urls if is_result_url(url)]
    web = [url for url in candidates if is_web_url(url)]
    return web or candidates


# --- redaction -----------------------------------------------------------------------------------


def safe_url(url: httpx.URL | str) -> str:
    """The URL without userinfo, query string or fragment: fit for a log line or an error detail."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        # A bad port or IPv6 literal: a provider's body can hold anything, and an excerpt of it may cut a
        # link mid-port. Describing an answer must not fail on it.
        return "<malformed URL>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def request_secrets(request: httpx.Request | None) -> list[str]:
    """Every credential a request carries (auth headers, key-ish query parameters)."""
    if request is None:
        return []
    found: list[str] = []
    for name in _SECRET_HEADERS:
        value = request.headers.get(name)
        if value:
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in {"bearer", "key", "basic", "token"}:
                found.append(token.strip())
    for name, value in request.url.params.multi_items():
        if name.lower() in _SECRET_QUERY and value:
            found.append(value)
    return found


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets, credential-like tokens and URL query strings removed.

    Redact whole text, then cut it (``redacted_excerpt``): a secret cut first is no longer found whole. What
    is left of one that a caller cut anyway (its first characters, bot/logs.py ``without_secret_starts``) is
    removed too."""
    return _shapes_redacted(_secrets_redacted(text, secrets))


def _secrets_redacted(text: str, secrets: Iterable[str | None]) -> str:
    # Longest first, so a header value "Bearer abc" is removed whole before its token "abc".
    for secret in sorted((s for s in secrets if s and len(s) >= _MIN_SECRET_LEN), key=len, reverse=True):
        text = without_secret_starts(text, secret, REDACTED)
    return text


def _shapes_redacted(text: str) -> str:
    # Query strings carry keys (Gemini's ?key=) and signatures (signed CDN links): never log them.
    text = _URL_RE.sub(lambda m: safe_url(m.group(0)), text)
    text = _AUTH_TOKEN_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


# Token-shaped text and links are redacted this far past an excerpt's cut, so one the cut falls inside is still
# seen whole (bot/logs.py reads the same margin).
_CUT_MARGIN = 256


def redacted_excerpt(text: str, limit: int, secrets: Iterable[str | None] = (), *, length: str | None = None) -> str:
    """``text`` redacted, then cut to ``limit`` characters (saying how long it was: ``length``, or its
    character count). Redacted first: a key the cut fell inside kept 40 of its 44 characters when the
    excerpt was cut and then redacted. The known secrets are replaced in the whole text; the token shapes
    are read to a margin past the cut."""
    text = _secrets_redacted(text, secrets)
    if len(text) <= limit:
        return _shapes_redacted(text)
    return f"{_shapes_redacted(text[: limit + _CUT_MARGIN])[:limit]}... ({length or f'{len(text)} characters'})"


def body_excerpt(response: httpx.Response, limit: int = 300, secrets: Iterable[str | None] = ()) -> str:
    """The start of a response body for a log line: secrets removed, then truncated; never raises."""
    try:
        text = response.text
    except Exception:  # undecodable or unread stream: say so instead of failing the error path
        return "<unreadable body>"
    text = text.replace("\r", " ").replace("\n", " ")
    secrets = [*secrets, *request_secrets(response.request)]
    return redacted_excerpt(text, limit, secrets, length=f"{len(response.content)} bytes")


def describe_response(response: httpx.Response, secrets: Iterable[str | None] = ()) -> str:
    """``METHOD url -> HTTP status: body`` for ``detail`` fields and logs, already redacted."""
    request = response.request
    return (
        f"{request.method} {safe_url(request.url)} -> HTTP {response.status_code}: "
        f"{body_excerpt(response, secrets=secrets)}"
    )


def _describe_exception(exc: BaseException, request: httpx.Request | None) -> str:
    return redact(f"{type(exc).__name__}: {exc}", request_secrets(request))


# --- the retry loop ------------------------------------------------------------------------------


def _is_retryable_status(status: int) -> bool:
    # A 429 or 5xx is the server saying it did not do the work (apart from an uncertain 504: AnswerUncertain).
    return status == 429 or 500 <= status <= 599


async def request_with_retry(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL | str,
    *,
    idempotent: bool,
    policy: RetryPolicy,
    map_error: ErrorMapper,
    sleep: Sleep = asyncio.sleep,
    provider: str | None = None,
    map_success: bool = False,
    uncertain: AnswerUncertain = gateway_gave_up,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, retrying what is safe to retry; return a response or raise ProviderError.

    * 2xx (unless ``map_success``: then ``map_error`` reads every answer, for APIs that report
      failures inside a 200 body), and any response ``map_error`` returns None for, is returned as is.
    * The error's ``status_code`` decides what follows: the HTTP status, or the provider's own code
      where its body carries one. A 429 or 5xx mapped to a retryable error (apart from an answer
      ``uncertain`` calls so on a non-idempotent call: by default a 504, raised as
      SubmitUncertainError) and connection failures are retried with backoff, jitter and
      Retry-After (or the wait a RateLimitedError carries, an OverloadedError's too); when attempts run out
      the mapped error is raised.
    * Any other error is raised at once.
    * If the request may have reached the server (read/write timeout, dropped connection), it is
      retried only when ``idempotent``; otherwise SubmitUncertainError is raised, so a create that
      may have been accepted is never sent twice.
    """
    attempt = 0
    between = None if idempotent else BETWEEN_ATTEMPTS.get()
    while True:
        attempt += 1
        last = attempt >= policy.max_attempts
        try:
            if between is None:
                response = await client.request(method, url, **kwargs)
            else:
                response = await _create_attempt(client, method, url, between, kwargs)
        except _LOCAL as exc:
            where = _where(method, url)
            raise ProviderError(
                detail=f"{where}: request not sent: {_describe_exception(exc, exc.request)}",
                provider=provider,
            ) from exc
        except httpx.InvalidURL as exc:
            # A link from an answer httpx cannot send (a control character, 65,536 characters or more): nothing
            # was sent, and the same link fails the same way. Not an httpx.HTTPError, so it escaped the
            # adapters, and the job's every step ended in a traceback until its deadline.
            raise ProviderError(
                detail=f"{_where(method, url)[:300]}: request not sent: unusable link ({shown(redact(str(exc)))})",
                provider=provider,
            ) from exc
        except _NOT_SENT as exc:
            where, reason = _where(method, url), _describe_exception(exc, exc.request)
            if last:
                raise TransientError(
                    "Could not reach the image provider. Try again in a few minutes.",
                    detail=f"{where}: {reason} (after {attempt} attempts)",
                    provider=provider,
                ) from exc
            await _wait(sleep, policy, attempt, None, where, reason, between)
            continue
        except httpx.TransportError as exc:
            # ReadTimeout, WriteTimeout, RemoteProtocolError, ReadError...: the server may have
            # received (and acted on) the request; only its answer is missing.
            where, reason = _where(method, url), _describe_exception(exc, exc.request)
            if not idempotent:
                raise SubmitUncertainError(
                    detail=f"{where}: {reason}; the request may have been accepted, so it was not re-sent",
                    provider=provider,
                ) from exc
            if last:
                raise TransientError(
                    "The image provider did not answer in time. Try again in a few minutes.",
                    detail=f"{where}: {reason} (after {attempt} attempts)",
                    provider=provider,
                ) from exc
            await _wait(sleep, policy, attempt, None, where, reason)
            continue

        if response.is_success and not map_success:
            return response
        error = map_error(response)
        if error is None:
            return response
        if error.provider is None:
            error.provider = provider
        if error.status_code is None:
            error.status_code = response.status_code
        status = error.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if isinstance(error, RateLimitedError):
            # Some APIs say when to come back in the body or their own header (Gemini RetryInfo,
            # Segmind x-rate-limit-reset-at-utc); the mapper puts that on the error. Either wins.
            if error.retry_after is None:
                error.wait_for(retry_after)
            elif retry_after is None:
                retry_after = error.retry_after

        if not idempotent and uncertain(response, error):
            raise SubmitUncertainError(
                detail=f"{describe_response(response)}; it may have been accepted, so it was not re-sent",
                provider=provider,
                status_code=status,
            )
        if not (error.retryable and _is_retryable_status(status)) or last:
            raise error
        where, reason = _where(method, url), f"HTTP {response.status_code}"
        if status != response.status_code:
            reason += f" (code {status})"
        if retry_after is not None and retry_after > policy.max_delay:
            # Waiting that long inside one call would stall the caller; hand the wait to the job
            # runner, which can reschedule without holding a coroutine open.
            log.warning("%s: %s asks to wait %.0fs; giving up this call", where, reason, retry_after)
            raise error
        await _wait(sleep, policy, attempt, retry_after, where, reason, between)


async def _create_attempt(
    client: httpx.AsyncClient, method: str, url: httpx.URL | str, between: BetweenAttempts, kwargs: dict[str, Any]
) -> httpx.Response:
    """One attempt of a create, its ``between`` visible to the request hooks (``CREATE_ATTEMPT``)."""
    token = CREATE_ATTEMPT.set(between)
    try:
        return await client.request(method, url, **kwargs)
    finally:
        CREATE_ATTEMPT.reset(token)


def _where(method: str, url: httpx.URL | str) -> str:
    """The call, for a log line or an error's detail: built only then (redacting a URL costs a parse)."""
    return f"{method} {safe_url(url)}"


async def _wait(
    sleep: Sleep,
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    where: str,
    reason: str,
    between: BetweenAttempts | None = None,
) -> None:
    delay = policy.delay(attempt, retry_after)
    log.warning("%s: %s; retrying in %.2fs (attempt %d of %d)", where, reason, delay, attempt + 1, policy.max_attempts)
    if between is not None:
        await between.settled()
    await sleep(delay)
    if between is not None:
        await between.leaving()


async def probe_key(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    timeout: httpx.Timeout | float = 10.0,
    secrets: Iterable[str | None] = (),
    extensions: dict[str, Any] | None = None,
) -> ProviderCheck:
    """One GET that proves reachability and, by its status, whether the key is accepted.

    Adapters point it at a read-only call on a job id that cannot exist: a gateway that checks keys
    answers 401/403 for a bad key and 404 (or another 4xx) for a good one, and nothing is generated.
    """
    try:
        response = await client.get(url, headers=headers, timeout=timeout, extensions=extensions)
    except httpx.TransportError as exc:
        return unreachable(url, exc)
    if response.status_code in (401, 403):
        return key_rejected(response, secrets)
    if response.status_code >= 500:
        return key_not_proven(response.status_code)
    return ProviderCheck(True, True, f"key accepted (probe answered {response.status_code})")


# The verdicts every provider's check() can reach, worded once so `check --providers` reads alike.


def unreachable(url: str, exc: httpx.TransportError) -> ProviderCheck:
    return ProviderCheck(False, None, f"unreachable: {type(exc).__name__} for {safe_url(url)}")


def key_rejected(response: httpx.Response, secrets: Iterable[str | None] = ()) -> ProviderCheck:
    return ProviderCheck(True, False, f"key rejected: {describe_response(response, secrets)}")


def key_not_proven(status: int) -> ProviderCheck:
    return ProviderCheck(True, None, f"reachable, but answered {status}; key not proven")
