"""Kie.ai's market task API and the sinancode proxy in front of it (providers.md section 4).

One adapter serves two deployments, chosen per instance with ``flavour``:

* ``kie`` (https://api.kie.ai): ``POST /api/v1/jobs/createTask`` with ``{"model", "input": {...}}``,
  then ``GET /api/v1/jobs/recordInfo?taskId=...``. Every answer is a ``{code, msg|message, data}``
  envelope, and its ``code`` decides, whatever the HTTP status says: a 200 answer can carry 402 or 429.
* ``sinancode`` (https://api.sinancode.com/v1): ``POST /generate/k/nano-banana-2`` with Kie's ``input``
  fields flattened, then ``GET /tasks/{id}``. Only Nano Banana 2 is documented there.

Sources, cited per branch below:
  [kie]    docs.kie.ai as summarised in providers.md 4.1 ([C]; the Pro schema is [S], read from the
           docs mirror in monet88/artio);
  [sc]     docs.sinancode.com as summarised in providers.md 4.2, and seed 003 ([C]);
  [client] third-party client code quoted in providers.md 4.1/4.2 ([S]): a sinancode client treating
           ``completed``/``failed`` as terminal; Kie clients checking ``json.code`` and tolerating
           ``{"code":422,"msg":"recordInfo is null"}`` for a task polled right after its creation;
  [U]      not documented anywhere we found: parsed defensively, with a comment saying so.
Neither API documents cancel, a seed, a thinking level or a safety knob.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal, get_args
from urllib.parse import quote

import httpx

from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ErrorCategory,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, UpdateStatus
from bot.providers._adapter import HttpAdapter, JobGone, require_web_links
from bot.providers._http import (
    RetryPolicy,
    Sleep,
    is_result_url,
    json_object,
    key_rejected,
    parse_retry_after,
    result_urls,
    safe_url,
    unreachable,
)
from bot.providers.base import Capabilities, ProviderCheck, validate

log = logging.getLogger(__name__)

Flavour = Literal["kie", "sinancode"]
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)

KIE_DEFAULT_BASE_URL = "https://api.kie.ai"
SINANCODE_DEFAULT_BASE_URL = "https://api.sinancode.com/v1"
DEFAULT_BASE_URLS: dict[Flavour, str] = {"kie": KIE_DEFAULT_BASE_URL, "sinancode": SINANCODE_DEFAULT_BASE_URL}
_LABELS: dict[Flavour, str] = {"kie": "Kie.ai", "sinancode": "sinancode"}
# Status calls are small JSON documents; a generous read timeout still catches a hung gateway.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Kie answers "recordInfo is null" for a task polled right after its creation [client]; a not-found
# answer that soon is read as "not visible yet", later as "gone".
NOT_FOUND_GRACE_SECONDS = 120.0

# [kie] NB2 input.aspect_ratio == [sc] aspect_ratio: `auto` (the default) plus 14 ratios.
_NB2_RATIOS: tuple[str, ...] = (
    "auto",
    "1:1",
    "1:4",
    "1:8",
    "2:3",
    "3:2",
    "3:4",
    "4:1",
    "4:3",
    "4:5",
    "5:4",
    "8:1",
    "9:16",
    "16:9",
    "21:9",
)
# [kie] Pro schema [S]: 10 ratios plus `auto`; the default is 1:1.
_PRO_RATIOS: tuple[str, ...] = (
    "auto",
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
# Both document "up to 30 MB" per reference. 28 MiB (29.4 MB) stays under either reading of "MB" and is
# a whole number of MiB, so validate()'s message ("at most 28 MiB") is exactly the limit applied.
_MAX_REF_BYTES = 28 * 1024 * 1024
# No 512 tier on either API ([kie], [sc]: 1K, 2K, 4K; default 1K).
_RESOLUTIONS = ("1K", "2K", "4K")

# 1 Kie credit = $0.005 [S artio kie-pricing.md]; the credits per NB2/Pro image are [U], so these are
# [U] estimates, editable in config. sinancode's price is [U] too; it resells Kie, so the same estimate.
_NB2_PRICES = (("1K", 40_000), ("2K", 60_000), ("4K", 90_000))
_PRO_PRICES = (("1K", 90_000), ("2K", 90_000), ("4K", 120_000))

KIE_MODELS: dict[str, Capabilities] = {
    "nano_banana_2": Capabilities(
        model="nano_banana_2",
        display_name="Nano Banana 2",
        max_prompt_chars=20000,
        max_reference_images=14,
        aspect_ratios=_NB2_RATIOS,
        resolutions=_RESOLUTIONS,
        default_resolution="1K",
        max_reference_bytes=_MAX_REF_BYTES,
        provider_model="nano-banana-2",
        output_formats=("jpg", "png"),
        web_search=True,  # input.google_search
        prices_micro_usd=_NB2_PRICES,
    ),
    "nano_banana_pro": Capabilities(
        model="nano_banana_pro",
        display_name="Nano Banana Pro",
        max_prompt_chars=10000,
        max_reference_images=8,  # "up to 8" in the mirrored schema snapshot [S]
        aspect_ratios=_PRO_RATIOS,
        resolutions=_RESOLUTIONS,
        default_resolution="1K",
        max_reference_bytes=_MAX_REF_BYTES,
        provider_model="nano-banana-pro",
        output_formats=("png", "jpg"),
        web_search=False,  # the Pro schema has no google_search field
        prices_micro_usd=_PRO_PRICES,
    ),
}
# [sc] documents only /generate/k/nano-banana-2; a nano-banana-pro path is plausible but unseen [U].
SINANCODE_MODELS: dict[str, Capabilities] = {"nano_banana_2": replace(KIE_MODELS["nano_banana_2"])}
MODELS_BY_FLAVOUR: dict[Flavour, dict[str, Capabilities]] = {"kie": KIE_MODELS, "sinancode": SINANCODE_MODELS}


def input_fields(request: GenerationRequest, caps: Capabilities) -> dict[str, Any]:
    """Kie's ``input`` object for a validated request; sinancode takes the same fields, flattened."""
    fields: dict[str, Any] = {"prompt": request.prompt}
    if request.reference_images:
        fields["image_input"] = [ref.url for ref in request.reference_images]
    if request.aspect_ratio is not None:
        # Omitted otherwise: NB2 then uses `auto`, Pro 1:1 (the documented defaults).
        fields["aspect_ratio"] = request.aspect_ratio
    # Always sent, default included: the size decides the price tier, so the bot says which one it
    # ordered rather than rely on the documented default staying 1K.
    fields["resolution"] = request.resolution or caps.default_resolution
    if request.output_format is not None:
        # The bot's names ("jpg", "png") are the providers' values; omitted, NB2 makes jpg, Pro png.
        fields["output_format"] = request.output_format
    if request.web_search:
        # Default false on both; validate() has refused it for models without the field (Pro).
        fields["google_search"] = True
    # request.safety_tolerance is not mapped: neither API has a safety knob, and refusing levels a
    # provider cannot honour happens centrally (design.md section 6), not per adapter.
    return fields


class _Op(StrEnum):  # a str, so it names the call in messages
    CREATE = "create"
    STATUS = "status"


class _JobGone(JobGone):
    """The provider does not know the task (any more); polling again will not help."""


# --- failure vocabulary --------------------------------------------------------------------------

# Kie's failMsg / sinancode's error_msg wording for blocked content is [U] (providers.md 8.3); these
# words cover the usual phrasings ("violates our content policy", "flagged as sensitive", "NSFW").
_POLICY_WORDS = (
    "policy",
    "safety",
    "sensitive",
    "nsfw",
    "prohibited",
    "violat",
    "inappropriate",
    "moderat",
    "flagged",
    "unsafe",
    "harmful",
    "blocked",
)
# Failures that name the request itself (a reference that could not be fetched, a bad value). [U]
_BAD_INPUT_WORDS = ("invalid", "parameter", "download", "fetch", "unsupported", "too large", "image_input")
_BAD_INPUT_CODES = frozenset({"400", "413", "415", "422"})
_BALANCE_WORDS = ("balance", "insufficient", "credit", "quota exhausted")
_NOT_FOUND_WORDS = ("recordinfo is null", "not found", "not exist", "no such task")

# [client] sinancode: completed/failed terminal, processing running, anything else queued. The other
# spellings are [U] tolerance, so a renamed terminal state does not read as "queued" forever.
_SC_DONE = frozenset({"completed", "complete", "succeeded", "success"})
_SC_FAILED = frozenset({"failed", "fail", "error"})
_SC_CANCELLED = frozenset({"cancelled", "canceled"})
_SC_RUNNING = frozenset({"processing", "running", "in_progress", "generating"})
# [kie] recordInfo `state`.
_KIE_QUEUED = frozenset({"waiting", "queuing"})
_KIE_RUNNING = frozenset({"generating"})


def _classify_failure(code: str, message: str) -> ErrorCategory:
    text = f"{code} {message}".lower()
    if any(word in text for word in _POLICY_WORDS):
        return ErrorCategory.CONTENT_BLOCKED
    if code.strip() in _BAD_INPUT_CODES or any(word in text for word in _BAD_INPUT_WORDS):
        return ErrorCategory.BAD_INPUT
    return ErrorCategory.TRANSIENT


def _retryable_code(code: int) -> bool:
    # 429 and 5xx say "not done, try again". 505 (feature disabled) will not change on a retry, and 455
    # (maintenance) lasts longer than a call's backoff: failing over beats waiting (providers.md 8.3).
    return code == 429 or (500 <= code <= 599 and code != 505)


# --- parsing helpers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Envelope:
    """[kie] ``{code, msg|message, data}``: create answers say ``msg``, recordInfo says ``message``."""

    code: int
    message: str
    data: Any


def _envelope(response: httpx.Response) -> _Envelope | None:
    body = json_object(response)
    if body is None:
        return None
    code = body.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)  # [U] tolerance: the docs type it as an integer
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    message = body.get("msg")
    if not isinstance(message, str) or not message:
        message = body.get("message")
    return _Envelope(code, message if isinstance(message, str) else "", body.get("data"))


def _error_text(response: httpx.Response) -> str:
    """The provider's words in an error body: [kie] msg/message; [sc] message || error_msg || error_code."""
    body = json_object(response)
    if body is None:
        return ""
    for name in ("msg", "message", "error_msg", "error_code", "error", "detail"):
        value = body.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _kie_result_urls(raw: object) -> list[str] | None:
    """[kie] ``resultJson`` is a JSON *string* holding ``{"resultUrls": [...]}``. None if unreadable."""
    if raw is None or raw == "":
        return []
    parsed: object = raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(parsed, dict):  # [U] tolerance: an already-decoded object is read the same way
        return None
    urls = parsed.get("resultUrls")
    if urls is None:
        return []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        return None
    return result_urls(urls)


def _sinancode_result_urls(raw: object) -> list[str]:
    """[sc] ``result`` is ``[{type, url}]`` today and ``string[]`` in an older revision: accept both."""
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    urls: list[str] = []
    for item in raw:
        if isinstance(item, str):
            url: object = item
        elif isinstance(item, dict):
            kind = str(item.get("type") or "").strip().lower()
            if kind not in ("", "image", "image_url"):
                continue  # text or video entries are not images
            url = item.get("url")
        else:
            continue
        if is_result_url(url):
            urls.append(url)
    return result_urls(urls)


def _progress(value: object) -> float | None:
    """[client] recordInfo may carry ``progress`` (0-100) while generating; None where it does not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    fraction = value / 100 if value > 1 else float(value)
    return fraction if 0 <= fraction <= 1 else None


def _text(value: object) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


# --- the adapter ---------------------------------------------------------------------------------


class KieProvider(HttpAdapter):
    """Kie's market task API or the sinancode proxy: create a task, then poll it. No cancel."""

    name: str

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        client: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        sleep: Sleep = asyncio.sleep,
        flavour: Flavour = "kie",
        callback_url: str | None = None,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ConfigError("provider flavour", f"`{flavour}` is not known", "Use `kie` or `sinancode`")
        self.name = flavour
        self._flavour: Flavour = flavour
        self._label = _LABELS[flavour]
        default_base = DEFAULT_BASE_URLS[flavour]
        super().__init__(
            api_key=api_key,
            key_hint=f"Set the {self._label} API key",
            key_spaces="\r\n\t ",
            base_url=base_url or default_base,
            default_base_url=default_base,
            client=client,
            policy=policy,
            timeout=timeout,
            default_timeout=DEFAULT_TIMEOUT,
            sleep=sleep,
        )
        self._models = dict(MODELS_BY_FLAVOUR[flavour])
        # [kie] callBackUrl: Kie POSTs the task record there when it ends (bot/callbacks.py).
        self._callback_url = callback_url if flavour == "kie" else None
        # [kie] / [sc]: Bearer on every call.
        self._headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def __repr__(self) -> str:  # never the key
        return f"KieProvider(flavour={self._flavour!r}, base_url={self._base_url!r})"

    @property
    def _kie(self) -> bool:
        return self._flavour == "kie"

    # -- submit --

    async def submit(self, request: GenerationRequest) -> JobHandle:
        caps = self._capabilities(request.model)
        validate(request, caps)
        # Both APIs download references themselves from "file URLs" ([kie], [sc]).
        require_web_links(request.reference_images, self._label)
        fields = input_fields(request, caps)
        if self._kie:
            url = f"{self._base_url}/api/v1/jobs/createTask"
            body: dict[str, Any] = {"model": caps.provider_model, "input": fields}
            if self._callback_url:
                body["callBackUrl"] = self._callback_url
        else:
            url = f"{self._base_url}/generate/k/{quote(caps.provider_model, safe='')}"
            body = fields
        response, envelope = await self._call("POST", url, _Op.CREATE, caps.model, idempotent=False, json=body)
        task_id = self._task_id(response, envelope)
        if task_id is None:
            # A 2xx means the task may exist; without its id we cannot poll it, and sending the create
            # again could pay twice.
            raise SubmitUncertainError(
                detail=f"{self.name} create accepted without a task id: {self._describe(response)}",
                provider=self.name,
                status_code=response.status_code,
            )
        log.info("%s %s accepted job %s", self.name, caps.model, task_id)
        return JobHandle(
            provider=self.name,
            model=caps.model,
            provider_job_id=task_id,
            extra={"submitted_at": time.time(), "callback": bool(self._callback_url)},
        )

    def _task_id(self, response: httpx.Response, envelope: _Envelope | None) -> str | None:
        if self._kie:
            data = envelope.data if envelope is not None else None  # [kie] data.taskId
            value = data.get("taskId") if isinstance(data, dict) else None
        else:
            body = json_object(response) or {}
            value = body.get("task_id")  # [sc]
            nested = body.get("data")
            if value is None and isinstance(nested, dict):
                value = nested.get("task_id") or nested.get("taskId")  # [U] an enveloped variant
        text = _text(value)
        return text or None

    # -- poll --

    async def poll(self, handle: JobHandle) -> JobUpdate:
        job = handle.provider_job_id
        try:
            if self._kie:
                url = f"{self._base_url}/api/v1/jobs/recordInfo"
                response, envelope = await self._call("GET", url, _Op.STATUS, handle.model, params={"taskId": job})
            else:
                url = f"{self._base_url}/tasks/{quote(job, safe='')}"
                response, envelope = await self._call("GET", url, _Op.STATUS, handle.model)
        except _JobGone as exc:
            return self._gone(handle, exc)
        if self._kie:
            return self._kie_update(handle, response, envelope)
        return self._sinancode_update(handle, response)

    def _kie_update(self, handle: JobHandle, response: httpx.Response, envelope: _Envelope | None) -> JobUpdate:
        if envelope is None:
            raise self._unexpected(response, _Op.STATUS, "not a {code, msg, data} envelope")
        data = envelope.data
        if not isinstance(data, dict):
            raise self._unexpected(response, _Op.STATUS, "no data object")
        state = _text(data.get("state")).lower()
        usage = self._kie_usage(data)
        if state in _KIE_QUEUED:
            return JobUpdate(status=UpdateStatus.QUEUED)
        if state in _KIE_RUNNING:
            return JobUpdate(status=UpdateStatus.RUNNING, progress=_progress(data.get("progress")))
        if state == "success":
            urls = _kie_result_urls(data.get("resultJson"))
            return self._finished(handle, urls, usage, f"resultJson={_text(data.get('resultJson'))[:200]!r}")
        if state == "fail":
            return self._failure(
                handle, _text(data.get("failCode")), _text(data.get("failMsg")), f"state={state}", usage
            )
        if not state:
            raise self._unexpected(response, _Op.STATUS, "no state")
        # A state the docs do not list: keep polling (the runner's deadline bounds it) rather than
        # fail a job that may well be working.
        log.warning("kie job %s: unknown state %r, treated as running", handle.provider_job_id, state)
        return JobUpdate(status=UpdateStatus.RUNNING)

    @staticmethod
    def _kie_usage(data: dict[str, Any]) -> dict[str, Any]:
        cost = data.get("costTime")  # [client] milliseconds of generation, when present
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            return {"cost_time_ms": cost}
        return {}

    def _sinancode_update(self, handle: JobHandle, response: httpx.Response) -> JobUpdate:
        data = self._require_json(response, _Op.STATUS)
        if "status" not in data and isinstance(data.get("data"), dict):
            data = data["data"]  # [U] tolerance for an enveloped variant
        raw = data.get("status")
        if not isinstance(raw, str) or not raw.strip():
            raise self._unexpected(response, _Op.STATUS, "no status")
        status = raw.strip().lower()
        if status in _SC_DONE:
            urls = _sinancode_result_urls(data.get("result"))
            return self._finished(handle, urls, {}, f"result={str(data.get('result'))[:200]!r}")
        if status in _SC_FAILED | _SC_CANCELLED:
            # [sc] error_msg is "friendly ... (fallback to error_code if empty)".
            return self._failure(
                handle,
                _text(data.get("error_code")),
                _text(data.get("error_msg")),
                f"status={status}",
                {},
                cancelled=status in _SC_CANCELLED,
            )
        if status in _SC_RUNNING:
            return JobUpdate(status=UpdateStatus.RUNNING)
        return JobUpdate(status=UpdateStatus.QUEUED)  # [client] "anything else" is queued

    def _finished(self, handle: JobHandle, urls: list[str] | None, usage: dict[str, Any], raw: str) -> JobUpdate:
        where = f"{self.name} {handle.model} {handle.provider_job_id}"
        if urls is None:
            detail = self._redact(f"{where}: success with an unreadable result ({raw})")
            log.warning("%s", detail)
            return JobUpdate(
                status=UpdateStatus.FAILED,
                error_category=ErrorCategory.TRANSIENT,
                error_message=(
                    f"{self._label} said the image was ready but sent a result the bot could not read. "
                    "Try again in a minute."
                ),
                error_detail=detail,
                usage=usage,
            )
        if not urls:
            detail = f"{where}: finished without an image URL"
            log.info("%s", detail)
            return JobUpdate(
                status=UpdateStatus.FAILED,
                error_category=ErrorCategory.NO_IMAGE,
                error_message="The model finished without an image. Try again or rephrase the prompt.",
                error_detail=detail,
                usage=usage,
            )
        # Results are plain URLs; the delivery step downloads and sniffs them (Kie's expire in ~24 h).
        return JobUpdate(status=UpdateStatus.SUCCEEDED, images=[ImageRef(url=u) for u in urls], usage=usage)

    def _failure(
        self,
        handle: JobHandle,
        code: str,
        message: str,
        state: str,
        usage: dict[str, Any],
        *,
        cancelled: bool = False,
    ) -> JobUpdate:
        label = self._label
        parts = [f"{self.name} {handle.model} {handle.provider_job_id}: {state}"]
        if code:
            parts.append(f"code={code!r}")
        if message:
            parts.append(f"message={message[:300]!r}")
        detail = self._redact(" ".join(parts))
        if cancelled:
            # Neither API documents cancelling; a cancelled status can only come from their side.
            log.info("job cancelled by the provider: %s", detail)
            return JobUpdate(
                status=UpdateStatus.CANCELLED,
                error_category=ErrorCategory.CANCELLED,
                error_message=f"{label} cancelled the job, so no image was made. Start a new one.",
                error_detail=detail,
                usage=usage,
            )
        category = _classify_failure(code, message)
        if category is ErrorCategory.CONTENT_BLOCKED:
            text = f"{label}'s safety filter blocked this request. Rephrase the prompt or change the images."
        elif category is ErrorCategory.BAD_INPUT:
            text = (
                f"{label} could not use the request's settings or reference images. Check that the images "
                "are still reachable (re-attach them) and try again."
            )
        elif code or message:
            text = f"{label} failed while generating the image (a temporary problem). Try again in a minute."
        else:
            text = (
                f"{label} could not generate the image and did not say why. Try again; if it keeps failing, "
                "tell the server's moderators."
            )
        log.info("job ended: %s -> %s", detail, category)
        return JobUpdate(
            status=UpdateStatus.FAILED,
            error_category=category,
            error_message=text,
            error_detail=detail,
            usage=usage,
        )

    def _gone(self, handle: JobHandle, exc: ProviderError) -> JobUpdate:
        submitted = handle.extra.get("submitted_at")
        young = (
            isinstance(submitted, int | float)
            and not isinstance(submitted, bool)
            and time.time() - submitted < NOT_FOUND_GRACE_SECONDS
        )
        if young:
            # [client] Kie's record can lag its creation; "not found" this soon means "not yet".
            log.info("%s job %s not visible yet: %s", self.name, handle.provider_job_id, exc.detail)
            return JobUpdate(status=UpdateStatus.QUEUED)
        return super()._gone(handle, exc)

    # -- cancel and check --

    async def cancel(self, handle: JobHandle) -> bool:
        """Neither API documents a cancel call ([kie], [sc]): nothing is sent, the job runs its course."""
        log.debug("%s has no cancel; job %s keeps running upstream", self.name, handle.provider_job_id)
        return False

    async def check(self) -> ProviderCheck:
        if not self._kie:
            # A task that cannot exist: sinancode answers 401/403 for a bad key and 404 for a good one.
            url = f"{self._base_url}/tasks/bananacord-key-check"
            return await self._probe(url)
        # [S] Kie's credit endpoint (docs.kie.ai common-api/get-account-credits): free, read-only, and
        # proves the key. Its envelope code decides (401 bad key), as everywhere on Kie.
        url = f"{self._base_url}/api/v1/chat/credit"
        try:
            response = await self._client.get(url, headers=self._headers, timeout=self._timeout)
        except httpx.TransportError as exc:
            return unreachable(url, exc)
        envelope = _envelope(response)
        code = envelope.code if envelope is not None else response.status_code
        if code in (401, 403):
            return key_rejected(response, [self._api_key])
        if envelope is not None and code == 200:
            credits = envelope.data
            if isinstance(credits, int | float) and not isinstance(credits, bool):
                note = " (generation will fail with 402 until topped up)" if credits <= 0 else ""
                return ProviderCheck(True, True, f"key accepted; {credits:g} credits left{note}")
            return ProviderCheck(True, True, "key accepted (credit balance not readable)")
        return ProviderCheck(True, None, f"reachable, but answered code {code}; key not proven")

    # -- plumbing --

    async def _call(
        self,
        method: str,
        url: str,
        op: _Op,
        model: str,
        *,
        idempotent: bool = True,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, _Envelope | None]:
        """One API call: the shared retry loop for transport and HTTP-level errors, plus, on Kie, the
        envelope's ``code`` (request_with_retry returns every 2xx as is, and Kie puts 402/429/500
        inside 200 answers). Returns the response and, on Kie, its envelope (code 200) if readable."""
        policy = self._policy if op is _Op.CREATE else self._poll_policy
        attempt = 0
        while True:
            attempt += 1
            response = await self._request(
                method,
                url,
                idempotent=idempotent,
                policy=policy,
                map_error=lambda response: self._map_http_error(response, op, model),
                json=json,
                params=params,
            )
            envelope = _envelope(response) if self._kie else None
            if envelope is None or envelope.code == 200:
                return response, envelope
            if not idempotent and envelope.code == 504:
                raise SubmitUncertainError(
                    detail=f"{self._describe(response)}; it may have been accepted, so it was not re-sent",
                    provider=self.name,
                    status_code=504,
                )
            error = self._error_for(envelope.code, envelope.message, op, model, response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if isinstance(error, RateLimitedError) and error.retry_after is None:
                error.retry_after = retry_after
            if not _retryable_code(envelope.code) or attempt >= policy.max_attempts:
                raise error
            if retry_after is not None and retry_after > policy.max_delay:
                raise error  # hand a long wait to the job runner, as request_with_retry does
            delay = policy.delay(attempt, retry_after)
            log.warning(
                "%s %s: envelope code %d; retrying in %.2fs (attempt %d of %d)",
                method,
                safe_url(url),
                envelope.code,
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            await self._sleep(delay)

    def _map_http_error(self, response: httpx.Response, op: _Op, model: str) -> ProviderError | None:
        if self._kie and response.status_code != 504:
            envelope = _envelope(response)
            if envelope is not None and envelope.code != 200:
                # A Kie envelope decides in _call, so HTTP 429 + code 429 and HTTP 200 + code 429 take
                # one path. Bodies without one (a proxy's HTML 502) are mapped by HTTP status here.
                return None
        return self._error_for(response.status_code, _error_text(response), op, model, response)

    def _error_for(self, code: int, text: str, op: _Op, model: str, response: httpx.Response) -> ProviderError:
        """A Kie envelope code or an HTTP status -> error category ([kie] codes; providers.md 8.3)."""
        detail = self._describe(response)
        if code != response.status_code:
            detail += f" (envelope code {code})"
        kw: dict[str, Any] = {"detail": detail, "provider": self.name, "status_code": code}
        label = self._label
        lower = text.lower()
        display = self._display_name(model)
        if code == 401:
            return AuthError(
                f"{label} rejected the bot's API key. The bot owner has to check the {label} key in the configuration.",
                **kw,
            )
        if code == 402:
            return OutOfCreditError(
                f"The bot's {label} account is out of credit. The bot owner has to top it up.", **kw
            )
        if code == 403:
            # Not in Kie's code list; sinancode's codes are [U]. The wording decides.
            if any(word in lower for word in _BALANCE_WORDS):
                return OutOfCreditError(
                    f"The bot's {label} account is out of credit. The bot owner has to top it up.", **kw
                )
            return AuthError(
                f"{label} refused the bot's API key (it may be limited to other addresses or models). "
                "The bot owner has to check the key's settings.",
                **kw,
            )
        if op is _Op.STATUS and (code == 404 or (code == 422 and any(w in lower for w in _NOT_FOUND_WORDS))):
            # [client] Kie: {"code":422,"msg":"recordInfo is null"} for a task it does not know.
            return _JobGone(
                f"{label} no longer knows this job (it may have expired). Nothing more will arrive; start a new one.",
                **kw,
            )
        if code == 404:
            return AuthError(
                f"{label} does not offer {display} at the configured address. The bot owner has to check "
                "the base URL and the model in the configuration.",
                **kw,
            )
        if code == 429:
            return RateLimitedError(f"{label} is rate limiting the bot right now. Try again in a minute.", **kw)
        if code == 455:
            return TransientError(f"{label} is down for maintenance. Try again later.", **kw)
        if code == 501:
            return TransientError(
                f"{label} could not generate the image (a temporary problem). Try again in a minute.", **kw
            )
        if code == 505:
            return AuthError(
                f"{label} has switched this feature off for the bot's account. The bot owner has to check "
                f"the {label} dashboard or use another provider.",
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
