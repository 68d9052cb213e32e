"""Segmind serverless API: ``nano-banana-2`` and ``nano-banana-pro`` (docs/providers.md section 5).

Two transports, chosen per instance with ``mode``:

* ``v2`` (default, what Segmind recommends): ``POST /v2/{model}`` queues a job; ``GET
  /v2/requests/{id}/status`` is polled; ``GET /v2/requests/{id}`` carries the full result.
* ``v1`` (the seed's endpoint, "in maintenance mode"): ``POST /v1/{model}`` blocks for the whole
  generation (~40 s) and answers with the raw image bytes, accounting in response headers. submit()
  makes the whole call and returns a handle whose ``ready`` is the terminal update.

Sources, cited per branch below as in docs/providers.md:
  [C]    Segmind's own pages (model page, async-inference page), as summarised in docs/providers.md 5;
  [S]    the API-Evangelist digest of Segmind's docs (errors/, conventions/, skills/ in
         api-evangelist/segmind), quoted in docs/providers.md 5.2-5.5;
  [seed] docs/providers.md 0.2, seed 004 (the NB2 model page as the project received it);
  [U]    not documented anywhere we found: parsed defensively, with a comment saying so.
"""

from __future__ import annotations

import binascii
import logging
import math
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Unpack
from urllib.parse import quote

import httpx

from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ContentBlockedError,
    ErrorCategory,
    OutOfCreditError,
    ProviderError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, UpdateStatus
from bot.providers import base64_text
from bot.providers._adapter import NO_IMAGE, AdapterArgs, ErrorAnswer, HttpAdapter, Op, Outcome, ratio_to_send
from bot.providers._http import (
    error_text,
    is_web_url,
    json_body,
    key_not_proven,
    key_rejected,
    number_in,
    parse_retry_after,
    shown,
    unreachable,
    usable_job_id,
)
from bot.providers.base import Capabilities, Prefetched, ProviderCheck, ProviderSettings
from bot.providers.families import NANO_BANANA_2, NANO_BANANA_PRO

log = logging.getLogger(__name__)

Mode = Literal["v1", "v2"]
# v1 holds the connection for the whole generation: ~33-40 s on the model page [C], and one
# aggregator advises up to 360 s for NB2 at peak (docs/providers.md 8.4).
DEFAULT_SYNC_SECONDS = 360.0
DEFAULT_SYNC_TIMEOUT = httpx.Timeout(DEFAULT_SYNC_SECONDS, connect=10.0, write=30.0, pool=10.0)


class SegmindSettings(ProviderSettings):
    # v2 is the queued API Segmind recommends; v1 answers with the image itself (~40 s per call).
    mode: Mode = "v2"


# [U] Segmind documents no prompt limit (docs/providers.md 8.1); generous, well above the seed's
# ~1,000-character example, and editable here rather than guessed per call.
_MAX_PROMPT_CHARS = 5000


def _usd(dollars: float) -> int:
    return round(dollars * 1_000_000)


SEGMIND_MODELS: dict[str, Capabilities] = {
    # [seed]/[C] model page + [S] skills doc: every knob below is on the NB2 page. The family's 14
    # reference images ([seed] "Up to 14 images"), 512..4K sizes and default 1K ([seed]).
    # Ratios: [seed] "Allowed values (15 total)": the first ten are listed ("auto" .. "9:16"), "+5 more"
    # are hidden. The [S] skills doc lists the same ratios plus 21:9 and no "auto". The four extreme
    # ratios are [U]: inferred as the family's 14 + "auto" = 15 (docs/providers.md 1, SeaArt 2.3).
    "nano_banana_2": NANO_BANANA_2.capabilities(
        provider_model="nano-banana-2",
        max_prompt_chars=_MAX_PROMPT_CHARS,
        auto_ratio=True,
        seed=True,
        output_formats=("jpg", "png"),
        thinking_levels=("minimal", "high"),
        web_search=True,
        safety_knob=True,
        queued=True,
        # [S] docs/providers.md 5.5: $0.06 (512px), $0.08 (1K), $0.12 (2K), $0.16 (4K).
        prices_micro_usd=(("512", _usd(0.06)), ("1K", _usd(0.08)), ("2K", _usd(0.12)), ("4K", _usd(0.16))),
    ),
    # [S] docs/providers.md 5.5: Pro takes only prompt, aspect_ratio, output_resolution (1K|2K|4K),
    # output_format and image_urls: no seed, thinking, web search or safety knob. Its ten ratios
    # are the family's, no "auto" (8.1: never send auto to Pro). References: [U] the [S] doc gives
    # no count; the family's 14 is the seed's NB2 figure and Google's Pro limit (8.1).
    "nano_banana_pro": NANO_BANANA_PRO.capabilities(
        provider_model="nano-banana-pro",
        max_prompt_chars=_MAX_PROMPT_CHARS,
        output_formats=("jpg", "png"),
        queued=True,
        # [S] docs/providers.md 5.5: $0.15 (1K/2K), $0.25 (4K).
        prices_micro_usd=(("1K", _usd(0.15)), ("2K", _usd(0.15)), ("4K", _usd(0.25))),
    ),
}

# The bot's size names -> Segmind's `output_resolution` values ([seed]: 512px|1K|2K|4K).
_RESOLUTIONS = {"512": "512px", "1K": "1K", "2K": "2K", "4K": "4K"}


def segmind_models(mode: Mode) -> dict[str, Capabilities]:
    """The model table for one transport: v1 answers the create with the image, so it is not queued."""
    return {name: replace(caps, queued=mode == "v2") for name, caps in SEGMIND_MODELS.items()}


# --- vocabulary ----------------------------------------------------------------------------------

# [C] async-inference page: QUEUED -> PROCESSING -> COMPLETED | FAILED (docs/providers.md 8.2).
_STATUS_MAP: dict[str, UpdateStatus] = {
    "QUEUED": UpdateStatus.QUEUED,
    "PROCESSING": UpdateStatus.RUNNING,
    "COMPLETED": UpdateStatus.SUCCEEDED,
    "FAILED": UpdateStatus.FAILED,
}

# [U] Segmind passes the model's failure text through as `error`; its safety wording is not
# documented, so these are the phrases Google's and the gateways' block messages use (docs/providers.md 8.3).
_CONTENT_RE = re.compile(
    r"content[ _-]?polic|safety (?:filter|system|check|settings?|block|reasons?)|blocked|nsfw|moderat"
    r"|prohibited|inappropriate|violat|unsafe|image_safety|flagged|responsible ai|harmful",
    re.IGNORECASE,
)
# [S] errors doc: 406 "Insufficient credits" (balance below the model's cost) or a team spend limit.
_CREDIT_RE = re.compile(r"insufficient|credit|balance|top.?up", re.IGNORECASE)
_SPEND_RE = re.compile(r"spend(?:ing)? limit|spend cap|team limit|budget", re.IGNORECASE)
# [S] errors doc: 406 "Invalid content type" when Content-Type is missing or not JSON/multipart.
_CONTENT_TYPE_RE = re.compile(r"content[ -]?type", re.IGNORECASE)


_BLOCKED = Outcome(
    ErrorCategory.CONTENT_BLOCKED,
    "Segmind's safety filter blocked this request. Rephrase the prompt or use different reference images.",
)
_MODEL_FAILED = Outcome(
    ErrorCategory.TRANSIENT,
    "The image model failed while generating the image (Segmind was not charged). Try again in a minute; "
    "if it keeps failing, change the prompt or settings.",
)


def _failure_outcome(error_text: str) -> Outcome:
    """A job that ran and failed: a content block is never reported as a temporary fault."""
    return _BLOCKED if _CONTENT_RE.search(error_text) else _MODEL_FAILED


# --- small parsers -------------------------------------------------------------------------------


def _number_text(value: object) -> str | None:
    """Money as text, so the usage record keeps the provider's own decimals (no float rounding)."""
    if isinstance(value, bool):
        return None
    if (isinstance(value, float) and math.isfinite(value)) or (isinstance(value, int) and abs(value) < 10**18):
        return str(value)  # an int is not made a float to check it: one of hundreds of digits overflows
    if isinstance(value, str) and value.strip():
        try:
            float(value)
        except ValueError:
            return None
        return value.strip()
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return number_in(value, signed=True)  # not str.isdigit: int() refuses "²" and 4,300 digits
    return None


def reset_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds until ``x-rate-limit-reset-at-utc`` ([S] 5.4: the only rate-limit signal, no Retry-After).

    Its format is [U]: ISO 8601, epoch seconds or milliseconds and HTTP-dates are all read; a small
    number is taken as seconds from now. None when missing or unreadable; a past time means 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    current = now or datetime.now(UTC)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            return None
        if number > 1e12:  # epoch milliseconds
            return max(0.0, number / 1000 - current.timestamp())
        if number > 1e9:  # epoch seconds
            return max(0.0, number - current.timestamp())
        return number
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return parse_retry_after(text, now=current)
    if when.tzinfo is None:  # the header's name says UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


# --- finding images in JSON ----------------------------------------------------------------------

# The exact image-result JSON is [U] for v2 and for v1's JSON answers (docs/providers.md 5.2/5.3, open
# question 9.4). Strings are read as images only under image-ish keys, so status/response URLs and
# prose are never mistaken for results.
_IMAGE_KEYS = frozenset(
    {"image", "images", "output", "outputs", "url", "image_url", "image_urls", "data", "result", "results"}
    | {"file", "files", "content", "b64_json", "base64", "image_base64", "img"}
)
_BASE64_KEYS = frozenset({"b64_json", "base64", "image_base64"})
_TEXT_KEYS = frozenset({"text", "output_text", "caption", "description"})
_B64_RE = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
_DATA_URI_RE = re.compile(r"^data:(image/[\w.+-]+)?(?:;[^,]*)?;base64,(.*)$", re.DOTALL | re.IGNORECASE)


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of image bytes by their magic number, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _b64decode(text: str) -> bytes | None:
    """The bytes of base64 text (standard or URL-safe, whitespace ignored), or None if it is too short to be
    an image or is not base64."""
    if len(text) < 16:
        return None
    try:
        return base64_text.decode(text)
    except (binascii.Error, ValueError):
        return None


# A job delivers at most MAX_RESULT_IMAGES (bot/result_images.py: 4) and Nano Banana makes one image per
# request, so an answer listing thousands is broken or hostile. The scan stops collecting at these counts (a
# few images more than a delivery posts, so its log line still says that more came). Before, every image was
# compared with every one found: 20,000 links held the event loop for 11 s.
MAX_FOUND_IMAGES = 16
MAX_FOUND_TEXTS = 16


@dataclass
class _Found:
    images: list[ImageRef] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    # Where each image found so far sits in ``images``, by what makes it the same file.
    _seen: dict[tuple[str | None, bytes | None], int] = field(default_factory=dict, init=False, repr=False)

    @property
    def full(self) -> bool:
        return len(self.images) >= MAX_FOUND_IMAGES

    def add_image(self, image: ImageRef) -> None:
        key = (image.url, image.data)
        n = self._seen.get(key)
        if n is not None:
            # The same file listed under both `output` and `images[]`: keep one, with a type if
            # either listing gave one.
            if self.images[n].content_type is None and image.content_type is not None:
                self.images[n] = image
            return
        if not self.full:
            self._seen[key] = len(self.images)
            self.images.append(image)

    def add_text(self, text: str) -> None:
        if len(self.texts) < MAX_FOUND_TEXTS:
            self.texts.append(text)

    def add_string(self, key: str, value: str, content_type: str | None) -> None:
        text = value.strip()
        if not text:
            return
        uri = _DATA_URI_RE.match(text)
        if uri:
            data = _b64decode(uri.group(2))
            if data:
                self.add_image(ImageRef(data=data, content_type=uri.group(1) or sniff_image_type(data)))
            return
        if is_web_url(text) and " " not in text:
            if key in _IMAGE_KEYS:
                self.add_image(ImageRef(url=text, content_type=content_type))
            return
        if key in _IMAGE_KEYS and len(text) >= 64 and _B64_RE.match(text):
            data = _b64decode(text)
            kind = sniff_image_type(data) if data else None
            # A key that names base64 is trusted; elsewhere only real image bytes count.
            if data and (kind or key in _BASE64_KEYS):
                self.add_image(ImageRef(data=data, content_type=kind or content_type))
            return
        if key in _TEXT_KEYS or key == "output":
            self.add_text(text)


def _scan(value: Any, key: str, found: _Found, depth: int = 0, content_type: str | None = None) -> None:
    if depth > 6 or found.full:
        return  # nothing more would be kept: the rest of the answer is not walked (nor its base64 decoded)
    if isinstance(value, dict):
        ctype = value.get("content_type") or value.get("mime_type") or value.get("mimeType")
        ctype = ctype if isinstance(ctype, str) else None
        for k, v in value.items():
            if str(k).lower() in ("error", "status", "metrics", "request_id"):
                continue
            child = str(k).lower()
            if child not in _IMAGE_KEYS | _TEXT_KEYS:
                # Other link fields (status_url, poll_url...) are never results; any other key
                # inherits its parent's meaning (e.g. images[] of {"link": ...}).
                child = "" if "url" in child else key
            _scan(v, child, found, depth + 1, ctype)
    elif isinstance(value, list):
        for item in value:
            _scan(item, key, found, depth + 1, content_type)
    elif isinstance(value, str):
        found.add_string(key, value, content_type)


def find_images(body: Any) -> tuple[list[ImageRef], list[str]]:
    """Image URLs / inline images and texts in a JSON answer of unknown layout, in document order."""
    found = _Found()
    if isinstance(body, dict | list):
        _scan(body, "", found)
    elif isinstance(body, str):
        found.add_string("output", body, None)
    return found.images, found.texts


def _json_error(body: Any) -> str | None:
    """A job-level failure in a JSON body: ``error`` text or ``status: FAILED`` ([S] 5.3)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error.get("error")
    if isinstance(error, str) and error.strip():
        return error.strip()
    status = body.get("status")
    if isinstance(status, str) and status.strip().upper() == "FAILED":
        return ""
    return None


def _metrics_usage(*bodies: Any) -> dict[str, Any]:
    """[S] v2 `metrics`: cost, remaining_credits, inference_time, queue_time, total_time, retry_count."""
    usage: dict[str, Any] = {}
    for body in bodies:
        metrics = body.get("metrics") if isinstance(body, dict) else None
        if not isinstance(metrics, dict):
            continue
        cost = _number_text(metrics.get("cost"))
        if cost is not None:
            usage["cost_usd"] = cost
        credits = _number_text(metrics.get("remaining_credits"))
        if credits is not None:
            usage["remaining_credits"] = credits
        for key in ("inference_time", "queue_time", "total_time"):
            number = _as_float(metrics.get(key))
            if number is not None:
                usage[key] = number
        retries = _as_int(metrics.get("retry_count"))
        if retries is not None:
            usage["retry_count"] = retries
        seed = _as_int(metrics.get("seed"))
        if seed is not None:
            usage["seed"] = seed
    return usage


def _header_usage(response: httpx.Response) -> dict[str, Any]:
    """[S] conventions.yml: v1 reports x-cost, x-remaining-credits, x-generation-time, x-seed-value."""
    headers = response.headers
    usage: dict[str, Any] = {}
    cost = _number_text(headers.get("x-cost"))
    if cost is not None:
        usage["cost_usd"] = cost
    credits = _number_text(headers.get("x-remaining-credits"))
    if credits is not None:
        usage["remaining_credits"] = credits
    seed = _as_int(headers.get("x-seed-value"))
    if seed is not None:
        usage["seed"] = seed
    took = _as_float(headers.get("x-generation-time"))
    if took is not None:
        usage["generation_time"] = took
    request_id = headers.get("x-request-id")
    if request_id:
        usage["request_id"] = request_id
    return usage


# --- the adapter ---------------------------------------------------------------------------------


class SegmindProvider(HttpAdapter):
    """Segmind's serverless API, v2 queue (default) or v1 synchronous."""

    name = "segmind"
    label = "Segmind"
    key_env = "SEGMIND_API_KEY"
    default_base_url = "https://api.segmind.com"
    default_timeout = 120.0
    sync_read_seconds = DEFAULT_SYNC_SECONDS  # v1's create (v2 ignores it)
    # v1 answers with the image itself (raw or base64): as much room as Gemini's answers get.
    max_answer_bytes = 96 * 1024 * 1024
    settings_model = SegmindSettings
    MODELS: ClassVar[dict[str, Capabilities]] = SEGMIND_MODELS
    # [C]/[S] 5.1: the key goes in x-api-key only; as a Bearer token it gets 401.
    key_header = "x-api-key"
    key_prefix = ""
    key_spaces = "\r\n\t "
    gone_reason = "its records expire an hour after the request"  # [C]: then every poll 404s

    def __init__(self, *, mode: Mode = "v2", **args: Unpack[AdapterArgs]) -> None:
        super().__init__(**args)
        if mode not in ("v1", "v2"):
            raise ConfigError("segmind.mode", f"is {mode!r}", 'Use "v2" (queued, recommended) or "v1"')
        self.mode: Mode = mode
        # v1's create holds the connection for the whole generation: its read timeout is at least
        # DEFAULT_SYNC_SECONDS (``sync_read_seconds``: from_settings passes the longer of that and
        # request_timeout, 120 s by default, as ``create_timeout``). v2's create answers at once and, like
        # every poll, keeps request_timeout.
        if mode == "v2":
            self._create_timeout = self._timeout
        elif args.get("create_timeout") is None and args.get("timeout") is None:
            self._create_timeout = DEFAULT_SYNC_TIMEOUT
        self._models = self._models_for(mode=mode)

    @classmethod
    def _models_for(cls, *, mode: Mode = "v2", **options: Any) -> dict[str, Capabilities]:
        return segmind_models(mode)  # `queued` depends on the mode

    def __repr__(self) -> str:  # never the key
        return f"SegmindProvider(base_url={self._base_url!r}, mode={self.mode!r})"

    # -- submit --

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        # Segmind downloads references itself (image_urls), so only public http(s) links work.
        caps = self._accept(request)
        body = self._body(request, caps)
        if self.mode == "v1":
            return await self._submit_v1(caps, body)
        return await self._submit_v2(caps, body)

    @staticmethod
    def _body(request: GenerationRequest, caps: Capabilities) -> dict[str, Any]:
        """GenerationRequest -> Segmind fields (docs/providers.md 5.2, 8.1); unset values are left out."""
        body: dict[str, Any] = {"prompt": request.sent_prompt}
        if request.reference_images:
            body["image_urls"] = [ref.url for ref in request.reference_images]
        # NB2's field defaults to 1:1 [seed]: an edit without a ratio gets `auto`, so it keeps its reference's
        # shape (ratio_to_send). Pro takes no `auto` [S]; its default is [U].
        if (ratio := ratio_to_send(request, caps)) is not None:
            body["aspect_ratio"] = ratio
        # Always sent, default included: the size decides the price tier (5.5), so the bot orders the
        # tier it will account for rather than trust a default (documented only for NB2).
        body["output_resolution"] = _RESOLUTIONS[request.resolution or caps.default_resolution]
        if request.output_format is not None:
            body["output_format"] = request.output_format
        if request.seed is not None:  # validate() has refused a seed where caps.seed is False
            body["seed"] = request.seed
        if request.thinking_level is not None:
            body["thinking_level"] = request.thinking_level
        if request.web_search:  # false is the documented default [seed]; only "on" is sent
            body["web_search"] = True
        if request.safety_tolerance is not None:
            if caps.safety_knob:
                body["safety_tolerance"] = request.safety_tolerance
            else:
                # [S] Pro has no safety knob: the field is left out rather than the job refused, as for
                # every provider without one; the bot's own prompt gate applies (docs/architecture.md section 6).
                # Only levels up to the no-knob ceiling come here: bot/routing.py sends a looser one elsewhere.
                log.debug(
                    "segmind %s has no safety_tolerance; level %d not sent",
                    caps.model,
                    request.safety_tolerance,
                )
        if caps.model == "nano_banana_2":
            # [seed] sends the documented default explicitly; pinned so a change of Segmind's default
            # cannot silently change the answer's shape. Pro's [S] field list has no such field.
            body["response_modalities"] = "TEXT_AND_IMAGE"
        return body

    async def _submit_v2(self, caps: Capabilities, body: dict[str, Any]) -> JobHandle:
        url = f"{self._base_url}/v2/{quote(caps.provider_model, safe='')}"
        response = await self._send("POST", url, Op.CREATE, caps.model, json=body, timeout=self._create_timeout)
        data = json_body(response)
        request_id = usable_job_id(data.get("request_id")) if isinstance(data, dict) else None
        if request_id is None:
            # A 2xx means the job may exist and will be billed; without its id we cannot poll it, and
            # sending the create again would pay twice ([S] "no idempotency").
            raise SubmitUncertainError(
                detail=f"create accepted without a usable request_id: {self._describe(response)}",
                provider=self.name,
                status_code=response.status_code,
            )
        assert isinstance(data, dict)
        extra: dict[str, Any] = {"mode": "v2"}
        extra.update({k: data[k] for k in ("status_url", "response_url") if isinstance(data.get(k), str)})
        log.info("segmind %s accepted job %s", caps.provider_model, request_id)
        return JobHandle(provider=self.name, model=caps.model, provider_job_id=request_id, extra=extra)

    async def _submit_v1(self, caps: Capabilities, body: dict[str, Any]) -> JobHandle:
        url = f"{self._base_url}/v1/{quote(caps.provider_model, safe='')}"
        # [S] the answer is the image itself; JSON is accepted too, because the model page's sample
        # parses it as JSON [C] (docs/providers.md 5.2).
        headers = {**self._headers, "Accept": "image/*, application/json"}
        response = await self._send(
            "POST", url, Op.CREATE, caps.model, json=body, headers=headers, timeout=self._create_timeout
        )
        request_id = response.headers.get("x-request-id") or f"local-{uuid.uuid4().hex}"
        update = self._v1_update(caps, request_id, response)
        log.info("segmind v1 %s answered %s: %s", caps.provider_model, request_id, update.status)
        return JobHandle(
            provider=self.name,
            model=caps.model,
            provider_job_id=request_id,
            extra={"mode": "v1"},
            ready=update,
        )

    def _v1_update(self, caps: Capabilities, request_id: str, response: httpx.Response) -> JobUpdate:
        """The terminal update from v1's answer: branch on Content-Type (docs/providers.md 5.2)."""
        usage = _header_usage(response)
        where = f"segmind v1 {caps.provider_model} {request_id}"
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        content = response.content
        if response.status_code == 422 or ctype in ("application/json", "text/json") or ctype.endswith("+json"):
            body = json_body(response)
            if body is None:
                return self._ended(self._unreadable(), f"{where}: unreadable JSON: {self._describe(response)}", usage)
            return self._from_json(where, body, usage, response)
        if ctype.startswith("image/") or (not ctype or ctype == "application/octet-stream"):
            if not content:
                return self._ended(self._unreadable(), f"{where}: empty image body", usage)
            kind = ctype if ctype.startswith("image/") else sniff_image_type(content)
            if kind is None:
                return self._ended(self._unreadable(), f"{where}: untyped body: {self._describe(response)}", usage)
            # The bytes are not decoded here: delivery verifies and re-encodes them (bot/images.py).
            return JobUpdate(
                status=UpdateStatus.SUCCEEDED, images=[ImageRef(data=content, content_type=kind)], usage=usage
            )
        return self._ended(self._unreadable(), f"{where}: unexpected {ctype!r}: {self._describe(response)}", usage)

    # -- poll --

    async def _poll(self, handle: JobHandle) -> JobUpdate:
        # Dispatch on the handle, not the instance: a handle stored before a mode change still works.
        if handle.extra.get("mode") == "v1":
            detail = f"segmind v1 handle {handle.provider_job_id} without its answer"
            log.warning("%s", detail)
            return JobUpdate(
                status=UpdateStatus.FAILED,
                error_category=ErrorCategory.TRANSIENT,
                error_message="The bot lost Segmind's answer for this job. Start a new one.",
                error_detail=detail,
            )
        response = await self._send("GET", self._job_url(handle, "status"), Op.STATUS, handle.model)
        data = self._require_json(response, Op.STATUS)
        where = f"segmind {handle.model} {handle.provider_job_id}"
        if response.status_code == 422:  # [S] FAILED answered as HTTP 422 with its reason
            return self._from_json(where, data, _metrics_usage(data), response)
        status = self._status_of(data, response, Op.STATUS)
        if status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            return JobUpdate(status=status)
        if status is UpdateStatus.FAILED and _json_error(data):
            return self._from_json(where, data, _metrics_usage(data), response)
        # COMPLETED, or FAILED without its reason on the light status body: the full record has both.
        return await self._fetch_result(handle, data)

    async def _fetch_result(self, handle: JobHandle, status_body: dict[str, Any]) -> JobUpdate:
        response = await self._send("GET", self._job_url(handle, "result"), Op.RESULT, handle.model)
        data = self._require_json(response, Op.RESULT)
        where = f"segmind {handle.model} {handle.provider_job_id}"
        raw = data.get("status")
        status = _STATUS_MAP.get(raw.strip().upper()) if isinstance(raw, str) else None
        if status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            return JobUpdate(status=status)  # the record lags the status endpoint [U]
        return self._from_json(where, data, _metrics_usage(status_body, data), response)

    def _from_json(self, where: str, body: Any, usage: dict[str, Any], response: httpx.Response) -> JobUpdate:
        """A JSON answer (v2 result, v1 JSON, 422 failure) -> terminal update."""
        error = _json_error(body)
        if error is not None or response.status_code == 422:
            reason = error or ""
            detail = f"{where}: HTTP {response.status_code} FAILED: {reason[:300]!r}"
            return self._ended(_failure_outcome(reason), detail, usage)
        images, texts = find_images(body)
        text = "\n\n".join(texts) or None
        if not images:
            detail = f"{where}: answered without an image: {self._describe(response)}"
            return self._ended(NO_IMAGE, detail, usage, text=text)
        return JobUpdate(status=UpdateStatus.SUCCEEDED, images=images, text=text, usage=usage)

    def _status_of(self, data: dict[str, Any], response: httpx.Response, op: Op) -> UpdateStatus:
        raw = data.get("status")
        status = _STATUS_MAP.get(raw.strip().upper()) if isinstance(raw, str) else None
        if status is None:
            raise self._unexpected(response, op, f"unknown status {shown(raw)}")
        return status

    # -- cancel / check --

    async def cancel(self, handle: JobHandle) -> bool:
        """[S] Segmind has no cancel endpoint: nothing is sent, and the job runs (and bills) to its end."""
        log.info("segmind cannot cancel job %s: no cancel endpoint", handle.provider_job_id)
        return False

    async def check(self) -> ProviderCheck:
        """Read the credit balance: free, generates nothing, proves the key ([S] docs/providers.md 5.5).

        ``GET /v1/get-user-credits``: 200 ``{"credits": n}`` = good key; 401/403 = bad key; 404 "No
        credits found for the user" = good key without a balance record ([S] errors doc). Any other
        answer falls back to the status of a job that cannot exist: 401 bad key, 404 good key.
        """
        url = f"{self._base_url}/v1/get-user-credits"
        try:
            response = await self._client.get(
                url, headers=self._headers, timeout=self._timeout, extensions=self._answer_bounds
            )
        except httpx.TransportError as exc:
            return unreachable(url, exc)
        status = response.status_code
        if status in (401, 403):
            return key_rejected(response, [self._api_key])
        if status == 200:
            body = json_body(response)
            credits = _number_text(body.get("credits")) if isinstance(body, dict) else None
            if credits is not None:
                note = " (empty: every generation will be refused with 406)" if float(credits) <= 0 else ""
                return ProviderCheck(True, True, f"key accepted; balance {credits} credits{note}")
        if status == 404 and "credit" in error_text(response).lower():
            return ProviderCheck(True, True, "key accepted; Segmind has no credit record for this account yet")
        if status >= 500:
            return key_not_proven(status)
        return await self._probe(f"{self._base_url}/v2/requests/bananacord-key-check/status")

    # -- plumbing --

    def _job_url(self, handle: JobHandle, kind: Literal["status", "result"]) -> str:
        # The create answer carries status_url / response_url [C]; our key goes with every call, so a
        # returned URL is used only when it points at the configured base.
        given = handle.extra.get("status_url" if kind == "status" else "response_url")
        if isinstance(given, str) and self._is_ours(given, under="/v2/requests/"):
            return given
        job = quote(handle.provider_job_id, safe="")
        suffix = "/status" if kind == "status" else ""
        return f"{self._base_url}/v2/requests/{job}{suffix}"

    # -- errors: [S] docs/providers.md 5.4 and 8.3, on top of the shared ladder --

    def _is_answer(self, response: httpx.Response, op: Op) -> bool:
        # [S] v2: a 422 means the inference ran and failed: a job outcome, not a transport error. The
        # caller turns the body into a FAILED update (on v1 too, where a 422 is [U]).
        return response.status_code == 422 and not (op is Op.CREATE and self.mode == "v2")

    def _retry_hint(self, response: httpx.Response) -> float | None:
        # [S] 5.4: the reset time is the only rate-limit signal; Segmind sends no Retry-After.
        return reset_seconds(response.headers.get("x-rate-limit-reset-at-utc"))

    def _error(self, answer: ErrorAnswer) -> ProviderError:
        code, text, kw, display = answer.code, answer.text, answer.kw, answer.display
        if code == 422:
            # [U] v2 reports failures on the poll endpoints; a 422 on the create leaves no job to poll.
            outcome = _failure_outcome(text)
            if outcome is _BLOCKED:
                return ContentBlockedError(outcome.message, **kw)
            return TransientError(outcome.message, **kw)
        if code == 403:
            return AuthError(
                f"The bot's Segmind account may not use {display}. The bot owner has to allow the model for "
                "the team, or pick another model or provider.",
                **kw,
            )
        if code == 405:
            log.error("segmind answered 405 (wrong method or base URL): %s", kw["detail"])
            return AuthError(
                "Segmind refused how the bot called it. The bot owner has to check the Segmind base URL.",
                **kw,
            )
        if code == 406:
            # [S] one status for four causes; only the body tells them apart.
            if _SPEND_RE.search(text):
                return OutOfCreditError(
                    "The bot's Segmind team has reached its spend limit. The bot owner has to raise the "
                    "limit or wait for the next period.",
                    **kw,
                )
            if _CREDIT_RE.search(text):
                return OutOfCreditError(
                    "The bot's Segmind account does not have enough credit for this image. The bot owner has "
                    "to top it up.",
                    **kw,
                )
            if _CONTENT_TYPE_RE.search(text):
                # Our bug, never the member's: shout in the logs.
                log.error("segmind refused the request's Content-Type (a bot bug): %s", kw["detail"])
                return BadInputError("Segmind could not read the bot's request (a bot bug). Tell the bot owner.", **kw)
            return BadInputError(
                "Segmind rejected one of the request's settings. Check the options and try again.", **kw
            )
        if code == 410:
            return AuthError(
                f"Segmind has retired {display}. The bot owner has to pick another model or provider.", **kw
            )
        if 400 <= code < 500 and code not in (401, 402, 404, 429) and _CONTENT_RE.search(text):
            return ContentBlockedError(
                "Segmind's safety filter blocked this request. Rephrase the prompt or use different reference images.",
                **kw,
            )
        # [S] a 500 is often a bad parameter value that reached the model; still retried, unbilled.
        return super()._error(answer)


__all__ = [
    "SEGMIND_MODELS",
    "SegmindProvider",
    "find_images",
    "reset_seconds",
    "segmind_models",
    "sniff_image_type",
]
