"""Google's Gemini API, direct: Nano Banana 2 and Nano Banana Pro (docs/providers.md sections 1 and 6).

One synchronous call, ``POST {base}/v1beta/models/{model}:generateContent``, answers with the image
itself (base64 ``inlineData``). So ``submit`` makes the call and returns a handle whose ``ready`` is the
terminal update; ``poll`` just hands that back and ``cancel`` has nothing to stop.

Sources, tagged as in docs/providers.md section 0 ([C] confirmed, [S] secondary, [U] unknown):
  6.1 endpoint/auth [C]; 6.2 capability matrix; 6.3 request body; 6.4 response body [C field names];
  6.5 safety settings [C]; 6.6 HTTP errors [C]; 6.8 prices [S]. Google retires model ids (section 1),
  so the ids are configuration (``model_ids``) and ``check()`` proves they still exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import IO, Any, ClassVar, Unpack
from urllib.parse import quote

import httpx
from PIL import Image
from pydantic import Field

from bot.errors import (
    AuthError,
    BadInputError,
    ConfigError,
    ErrorCategory,
    InvalidRequestError,
    OutOfCreditError,
    OverloadedError,
    ProviderError,
    ReferenceFetchError,
    ReferenceUnavailableError,
    SubmitUncertainError,
    TransientError,
)
from bot.fetch import may_pass
from bot.http_terms import NO_COMPRESSION
from bot.images import image_end
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, ReferenceImage, Turn, UpdateStatus
from bot.providers import base64_text
from bot.providers._adapter import AdapterArgs, ErrorAnswer, HttpAdapter, Op, Outcome, require_web_links
from bot.providers._http import (
    SHOWN_CHARS,
    clipped,
    json_body,
    key_not_proven,
    key_rejected,
    number_in,
    parse_retry_after,
    redact,
    safe_url,
    unreachable,
)
from bot.providers.base import Capabilities, Prefetched, ProviderCheck, ProviderSettings
from bot.providers.families import AUTO, NANO_BANANA_2, NANO_BANANA_PRO
from bot.providers.inline_body import ImageFile, InlineBody

log = logging.getLogger(__name__)

__all__ = [
    "GEMINI_DEFAULT_MODEL_IDS",
    "GEMINI_MODELS",
    "HARM_CATEGORIES",
    "GeminiProvider",
    "PastTurn",
    "build_request_body",
    "gemini_models",
    "safety_settings_for",
    "turns_to_send",
]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
# 6.6 [C]: 503 UNAVAILABLE means overloaded, "retry after 30-60 s": the shortest wait it names.
OVERLOADED_RETRY_SECONDS = 30.0
# generateContent answers only once the image is drawn: one aggregator advises client timeouts up to 360 s for
# NB2 at busy times (docs/providers.md 8.4), and a call cut short is lost though Google may bill it (nothing in
# section 6 says it does not), so its read timeout is at least this, whatever request_timeout says.
GENERATE_READ_SECONDS = 360.0
# Reference downloads (Discord's CDN) and models.get are small and quick; do not wait minutes on them.
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CHECK_TIMEOUT = httpx.Timeout(15.0, connect=10.0)

# docs/providers.md section 1 [C]: the GA ids. The preview ids were shut down on 2026-06-25.
GEMINI_DEFAULT_MODEL_IDS: Mapping[str, str] = {
    "nano_banana_2": "gemini-3.1-flash-image",
    "nano_banana_pro": "gemini-3-pro-image",
}
# Ids that are known to answer 404 now (section 1 [C]): refuse them at start-up with the fix, instead
# of failing every member's request.
_SHUT_DOWN_IDS: Mapping[str, str] = {
    "gemini-3.1-flash-image-preview": "gemini-3.1-flash-image",
    "gemini-3-pro-image-preview": "gemini-3-pro-image",
}
_MODEL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]*$")


class GeminiSettings(ProviderSettings):
    # Google retires model ids (docs/providers.md section 1): the bot's model name -> the Gemini model id.
    model_ids: dict[str, str] = Field(default_factory=lambda: dict(GEMINI_DEFAULT_MODEL_IDS))


# 8.1: Gemini is token-limited, not character-limited. 20,000 characters (~5,000 tokens) is far below the
# image models' input limit and matches the largest aggregator limit ([U] estimate, editable here).
_MAX_PROMPT_CHARS = 20_000
# 6.3 [C]: inline request bodies may be up to 100 MB since 2026-01 (20 MB before). Base64 grows bytes
# by 4/3, and the prompt and JSON need room too: keep the raw reference bytes under 70 MiB in total.
_MAX_INLINE_TOTAL = 70 * 1024 * 1024
# No limit per image is documented beside the request's: one image may use the whole of it. So a 4K PNG
# of the bot's own (20-30 MB, shown as it came where a boosted server takes 50 or 100 MiB) can be worked
# on here, where the providers fetching references by their link hold each to 10 MiB (30 MB on Kie). The
# members' own uploads are held to their limit (``max_attachment_bytes``) whatever a provider takes.
_MAX_REFERENCE_BYTES = _MAX_INLINE_TOTAL

# Prices: 6.8 [S], quoted for the preview ids (Mar-Apr 2026). The prices of the GA ids are [U]
# (assumed unchanged, as 6.8 advises); editable in config.
_FLASH_PRICES = (("512", 45_000), ("1K", 67_000), ("2K", 101_000), ("4K", 151_000))
_PRO_PRICES = (("1K", 134_000), ("2K", 134_000), ("4K", 240_000))
# Grounding with Google Search, 6.8 [S]: $14 per 1,000 after a monthly free allowance the bot cannot see
# (the project's other use counts against it), so every searching request is estimated at the paid rate.
_WEB_SEARCH_PRICE = 14_000
# Each image sent (a reference, or an earlier turn's), 6.8 [S]: billed as input tokens, about 1,120 of them
# at Flash's $0.50 per 1M (a 14-reference Pro request was estimated 11% under without it).
_FLASH_INPUT_IMAGE_PRICE = 560
_PRO_INPUT_IMAGE_PRICE = 1_100


# The families as Google defines them (6.2 [C Vertex model card]), plus "auto": the API has no such
# value (8.1), but with aspectRatio omitted "the model will choose a default aspect ratio based on any
# reference images provided" ([S] the v1beta ImageConfig field description, as mirrored by the
# geminix client docs).
def _sent(request: GenerationRequest, max_images: int) -> int:
    return images_sent(request, max_images)  # defined below, with the turns it counts


_DEFAULTS: Mapping[str, Capabilities] = {
    "nano_banana_2": NANO_BANANA_2.capabilities(
        provider_model=GEMINI_DEFAULT_MODEL_IDS["nano_banana_2"],
        max_prompt_chars=_MAX_PROMPT_CHARS,
        max_reference_bytes=_MAX_REFERENCE_BYTES,
        auto_ratio=True,
        # "512" is IMAGE_SIZE_FIVE_TWELVE in the SDK [C]; default 1K (6.2).
        # No seed: section 6 documents none for the image models, so none is offered.
        output_formats=(),  # 6.2 [C]: not settable on the Gemini API; the answer names its MIME type
        thinking_levels=("minimal", "high"),  # 6.2 [S]: thinkingLevel MINIMAL (default) / HIGH
        web_search=True,  # 6.2 [S]
        safety_knob=True,  # 6.5 [C]
        queued=False,
        prices_micro_usd=_FLASH_PRICES,
        web_search_micro_usd=_WEB_SEARCH_PRICE,
        input_image_micro_usd=_FLASH_INPUT_IMAGE_PRICE,
        images_sent=_sent,
    ),
    "nano_banana_pro": NANO_BANANA_PRO.capabilities(
        provider_model=GEMINI_DEFAULT_MODEL_IDS["nano_banana_pro"],
        max_prompt_chars=_MAX_PROMPT_CHARS,
        max_reference_bytes=_MAX_REFERENCE_BYTES,
        auto_ratio=True,
        # 6.2: Pro always thinks; whether its level can be set is [U], so the bot offers no knob.
        web_search=True,  # 6.2 [C cookbook]
        safety_knob=True,
        queued=False,
        prices_micro_usd=_PRO_PRICES,
        web_search_micro_usd=_WEB_SEARCH_PRICE,
        input_image_micro_usd=_PRO_INPUT_IMAGE_PRICE,
        images_sent=_sent,
    ),
}

# Ids that differ from their family (6.2): the bot may be pointed at them through `model_ids`.
_ID_CHANGES: Mapping[str, Mapping[str, Any]] = {
    # 1K/2K/4K, no 512 tier [S]; prices [U], assumed as for 3.1 Flash Image.
    "gemini-nano-banana-2.1": {
        "resolutions": ("1K", "2K", "4K"),
        "prices_micro_usd": _FLASH_PRICES[1:],
    },
    # 1K only, no Google Search [S]; price [U], assumed as 3.1 Flash Image at 1K.
    "gemini-3.1-flash-lite-image": {
        "resolutions": ("1K",),
        "web_search": False,
        "prices_micro_usd": _FLASH_PRICES[1:2],
    },
}


def _normalise_model_id(bot_model: str, value: object) -> str:
    setting = f"gemini.model_ids.{bot_model}"
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(setting, "is empty", "Set a Gemini model id such as gemini-3.1-flash-image")
    model_id = value.strip().removeprefix("models/")  # the API's resource name form is accepted too
    if not _MODEL_ID_RE.match(model_id):
        raise ConfigError(setting, f"{model_id!r} is not a Gemini model id", "Use an id like gemini-3-pro-image")
    if model_id in _SHUT_DOWN_IDS:
        raise ConfigError(
            setting,
            f"{model_id} was shut down by Google on 2026-06-25",
            f"Use {_SHUT_DOWN_IDS[model_id]}",
        )
    return model_id


def gemini_models(model_ids: Mapping[str, str] | None = None) -> dict[str, Capabilities]:
    """Capabilities per bot model name for the given Gemini model ids (missing names keep the default)."""
    ids = dict(GEMINI_DEFAULT_MODEL_IDS)
    for bot_model, model_id in (model_ids or {}).items():
        if bot_model not in _DEFAULTS:
            raise ConfigError(
                f"gemini.model_ids.{bot_model}",
                "is not a model this bot offers",
                f"Use one of: {', '.join(_DEFAULTS)}",
            )
        ids[bot_model] = _normalise_model_id(bot_model, model_id)
    models: dict[str, Capabilities] = {}
    for bot_model, caps in _DEFAULTS.items():
        model_id = ids[bot_model]
        models[bot_model] = replace(caps, provider_model=model_id, **_ID_CHANGES.get(model_id, {}))
    return models


GEMINI_MODELS: dict[str, Capabilities] = gemini_models(GEMINI_DEFAULT_MODEL_IDS)


# --- safety ---------------------------------------------------------------------------------------

# 6.5 [C]: the four adjustable categories (CIVIC_INTEGRITY is deprecated, HARM_CATEGORY_IMAGE_* are
# Vertex-only).
HARM_CATEGORIES: tuple[str, ...] = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
# The bot's scale is 1 (strictest) .. 6 (loosest) (docs/architecture.md section 6); Google has five thresholds.
# Levels 2 and 3 share BLOCK_MEDIUM_AND_ABOVE: it is the middle of Google's scale and the threshold most
# sources name as its default, so the two "ordinary" levels behave like an untouched project.
# 5 vs 6: BLOCK_NONE still runs the classifier (ratings come back, nothing is blocked); OFF switches the
# adjustable filter off altogether. Neither lifts Google's core protections or the image-output filter
# (IMAGE_SAFETY / IMAGE_PROHIBITED_CONTENT), which cannot be switched off (6.5).
_THRESHOLDS: Mapping[int, str] = {
    1: "BLOCK_LOW_AND_ABOVE",
    2: "BLOCK_MEDIUM_AND_ABOVE",
    3: "BLOCK_MEDIUM_AND_ABOVE",
    4: "BLOCK_ONLY_HIGH",
    5: "BLOCK_NONE",
    6: "OFF",
}


def safety_settings_for(level: int) -> list[dict[str, str]]:
    """Gemini ``safetySettings`` for the bot's safety tolerance 1 (strictest) .. 6 (loosest)."""
    if isinstance(level, bool) or level not in _THRESHOLDS:
        raise ValueError(f"safety tolerance must be an integer from 1 to 6, not {level!r}")
    threshold = _THRESHOLDS[level]
    return [{"category": category, "threshold": threshold} for category in HARM_CATEGORIES]


# --- the request ----------------------------------------------------------------------------------

# 6.2 [S]: thinkingLevel takes upper-case enum names.
_THINKING: Mapping[str, str] = {"minimal": "MINIMAL", "high": "HIGH"}


# An image sent inline: its MIME type and its bytes, or the temporary file holding them (the bot's own
# calls: bot/providers/inline_body.py reads the file as the request leaves).
Inline = tuple[str, bytes | ImageFile]


@dataclass(frozen=True, slots=True)
class PastTurn:
    """An earlier turn of a conversation as sent (6.3): the member's words and images, then the model's
    image with its ``thoughtSignature`` untouched."""

    prompt: str
    images: tuple[Inline, ...]
    result: Inline
    signature: str | None = None


def _inline(image: Inline) -> dict[str, Any]:
    # 6.3 [C]: inline base64. (file_data URLs exist, but whether image models take them is [U].) A file
    # stays a file here: InlineBody writes its base64 when the body is sent.
    mime_type, data = image
    payload = data if isinstance(data, ImageFile) else base64.b64encode(data).decode("ascii")
    return {"inlineData": {"mimeType": mime_type, "data": payload}}


def _size(image: Inline) -> int:
    data = image[1]
    return data.size if isinstance(data, ImageFile) else len(data)


def build_request_body(
    request: GenerationRequest,
    caps: Capabilities,
    inline_images: tuple[Inline, ...] = (),
    past: tuple[PastTurn, ...] = (),
) -> dict[str, Any]:
    """The generateContent body (6.3) for an already validated request and its downloaded references.

    ``inline_images`` are (MIME type, bytes) pairs, in the member's order. ``past`` turns go first, each
    a user turn and the model's answer, so the model edits with the conversation in mind.

    Only a turn Gemini signed is sent as the model's (6.3; ``turns_to_send`` picks such turns). One without a
    signature, an image another provider made, would be a model turn Gemini never produced: it and the turns
    before it are left out, and its image opens the next user turn as the member's reference instead.
    """
    contents: list[dict[str, Any]] = []
    carried: list[dict[str, Any]] = []  # an unsigned turn's image, for the user turn after it
    for turn in past:
        if not turn.signature:
            contents.clear()
            carried = [_inline(turn.result)]
            continue
        contents.append({"role": "user", "parts": [{"text": turn.prompt}, *carried, *map(_inline, turn.images)]})
        carried = []
        answer = _inline(turn.result)
        answer["thoughtSignature"] = turn.signature
        contents.append({"role": "model", "parts": [answer]})
    parts = [{"text": request.sent_prompt}, *carried, *map(_inline, inline_images)]
    contents.append({"role": "user", "parts": parts})
    image_config: dict[str, str] = {}
    if request.aspect_ratio is not None and request.aspect_ratio != AUTO:
        image_config["aspectRatio"] = request.aspect_ratio
    # Always sent, the default included: the size decides the price tier (6.8), so the bot states which
    # one it ordered instead of relying on a default that is only [S].
    image_config["imageSize"] = request.resolution or caps.default_resolution
    generation_config: dict[str, Any] = {
        # 6.3 [C cookbook]: TEXT+IMAGE is the image models' default; sent so a refusal in prose comes back
        # as text we can show, rather than as an empty answer.
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": image_config,
    }
    if request.thinking_level is not None:
        generation_config["thinkingConfig"] = {"thinkingLevel": _THINKING[request.thinking_level]}
    # Never temperature/topP/topK: deprecated on 2026-07-21 (6.3 [C]).
    body: dict[str, Any] = {"contents": contents, "generationConfig": generation_config}
    if request.web_search:
        body["tools"] = [{"google_search": {}}]  # 6.3 / 8.1
    if request.safety_tolerance is not None:
        # None: omitted, so Google's defaults apply (6.5: the image models' defaults are [U]).
        body["safetySettings"] = safety_settings_for(request.safety_tolerance)
    return body


# --- outcomes of a 200 answer ---------------------------------------------------------------------


# 6.4 [C SDK BlockedReason]: the prompt (text or reference images) was refused; no candidates.
_PROMPT_BLOCKS: Mapping[str, str] = {
    "SAFETY": "Google's safety filter blocked the prompt.",
    "OTHER": "Google refused the prompt without giving a reason.",
    "BLOCKLIST": "The prompt contains words on Google's blocklist.",
    "PROHIBITED_CONTENT": "Google flagged the prompt as prohibited content.",
    "IMAGE_SAFETY": "Google's safety filter blocked one of the reference images.",
    # Vertex-only values (6.4); accepted in case the Gemini API starts sending them.
    "MODEL_ARMOR": "Google's prompt screening (Model Armor) blocked the prompt.",
    "JAILBREAK": "Google judged the prompt to be an attempt to get around its safety rules.",
}
_REPHRASE = " Rephrase the prompt or use different reference images."

# 6.4 [C SDK FinishReason] / 8.3: the answer was stopped by a filter.
_FINISH_BLOCKS: Mapping[str, str] = {
    "IMAGE_SAFETY": "Google's safety filter blocked the generated image.",
    "IMAGE_PROHIBITED_CONTENT": "Google flagged the generated image as prohibited content.",
    "SAFETY": "Google's safety filter stopped the answer.",
    "PROHIBITED_CONTENT": "Google flagged the answer as prohibited content.",
    "RECITATION": "Google stopped the answer because it was too close to existing (possibly copyrighted) material.",
    "IMAGE_RECITATION": "Google stopped the image because it was too close to an existing (possibly "
    "copyrighted) image.",
    "BLOCKLIST": "Google stopped the answer because it contained words on Google's blocklist.",
    "SPII": "Google stopped the answer because it could contain sensitive personal information.",
}
# 8.3 "No image produced": worth one more try.
_NO_IMAGE: Mapping[str, str] = {
    "NO_IMAGE": "The model did not produce an image this time.",
    "IMAGE_OTHER": "The model could not finish the image this time.",
    "MAX_TOKENS": "The model ran out of room before the image was finished.",
}
_TEXT_ONLY = "The model answered in text only, without an image."
_TRY_AGAIN = " Try again or rephrase the prompt."
# Stops that say nothing about the prompt: an internal hiccup at Google.
_TRANSIENT_FINISH = frozenset(
    {
        "OTHER",
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "FINISH_REASON_UNSPECIFIED",
    }
)


# What an unknown blockReason must look like to be shown to the member: an enum name, as Google's all are.
# Anything else (a masked link, 200 kB of text) is Google's answer gone wrong or someone else's words.
_REASON_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_UNREADABLE_BLOCK = "Google blocked the prompt and gave a reason the bot could not read."


def _prompt_blocked(reason: str) -> Outcome:
    plain = _PROMPT_BLOCKS.get(reason)
    if plain is None:
        # An enum name starts with a letter, so its underscores sit inside a word: no markdown in Discord.
        named = _REASON_NAME.fullmatch(reason) is not None
        plain = f"Google blocked the prompt (reason: {reason.lower()})." if named else _UNREADABLE_BLOCK
    return Outcome(ErrorCategory.CONTENT_BLOCKED, plain + _REPHRASE)


def _finish_outcome(reason: str, has_text: bool) -> Outcome:
    """What a candidate without a usable image means, by its finishReason (8.3)."""
    if reason in _FINISH_BLOCKS:
        return Outcome(ErrorCategory.CONTENT_BLOCKED, _FINISH_BLOCKS[reason] + _REPHRASE)
    if reason == "LANGUAGE":
        return Outcome(
            ErrorCategory.BAD_INPUT,
            "The model does not support the prompt's language. Try writing the prompt in English.",
        )
    if reason in _TRANSIENT_FINISH:
        return Outcome(
            ErrorCategory.TRANSIENT,
            "Gemini stopped without an image and did not say why (a temporary problem at Google). "
            "Try again in a minute.",
        )
    if has_text:
        # 6.4 [S]: STOP with prose and no image happens (the model refuses in words); its text goes
        # in JobUpdate.text so the member can read it.
        return Outcome(ErrorCategory.NO_IMAGE, _TEXT_ONLY + _TRY_AGAIN)
    return Outcome(ErrorCategory.NO_IMAGE, _NO_IMAGE.get(reason, _NO_IMAGE["NO_IMAGE"]) + _TRY_AGAIN)


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    # Responses use camelCase (6.3); snake_case is accepted too, as proto JSON allows both.
    return obj[camel] if camel in obj else obj.get(snake)


def _usage(data: Mapping[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    metadata = _as_dict(_field(data, "usageMetadata", "usage_metadata"))
    for key, value in metadata.items():
        if isinstance(value, int | float | list | str) and not isinstance(value, bool):
            usage[key] = value
    version = _field(data, "modelVersion", "model_version")
    if isinstance(version, str):
        usage["modelVersion"] = version
    return usage


def _grounding_sources(candidate: Mapping[str, Any]) -> list[dict[str, str]]:
    """Web sources of a grounded answer; Google asks for them to be shown (6.3 [S])."""
    grounding = _as_dict(_field(candidate, "groundingMetadata", "grounding_metadata"))
    sources: list[dict[str, str]] = []
    chunks = _field(grounding, "groundingChunks", "grounding_chunks")
    for chunk in chunks if isinstance(chunks, list) else []:
        web = _as_dict(_as_dict(chunk).get("web"))
        uri, title = web.get("uri"), web.get("title")
        if isinstance(uri, str) and uri.startswith(("http://", "https://")) and len(uri) <= _SOURCE_URI_CHARS:
            sources.append({"uri": uri, "title": (title if isinstance(title, str) else uri)[:_SOURCE_TITLE_CHARS]})
            if len(sources) == _SOURCES_KEPT:
                break  # a grounded answer cites a handful; more is a broken or hostile answer
    return sources


_SOURCES_KEPT = 10
_SOURCE_URI_CHARS = 1000
_SOURCE_TITLE_CHARS = 200


def _b64decode(value: object) -> bytes:
    """Proto JSON bytes: standard base64 as Google sends it; URL-safe or unpadded also accepted; bytes
    already decoded as the answer was read (``_answer``) as they are."""
    if isinstance(value, bytes):
        return value
    return base64_text.decode(value if isinstance(value, str) else str(value or ""))


def _answer(response: httpx.Response) -> dict[str, Any] | None:
    """generateContent's answer as a JSON object (None if it is not one), its images' base64 decoded
    straight from the answer's bytes instead of being made a string first (base64_text.parse_lifting:
    a 4K answer's peak is its image, 50 MB, not 133 MB more). Every part's ``inlineData.data`` that was
    taken out is given back as bytes, which ``_b64decode`` passes through."""
    try:
        document, lifted = base64_text.parse_lifting(response.content)
    except (ValueError, RecursionError):  # as json_body: not JSON, bad UTF-8, nesting past the parser
        return None
    if not isinstance(document, dict):
        return None
    if lifted:
        candidates = document.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else []:
            parts = _as_dict(_as_dict(candidate).get("content")).get("parts")
            for part in parts if isinstance(parts, list) else []:
                inline = _field(_as_dict(part), "inlineData", "inline_data")
                if isinstance(inline, dict) and isinstance(inline.get("data"), str) and inline["data"] in lifted:
                    inline["data"] = lifted[inline["data"]]
    return document


def _image_dimensions(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the image header; None if it does not parse (delivery decides then)."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            return picture.size
    except Exception:
        # Whatever Pillow raises for bytes from outside: besides its documented errors, a plugin may raise
        # NotImplementedError (a DDS with a pixel format it does not know), which escaped the adapter and
        # ended an image Google had made as "the bot restarted while sending this request".
        return None, None


# --- reference images -----------------------------------------------------------------------------

# MPO: a JPEG with a Multi-Picture block (Ultra HDR photos, as recent phone cameras write them): Pillow names it
# so, and it is a JPEG to Gemini (the bot's own reference check takes it as one).
_PIL_TO_MIME: Mapping[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp"}


def _sniff(file: IO[bytes]) -> str | None:
    """The real MIME type of the image in ``file`` (PNG, JPEG or WebP, checked by Pillow), or None."""
    file.seek(0)
    try:
        with Image.open(file) as picture:
            kind = picture.format or ""
            picture.verify()  # catches truncated or corrupt files without decoding every pixel
    except Exception:
        # Pillow's documented errors, DecompressionBombWarning where warnings are errors (the tests), and
        # whatever else a plugin raises for a file from outside (NotImplementedError: see _image_dimensions).
        return None
    return _PIL_TO_MIME.get(kind)


def _copy_into(image: ImageFile, source: IO[bytes]) -> None:
    """``source`` (a file the bot downloaded and checked) copied into ``image``, the empty file of its own."""
    source.seek(0)
    shutil.copyfileobj(source, image.file)
    image.size = image.file.tell()


def _cut_after_image(image: ImageFile) -> None:
    """``image`` without what follows the picture: a phone's Motion Photo or MVIMG carries seconds of video
    (with sound) after its JPEG, megabytes the member did not mean to send, which would count against
    Gemini's inline limit; the JPEG before it is the whole picture, sent as it is (cut, not re-encoded)."""
    end = image_end(image.file)
    if end is not None and end < image.size:
        image.file.truncate(end)
        image.size = end


# --- a conversation of edits ----------------------------------------------------------------------

# Earlier turns sent at most (6.3: the conversation goes back whole; tokens and downloads grow with it).
MAX_PAST_TURNS = 5


def _turn_images(turn: Turn, *, first: bool) -> tuple[ReferenceImage, ...]:
    # After the first turn sent, a turn's first reference is the previous turn's result, which is in the
    # conversation already as the model's answer.
    return turn.reference_images if first else turn.reference_images[1:]


def _turn_inputs(turn: Turn, *, first: bool) -> tuple[ReferenceImage, ...]:
    """Every image a turn sends: the member's, then the model's result."""
    return (*_turn_images(turn, first=first), turn.result)


def turns_to_send(request: GenerationRequest, max_images: int) -> tuple[Turn, ...]:
    """The latest earlier turns that fit the model's image limit together with the request's own images;
    none if the request does not continue its history (its first reference is not the last result).

    Only turns Gemini answered itself, each with the signature it gave its image, go back as the model's
    (6.3: earlier turns return with their ``thoughtSignature`` untouched). A turn without one (its image came
    from SeaArt, Kie or Segmind, which sign nothing) would be a model turn Gemini never produced: it and the
    turns before it are left out, and its image goes as the member's reference instead, in the turn after it
    (whose first reference it is, sent then) or in the request itself when it is the image being edited.
    """
    history = request.history[-MAX_PAST_TURNS:]
    refs = request.reference_images
    if not history or not refs or refs[0].url != history[-1].result.url:
        return ()
    unsigned = [index for index, turn in enumerate(history) if not turn.thought_signature]
    if unsigned:
        history = history[unsigned[-1] + 1 :]
    own = len(refs) - 1
    for start in range(len(history)):
        kept = history[start:]
        images = own + sum(1 + len(_turn_images(turn, first=i == 0)) for i, turn in enumerate(kept))
        if images <= max_images:
            return kept
    return ()


def images_sent(request: GenerationRequest, max_images: int) -> int:
    """How many images ``request`` sends to Gemini (each billed as input tokens): its references, and the
    earlier turns ``turns_to_send`` keeps, each a result and the references the member added then (the
    first reference of a continued request is the last turn's result, sent as that turn's answer)."""
    past = turns_to_send(request, max_images)
    own = len(request.reference_images) - (1 if past else 0)
    return own + sum(1 + len(_turn_images(turn, first=i == 0)) for i, turn in enumerate(past))


def _ok(image: Inline | BaseException) -> Inline:
    assert not isinstance(image, BaseException), "failed downloads are dropped before the body is built"
    return image


# --- the adapter ----------------------------------------------------------------------------------


def _duration_seconds(value: object) -> float | None:
    """A google.protobuf.Duration in JSON form ("12s", "1.5s") as seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        seconds = float(value[:-1])
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class _GoogleError:
    code: int | None
    status: str
    message: str
    reasons: tuple[str, ...]  # google.rpc.ErrorInfo reasons, e.g. API_KEY_INVALID
    retry_delay: float | None  # google.rpc.RetryInfo.retryDelay


def _google_error(response: httpx.Response) -> _GoogleError:
    """The documented error body {"error": {code, message, status, details[]}} (6.6), read tolerantly."""
    body = json_body(response)
    if isinstance(body, list) and body:  # some Google front ends wrap the error in a list
        body = body[0]
    error = _as_dict(_as_dict(body).get("error"))
    code = error.get("code")
    reasons: list[str] = []
    retry_delay: float | None = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        detail = _as_dict(detail)
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and isinstance(detail.get("reason"), str):
            reasons.append(detail["reason"])
        elif kind.endswith("google.rpc.RetryInfo"):
            retry_delay = _duration_seconds(_field(detail, "retryDelay", "retry_delay"))
    return _GoogleError(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        status=str(error.get("status") or "").upper(),
        message=str(error.get("message") or ""),
        reasons=tuple(reasons),
        retry_delay=retry_delay,
    )


def _overloaded(response: httpx.Response, error: _GoogleError) -> bool:
    """6.6 [C]: 503 UNAVAILABLE, "The model is overloaded": nothing was made; come back in 30-60 s."""
    return response.status_code == 503 and error.status == "UNAVAILABLE"


def _key_rejected(response: httpx.Response, error: _GoogleError) -> bool:
    # 6.6 [C]: 403 PERMISSION_DENIED for a bad key. Widely seen but not in our sources ([U]): a 400
    # INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID ("API key not valid"), and 401.
    if response.status_code in (401, 403):
        return True
    return response.status_code == 400 and (
        "API_KEY_INVALID" in error.reasons or "api key not valid" in error.message.lower()
    )


def _at_most(timeout: httpx.Timeout | None, ceiling: httpx.Timeout) -> httpx.Timeout:
    """``timeout`` with every phase capped at ``ceiling``'s (``ceiling`` itself if None)."""
    if timeout is None:
        return ceiling

    def cap(value: float | None, limit: float | None) -> float | None:
        if value is None:
            return limit
        return value if limit is None else min(value, limit)

    return httpx.Timeout(
        connect=cap(timeout.connect, ceiling.connect),
        read=cap(timeout.read, ceiling.read),
        write=cap(timeout.write, ceiling.write),
        pool=cap(timeout.pool, ceiling.pool),
    )


class GeminiProvider(HttpAdapter):
    """Gemini's generateContent: one synchronous call per image; the answer carries the image bytes."""

    name = "gemini"
    label = "Gemini"
    key_env = "GEMINI_API_KEY"
    default_base_url = DEFAULT_BASE_URL
    # One call generates the image: 4K on a busy day takes minutes (docs/providers.md 8.4 cites up to 360 s
    # for NB2 at peak [S]). So the generate call reads for at least GENERATE_READ_SECONDS, whatever
    # request_timeout says (from_settings always passes one, 180 s by default, which cut it short before).
    default_timeout = 180.0
    sync_read_seconds = GENERATE_READ_SECONDS
    # The answer holds the image as base64: room for the largest result the bot downloads (64 MiB by
    # default) once encoded, and the JSON around it.
    max_answer_bytes = 96 * 1024 * 1024
    settings_model = GeminiSettings
    MODELS: ClassVar[Mapping[str, Capabilities]] = _DEFAULTS
    # 6.1 [C]: the key goes in this header, never as ?key= (URLs end up in logs and proxies).
    key_header = "x-goog-api-key"
    key_prefix = ""
    # Gemini takes references inline: the adapter downloads them (_inputs).
    provider_fetches_references = False

    def __init__(self, *, model_ids: Mapping[str, str] | None = None, **args: Unpack[AdapterArgs]) -> None:
        super().__init__(**args)
        # The API version is part of every path we build; tolerate a base that already names it.
        self._base_url = self._base_url.removesuffix("/v1beta")
        # A configured timeout is sized for generating; small GETs keep their own, shorter ceiling.
        self._download_timeout = _at_most(args.get("timeout"), DOWNLOAD_TIMEOUT)
        self._check_timeout = _at_most(args.get("timeout"), CHECK_TIMEOUT)
        self._models = self._models_for(model_ids=model_ids)

    @classmethod
    def _models_for(cls, *, model_ids: Mapping[str, str] | None = None, **options: Any) -> dict[str, Capabilities]:
        return gemini_models(model_ids)

    def __repr__(self) -> str:  # never the key
        ids = ", ".join(c.provider_model for c in self._models.values())
        return f"GeminiProvider(base_url={self._base_url!r}, models=[{ids}])"

    # -- submit --

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        caps = self._accept(request)
        # The images downloaded for this call: temporary files on disk, not bytes held while Google draws.
        opened: list[ImageFile] = []
        try:
            past, inline = await self._inputs(request, caps, opened, prefetched or {})
            body = InlineBody(build_request_body(request, caps, inline, past))
            url = f"{self._base_url}/v1beta/models/{quote(caps.provider_model, safe='')}:generateContent"
            headers = {**self._request_headers, "Content-Type": "application/json", "Content-Length": str(body.length)}
            # Every call is billed: only 429/5xx/connect failures are retried, never a lost answer (_http).
            response = await self._send(
                "POST", url, Op.CREATE, caps.model, content=body, headers=headers, timeout=self._create_timeout
            )
        finally:
            for image in opened:
                image.close()
        data = _answer(response)
        if data is None:
            # A 200 whose body we cannot read: Google did the work (and may bill it), only the answer is
            # lost. Sending it again could pay twice, so say so instead of retrying.
            raise SubmitUncertainError(
                detail=f"generateContent answer unreadable: {self._describe(response)}",
                provider=self.name,
                status_code=response.status_code,
            )
        response_id = _field(data, "responseId", "response_id")
        job_id = response_id if isinstance(response_id, str) and response_id else f"gemini-{secrets.token_hex(8)}"
        update = self._update(caps, job_id, data)
        log.info(
            "gemini %s job %s: %s%s",
            caps.provider_model,
            job_id,
            update.status.value,
            f" ({update.error_category.value})" if update.error_category else "",
        )
        return JobHandle(
            provider=self.name,
            model=caps.model,
            provider_job_id=job_id,
            extra={"model_id": caps.provider_model},
            ready=update,
        )

    # -- references --

    async def _inputs(
        self, request: GenerationRequest, caps: Capabilities, opened: list[ImageFile], prefetched: Prefetched
    ) -> tuple[tuple[PastTurn, ...], tuple[Inline, ...]]:
        """The earlier turns to send (as many as fit) and the request's own references, downloaded (Gemini
        takes images inline, 8.1) and checked for what they really are. A link the bot has downloaded
        already (``prefetched``: its check of the member's references) is read from that file instead.

        A reference that fails refuses the request. The conversation is context, so what of it cannot be
        had any more (Discord's links expire) is left out: a turn whose image is gone, with the turns
        before it, and a member's image that is gone, from its turn.
        """
        refs = request.reference_images
        # Checked before any download, so a bad link sends nothing anywhere.
        require_web_links(refs, "the bot")
        declared = sum(ref.size for ref in refs)
        if declared > _MAX_INLINE_TOTAL:
            raise self._too_much(declared)
        turns = list(turns_to_send(request, caps.max_reference_images))
        wanted = {ref.url: ref for ref in refs}
        for index, turn in enumerate(turns):
            wanted.update((ref.url, ref) for ref in _turn_inputs(turn, first=index == 0))
        results = await asyncio.gather(
            *(self._download_one(ref, caps, prefetched.get(ref.url)) for ref in wanted.values()),
            return_exceptions=True,
        )
        # Every file made is the caller's to close, whatever is refused or left out below.
        opened += [image[1] for image in results if not isinstance(image, BaseException)]
        fetched = dict(zip(wanted, results, strict=True))
        for ref in refs:
            if isinstance(failure := fetched[ref.url], BaseException):
                raise failure  # the first failure in the member's order
        for failure in fetched.values():
            if isinstance(failure, BaseException) and not isinstance(failure, InvalidRequestError):
                raise failure  # a fault to report, not an image that is gone

        def shown(index: int, turn: Turn) -> list[Inline]:
            # The member's images of a turn that can still be had (a gone one is left out of its turn).
            images = (fetched[ref.url] for ref in _turn_images(turn, first=index == 0))
            return [image for image in images if not isinstance(image, BaseException)]

        def size() -> int:
            images = [image for index, turn in enumerate(turns) for image in shown(index, turn)]
            images += [_ok(fetched[turn.result.url]) for turn in turns]
            images += [_ok(fetched[ref.url]) for ref in (refs[1:] if turns else refs)]
            return sum(map(_size, images))

        if lost := [i for i, turn in enumerate(turns) if isinstance(fetched[turn.result.url], BaseException)]:
            log.info("gemini: %d earlier turn(s) left out, an image they made is gone", lost[-1] + 1)
            del turns[: lost[-1] + 1]
        while turns and size() > _MAX_INLINE_TOTAL:
            del turns[0]
        if (total := size()) > _MAX_INLINE_TOTAL:
            raise self._too_much(total)
        past = tuple(
            PastTurn(
                prompt=turn.sent_prompt,
                images=tuple(shown(index, turn)),
                result=_ok(fetched[turn.result.url]),
                signature=turn.thought_signature,
            )
            for index, turn in enumerate(turns)
        )
        return past, tuple(_ok(fetched[ref.url]) for ref in (refs[1:] if past else refs))

    @staticmethod
    def _too_much(total: int) -> InvalidRequestError:
        return InvalidRequestError(
            f"The reference images add up to {total / 1_048_576:.0f} MiB; Gemini takes at most "
            f"{_MAX_INLINE_TOTAL / 1_048_576:.0f} MiB in one request. Attach fewer or smaller images."
        )

    async def _download_one(
        self, ref: ReferenceImage, caps: Capabilities, fetched: IO[bytes] | None
    ) -> tuple[str, ImageFile]:
        image = ImageFile.empty()
        try:
            if fetched is None:
                await self._download_into(image, ref, caps)
            else:
                # A copy on disk, not the download again: this file is the caller's, and is cut below.
                await asyncio.to_thread(_copy_into, image, fetched)
                if image.size > caps.max_reference_bytes:
                    raise self._too_big(ref.filename, caps.max_reference_bytes)
            return await self._checked(image, ref)
        except BaseException:
            image.close()
            raise

    async def _download_into(self, image: ImageFile, ref: ReferenceImage, caps: Capabilities) -> None:
        """Stream the reference into ``image`` (a file on disk)."""
        name = ref.filename
        cap = caps.max_reference_bytes
        where = safe_url(ref.url)  # Discord links are signed: never log their query string
        try:
            # No key header here: the reference host is not Google. Asked uncompressed, as every provider call.
            async with self._client.stream(
                "GET", ref.url, headers=NO_COMPRESSION, timeout=self._download_timeout, follow_redirects=True
            ) as response:
                if response.status_code != 200:
                    log.info("reference %s: HTTP %d", where, response.status_code)
                    if may_pass(response.status_code):
                        # The CDN's hiccup, not the link's end (an earlier turn's image, or the member's images
                        # of a job moved here from another provider: the links the bot checked just before a
                        # job's first create are read from its files, ``prefetched``). Nothing has gone to
                        # Google, so the job tries again later (bot/job_submit.py), as that check does.
                        raise ReferenceUnavailableError(
                            f"Could not download `{name}` just now (error {response.status_code}). Try again in "
                            "a moment.",
                            detail=f"reference download {where}: HTTP {response.status_code}",
                            retryable=True,
                        )
                    raise ReferenceFetchError(
                        f"Could not download `{name}` (error {response.status_code}). Attachment links "
                        "expire; attach the image again.",
                        detail=f"reference download {where}: HTTP {response.status_code}",
                    )
                length = response.headers.get("content-length", "")
                declared = number_in(length)
                if declared is not None and declared > cap:
                    raise self._too_big(name, cap)
                async for chunk in response.aiter_bytes():
                    image.write(chunk)
                    if image.size > cap:
                        raise self._too_big(name, cap)
        except httpx.HTTPError as exc:
            why = "it timed out" if isinstance(exc, httpx.TimeoutException) else "a network error"
            raise ReferenceUnavailableError(
                f"Could not download `{name}` just now ({why}). Try again in a moment.",
                detail=f"reference download {where}: {redact(f'{type(exc).__name__}: {exc}')}",
                retryable=True,
            ) from None

    @staticmethod
    async def _checked(image: ImageFile, ref: ReferenceImage) -> tuple[str, ImageFile]:
        """What the reference in ``image`` really is, and ``image`` cut to it."""
        actual = await asyncio.to_thread(_sniff, image.file)
        if actual is None:
            raise InvalidRequestError(
                f"`{ref.filename}` is not a readable PNG, JPEG or WebP image. Attach it again in one of those formats."
            )
        # Sent as what its bytes are, whatever its name or Discord said (a JPEG saved as sketch.png is
        # "image/png" there), as the bot judged it (bot/images.py check_reference) and the other providers
        # take it; such a file was refused here alone ("says it is PNG but is really a JPEG").
        await asyncio.to_thread(_cut_after_image, image)
        return actual, image

    @staticmethod
    def _too_big(name: str, cap: int) -> InvalidRequestError:
        return InvalidRequestError(
            f"`{name}` is larger than {cap / 1_048_576:.0f} MiB, the most a reference image may be. "
            "Attach a smaller image."
        )

    # -- the answer --

    def _update(self, caps: Capabilities, job_id: str, data: dict[str, Any]) -> JobUpdate:
        """The terminal update for a 200 answer (6.4): an image, a block, or a clear reason for none."""
        usage = _usage(data)
        where = f"gemini {caps.provider_model} {job_id}"
        feedback = _as_dict(_field(data, "promptFeedback", "prompt_feedback"))
        block = _field(feedback, "blockReason", "block_reason")
        candidates = data.get("candidates")
        candidate = _as_dict(candidates[0]) if isinstance(candidates, list) and candidates else {}
        if isinstance(block, str) and block and block != "BLOCK_REASON_UNSPECIFIED":
            # 6.4 [C]: a blocked prompt is a 200 with promptFeedback.blockReason and no candidates.
            return self._ended(_prompt_blocked(block), f"{where}: prompt blocked, blockReason={clipped(block)}", usage)

        # Bounded: it is written in the job's log line (and matched only against short enum names).
        finish = str(_field(candidate, "finishReason", "finish_reason") or "")[:SHOWN_CHARS].upper()
        parts = _as_dict(candidate.get("content")).get("parts")
        image: tuple[str, bytes] | None = None
        signature: str | None = None
        texts: list[str] = []
        undecodable = False
        for part in parts if isinstance(parts, list) else []:
            part = _as_dict(part)
            if part.get("thought") is True:
                continue  # 6.4 [C cookbook]: thought parts may hold interim images; never the result
            inline = _as_dict(_field(part, "inlineData", "inline_data"))
            if inline:
                mime = _field(inline, "mimeType", "mime_type")
                try:
                    raw = _b64decode(inline.get("data"))
                except (binascii.Error, ValueError):
                    undecodable = True
                    continue
                if raw:
                    # The LAST non-thought image wins (6.4); its signature goes back with it in a later turn.
                    image = (mime if isinstance(mime, str) and mime else "image/png", raw)
                    signed = _field(part, "thoughtSignature", "thought_signature")
                    signature = signed if isinstance(signed, str) and signed else None
                continue
            text = part.get("text")
            if isinstance(text, str) and text.strip():
                texts.append(text.strip())
        text = "\n\n".join(texts) or None
        sources = _grounding_sources(candidate)
        if sources:
            usage["groundingSources"] = sources

        if finish in _FINISH_BLOCKS:
            # A filter stop wins even if an image part came along: never deliver what Google flagged.
            return self._ended(_finish_outcome(finish, False), f"{where}: finishReason={finish}", usage, text=None)
        if image is not None:
            mime, raw = image
            width, height = _image_dimensions(raw)
            return JobUpdate(
                status=UpdateStatus.SUCCEEDED,
                images=[ImageRef(data=raw, content_type=mime, width=width, height=height, thought_signature=signature)],
                text=text,
                usage=usage,
            )
        if undecodable:
            outcome = Outcome(
                ErrorCategory.TRANSIENT,
                "Gemini sent an image the bot could not read. Try again in a minute.",
            )
            return self._ended(outcome, f"{where}: inlineData is not valid base64", usage)
        if not candidate:
            return self._ended(
                Outcome(ErrorCategory.NO_IMAGE, "The model returned nothing this time." + _TRY_AGAIN),
                f"{where}: no candidates and no blockReason",
                usage,
            )
        outcome = _finish_outcome(finish, text is not None)
        detail = f"{where}: finishReason={finish or 'missing'}, no image part"
        if text:
            detail += f" (text: {text[:200]!r})"
        return self._ended(outcome, detail, usage, text=text)

    # -- poll and cancel --

    async def _poll(self, handle: JobHandle) -> JobUpdate:
        # A Gemini handle always carries its answer (``poll`` hands it back); one without it came from
        # somewhere else. Nothing is asked of Google again.
        return JobUpdate(
            status=UpdateStatus.FAILED,
            error_category=ErrorCategory.INTERNAL,
            error_message="The bot lost Gemini's answer to this job. Start a new one.",
            error_detail=f"gemini handle {handle.provider_job_id} has no ready update",
        )

    async def cancel(self, handle: JobHandle) -> bool:
        """Nothing to cancel: by the time a handle exists, the call has finished."""
        return False

    # -- check --

    async def check(self) -> ProviderCheck:
        """models.get for every configured id: proves the key and that the id exists, generating nothing.

        200: key accepted and model id known. 400 API_KEY_INVALID / 401 / 403: the key is rejected.
        404: the key passed (Google checks it first) but the model id is unknown, e.g. a retired one.
        """
        problems: list[str] = []
        unknown: list[str] = []
        for caps in self._models.values():
            url = f"{self._base_url}/v1beta/models/{quote(caps.provider_model, safe='')}"
            try:
                response = await self._client.get(
                    url, headers=self._headers, timeout=self._check_timeout, extensions=self._answer_bounds
                )
            except httpx.TransportError as exc:
                return unreachable(url, exc)
            error = _google_error(response)
            if _key_rejected(response, error):
                return key_rejected(response, [self._api_key])
            if response.status_code == 404:
                unknown.append(f"gemini.model_ids.{caps.model}")
                problems.append(
                    f"model id {caps.provider_model!r} ({caps.display_name}) is unknown to Gemini; "
                    f"Google may have retired it: set a current id in gemini.model_ids.{caps.model}"
                )
            elif response.status_code >= 500:
                return key_not_proven(response.status_code)
            elif not response.is_success:
                problems.append(f"{caps.provider_model}: {self._describe(response)}")
        if problems:
            return ProviderCheck(True, True, "key accepted, but " + "; ".join(problems), tuple(unknown))
        ids = ", ".join(c.provider_model for c in self._models.values())
        return ProviderCheck(True, True, f"key accepted; models available: {ids}")

    # -- errors --

    def _retry_hint(self, response: httpx.Response) -> float | None:
        # RESOURCE_EXHAUSTED: per-project RPM/IPM/RPD limits (6.7); RetryInfo says how long to wait.
        error = _google_error(response)
        if error.retry_delay is not None:
            return error.retry_delay
        if _overloaded(response, error):
            # 6.6 [C]: overloaded, "retry after 30-60 s" (a Retry-After sent with it wins). Longer than a call's
            # backoff, so the retry loop hands the create to the job runner, which moves it to another provider
            # or puts it back in the queue until the wait is over (bot/job_submit.py), rather than three quick
            # retries into the same overload.
            sent = parse_retry_after(response.headers.get("Retry-After"))
            return OVERLOADED_RETRY_SECONDS if sent is None else sent
        return None

    def _answer_uncertain(self, response: httpx.Response, error: ProviderError) -> bool:
        # generateContent is synchronous: Google's own 504 DEADLINE_EXCEEDED body says it gave the call up,
        # and 6.6 [C] says to retry it (or give the client more time); nothing in section 6 says a call that
        # timed out is billed [U]. So it is a temporary fault, retried, then failed over. A 504 without that
        # body (a proxy's HTML page, another body) says nothing of what Google did, and stays uncertain.
        if response.status_code == 504 and _google_error(response).status == "DEADLINE_EXCEEDED":
            return False
        return super()._answer_uncertain(response, error)

    def _error(self, answer: ErrorAnswer) -> ProviderError:
        """Google's error body (6.6 and 8.3) on top of the shared ladder."""
        code, kw = answer.code, answer.kw
        error = _google_error(answer.response)
        if _key_rejected(answer.response, error):
            return AuthError(
                "Gemini rejected the bot's API key (or the key may not use this API). The bot owner has to "
                "check the Gemini key in the configuration.",
                **kw,
            )
        if code == 400 and error.status == "FAILED_PRECONDITION":
            # 6.6 [C]: billing not enabled, or the free tier is not offered in the project's region.
            return OutOfCreditError(
                "The bot's Google project cannot pay for Gemini images (billing is not enabled, or the "
                "free tier is not offered in its region). The bot owner has to enable billing in Google "
                "AI Studio.",
                **kw,
            )
        if code == 404:
            # 6.6 / section 1: what a shut-down model id answers.
            caps = self._models[answer.model]
            return AuthError(
                f"Gemini does not know the model id `{caps.provider_model}` configured for "
                f"{caps.display_name}; Google may have retired it. The bot owner has to set a current "
                "model id in the configuration.",
                **kw,
            )
        if code == 413:
            return BadInputError(
                "The request was too large for Gemini. Attach fewer or smaller reference images.", **kw
            )
        if 400 <= code < 500 and code != 429:
            # 400 INVALID_ARGUMENT (6.6): a size, ratio or field Gemini refused.
            return BadInputError(
                "Gemini rejected the request's settings. Check the size, aspect ratio and reference images, "
                "then try again.",
                **kw,
            )
        if code == 503 and _overloaded(answer.response, error):
            # Google's UNAVAILABLE carries its documented wait (_retry_hint) and is waited out as a 429 is: the
            # error adds when to try again to what the member reads.
            wait = self._retry_hint(answer.response)
            return OverloadedError("Gemini is overloaded right now.", retry_after=wait, **kw)
        if code == 503:
            # Any other 503 (a front end's page, an outage's body) is a temporary fault, retried as usual.
            return TransientError("Gemini is overloaded right now. Try again in a minute.", **kw)
        if code == 504:
            return TransientError("Gemini took too long to answer. Try again in a minute.", **kw)
        return super()._error(answer)
