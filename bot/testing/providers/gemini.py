"""A fake Gemini API (docs/providers.md section 6) that the real adapter and httpx client run against unchanged.

``FakeGemini`` serves ``POST /v1beta/models/{id}:generateContent`` (synchronous: the answer carries the
image as base64 ``inlineData``), ``GET /v1beta/models/{id}`` and ``GET /v1beta/models``, checks the
``x-goog-api-key`` header (``?key=`` is accepted too, as Google does, so tests can prove the adapter never
uses it), validates the body the way the docs describe (400 INVALID_ARGUMENT; ``temperature``, ``topP`` and
``topK`` too, deprecated and never to be sent: 6.3), answers unknown model ids with 404 NOT_FOUND like a
shut-down preview id, and records the decoded inline reference images of every call so tests can check they
arrived intact, and how many model-turn images came without their ``thoughtSignature``. Reference images
for the adapter to download are served without a key at ``/refs/{name}`` (``serve_reference``).

    async with FakeGemini() as fake:
        fake.script("rate_limited", "with_thought_image")
        url = fake.serve_reference("cat.png", png_bytes)

Outcomes (one per generateContent call; unscripted calls get "success"):
  success               STOP with one final PNG, sized by imageConfig (imageSize x aspectRatio; with no
                        aspectRatio, the first reference image's shape, else 1:1)
  success_text          a text part, then the final PNG
  bloated               hostile: the final PNG with 20 MB of text beside it, a 5 MB string and a list of
                        100,000 numbers in usageMetadata, and 50,000 web sources in groundingMetadata
  with_thought_image    a thought text part and an interim thought image (half size) before the final
                        text and image: the final one must win
  bad_input             400 INVALID_ARGUMENT "Request contains an invalid argument." (no job)
  content_blocked       same as finish:IMAGE_SAFETY
  rate_limited          429 RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo{retryDelay} details
                        (``retry_delay``, default "3s"), no job; the next call takes the next outcome
  server_error          500 INTERNAL once (no job): the 5xx 6.6 says to retry a few times
  internal_error        the same
  overloaded            503 UNAVAILABLE "The model is overloaded" once (no job); 6.6 says to come back in
                        30-60 s
  gateway_timeout       504 with Google's own DEADLINE_EXCEEDED body (no job: Google gave the call up)
  proxy_timeout         504 as an HTML page, as a proxy or load balancer in front answers when it stops
                        waiting (no job recorded; what happened upstream is unknown)
  auth                  403 PERMISSION_DENIED (6.6's bad-key answer), no job
  api_key_invalid       400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID ([U]: the form a bad
                        key is widely reported to get), no job
  out_of_credit         400 FAILED_PRECONDITION: billing not enabled / free tier not in region, no job
  billing_400           the same as out_of_credit (Gemini's name for it)
  model_404             404 NOT_FOUND for the model, as a retired id answers, no job
  transient_failure     200, candidate with finishReason OTHER and no content
  text_only             200, STOP with only a text part (the model refused in prose)
  prompt_blocked:R      200, no candidates, promptFeedback.blockReason R (SAFETY, OTHER, BLOCKLIST,
                        PROHIBITED_CONTENT, IMAGE_SAFETY)
  finish:R              200, candidate with finishReason R and no image (IMAGE_SAFETY,
                        IMAGE_PROHIBITED_CONTENT, SAFETY, PROHIBITED_CONTENT, RECITATION, IMAGE_RECITATION,
                        BLOCKLIST, SPII, NO_IMAGE, IMAGE_OTHER, OTHER, MAX_TOKENS, LANGUAGE)
  undecodable_image     200, the inline "image/png" part is valid base64 of bytes that are not an image
  malformed             200 with non-JSON garbage
  create_hang           the call is recorded as a job, then never answered (until stop())
  never_finish          the same as create_hang: a synchronous API has no "running" to stay in

Run standalone with the other fakes: ``python -m bot.testing.providers``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from PIL import Image

from bot.testing.providers._base import (
    LONG_SIDE,
    NOT_AN_IMAGE,
    Chaos,
    FakeProviderServer,
    ImageStyle,
    Seconds,
    garbage,
    noise_png,
    pixel_size,
    result_png,
)

__all__ = [
    "DEFAULT_FAKE_MODELS",
    "GEMINI_OUTCOMES",
    "FakeGemini",
    "FakeGeminiCall",
    "output_size_for",
    "unsigned_model_images",
    "validate_generate_request",
]

# --- what a test can script ----------------------------------------------------------------------

PROMPT_BLOCK_REASONS = ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY")
FINISH_REASONS = (
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "SAFETY",
    "PROHIBITED_CONTENT",
    "RECITATION",
    "IMAGE_RECITATION",
    "BLOCKLIST",
    "SPII",
    "NO_IMAGE",
    "IMAGE_OTHER",
    "OTHER",
    "MAX_TOKENS",
    "LANGUAGE",
)
_ERROR_OUTCOMES = (
    "bad_input",
    "rate_limited",
    "server_error",
    "internal_error",
    "overloaded",
    "gateway_timeout",
    "proxy_timeout",
    "auth",
    "api_key_invalid",
    "out_of_credit",
    "billing_400",
    "model_404",
)
GEMINI_OUTCOMES: frozenset[str] = frozenset(
    {
        "success",
        "success_text",
        "bloated",
        "with_thought_image",
        "content_blocked",
        "transient_failure",
        "text_only",
        "undecodable_image",
        "malformed",
        "create_hang",
        "never_finish",
        *_ERROR_OUTCOMES,
        *(f"prompt_blocked:{r}" for r in PROMPT_BLOCK_REASONS),
        *(f"finish:{r}" for r in FINISH_REASONS),
    }
)

# --- the documented surface (docs/providers.md 6.2-6.5) -----------------------------------------------

_PRO_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})


@dataclass(frozen=True, slots=True)
class _Family:
    display_name: str
    ratios: frozenset[str]
    sizes: frozenset[str]
    thinking_levels: frozenset[str]  # empty: thinkingLevel refused


_FAMILIES: Mapping[str, _Family] = {
    # 6.2: 14 ratios [C Vertex card], 512..4K with an upper-case K [S], MINIMAL/HIGH [S].
    "flash": _Family(
        "Nano Banana 2",
        _PRO_RATIOS | {"1:4", "4:1", "1:8", "8:1"},
        frozenset({"512", "1K", "2K", "4K"}),
        frozenset({"MINIMAL", "HIGH"}),
    ),
    # 6.2: 10 ratios [C], 1K/2K/4K [C SDK]. Level control on Pro is [U]; the fake refuses it, so an
    # adapter that sends one is caught here rather than in production.
    "pro": _Family("Nano Banana Pro", _PRO_RATIOS, frozenset({"1K", "2K", "4K"}), frozenset()),
}
# Gemini model id -> family. Anything else answers 404, like the preview ids since 2026-06-25.
DEFAULT_FAKE_MODELS: Mapping[str, str] = {"gemini-3.1-flash-image": "flash", "gemini-3-pro-image": "pro"}

_INPUT_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})  # 6.3
_MAX_IMAGES = 14  # 6.2
_CATEGORIES = frozenset(
    {
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",  # deprecated, still accepted
    }
)
_THRESHOLDS = frozenset(
    {
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    }
)
_TOP_LEVEL = frozenset(
    {
        "contents",
        "generationConfig",
        "safetySettings",
        "tools",
        "toolConfig",
        "systemInstruction",
        "cachedContent",
    }
)
_GENERATION_CONFIG = frozenset(
    {
        "responseModalities",
        "imageConfig",
        "thinkingConfig",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "seed",
        "responseMimeType",
        "presencePenalty",
        "frequencyPenalty",
        "mediaResolution",
    }
)
# docs/providers.md 6.3 [C]: deprecated on 2026-07-21, never to be sent. Refused, so an adapter that sends one
# is caught here rather than in production (what Google's own answer says is not documented).
_DEPRECATED_SAMPLING = frozenset({"temperature", "topP", "topK"})
_IMAGE_CONFIG = frozenset({"aspectRatio", "imageSize"})
# 6.2 [C]: the SDK raises for these in Gemini-API mode; they exist only on Vertex.
_VERTEX_ONLY_IMAGE_CONFIG = frozenset(
    {"personGeneration", "outputMimeType", "outputCompressionQuality", "imageOutputOptions"}
)
_THINKING_CONFIG = frozenset({"thinkingLevel", "includeThoughts", "thinkingBudget"})
_TOOLS = frozenset({"googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext"})
_PART_DATA = frozenset({"text", "inlineData", "fileData"})
_PART_EXTRA = frozenset({"thought", "thoughtSignature", "mediaResolution"})
# 6.2 [C Vertex card]: image output tokens per size.
_IMAGE_TOKENS = {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}

_SNAKE = re.compile(r"_([a-z0-9])")
# The proto field names Google's messages use for the deprecated sampling knobs.
_SNAKE_OF = {"temperature": "temperature", "topP": "top_p", "topK": "top_k"}


def _camel(value: Any) -> Any:
    """Dict keys in camelCase: proto JSON accepts snake_case and camelCase alike (6.3)."""
    if isinstance(value, dict):
        return {_SNAKE.sub(lambda m: m.group(1).upper(), str(k)): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _unknown(names: set[str], where: str) -> list[str]:
    return [
        f"Invalid JSON payload received. Unknown name \"{n}\" at '{where}': Cannot find field." for n in sorted(names)
    ]


def validate_generate_request(family: str, body: Any) -> list[str]:
    """Problems Gemini would answer 400 INVALID_ARGUMENT for, per docs/providers.md 6.2-6.5 ([] if none).

    ``family`` is "flash" or "pro"; ``body`` is the JSON as sent (snake_case or camelCase).
    """
    spec = _FAMILIES[family]
    if not isinstance(body, dict):
        return ["Invalid JSON payload received. Expected an object."]
    body = _camel(body)
    problems = _unknown(set(body) - _TOP_LEVEL, "")
    contents = body.get("contents")
    images = 0
    if not isinstance(contents, list) or not contents:
        problems.append("* GenerateContentRequest.contents: contents is not specified")
        contents = []
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
            problems.append("* GenerateContentRequest.contents.role: must be 'user' or 'model'")
        if not isinstance(parts, list) or not parts:
            problems.append("* GenerateContentRequest.contents.parts: contents.parts must not be empty")
            continue
        for part in parts:
            if not isinstance(part, dict):
                problems.append("* GenerateContentRequest.contents.parts: must be an object")
                continue
            problems += _unknown(set(part) - _PART_DATA - _PART_EXTRA, "contents[0].parts[0]")
            data_fields = set(part) & _PART_DATA
            if len(data_fields) != 1:
                problems.append("* GenerateContentRequest.contents.parts.data: required oneof field 'data'")
            inline = part.get("inlineData")
            if inline is not None:
                images += 1
                problems += _inline_problems(inline)
            if "text" in part and not isinstance(part["text"], str):
                problems.append("* GenerateContentRequest.contents.parts.text: must be a string")
    if images > _MAX_IMAGES:
        problems.append(f"* GenerateContentRequest.contents: at most {_MAX_IMAGES} images per request")

    config = body.get("generationConfig", {})
    if not isinstance(config, dict):
        config = {}
        problems.append("* GenerateContentRequest.generation_config: must be an object")
    problems += _unknown(set(config) - _GENERATION_CONFIG - _DEPRECATED_SAMPLING, "generation_config")
    for name in sorted(set(config) & _DEPRECATED_SAMPLING):
        problems.append(
            f"* GenerateContentRequest.generation_config.{_SNAKE_OF[name]}: {name} is deprecated for this "
            "model and must not be sent"
        )
    modalities = config.get("responseModalities")
    if modalities is not None and (
        not isinstance(modalities, list) or not modalities or not set(modalities) <= {"TEXT", "IMAGE"}
    ):
        problems.append("* GenerateContentRequest.generation_config.response_modalities: TEXT and/or IMAGE")
    image_config = config.get("imageConfig", {})
    if isinstance(image_config, dict):
        vertex = set(image_config) & _VERTEX_ONLY_IMAGE_CONFIG
        for name in sorted(vertex):
            problems.append(
                f"* GenerateContentRequest.generation_config.image_config.{name}: not supported in Gemini API"
            )
        problems += _unknown(set(image_config) - _IMAGE_CONFIG - vertex, "generation_config.image_config")
        ratio, size = image_config.get("aspectRatio"), image_config.get("imageSize")
        if ratio is not None and ratio not in spec.ratios:
            problems.append(
                f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: {ratio!r} is not supported"
            )
        if size is not None and size not in spec.sizes:
            # 6.2: upper-case K required; 512 only on 3.1 Flash Image.
            problems.append(
                f"* GenerateContentRequest.generation_config.image_config.image_size: {size!r} is not supported"
            )
    thinking = config.get("thinkingConfig", {})
    if isinstance(thinking, dict):
        problems += _unknown(set(thinking) - _THINKING_CONFIG, "generation_config.thinking_config")
        level = thinking.get("thinkingLevel")
        if level is not None and level not in spec.thinking_levels:
            problems.append(
                "* GenerateContentRequest.generation_config.thinking_config.thinking_level: "
                f"{level!r} is not supported for this model"
            )

    settings = body.get("safetySettings", [])
    for setting in settings if isinstance(settings, list) else [None]:
        if not isinstance(setting, dict) or setting.get("category") not in _CATEGORIES:
            problems.append("* GenerateContentRequest.safety_settings.category: invalid harm category")
        elif setting.get("threshold") not in _THRESHOLDS:
            problems.append("* GenerateContentRequest.safety_settings.threshold: invalid threshold")
    tools = body.get("tools", [])
    for tool in tools if isinstance(tools, list) else [None]:
        if not isinstance(tool, dict) or not tool:
            problems.append("* GenerateContentRequest.tools: each tool must be an object")
        else:
            problems += _unknown(set(tool) - _TOOLS, "tools[0]")
    return problems


def _inline_problems(inline: Any) -> list[str]:
    if not isinstance(inline, dict):
        return ["* GenerateContentRequest.contents.parts.inline_data: must be an object"]
    problems = []
    if inline.get("mimeType") not in _INPUT_MIME_TYPES:
        problems.append(f"Unsupported MIME type: {inline.get('mimeType')}")
    try:
        data = base64.b64decode(str(inline.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        problems.append("* GenerateContentRequest.contents.parts.inline_data.data: invalid base64 data")
    return problems


def _decoded_images(body: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """(mimeType, bytes) of every inline part, in order (the body is already validated)."""
    images: list[tuple[str, bytes]] = []
    for content in _camel(body).get("contents", []):
        for part in content.get("parts", []):
            inline = part.get("inlineData")
            if isinstance(inline, dict):
                images.append((inline["mimeType"], base64.b64decode(inline["data"])))
    return images


def unsigned_model_images(body: Mapping[str, Any]) -> int:
    """Image parts of ``role: "model"`` turns sent without a ``thoughtSignature``: a model turn Gemini never
    produced (its own answers are signed: 6.4). docs/providers.md 6.3 says earlier turns go back with their
    signatures untouched but not what Gemini answers to one without, so the fake takes it and counts it."""
    count = 0
    for content in _camel(body).get("contents", []):
        if isinstance(content, dict) and content.get("role") == "model":
            for part in content.get("parts", []):
                if isinstance(part, dict) and "inlineData" in part and not part.get("thoughtSignature"):
                    count += 1
    return count


def output_size_for(body: Mapping[str, Any], references: Sequence[tuple[str, bytes]] = ()) -> tuple[int, int]:
    """Pixel size the fake produces: long side by imageSize; shape by aspectRatio, else the first
    reference image's shape ("the model will choose ... based on any reference images"), else 1:1."""
    image_config = _camel(body).get("generationConfig", {}).get("imageConfig", {})
    tier = image_config.get("imageSize", "1K")
    ratio = image_config.get("aspectRatio")
    if ratio is None and references:
        try:
            with Image.open(io.BytesIO(references[0][1])) as picture:
                width, height = picture.size
        except Exception:  # an unreadable reference: fall back to square
            width, height = 1, 1
        long_side = LONG_SIDE.get(str(tier), 1024)
        if width >= height:
            return long_side, max(1, round(long_side * height / width))
        return max(1, round(long_side * width / height)), long_side
    return pixel_size(tier, ratio)


# --- the fake ------------------------------------------------------------------------------------


@dataclass
class FakeGeminiCall:
    """One generateContent call the fake accepted (valid body, known model)."""

    response_id: str
    model_id: str
    body: dict[str, Any]
    outcome: str
    # The decoded inlineData parts: (mimeType, bytes), in the order sent.
    references: list[tuple[str, bytes]] = field(default_factory=list)
    # Model-turn images sent without their thoughtSignature (``unsigned_model_images``).
    unsigned_model_images: int = 0
    held: bool = False
    answered: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # When the call was accepted (wall clock): a synchronous API has the image then.
    created_at: float = field(default_factory=time.time)


class FakeGemini(FakeProviderServer[FakeGeminiCall]):
    """Gemini's generateContent and models API on 127.0.0.1, scripted per call (see GEMINI_OUTCOMES)."""

    OUTCOMES: ClassVar[frozenset[str]] = GEMINI_OUTCOMES
    NAME: ClassVar[str] = "gemini"
    # docs/providers.md 6.3 [C]: inline request bodies up to 100 MB (since 2026-01).
    MAX_REQUEST_BYTES: ClassVar[int] = 100 * 1000 * 1000

    def __init__(
        self,
        *,
        api_key: str = "test-gemini-key",
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 300.0,
        models: Mapping[str, str] | None = None,
        retry_delay: str = "3s",
        chaos: Chaos | None = None,
        images: ImageStyle = "gradient",
        provider_time: Seconds | None = None,
    ) -> None:
        """``images="noise"``: results are incompressible PNGs, as heavy as real ones (12.6 MB at 2K, 17 MB of
        base64 in the answer), for memory tests; each size is made once and served to every call.
        ``provider_time``: seconds each call draws (drawn per call) before Google answers; none by default."""
        super().__init__(
            api_key=api_key,
            host=host,
            port=port,
            hang_seconds=hang_seconds,
            chaos=chaos,
            images=images,
            provider_time=provider_time,
        )
        # Gemini model id -> "flash" | "pro". Ids not listed answer 404 NOT_FOUND.
        self.models = dict(models or DEFAULT_FAKE_MODELS)
        unknown = set(self.models.values()) - set(_FAMILIES)
        if unknown:
            raise ValueError(f"unknown model families {sorted(unknown)}; use flash or pro")
        self.retry_delay = retry_delay  # RetryInfo.retryDelay on "rate_limited" (protobuf Duration JSON)
        self._references: dict[str, tuple[bytes, str]] = {}
        self._pngs: dict[tuple[int, int], bytes] = {}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1beta/models", self._list_models)
        router.add_get("/v1beta/models/{name}", self._get_model)
        router.add_post("/v1beta/models/{call}", self._call)  # "{id}:generateContent"
        router.add_get("/refs/{name}", self._reference)

    def needs_key(self, request: web.Request) -> bool:
        return request.path.startswith("/v1beta/")

    def is_authorised(self, request: web.Request) -> bool:
        # 6.1 [C]: the x-goog-api-key header, or ?key= (accepted, as Google does; the adapter must not
        # use it: URLs end up in logs).
        return self.key_matches(request.headers.get("x-goog-api-key") or request.query.get("key"))

    def unauthorised(self) -> web.StreamResponse:
        return _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")  # 6.6

    # -- scripting and inspection --

    def is_create(self, path: str) -> bool:
        return path.endswith(":generateContent")

    def serve_reference(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        """Serve ``data`` at /refs/{name} (no key needed, like a CDN) and return its URL."""
        self._references[name] = (data, content_type)
        return f"{self.origin}/refs/{name}"

    def rate_limited(self, request: web.Request | None, seconds: float) -> web.StreamResponse:
        """Google's 429: RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo{retryDelay} (6.6)."""
        model_id = request.match_info.get("call", "").partition(":")[0] if request is not None else ""
        answer = _scripted_error("rate_limited", model_id or "unknown", f"{seconds:g}s")
        assert answer is not None
        return answer

    def on_release(self, job: FakeGeminiCall, now: float) -> None:
        job.released.set()  # a held call's handler is waiting for this to answer

    # -- handlers --

    async def _reference(self, request: web.Request) -> web.StreamResponse:
        entry = self._references.get(request.match_info["name"])
        if entry is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = entry
        return web.Response(body=data, content_type=content_type)

    def _model_resource(self, model_id: str) -> dict[str, Any]:
        return {
            "name": f"models/{model_id}",
            "baseModelId": model_id,
            "version": "001",
            "displayName": _FAMILIES[self.models[model_id]].display_name,
            "inputTokenLimit": 131072,
            "outputTokenLimit": 32768,
            "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
            "thinking": True,
        }

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"models": [self._model_resource(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        model_id = request.match_info["name"].removeprefix("models/")
        if model_id not in self.models:
            return _not_found(model_id, "get")
        return web.json_response(self._model_resource(model_id))

    async def _call(self, request: web.Request) -> web.StreamResponse:
        model_id, _, method = request.match_info["call"].partition(":")
        if method != "generateContent":
            return _google_error(404, "NOT_FOUND", f"Method not found: {method or '(none)'}")
        outcome = self.next_outcome()
        error = _scripted_error(outcome, model_id, self.retry_delay)
        if error is not None:
            return error
        if model_id not in self.models:
            return _not_found(model_id, "generateContent")
        try:
            body = await request.json()
        except ValueError:
            return _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.")
        problems = validate_generate_request(self.models[model_id], body)
        if problems:
            return _google_error(400, "INVALID_ARGUMENT", "\n".join(problems))

        job = FakeGeminiCall(
            response_id=secrets.token_urlsafe(16),
            model_id=model_id,
            body=body,
            outcome=outcome,
            references=_decoded_images(body),
            unsigned_model_images=unsigned_model_images(body),
            held=self._holding,
        )
        self.jobs[job.response_id] = job
        if outcome in ("create_hang", "never_finish"):
            await self.hang()  # the call was made (and would be billed); its answer never comes
            return _google_error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
        if self.provider_time is not None:
            await asyncio.sleep(max(0.0, self.provider_time()))  # drawing
        if job.held:
            await self._wait_for_release(job)
        job.answered = True
        if outcome == "malformed":
            return garbage()
        return web.json_response(await self._answer(job))

    async def _wait_for_release(self, job: FakeGeminiCall) -> None:
        assert self._closing is not None
        waiters = {asyncio.ensure_future(job.released.wait()), asyncio.ensure_future(self._closing.wait())}
        _, pending = await asyncio.wait(waiters, timeout=self.hang_seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    # -- answers --

    async def _png(self, size: tuple[int, int]) -> bytes:
        if size not in self._pngs:
            self._pngs[size] = await asyncio.to_thread(noise_png if self.images == "noise" else result_png, *size)
        return self._pngs[size]

    async def _image_part(self, size: tuple[int, int], *, thought: bool = False) -> dict[str, Any]:
        data = base64.b64encode(await self._png(size)).decode("ascii")
        part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": data}}
        if thought:
            part["thought"] = True
        else:
            part["thoughtSignature"] = base64.b64encode(secrets.token_bytes(24)).decode("ascii")
        return part

    def _usage(self, job: FakeGeminiCall, image_tokens: int, text_tokens: int = 0) -> dict[str, Any]:
        texts = [
            p.get("text", "")
            for c in _camel(job.body).get("contents", [])
            for p in c.get("parts", [])
            if isinstance(p.get("text"), str)
        ]
        prompt = max(1, sum(len(t) for t in texts) // 4) + 258 * len(job.references)
        thoughts = 180
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": image_tokens + text_tokens,
            "thoughtsTokenCount": thoughts,
            "totalTokenCount": prompt + image_tokens + text_tokens + thoughts,
        }
        if image_tokens:
            usage["candidatesTokensDetails"] = [{"modality": "IMAGE", "tokenCount": image_tokens}]
        return usage

    async def _answer(self, job: FakeGeminiCall) -> dict[str, Any]:
        outcome = job.outcome
        envelope: dict[str, Any] = {"modelVersion": job.model_id, "responseId": job.response_id}
        if outcome.startswith("prompt_blocked:"):
            # 6.4 [C]: HTTP 200, no candidates, promptFeedback.blockReason.
            reason = outcome.removeprefix("prompt_blocked:")
            feedback = {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True}
                ],
            }
            return {"promptFeedback": feedback, "usageMetadata": self._usage(job, 0), **envelope}
        if outcome == "content_blocked":
            outcome = "finish:IMAGE_SAFETY"
        if outcome.startswith("finish:") or outcome == "transient_failure":
            reason = "OTHER" if outcome == "transient_failure" else outcome.removeprefix("finish:")
            candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
            if reason in ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER"):
                candidate["finishMessage"] = "Unable to show the generated image."
            if reason == "MAX_TOKENS":
                candidate["content"] = {"role": "model", "parts": [{"text": "Drafting", "thought": True}]}
            return {"candidates": [candidate], "usageMetadata": self._usage(job, 0), **envelope}
        if outcome == "text_only":
            text = "I can't create that image, but I can describe it: a red apple on a white table."
            candidate = {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
            return {"candidates": [candidate], "usageMetadata": self._usage(job, 0, 24), **envelope}

        size = output_size_for(job.body, job.references)
        tier = _camel(job.body).get("generationConfig", {}).get("imageConfig", {}).get("imageSize", "1K")
        parts: list[dict[str, Any]] = []
        if outcome == "with_thought_image":
            # 6.4 [C cookbook]: thought parts can carry interim images; they come before the final one.
            interim = (max(1, size[0] // 2), max(1, size[1] // 2))
            parts += [
                {"text": "Drafting composition...", "thought": True},
                await self._image_part(interim, thought=True),
            ]
            parts.append({"text": "Here is the final image."})
        if outcome == "success_text":
            parts.append({"text": "Here is your image."})
        if outcome == "bloated":
            parts.append({"text": "Here is your image. " + "and more " * 2_500_000})
        if outcome == "undecodable_image":
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(NOT_AN_IMAGE).decode()}})
        else:
            parts.append(await self._image_part(size))
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        usage = self._usage(job, _IMAGE_TOKENS.get(tier, 1120))
        if outcome == "bloated":
            usage |= {"padding": "x" * 5_000_000, "counts": list(range(100_000))}
            web = [{"web": {"uri": f"https://source.example/{n}", "title": f"Source {n}"}} for n in range(50_000)]
            candidate["groundingMetadata"] = {"groundingChunks": web}
        return {"candidates": [candidate], "usageMetadata": usage, **envelope}


def _google_error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    """The documented error body (6.6): {"error": {code, message, status, details?}}."""
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


def _not_found(model_id: str, method: str) -> web.Response:
    # What shut-down preview ids answer (section 1 [S] gemilab.net); wording after Google's usual message.
    return _google_error(
        404,
        "NOT_FOUND",
        f"models/{model_id} is not found for API version v1beta, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


def _scripted_error(outcome: str, model_id: str, retry_delay: str) -> web.Response | None:
    """The answer to an error outcome (no job is made), or None for the outcomes that reach the model."""
    if outcome == "rate_limited":
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_images",
                        "quotaId": "GenerateContentPaidTierImagesPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": model_id},
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ]
        return _google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            details,
        )
    if outcome == "overloaded":
        return _google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if outcome in ("server_error", "internal_error"):
        return _google_error(500, "INTERNAL", "An internal error has occurred. Please retry.")
    if outcome == "gateway_timeout":
        return _google_error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
    if outcome == "proxy_timeout":
        page = "<html><head><title>504 Gateway Time-out</title></head><body>504 Gateway Time-out</body></html>"
        return web.Response(status=504, text=page, content_type="text/html")
    if outcome == "auth":
        return _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
    if outcome == "api_key_invalid":
        key_details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
        return _google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", key_details)
    if outcome in ("out_of_credit", "billing_400"):
        return _google_error(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. "
            "Please enable billing on your project in Google AI Studio.",
        )
    if outcome == "model_404":
        return _not_found(model_id, "generateContent")
    if outcome == "bad_input":
        return _google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    return None
